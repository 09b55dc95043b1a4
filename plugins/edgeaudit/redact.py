"""Redaction of secrets before anything is recorded: credentials, tokens, cookies, API keys.

Two functions, used by every writer: `redact` for a document as data (it knows which keys and
which CloudFront fields hold secrets) and `redact_text` for any text (a whole file, a traceback,
a terminal line). Both are idempotent, and `redact_text` only replaces secret values, so it can
pass over a finished JSON, HTML or XML file without breaking it. Secrets are found by their
names and shapes, and by their values: the run registers the values it holds (`register_secret`),
since a value can appear where no name says what it is (a variable named PSI, a traceback cut
short before the key's name).
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any
from urllib.parse import quote, quote_plus, unquote

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
    "x-goog-credential", "x-api-key", "x-goog-api-key", "jsessionid", "phpsessid")))
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
# name=value after ?, & or ; (also &amp; in HTML, \u0026 in JSON for a <script>, and the
# URL-encoded ?, & and ; of a URL nested in a parameter: next=%2Fcb%3Ftoken%3DV)
_QUERY_PARAM = re.compile(r"(?i)((?:[?&;]|\\u0026|%3f|%26|%3b)((?:[^=&#?;%\s\"'<>\\]|%(?!3d|3f|26|3b))+)(?:=|%3d))"
                          r"((?:[^&#?;%\s\"'<>\\]|%(?!3f|26|3b))+)")
# "name": "value" and 'name': 'value' pairs (a dict or JSON quoted in a message)
_QUOTED_PAIR = re.compile(r"""(["'])([A-Za-z0-9_.-]+)\1(\s*[:=]\s*)(["'])([^"'\\]+)\4""")


# names whose value is a secret whatever comes before (X-Auth-Token, github_token), compared by _normal()
_SECRET_ENDINGS = ("token", "secret", "password", "passwd", "apikey", "secretkey", "privatekey")
_NOT_SECRET = frozenset({"nexttoken", "continuationtoken", "nextcontinuationtoken", "startaftertoken"})  # paging

_registered: list[str] = []  # the run's own secrets, longest first
_registered_lock = threading.Lock()
_MIN_SECRET = 8  # shorter values would redact ordinary words (the demo's secret key is "testing")


def register_secret(value: str | None) -> None:
    """A secret value the run holds (the CrUX key, the AWS secret key and session token, a token
    variable the config names): from now on it is redacted wherever it appears, whatever names
    it, as written and URL-encoded."""
    if not value or len(value.strip()) < _MIN_SECRET:
        return
    global _registered
    value = value.strip()
    with _registered_lock:  # a new list, swapped in whole: a reader never sees one half made
        forms = {*_registered, value, quote(value, safe=""), quote_plus(value, safe="")}
        _registered = sorted(forms, key=len, reverse=True)


def secret_name(name: str) -> bool:
    """A key or parameter name whose value is a secret."""
    normal = _normal(name)
    return normal in SECRET_KEYS or (normal.endswith(_SECRET_ENDINGS) and normal not in _NOT_SECRET)


_env_cache: tuple[Any, list[str]] = (None, [])


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
    secret = _normal(match.group(2)) in SECRET_QUERY_NAMES or secret_name(match.group(2))
    return match.group(1) + REDACTED if secret else match.group(0)


def _quoted_value(match: re.Match[str]) -> str:
    if not secret_name(match.group(2)) or match.group(5) == REDACTED:
        return match.group(0)
    return match.group(0)[:match.start(5) - match.start(0)] + REDACTED + match.group(4)


def redact_url(url: str) -> str:
    """A URL without its user:password@ and without the values of secret query parameters."""
    return _QUERY_PARAM.sub(_query_value, _USERINFO.sub(lambda m: m.group(1) + REDACTED + "@", url))


def redact_text(text: str) -> str:
    """Redact any text: secret environment values, credential patterns, and URL secrets."""
    for secret in (*_registered, *_env_secrets()):
        text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    return redact_url(_QUOTED_PAIR.sub(_quoted_value, text))


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
    return secret_name(key) or (key == "HeaderValue" and "HeaderName" in siblings)


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
