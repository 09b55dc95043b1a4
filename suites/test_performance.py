"""Page speed (seed: core-web-vitals-monitor daily, performance-benchmarking weekly and monthly).

Lab values come from headless Chromium (the median of vitals_runs loads of each critical page);
field values from the Chrome UX Report (p75 of real Chrome users), which decides LCP, CLS and
INP when the target has it, since that is what Google assesses. The evidence names the source.
"""

import pytest

from edgeaudit.checks.ttfb import benchmark, failed_statuses
from edgeaudit.checks.weight import page_weights


def _decide(vitals, evidence, metric, limit, unit, *, field_metric=None, field_first=True, inclusive=False):
    """Offenders of `metric` against `limit`: the field p75 of the origin when there is field data
    for it (for a lab-first metric, only when the lab could not measure), otherwise each critical
    page's lab median. Every value is measured in the evidence."""
    def over(value):
        return value > limit if inclusive else value >= limit

    field = vitals.field if field_metric and (field_first or vitals.lab_error) else None
    value = field.p75(field_metric) if field is not None else None
    if value is not None:
        evidence.record("source", "field")
        evidence.record("field", field.evidence())
        evidence.measure(f"{metric} p75", value, limit, unit=unit)
        return {field.scope: value} if over(value) else {}
    if vitals.lab_error:  # what could not be measured, before lab() says so
        evidence.record("lab", vitals.lab_error)
        evidence.record("field", vitals.field_note or "no CrUX key configured")
    pages = vitals.lab()
    evidence.record("source", "lab")
    for key, value in vitals.lab_evidence().items():
        evidence.record(key, value)
    if vitals.field_note:
        evidence.record("field", vitals.field_note)
    evidence.record("pages", {path: page.evidence(metric) for path, page in pages.items()})
    offenders = {}
    for path, page in pages.items():
        median = page.median(metric)
        if median is None:
            offenders[path] = "not measured"
            continue
        evidence.measure(f"{metric} {path}", median, limit, unit=unit)
        if over(median):
            offenders[path] = median
    return offenders


def _describe(offenders, unit):
    return ", ".join(f"{where} {value}{unit}" if isinstance(value, (int, float)) else f"{where} ({value})"
                     for where, value in offenders.items())


@pytest.mark.control("EA-PERF-01", severity="P3")
@pytest.mark.daily
@pytest.mark.deploy
@pytest.mark.performance
def test_page_load_time(vitals, thresholds, evidence):
    """Every critical page loads (navigation loadEventEnd) in under page_load_s.

    Remediation: find the slow part in the evidence's runs (server time, then the page's own
    resources): cache HTML at the edge, cut render-blocking scripts and styles, compress and
    fingerprint assets so that they are cached for a year.
    """
    offenders = _decide(vitals, evidence, "load_s", thresholds.page_load_s, "s")
    evidence.require_none(offenders, (f"expected every critical page to load in under {thresholds.page_load_s}s; "
                                      f"slower: {_describe(offenders, 's')}"))


@pytest.mark.control("EA-PERF-02", severity="P3")
@pytest.mark.daily
@pytest.mark.deploy
@pytest.mark.performance
def test_first_contentful_paint(vitals, thresholds, evidence):
    """First Contentful Paint is under fcp_s on every critical page (lab; field p75 without a browser).

    Remediation: shorten the critical path to first paint: fast time to first byte (edge
    caching), fewer render-blocking stylesheets and synchronous scripts in <head>, inline or
    preload the critical CSS, font-display: swap for web fonts.
    """
    offenders = _decide(vitals, evidence, "fcp_s", thresholds.fcp_s, "s", field_metric="first_contentful_paint",
                        field_first=False)
    evidence.require_none(offenders, f"expected FCP under {thresholds.fcp_s}s; slower: {_describe(offenders, 's')}")


@pytest.mark.control("EA-PERF-03", severity="P3")
@pytest.mark.daily
@pytest.mark.deploy
@pytest.mark.performance
def test_largest_contentful_paint(vitals, thresholds, evidence):
    """Largest Contentful Paint is under lcp_s (field p75 when available, else lab).

    Remediation: make the largest element (hero image or heading) arrive early: preload it with
    fetchpriority=high, serve it in a modern format at the right size from the edge, and do not
    lazy-load or render it from script.
    """
    offenders = _decide(vitals, evidence, "lcp_s", thresholds.lcp_s, "s", field_metric="largest_contentful_paint")
    evidence.require_none(offenders, f"expected LCP under {thresholds.lcp_s}s; slower: {_describe(offenders, 's')}")


