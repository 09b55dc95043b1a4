"""Lab Core Web Vitals: each critical page loaded `vitals_runs` times, each time in a fresh
browser context of headless Chromium (empty cache, new connections), under a device profile.

The metrics are computed in the page from the browser's own performance entries, as the
web-vitals library and Lighthouse define them: page load = navigation `loadEventEnd`, FCP =
the `first-contentful-paint` paint entry, LCP = the last `largest-contentful-paint` entry
before the page is hidden, CLS = the largest session window of layout shifts without recent
input, TBT = the part over 50 ms of each long task after FCP. The median of the runs counts.
The result is measured once per run per target and shared by EA-PERF-01..05 and EA-PERF-07.
"""

from __future__ import annotations

import os
import statistics
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import pytest

from edgeaudit.errors import NotEvaluated
from edgeaudit.rules import limits
from edgeaudit.rules.config import Target
from edgeaudit.rules.thresholds import Thresholds
from edgeaudit.web.browser import (
    LAB_EXTRA_MISSING,
    LAB_USER_AGENT,
    SHARED,
    SharedBrowser,
    executable_file,
    find_chromium,
    install_hint,
    lab_slot,
    one_browser,
)
from edgeaudit.web.crawl import same_origin

SETTLE_MS = 500           # after `load`, how long late shifts, long tasks and LCP candidates are awaited
DEADLINE_S = 60.0         # a page's load, when the caller names no deadline (the run passes http_deadline_s)
LONG_TASK_MS = 50         # the part of a task over this blocks input (TBT)
CLS_GAP_MS = 1000         # a session window closes after this gap between shifts...
CLS_WINDOW_MS = 5000      # ...or when it has lasted this long
RECENT_INPUT_MS = 500     # shifts this soon after an input are expected, not counted

# Lighthouse's mobile profile (Moto G Power, "Slow 4G": 150 ms RTT, 1.6 Mbps down, 750 kbps up, CPU 4x)
# and its unthrottled desktop profile.
PROFILES: dict[str, dict[str, Any]] = {
    "mobile": {"viewport": {"width": 412, "height": 823}, "device_scale_factor": 1.75, "is_mobile": True,
               "has_touch": True, "cpu_slowdown": 4, "rtt_ms": 150, "down_kbps": 1638.4, "up_kbps": 750},
    "desktop": {"viewport": {"width": 1350, "height": 940}, "device_scale_factor": 1, "is_mobile": False,
                "has_touch": False, "cpu_slowdown": 1, "rtt_ms": 0, "down_kbps": 0, "up_kbps": 0},
}

# Runs before any script of the page (CDP, so the page's CSP does not apply): keeps every entry.
OBSERVE_JS = """(() => {
  const ea = window.__edgeaudit = {lcp: [], shifts: [], longtasks: [], inputs: [], hidden: null};
  const watch = (type, keep) => {
    try { new PerformanceObserver(list => list.getEntries().forEach(keep)).observe({type, buffered: true}); }
    catch (e) {}
  };
  watch('largest-contentful-paint', e => ea.lcp.push(e.startTime));
  watch('layout-shift', e => ea.shifts.push({t: e.startTime, value: e.value}));
  watch('longtask', e => ea.longtasks.push({t: e.startTime, d: e.duration}));
  for (const type of ['pointerdown', 'keydown', 'mousedown'])
    addEventListener(type, e => ea.inputs.push(e.timeStamp), true);
  addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden' && ea.hidden === null) ea.hidden = performance.now();
  }, true);
})();"""

COLLECT_JS = """() => {
  const ea = window.__edgeaudit || {lcp: [], shifts: [], longtasks: [], inputs: [], hidden: null};
  const nav = performance.getEntriesByType('navigation')[0] || {};
  const fcp = performance.getEntriesByType('paint').find(e => e.name === 'first-contentful-paint');
  return {load: nav.loadEventEnd || null, ttfb: nav.responseStart || null, fcp: fcp ? fcp.startTime : null,
          lcp: ea.lcp, shifts: ea.shifts, longtasks: ea.longtasks, inputs: ea.inputs, hidden: ea.hidden,
          document: {transfer: nav.transferSize || 0},
          resources: performance.getEntriesByType('resource').map(r => ({url: r.name, transfer: r.transferSize}))};
}"""


