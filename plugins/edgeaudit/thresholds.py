"""The catalog's default thresholds (CONTROLS.md); `[thresholds]` in the config overrides them."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

DEFAULTS: Mapping[str, float | int] = MappingProxyType(
    {
        "page_load_s": 3.0,
        "fcp_s": 1.5,
        "lcp_s": 2.5,
        "cls": 0.1,
        "inp_ms": 200,
        "tbt_ms": 200,
        "ttfb_p95_ms": 800,
        "vitals_runs": 3,
        "cert_warn_days": 30,
        "cert_fail_days": 14,
        "cert_max_lifetime_days": 398,
        "hsts_min_age_s": 31536000,
        "observatory_min_score": 90,
        "crawl_max_pages": 200,
        "http_concurrency": 8,
        "cache_hit_ratio_min": 0.85,
        "error_rate_5xx_max": 0.001,
        "error_rate_4xx_max": 0.05,
        "immutable_min_age_s": 31536000,
        "html_max_age_s": 3600,
        "invalidation_free_paths": 1000,
        "invalidation_path_usd": 0.005,
        "invalidation_stuck_min": 15,
        "deploy_stuck_min": 30,
        "budget_warn_ratio": 0.8,
        "cost_spike_factor": 2.0,
        "access_key_max_age_days": 90,
        "page_weight_max_kb": 2000,
        "page_requests_max": 60,
        "rpo_min": 60,
        "rto_min": 60,
        "dr_sample_objects": 5,
        "waiver_warn_days": 14,
    }
)


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
