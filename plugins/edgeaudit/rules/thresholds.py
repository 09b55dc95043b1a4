"""The catalog's default thresholds (CONTROLS.md); `[thresholds]` in the config overrides them.

Each spec says which way is looser (MAX: a higher value lets more through, MIN: a lower one)
and, where the operational procedures name a number, that number: a config may loosen a
threshold past it, and the report shows each one that does.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

TEN_YEARS_S = 315_360_000
MAX = "max"  # a limit not to exceed: a higher value is looser
MIN = "min"  # a floor to reach: a lower value is looser


@dataclass(frozen=True)
class Number:
    """A threshold that may be any finite number in [low, high]."""

    default: float | int
    low: float
    high: float
    direction: str = ""                 # MAX, MIN, or "" where neither way is looser (a pool size, a price)
    procedures: float | None = None     # the operational procedures' value, when they name one

    def looser(self, value: float, than: float | None) -> bool:
        """Whether `value` lets through more than `than` does."""
        if than is None or not self.direction:
            return False
        return value > than if self.direction == MAX else value < than

    def check(self, value: Any) -> float | int:
        """The value, or TypeError saying what to write (nan, inf, booleans and strings are refused)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not self.low <= value <= self.high:
            raise TypeError(f"a number from {self.low:g} to {self.high:g}")
        return value


@dataclass(frozen=True)
class Count(Number):
    """A threshold that counts things (pages, runs, objects): a whole number in [low, high]."""

    def check(self, value: Any) -> float | int:
        if isinstance(value, bool) or not isinstance(value, int) or not self.low <= value <= self.high:
            raise TypeError(f"a whole number from {self.low:g} to {self.high:g}")
        return value


# Every threshold: its default, its type and its range, declared once.
SPECS: Mapping[str, Number] = MappingProxyType(
    {
        "page_load_s": Number(3.0, 0, 600, MAX, procedures=3.0),
        "fcp_s": Number(1.5, 0, 600, MAX, procedures=1.5),
        "lcp_s": Number(2.5, 0, 600, MAX, procedures=2.5),
        "cls": Number(0.1, 0, 10, MAX, procedures=0.1),
        "inp_ms": Number(200, 0, 60_000, MAX),
        "tbt_ms": Number(200, 0, 600_000, MAX),
        "ttfb_p95_ms": Number(800, 0, 60_000, MAX),
        "vitals_runs": Count(3, 1, 20, MIN),
        "cert_warn_days": Number(30, 0, 3650, MIN),
        "cert_fail_days": Number(14, 0, 3650, MIN),
        "cert_max_lifetime_days": Number(398, 1, 3650, MAX),
        "hsts_min_age_s": Number(31536000, 0, TEN_YEARS_S, MIN),
        "observatory_min_score": Number(90, 0, 150, MIN),
        "crawl_max_pages": Count(200, 1, 100_000, MIN),
        "http_concurrency": Count(8, 1, 64),
        "http_deadline_s": Number(60, 1, 3600),
        "cache_hit_ratio_min": Number(0.85, 0, 1, MIN),
        "error_rate_5xx_max": Number(0.001, 0, 1, MAX),
        "error_rate_4xx_max": Number(0.05, 0, 1, MAX),
        "availability_min": Number(0.999, 0, 1, MIN),
        "trend_regression_pct": Number(20, 0, 1000, MAX),
        "immutable_min_age_s": Number(31536000, 0, TEN_YEARS_S, MIN),
        "html_max_age_s": Number(3600, 0, TEN_YEARS_S, MAX),
        "invalidation_free_paths": Count(1000, 0, 10_000_000),
        "invalidation_path_usd": Number(0.005, 0, 100),
        "invalidation_stuck_min": Number(15, 0, 10_080, MAX),
        "deploy_stuck_min": Number(30, 0, 10_080, MAX),
        "deploy_success_window_days": Count(30, 1, 366),
        "deploy_success_rate_min": Number(0.95, 0, 1, MIN),
        "emergency_review_days": Number(2, 0, 365, MAX),
        # the procedures' incident table (P1 5 minutes, P2 15, P3 1 hour, P4 4 hours) as the defaults
        "incident_ack_p1_min": Number(5, 0, 10_080, MAX),
        "incident_ack_p2_min": Number(15, 0, 10_080, MAX),
        "incident_ack_p3_min": Number(60, 0, 10_080, MAX),
        "incident_ack_p4_min": Number(240, 0, 10_080, MAX),
        "postmortem_max_days": Number(5, 0, 365, MAX),
        "budget_warn_ratio": Number(0.8, 0, 10, MAX),
        "cost_spike_factor": Number(2.0, 1, 1000, MAX),
        "access_key_max_age_days": Number(90, 1, 3650, MAX),
        "page_weight_max_kb": Number(2000, 1, 1_000_000, MAX),
        "page_requests_max": Count(60, 1, 10_000, MAX),
        "rpo_min": Number(60, 0, 525_600, MAX),
        "rto_min": Number(60, 0, 525_600, MAX),
        "dr_sample_objects": Count(5, 1, 1000, MIN),
        "dr_full_restore_max_mb": Number(256, 0, 1_000_000, MIN),
        "rollback_window_days": Count(30, 1, 3650, MIN),
        # S3's "The meaning of public": aws:SourceIp ranges that together cover more public
        # addresses than one IPv4 /8 or one IPv6 /32 do not restrict the caller (a shorter prefix is looser)
        "public_ip_prefix_v4": Count(8, 0, 32, MIN),
        "public_ip_prefix_v6": Count(32, 0, 128, MIN),
        "public_acl_sample_objects": Count(20, 1, 1000, MIN),
        "waiver_warn_days": Number(14, 0, 3650, MIN),
        "cadence_grace_h": Number(12, 0, 720, MAX),
    }
)
DEFAULTS: Mapping[str, float | int] = MappingProxyType({name: spec.default for name, spec in SPECS.items()})


def comparison(effective: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every threshold as the run used it, beside its default and the procedures' value, marked
    where it is looser than either (the report's "thresholds")."""
    return [{"key": key, "effective": effective.get(key, spec.default), "default": spec.default,
             "procedures": spec.procedures, "direction": spec.direction or None,
             "looser": spec.looser(effective.get(key, spec.default), spec.procedures),
             "looser_than_default": spec.looser(effective.get(key, spec.default), spec.default)}
            for key, spec in SPECS.items()]


def looser_than_procedures(rows: list[dict[str, Any]]) -> list[str]:
    """The keys of `comparison` rows looser than the procedures."""
    return [row["key"] for row in rows if row.get("looser")]


class Thresholds:
    """Read-only view of the effective thresholds: `thresholds.lcp_s` or `thresholds["lcp_s"]`."""

    def __init__(self, overrides: Mapping[str, Any] | None = None) -> None:
        self._values = {**DEFAULTS, **(overrides or {})}

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"no threshold named {key!r}; known: {', '.join(sorted(self._values))}") from None

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)