class PageNotServed(Exception):
    """A critical page answered an error: there is nothing to measure."""


class PageLeavesSite(Exception):
    """A critical page redirects to another origin: that origin's speed is not the page's."""


def lcp_ms(candidates: list[float], hidden_ms: float | None = None) -> float | None:
    """The last largest-contentful-paint candidate reported before the page was hidden."""
    kept = [t for t in candidates if hidden_ms is None or t <= hidden_ms]
    return kept[-1] if kept else None


def cls_score(shifts: list[dict[str, Any]], inputs: list[float] = ()) -> float:
    """CLS as web-vitals computes it: shifts without recent input (none within 500 ms after a
    pointer or key press) grouped into session windows (a window closes after a 1 s gap or when
    it has lasted 5 s); the largest window counts. Recent input is taken from the input events
    themselves, not from `hadRecentInput`, which mobile emulation sets on every shift."""
    def after_input(t: float) -> bool:
        return any(0 <= t - when <= RECENT_INPUT_MS for when in inputs)

    largest = current = 0.0
    first = last = None
    for shift in sorted((s for s in shifts if not after_input(s["t"])), key=lambda s: s["t"]):
        if first is not None and shift["t"] - last < CLS_GAP_MS and shift["t"] - first < CLS_WINDOW_MS:
            current += shift["value"]
        else:
            first, current = shift["t"], shift["value"]
        last = shift["t"]
        largest = max(largest, current)
    return round(largest, 4)


def tbt_ms(longtasks: list[dict[str, Any]], fcp: float | None) -> float:
    """Total Blocking Time: for each long task after FCP, its part over 50 ms."""
    start = fcp or 0.0
    return round(sum(max(0.0, task["d"] - LONG_TASK_MS) for task in longtasks if task["t"] >= start), 1)


def summarize_run(raw: dict[str, Any]) -> dict[str, Any]:
    """One load's values, in the units of the thresholds (seconds, milliseconds, KB)."""
    def seconds(ms: float | None) -> float | None:
        return None if ms is None else round(ms / 1000, 3)

    transfer = raw["document"]["transfer"] + sum(r["transfer"] for r in raw["resources"])
    lcp = lcp_ms(raw["lcp"], raw["hidden"])
    return {"load_s": seconds(raw["load"]), "fcp_s": seconds(raw["fcp"]), "lcp_s": seconds(lcp),
            "cls": cls_score(raw["shifts"], raw["inputs"]), "tbt_ms": tbt_ms(raw["longtasks"], raw["fcp"]),
            "ttfb_ms": None if raw["ttfb"] is None else round(raw["ttfb"], 1),
            "weight_kb": round(transfer / 1024, 1), "requests": 1 + len(raw["resources"])}


@dataclass
class PageLab:
    """Every lab run of one page, and their medians."""

    url: str
    runs: list[dict[str, Any]] = field(default_factory=list)

    def median(self, metric: str) -> float | None:
        values = [run[metric] for run in self.runs if run.get(metric) is not None]
        return statistics.median(values) if values else None

    def evidence(self, metric: str) -> dict[str, Any]:
        return {"runs": [run.get(metric) for run in self.runs], "median": self.median(metric)}


