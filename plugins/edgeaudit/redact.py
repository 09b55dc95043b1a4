"""Redaction of secrets before anything is recorded: credentials, tokens, cookies, API keys."""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "<redacted>"
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie",
                            "x-amz-security-token", "x-api-key", "x-goog-api-key"})
_SECRET_NAME = re.compile(r"(secret|token|password|passwd|api[_-]?key|credential|signature|private[_-]?key)", re.I)
_SECRET_QUERY = re.compile(r"^(key|api_?key|token|access_token|sig|signature|x-amz-signature|"
                           r"x-amz-credential|x-amz-security-token|password)$", re.I)
_PATTERNS = [
    re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"),                      # AWS access key ids
    re.compile(r"(?i)(aws_secret_access_key|aws_session_token)\s*[=:]\s*\S+"),
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),                        # Google API keys (CrUX)
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),
]
_URL = re.compile(r"https?://[^\s\"'<>]+")


def _env_secrets() -> list[str]:
    """Values of environment variables whose names say they are secret."""
    return sorted({v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= 8},
                  key=len, reverse=True)


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = [(k, REDACTED if _SECRET_QUERY.match(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="<>"), parts.fragment))


def scrub_document(text: str) -> str:
    """The last pass over a whole written file: secret values and credential patterns."""
    for secret in _env_secrets():
        text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def redact_text(text: str) -> str:
    """Redact one recorded value: secrets, credential patterns, and API keys in URLs."""
    return _URL.sub(lambda m: redact_url(m.group(0)), scrub_document(text))


def redact_cookie(value: str) -> str:
    """Keep a Set-Cookie's name and attributes (controls judge them), drop its value."""
    first, _, attributes = value.partition(";")
    name = first.split("=", 1)[0].strip()
    return f"{name}={REDACTED}" + (f";{attributes}" if attributes else "")


def redact_headers(headers: Any) -> dict[str, str]:
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


def redact(value: Any) -> Any:
    """Redact a JSON-like value recursively."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: (REDACTED if isinstance(k, str) and k.lower() in SECRET_HEADERS else redact(v))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value
