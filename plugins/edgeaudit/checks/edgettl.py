"""How long CloudFront keeps an answer at the edge, as its developer guide ("Managing how long
content stays in the cache") defines it: the origin's s-maxage (else max-age, else Expires)
held within the cache behaviour's MinTTL and MaxTTL; DefaultTTL when the origin sends none;
MinTTL when it sends no-cache, no-store or private. The browser's max-age alone does not
say how long viewers keep getting a page after a deploy."""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from dataclasses import dataclass
from typing import Any

LEGACY_DEFAULT_TTL, LEGACY_MAX_TTL = 86400, 31536000  # a legacy behaviour's TTLs when it names none
NOT_CACHED = ("no-cache", "no-store", "private")


@dataclass(frozen=True)
class Ttls:
    """A behaviour's TTLs and where they come from (its cache policy, or the legacy settings)."""

    source: str
    min_ttl: int
    default_ttl: int
    max_ttl: int


def behaviour_for(config: dict[str, Any], path: str) -> tuple[str, dict[str, Any]]:
    """(path pattern, behaviour) serving `path`: the first cache behaviour whose pattern matches, else the default."""
    for behaviour in (config.get("CacheBehaviors") or {}).get("Items") or []:
        if _matches(behaviour.get("PathPattern", ""), path):
            return behaviour["PathPattern"], behaviour
    return "(default)", config["DefaultCacheBehavior"]


def _matches(pattern: str, path: str) -> bool:
    """CloudFront path patterns: * and ? wildcards, case-sensitive, the leading / optional."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lstrip("/"))
    return re.fullmatch(regex, path.lstrip("/"), flags=re.DOTALL) is not None


def ttls(aws: Any, behaviour: dict[str, Any]) -> Ttls:
    """The behaviour's TTLs: from its cache policy, or the legacy MinTTL/DefaultTTL/MaxTTL on it."""
    if behaviour.get("CachePolicyId"):
        policy = aws.cloudfront.get_cache_policy(Id=behaviour["CachePolicyId"])["CachePolicy"]["CachePolicyConfig"]
        return Ttls(f"cache policy {policy['Name']}", int(policy.get("MinTTL", 0)),
                    int(policy.get("DefaultTTL", LEGACY_DEFAULT_TTL)), int(policy.get("MaxTTL", LEGACY_MAX_TTL)))
    return Ttls("legacy cache settings", int(behaviour.get("MinTTL", 0)),
                int(behaviour.get("DefaultTTL", LEGACY_DEFAULT_TTL)), int(behaviour.get("MaxTTL", LEGACY_MAX_TTL)))


def edge_lifetime(directives: dict[str, Any], headers: Any, limits: Ttls) -> tuple[int, str]:
    """(seconds the edge keeps the answer, why) for the answer's Cache-Control `directives`."""
    bounds = f"{limits.source}: MinTTL {limits.min_ttl}, DefaultTTL {limits.default_ttl}, MaxTTL {limits.max_ttl}"
    if any(name in directives for name in NOT_CACHED):
        said = ", ".join(name for name in NOT_CACHED if name in directives)
        return limits.min_ttl, f"{said} held to MinTTL ({bounds})"
    for name in ("s-maxage", "max-age"):
        seconds = _seconds(directives.get(name))
        if seconds is not None:
            return _within(seconds, limits), f"{name}={seconds} ({bounds})"
    expires = _expires_in(headers)
    if expires is not None:
        return _within(expires, limits), f"Expires in {expires} s ({bounds})"
    return limits.default_ttl, f"no Cache-Control lifetime: DefaultTTL ({bounds})"


def _within(seconds: int, limits: Ttls) -> int:
    return min(max(seconds, limits.min_ttl), limits.max_ttl)


def _seconds(value: Any) -> int | None:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return None


def _expires_in(headers: Any) -> int | None:
    """Seconds from the answer's Date to its Expires; an Expires that cannot be read is in the past."""
    expires = headers.get("Expires")
    if not expires:
        return None
    try:
        until = email.utils.parsedate_to_datetime(expires)
        sent = email.utils.parsedate_to_datetime(headers["Date"]) if headers.get("Date") else dt.datetime.now(
            dt.timezone.utc)
        if until.tzinfo is None or sent.tzinfo is None:
            return 0
    except (TypeError, ValueError):
        return 0
    return max(0, int((until - sent).total_seconds()))