@dataclass
class Vitals:
    """What the `vitals` fixture gives EA-PERF-*: lab pages (or why there are none), and field
    data when the target names a CrUX key."""

    device: str
    profile: dict[str, Any]
    pages: dict[str, PageLab] = field(default_factory=dict)
    browser: str | None = None
    lab_error: str | None = None
    off_host: dict[str, str] = field(default_factory=dict)  # critical paths that redirect to another origin
    field: Any = None           # a crux.FieldData, when the target has field data
    field_note: str | None = None

    def __repr__(self) -> str:
        lab = f"lab not measured ({self.lab_error})" if self.lab_error else \
            f"lab {' '.join(self.pages) or 'no pages'}" + (f" in {self.browser}" if self.browser else "")
        return f"<Vitals {self.device} {lab}{', field data' if self.field else ''}>"

    def lab(self) -> dict[str, PageLab]:
        """The lab pages; NotEvaluated (with the fix) when the browser could not measure them."""
        if self.lab_error:
            field = f"; field data: {self.field_note}" if self.field_note else (
                "" if self.field else "; no field data either: configure a CrUX key (crux_api_key_env)")
            raise NotEvaluated(self.lab_error + field)
        return self.pages

    def lab_evidence(self) -> dict[str, Any]:
        return {"source": "lab", "browser": self.browser, "device": self.device, "profile": self.profile,
                "runs_per_page": max((len(p.runs) for p in self.pages.values()), default=0)}


def measure(target: Target, runs: int, *, settle_ms: int = SETTLE_MS, shared: SharedBrowser | None = None,
            deadline_s: float = DEADLINE_S) -> Vitals:
    """Load each critical path `runs` times in headless Chromium (the `shared` one of the run, or
    one started for this call), each load within `deadline_s`; without the lab extra (Playwright)
    or a browser, or with a page that cannot be loaded in time, the cause is kept as `lab_error`
    (every lab control then errors with it). A page that redirects to another origin is not
    measured: it is kept as `off_host` (path -> where it went), a finding of every lab control."""
    device = target.device
    profile = PROFILES[device]
    vitals = Vitals(device=device, profile=profile)
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import TimeoutError as PlaywrightTimeout
    except ImportError:
        vitals.lab_error = LAB_EXTRA_MISSING
        return vitals
    if target.browser_path and not executable_file(target.browser_path):  # a named browser is used, or none
        vitals.lab_error = f"browser_path {target.browser_path} is not an executable file: {install_hint()}"
        return vitals
    executable = find_chromium(target.browser_path)
    if executable is None:
        vitals.lab_error = f"no Chromium for the lab measurements: {install_hint()}"
        return vitals
    url = ""
    try:
        with (shared.use(executable) if shared else one_browser(executable)) as browser:
            vitals.browser = f"Chromium {browser.version}"
            for path in target.paths:
                url = urljoin(target.url, path)
                page = PageLab(url)
                try:
                    for _ in range(max(1, int(runs))):
                        with lab_slot():
                            raw = _load(browser, url, profile, bool(target.ca_bundle), settle_ms, deadline_s)
                        page.runs.append(summarize_run(raw))
                except PageLeavesSite as exc:
                    vitals.off_host[path] = str(exc)
                    continue
                vitals.pages[path] = page
    except PageNotServed as exc:
        vitals.lab_error = str(exc)
    except PlaywrightTimeout:
        vitals.lab_error = (f"{url} did not load within the {deadline_s:g} s deadline (http_deadline_s, "
                            "EDGEAUDIT_HTTP_DEADLINE_S): the page, or a resource it waits for, is too slow")
    except PlaywrightError as exc:
        where = f" loading {url}" if url else ""
        vitals.lab_error = f"Chromium ({executable}) failed{where}: {str(exc).splitlines()[0]}"
    return vitals


def _stay_on_origin(cdp: Any, url: str) -> list[str]:
    """Fail every navigation of the page's main frame to another origin than `url`'s (redirects
    included); returns the list the refused URLs are added to."""
    main = cdp.send("Page.getFrameTree")["frameTree"]["frame"]["id"]
    refused: list[str] = []

    def paused(event: dict[str, Any]) -> None:
        target = event["request"]["url"]
        if event.get("frameId") == main and not same_origin(target, url):
            refused.append(target)
            cdp.send("Fetch.failRequest", {"requestId": event["requestId"], "errorReason": "BlockedByClient"})
        else:
            cdp.send("Fetch.continueRequest", {"requestId": event["requestId"]})

    cdp.on("Fetch.requestPaused", paused)
    cdp.send("Fetch.enable", {"patterns": [{"urlPattern": "*", "resourceType": "Document", "requestStage": "Request"}]})
    return refused


