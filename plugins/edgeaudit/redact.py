"""Redaction of secrets before anything is recorded: credentials, tokens, cookies, API keys.

Two functions, used by every writer: `redact` for a document as data (it knows which keys and
which CloudFront fields hold secrets) and `redact_text` for any text (a whole file, a traceback,
a terminal line). Both are idempotent, and `redact_text` only replaces secret values, so it can
pass over a finished JSON, HTML or XML file without breaking it.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import unquote

REDACTED = "<redacted>"
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie",
                            "x-amz-security-token", "x-api-key", "x-goog-api-key"})
_SECRET_NAME = re.compile(r"(secret|token|password|passwd|api[_-]?key|credential|signature|private[_-]?key)", re.I)


def _normal(name: str) -> str:
    """`X-Amz-Signature`, `x_amz_signature` and `xAmzSignature` are one name."""
    return re.sub(r"[^a-z0-9]", "", unquote(name).lower())


# query parameters whose value is a secret, compared by _normal()
SECRET_QUERY_NAMES = frozenset(map(_normal, (
    "key", "api_key", "token", "access_token", "refresh_token", "id_token", "auth", "authorization",
    "client_secret", "secret", "password", "passwd", "pwd", "session", "session_id", "sid", "sig", "signature",
    "jwt", "x-amz-signature", "x-amz-credential", "x-amz-security-token", "x-goog-signature",
    "x-goog-credential", "x-api-key", "x-goog-api-key")))
# keys of recorded documents whose value is a secret (the config's external_id, AWS credentials)
SECRET_KEYS = SECRET_QUERY_NAMES - {_normal("key"), _normal("session"), _normal("sid"), _normal("auth")} | frozenset(
    map(_normal, ("external_id", "aws_secret_access_key", "secret_access_key", "session_token",
                  "aws_session_token", "private_key", *SECRET_HEADERS)))

_PATTERNS = [
    re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"),                      # AWS access key ids
    re.compile(r"(?i)(aws_secret_access_key|aws_session_token)\s*[=:]\s*\S+"),
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),                        # Google API keys (CrUX)
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),
]
# user:password@ in a URL (up to the last @ before the path)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s\"'<>\\]*@")
# name=value after ? or & (also &amp; in HTML and \u0026 in JSON for a <script>)
_QUERY_PARAM = re.compile(r"(?i)((?:[?&;]|\\u0026)([^=&#?;\s\"'<>\\]+)=)([^&#\s\"'<>\\]+)")


_env_cache: tuple[Any, list[str]] = (None, [])
_registered: set[str] = set()


def register_secret(value: str) -> None:
    """A secret read from a variable whose name does not say so (a GitHub token in a variable the
    config names): every later redaction replaces it."""
    if len(value) >= 8:
        _registered.add(value)


def _env_secrets() -> list[str]:
    """Values of environment variables whose names say they are secret; recomputed only when
    the environment changed (every recorded string passes here)."""
    global _env_cache
    raw = getattr(os.environ, "_data", None)  # the undecoded mapping: cheap to compare
    state = tuple(raw.items()) if isinstance(raw, dict) else None
    if state is not None and state == _env_cache[0]:
        return _env_cache[1]
    found = sorted({v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= 8},
                   key=len, reverse=True)
    _env_cache = (state, found)
    return found


def _query_value(match: re.Match[str]) -> str:
    return match.group(1) + REDACTED if _normal(match.group(2)) in SECRET_QUERY_NAMES else match.group(0)


def redact_url(url: str) -> str:
    """A URL without its user:password@ and without the values of secret query parameters."""
    return _QUERY_PARAM.sub(_query_value, _USERINFO.sub(lambda m: m.group(1) + REDACTED + "@", url))


def redact_text(text: str) -> str:
    """Redact any text: secret environment values, credential patterns, and URL secrets."""
    found = _env_secrets()
    for secret in sorted({*found, *_registered}, key=len, reverse=True) if _registered else found:
        text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    return redact_url(text)


def redact_cookie(value: str) -> str:
    """Keep a Set-Cookie's name and attributes (controls judge them), drop its value."""
    first, _, attributes = value.partition(";")
    name = first.split("=", 1)[0].strip()
    return f"{name}={REDACTED}" + (f";{attributes}" if attributes else "")


def redact_headers(headers: Any) -> dict[str, str]:
    """Headers as evidence: secret ones dropped, Set-Cookie reduced to name and attributes."""
    out = {}
    for name, value in dict(headers).items():
        lower = name.lower()
        if lower == "set-cookie":
            out[name] = ", ".join(redact_cookie(v) for v in str(value).split(", ") if v)
        elif lower in SECRET_HEADERS:
            out[name] = REDACTED
        else:
            out[name] = redact_text(str(value))
    return out


def _secret_key(key: Any, siblings: dict[Any, Any]) -> bool:
    """A key whose value is a secret: by its name, or the value of a CloudFront origin custom
    header ({"HeaderName": "X-Origin-Verify", "HeaderValue": ...}), a shared secret by design."""
    if not isinstance(key, str):
        return False
    return _normal(key) in SECRET_KEYS or (key == "HeaderValue" and "HeaderName" in siblings)


def redact(value: Any) -> Any:
    """Redact a JSON-like value recursively: keys and values (a URL may be a key), tuples stay
    tuples."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {(redact_text(k) if isinstance(k, str) else k):
                (REDACTED if _secret_key(k, value) and v is not None else redact(v)) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(redact(v) for v in value)
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value
