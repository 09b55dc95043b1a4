"""Performance over time (seed: performance-benchmarking, weekly; Continuous Improvement,
"Improvement Metrics": performance).

Each weekly run measures every critical page in the lab and keeps the medians in the run's
history line; the next runs compare against the median of the four before them."""

import statistics

import pytest

from edgeaudit.errors import NotEvaluated

CONTROL = "EA-PERF-08"
EARLIER_RUNS = 4
METRICS = (("lcp_s", "s", "lcp_s"), ("ttfb_ms", "ms", "ttfb_p95_ms"))  # metric, unit, its absolute threshold


def _earlier(run_history, target, name):
    """The values of `name` this control measured for `target` in earlier runs, oldest first."""
    key = f"{CONTROL}|{target}|{name}"
    return [entry["measures"][key] for entry in run_history if key in (entry.get("measures") or {})]


@pytest.mark.control("EA-PERF-08", severity="P3")
@pytest.mark.weekly
@pytest.mark.performance
def test_no_performance_regression(vitals, target, thresholds, run_history, evidence):
    """No critical page's lab LCP or time to first byte is worse than the median of the previous four weekly runs by more than trend_regression_pct.

    Remediation: compare the page with the release before the regression began (the history's
    dates): a heavier hero image, a new third-party script, a cache policy that no longer caches
    HTML at the edge; fix it, or accept the new level by letting four weekly runs pass.
    """
    pages = vitals.lab()
    pct = thresholds.trend_regression_pct
    evidence.record("source", "lab")
    evidence.record("regression_pct", pct)
    baselines, regressions, short = {}, [], []
    for path, page in pages.items():
        for metric, unit, absolute in METRICS:
            now, name = page.median(metric), f"{metric} {path}"
            if now is None:
                short.append(f"{name}: not measured")
                continue
            earlier = _earlier(run_history, target.name, name)[-EARLIER_RUNS:]
            if len(earlier) < EARLIER_RUNS:
                # kept for the runs to come; shown against the catalog's limit until there is a baseline
                evidence.measure(name, now, thresholds[absolute], unit=unit)
                short.append(f"{name}: {len(earlier)} earlier weekly runs")
                continue
            base = statistics.median(earlier)
            limit = round(base * (1 + pct / 100), 3)
            baselines[name] = {"earlier": earlier, "median": base, "limit": limit}
            evidence.measure(name, now, limit, unit=unit)
            if now > limit:
                regressions.append(f"{name} {now}{unit}, median of the previous {EARLIER_RUNS} runs {base}{unit}")
    evidence.record("baselines", baselines)
    if short:
        raise NotEvaluated(f"no baseline yet for {', '.join(short)}: the trend needs the measurements of "
                           f"{EARLIER_RUNS} earlier weekly runs in the run history")
    for regression in regressions:
        evidence.warn(f"more than {pct}% slower than usual: {regression}")