def _stayed(url: str, left: list[str]) -> None:
    """PageLeavesSite when the page tried to go to another origin."""
    if left:
        raise PageLeavesSite(f"{url} redirects to {left[0]}, another origin: not measured")


def _load(browser: Any, url: str, profile: dict[str, Any], private_ca: bool, settle_ms: int,
          deadline_s: float = DEADLINE_S) -> dict[str, Any]:
    """One load in a fresh context. A target with its own CA (`ca_bundle`) is loaded without the
    browser's certificate check: EA-TLS-02 verifies that chain; here only speed is measured.
    The page's own navigations stay on its origin (PageLeavesSite otherwise): only documents
    are intercepted, so the page's resources load as they would without the check."""
    from playwright.sync_api import Error as PlaywrightError

    context = browser.new_context(viewport=profile["viewport"], device_scale_factor=profile["device_scale_factor"],
                                  is_mobile=profile["is_mobile"], has_touch=profile["has_touch"],
                                  user_agent=LAB_USER_AGENT, ignore_https_errors=private_ca)
    try:
        context.add_init_script(OBSERVE_JS)
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        left = _stay_on_origin(cdp, url)
        if profile["cpu_slowdown"] > 1 or profile["rtt_ms"]:
            cdp.send("Network.enable")
            cdp.send("Network.emulateNetworkConditions", {
                "offline": False, "latency": profile["rtt_ms"],
                "downloadThroughput": profile["down_kbps"] * 1024 / 8, "uploadThroughput": profile["up_kbps"] * 1024 / 8})
            cdp.send("Emulation.setCPUThrottlingRate", {"rate": profile["cpu_slowdown"]})
        try:
            response = page.goto(url, wait_until="load", timeout=deadline_s * 1000)
        except PlaywrightError:
            _stayed(url, left)
            raise
        _stayed(url, left)
        if response is None or response.status >= 400:
            raise PageNotServed(f"{url} answered {response.status if response else 'nothing'}: the speed of an "
                                "error page is not the page's (EA-SITE-01 checks that it is served)")
        page.wait_for_timeout(settle_ms)
        _stayed(url, left)  # a script may send the page away after load
        return page.evaluate(COLLECT_JS)
    finally:
        context.close()


_CACHE = pytest.StashKey[dict]()
_LOCK = threading.Lock()


def measured(config: pytest.Config, target: Target, thresholds: Thresholds) -> Vitals:
    """The target's vitals, measured on first use and shared for the rest of the run."""
    with _LOCK:
        cache = config.stash.setdefault(_CACHE, {})
        if target.name not in cache:
            vitals = measure(target, thresholds.vitals_runs, shared=SHARED,
                             deadline_s=limits.http_deadline(thresholds.http_deadline_s))
            if target.crux_api_key_env:
                add_field_data(vitals, target)
            cache[target.name] = vitals
        return cache[target.name]


def forget(config: pytest.Config, name: str) -> None:
    """Drop the vitals of target `name`: its last control has run."""
    with _LOCK:
        config.stash.get(_CACHE, {}).pop(name, None)


def held(config: pytest.Config) -> list[str]:
    """The targets whose vitals are held."""
    with _LOCK:
        return list(config.stash.get(_CACHE, {}))


def add_field_data(vitals: Vitals, target: Target) -> None:
    """The origin's CrUX record (form factor of the device profile), or why there is none."""
    from edgeaudit.web.crux import FORM_FACTORS, FieldUnavailable, query

    key = os.environ.get(target.crux_api_key_env or "", "")
    if not key:
        vitals.field_note = f"error: ${target.crux_api_key_env} (crux_api_key_env) is not set; no field data"
        return
    try:
        vitals.field = query(target.url, key, FORM_FACTORS[vitals.device])
    except FieldUnavailable as exc:
        vitals.field_note = ("skipped: " if exc.skipped else "error: ") + exc.reason