@pytest.mark.control("EA-PERF-04", severity="P3")
@pytest.mark.daily
@pytest.mark.deploy
@pytest.mark.performance
def test_cumulative_layout_shift(vitals, thresholds, evidence):
    """Cumulative Layout Shift is under cls (field p75 when available, else lab).

    Remediation: reserve space for everything that arrives late: width and height on images
    and embeds, fixed slots for banners and ads, no content inserted above what is already
    shown, font metrics overrides for web fonts.
    """
    offenders = _decide(vitals, evidence, "cls", thresholds.cls, "", field_metric="cumulative_layout_shift")
    evidence.require_none(offenders, f"expected CLS under {thresholds.cls}; larger: {_describe(offenders, '')}")


@pytest.mark.control("EA-PERF-05", severity="P3")
@pytest.mark.daily
@pytest.mark.deploy
@pytest.mark.performance
def test_responsiveness(vitals, thresholds, evidence):
    """Interaction to Next Paint is at most inp_ms in the field, or lab Total Blocking Time at most tbt_ms.

    Remediation: break long main-thread tasks into pieces under 50 ms (yield to the browser),
    defer scripts that are not needed for the first interaction, move heavy work to a worker.
    """
    field = vitals.field
    if field is not None and field.p75("interaction_to_next_paint") is not None:
        offenders = _decide(vitals, evidence, "inp_ms", thresholds.inp_ms, "ms",
                            field_metric="interaction_to_next_paint", inclusive=True)
        evidence.require_none(offenders, f"expected field INP p75 <= {thresholds.inp_ms}ms; "
                                         f"seen {_describe(offenders, 'ms')}")
        return
    offenders = _decide(vitals, evidence, "tbt_ms", thresholds.tbt_ms, "ms", inclusive=True)
    evidence.require_none(offenders, (f"expected lab Total Blocking Time <= {thresholds.tbt_ms}ms (no field INP); "
                                      f"seen {_describe(offenders, 'ms')}"))


@pytest.mark.control("EA-PERF-06", severity="P3")
@pytest.mark.weekly
@pytest.mark.monthly
@pytest.mark.performance
def test_time_to_first_byte(site, target, thresholds, evidence):
    """Time to first byte on a new connection, p95 over 20 requests of each critical path, is at most ttfb_p95_ms.

    Every request must be answered (2xx or 3xx). The evidence also shows the warm TTFB of
    kept-alive connections; the full one (DNS, TCP and TLS included) is judged.

    Remediation: let the edge answer from its cache (a cache policy with a TTL for HTML, no
    cookies or query strings in the cache key), enable Origin Shield for a distant origin, and
    check the origin's own latency in CloudFront's OriginLatency metric; for slow connections,
    HTTP/3 and TLS 1.3 save round trips. An error status is the origin's or the distribution's.
    """
    results = benchmark(site, target.paths)
    evidence.record("source", "full TTFB: each request on a new connection (DNS, TCP, TLS included); "
                              "warm: kept-alive connections")
    evidence.record("pages", results)
    offenders = {}
    for path, result in results.items():
        evidence.measure(f"ttfb_p95_ms {path}", result["p95_ms"], thresholds.ttfb_p95_ms, unit="ms")
        if failed_statuses(result):
            offenders[path] = f"answered {', '.join(map(str, failed_statuses(result)))}"
        elif result["p95_ms"] > thresholds.ttfb_p95_ms:
            offenders[path] = result["p95_ms"]
    evidence.require_none(offenders, (f"expected every request answered (2xx/3xx) with a full TTFB p95 <= "
                                      f"{thresholds.ttfb_p95_ms}ms on every critical path; "
                                      f"seen {_describe(offenders, 'ms')}"))


@pytest.mark.control("EA-PERF-07", severity="P4")
@pytest.mark.weekly
@pytest.mark.monthly
@pytest.mark.performance
def test_page_weight(vitals, site, target, thresholds, evidence):
    """Each critical page weighs at most page_weight_max_kb in at most page_requests_max requests.

    Remediation: compress text assets, serve images in modern formats at the size shown,
    lazy-load what is below the fold, drop unused scripts and third-party tags.
    """
    if vitals.lab_error:
        evidence.record("source", f"fetched without a browser ({vitals.lab_error})")
        pages = page_weights(site, target.paths)
    else:
        evidence.record("source", "lab (resource timing transfer sizes)")
        pages = {path: {"weight_kb": page.median("weight_kb"), "requests": page.median("requests")}
                 for path, page in vitals.lab().items()}
    evidence.record("pages", pages)
    offenders = {}
    for path, page in pages.items():
        evidence.measure(f"weight_kb {path}", page["weight_kb"], thresholds.page_weight_max_kb, unit="KB")
        evidence.measure(f"requests {path}", page["requests"], thresholds.page_requests_max)
        if page["weight_kb"] > thresholds.page_weight_max_kb or page["requests"] > thresholds.page_requests_max:
            offenders[path] = f"{page['weight_kb']} KB in {page['requests']} requests"
    evidence.require_none(offenders, f"expected at most {thresholds.page_weight_max_kb} KB in "
                                     f"{thresholds.page_requests_max} requests per page; "
                                     f"heavier: {_describe(offenders, '')}")
