"""Page speed (seed: core-web-vitals-monitor daily, performance-benchmarking weekly and monthly).

Lab values come from headless Chromium (the median of vitals_runs loads of each critical page),
and every critical page is judged on them. Field values from the Chrome UX Report (p75 of real
Chrome users of the whole origin over 28 days) are a second verdict beside the lab's for LCP,
CLS and INP when the target has them: either failing fails the control. Right after a
deployment (the `deploy` selection) field data describes the release before it: it is shown,
not judged. The evidence names the source of each verdict.
"""

import pytest

from edgeaudit.checks.ttfb import benchmark, failed_statuses
from edgeaudit.checks.weight import page_weights
from edgeaudit.errors import NotEvaluated


def _decide(vitals, evidence, metric, limit, unit, *, field_metric=None, post_deploy=False, inclusive=False):
    """Offenders of `metric` against `limit`: each critical page's lab median (a page that left
    the site is one), and the origin's field p75 when there is field data for `field_metric` and
    the run is not right after a deployment. Every value is measured in the evidence."""
    def over(value):
        return value > limit if inclusive else value >= limit

    offenders = _field_verdict(vitals, evidence, metric, over, limit, unit, field_metric, post_deploy)
    if vitals.lab_error:
        evidence.record("lab", vitals.lab_error)
        if offenders:  # the field fails it whatever the lab would say
            evidence.record("source", "field (the lab could not measure)")
            return offenders
        vitals.lab()  # NotEvaluated, naming the cause and the fix
    pages = vitals.lab()
    evidence.record("source", "lab and field" if field_metric and vitals.field is not None else "lab")
    for key, value in vitals.lab_evidence().items():
        if key != "source":
            evidence.record(key, value)
    evidence.record("pages", {path: page.evidence(metric) for path, page in pages.items()})
    lab = {path: f"not measured: {where}" for path, where in vitals.off_host.items()}
    for path, page in pages.items():
        median = page.median(metric)
        if median is None:
            lab[path] = "not measured"
            continue
        evidence.measure(f"{metric} {path}", median, limit, unit=unit)
        if over(median):
            lab[path] = median
    if vitals.off_host:
        evidence.record("off_host", vitals.off_host)
    return {**lab, **offenders}


def _field_verdict(vitals, evidence, metric, over, limit, unit, field_metric, post_deploy):
    """{origin (field p75): value} when the field's p75 fails and judges; the field in the evidence."""
    if not field_metric:
        return {}
    field = vitals.field
    value = field.p75(field_metric) if field is not None else None
    if value is None:
        evidence.record("field", vitals.field_note or ("no CrUX key configured" if field is None
                                                       else f"CrUX has no {field_metric} p75 for {field.scope}"))
        return {}
    judged = not post_deploy
    evidence.record("field", {**field.evidence(), "judged": judged, **({} if judged else {
        "why_not_judged": "right after a deployment, 28 days of field data describe the releases before it"})})
    evidence.record(f"{metric} field p75", value)
    if not judged:
        return {}
    evidence.measure(f"{metric} field p75", value, limit, unit=unit)
    return {f"{field.scope} (field p75)": value} if over(value) else {}


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
    """First Contentful Paint is under fcp_s on every critical page (lab).

    Remediation: shorten the critical path to first paint: fast time to first byte (edge
    caching), fewer render-blocking stylesheets and synchronous scripts in <head>, inline or
    preload the critical CSS, font-display: swap for web fonts.
    """
    offenders = _decide(vitals, evidence, "fcp_s", thresholds.fcp_s, "s")
    evidence.require_none(offenders, f"expected FCP under {thresholds.fcp_s}s; slower: {_describe(offenders, 's')}")


@pytest.mark.control("EA-PERF-03", severity="P3")
@pytest.mark.daily
@pytest.mark.deploy
@pytest.mark.performance
def test_largest_contentful_paint(vitals, thresholds, evidence, post_deploy):
    """Largest Contentful Paint is under lcp_s on every critical page (lab), and in the field p75 when available.

    Remediation: make the largest element (hero image or heading) arrive early: preload it with
    fetchpriority=high, serve it in a modern format at the right size from the edge, and do not
    lazy-load or render it from script.
    """
    offenders = _decide(vitals, evidence, "lcp_s", thresholds.lcp_s, "s", field_metric="largest_contentful_paint",
                        post_deploy=post_deploy)
    evidence.require_none(offenders, f"expected LCP under {thresholds.lcp_s}s; slower: {_describe(offenders, 's')}")


@pytest.mark.control("EA-PERF-04", severity="P3")
@pytest.mark.daily
@pytest.mark.deploy
@pytest.mark.performance
def test_cumulative_layout_shift(vitals, thresholds, evidence, post_deploy):
    """Cumulative Layout Shift is under cls on every critical page (lab), and in the field p75 when available.

    Remediation: reserve space for everything that arrives late: width and height on images
    and embeds, fixed slots for banners and ads, no content inserted above what is already
    shown, font metrics overrides for web fonts.
    """
    offenders = _decide(vitals, evidence, "cls", thresholds.cls, "", field_metric="cumulative_layout_shift",
                        post_deploy=post_deploy)
    evidence.require_none(offenders, f"expected CLS under {thresholds.cls}; larger: {_describe(offenders, '')}")


@pytest.mark.control("EA-PERF-05", severity="P3")
@pytest.mark.daily
@pytest.mark.deploy
@pytest.mark.performance
def test_responsiveness(vitals, thresholds, evidence, post_deploy):
    """Lab Total Blocking Time is at most tbt_ms on every critical page; field INP p75 at most inp_ms when known.

    Remediation: break long main-thread tasks into pieces under 50 ms (yield to the browser),
    defer scripts that are not needed for the first interaction, move heavy work to a worker.
    """
    field = _decide_field_only(vitals, evidence, "inp_ms", thresholds.inp_ms, "interaction_to_next_paint",
                               post_deploy)
    try:
        lab = _decide(vitals, evidence, "tbt_ms", thresholds.tbt_ms, "ms", inclusive=True)
    except NotEvaluated:
        if not field:
            raise
        lab = {}  # the field fails it whatever the lab would say
    if vitals.field is not None and not vitals.lab_error:
        evidence.record("source", "lab (TBT) and field (INP)")
    offenders = {**lab, **field}
    evidence.require_none(offenders, (f"expected lab Total Blocking Time <= {thresholds.tbt_ms}ms and field INP p75 "
                                      f"<= {thresholds.inp_ms}ms; seen {_describe(offenders, 'ms')}"))


def _decide_field_only(vitals, evidence, metric, limit, field_metric, post_deploy):
    """The field's verdict on a metric the lab does not measure (INP: the lab's stand-in is TBT)."""
    return _field_verdict(vitals, evidence, metric, lambda value: value > limit, limit, "ms", field_metric,
                          post_deploy)


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
    offenders = {path: f"not measured: {where}" for path, where in vitals.off_host.items()}
    for path, page in pages.items():
        evidence.measure(f"weight_kb {path}", page["weight_kb"], thresholds.page_weight_max_kb, unit="KB")
        evidence.measure(f"requests {path}", page["requests"], thresholds.page_requests_max)
        if page["weight_kb"] > thresholds.page_weight_max_kb or page["requests"] > thresholds.page_requests_max:
            offenders[path] = f"{page['weight_kb']} KB in {page['requests']} requests"
    evidence.require_none(offenders, f"expected at most {thresholds.page_weight_max_kb} KB in "
                                     f"{thresholds.page_requests_max} requests per page; "
                                     f"heavier: {_describe(offenders, '')}")
