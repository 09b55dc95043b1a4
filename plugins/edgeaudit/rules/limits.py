"""The network limits the environment may change: timeouts, retries, the bytes read of one
answer and the deadline of one answer.

Each variable is read here, with its default and its range. `check_environment()` runs before
any control: a value that is not a number, not finite or out of range is one usage error naming
the variable and the fix, not an error in every control (and never a limit of 0 that reads
nothing and finds nothing wrong).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from edgeaudit.errors import ConfigError

HTTP_TIMEOUT_ENV = "EDGEAUDIT_HTTP_TIMEOUT_S"    # "connect,read" seconds
HTTP_DEADLINE_ENV = "EDGEAUDIT_HTTP_DEADLINE_S"  # seconds for one whole answer, headers and body
HTTP_MAX_BYTES_ENV = "EDGEAUDIT_HTTP_MAX_BYTES"  # bytes read of one answer's body
AWS_TIMEOUT_ENV = "EDGEAUDIT_AWS_TIMEOUT_S"      # "connect,read" seconds
AWS_ATTEMPTS_ENV = "EDGEAUDIT_AWS_MAX_ATTEMPTS"  # total attempts with retries
TLS_TIMEOUT_ENV = "EDGEAUDIT_TLS_TIMEOUT_S"      # seconds for one TCP connect plus TLS handshake


@dataclass(frozen=True)
class Limit:
    """One variable: its default, its range, and whether it holds a pair "connect,read" or a whole number."""

    default: str
    low: float
    high: float
    pair: bool = False
    whole: bool = False

    def wanted(self) -> str:
        low, high = (f"{int(n)}" if n == int(n) else f"{n:g}" for n in (self.low, self.high))
        if self.pair:
            return f"'connect,read' seconds, each from {low} to {high}"
        return f"a {'whole number' if self.whole else 'number of seconds'} from {low} to {high}"


LIMITS: dict[str, Limit] = {
    HTTP_TIMEOUT_ENV: Limit("5,20", 0.1, 600, pair=True),
    HTTP_DEADLINE_ENV: Limit("60", 1, 3600),
    HTTP_MAX_BYTES_ENV: Limit(str(10 * 2**20), 1024, 2**30, whole=True),
    AWS_TIMEOUT_ENV: Limit("5,20", 0.1, 600, pair=True),
    AWS_ATTEMPTS_ENV: Limit("6", 1, 20, whole=True),
    TLS_TIMEOUT_ENV: Limit("10", 0.1, 600),
}


def _numbers(name: str) -> list[float]:
    """The variable's number(s), checked; ConfigError naming the variable and the fix."""
    limit = LIMITS[name]
    raw = os.environ.get(name, "").strip()
    text = raw or limit.default
    parts = text.split(",") if limit.pair else [text]
    try:
        values = [float(part) if not limit.whole else int(part) for part in parts]
    except ValueError:
        values = []
    if limit.pair and len(values) == 1:
        values *= 2  # one number is both the connect and the read timeout
    if not values or len(values) != (2 if limit.pair else 1) or not all(
            math.isfinite(v) and limit.low <= v <= limit.high for v in values):
        raise ConfigError("environment", f"{name}={raw!r}", "not a usable value",
                          f"set {name} to {limit.wanted()}, or unset it for the default ('{limit.default}')")
    return values


def http_timeout() -> tuple[float, float]:
    """(connect, read) seconds of one HTTP request: 5/20, or EDGEAUDIT_HTTP_TIMEOUT_S."""
    connect, read = _numbers(HTTP_TIMEOUT_ENV)
    return connect, read


def http_deadline(configured: float | None = None) -> float:
    """Seconds one HTTP answer may take in all: EDGEAUDIT_HTTP_DEADLINE_S, else the config's
    `http_deadline_s` threshold, else 60."""
    if os.environ.get(HTTP_DEADLINE_ENV, "").strip() or configured is None:
        return _numbers(HTTP_DEADLINE_ENV)[0]
    return float(configured)


def http_max_bytes() -> int:
    """Bytes read of one answer's body: 10 MiB, or EDGEAUDIT_HTTP_MAX_BYTES."""
    return int(_numbers(HTTP_MAX_BYTES_ENV)[0])


def aws_timeout() -> tuple[float, float]:
    """(connect, read) seconds of one AWS call: 5/20, or EDGEAUDIT_AWS_TIMEOUT_S."""
    connect, read = _numbers(AWS_TIMEOUT_ENV)
    return connect, read


def aws_max_attempts() -> int:
    """Attempts of one AWS call, retries included: 6, or EDGEAUDIT_AWS_MAX_ATTEMPTS."""
    return int(_numbers(AWS_ATTEMPTS_ENV)[0])


def tls_timeout() -> float:
    """Seconds of one TCP connect plus TLS handshake: 10, or EDGEAUDIT_TLS_TIMEOUT_S."""
    return _numbers(TLS_TIMEOUT_ENV)[0]


def check_environment() -> None:
    """Every limit the environment sets, checked before any control runs (ConfigError on the first bad one)."""
    for name in LIMITS:
        _numbers(name)
