"""The live-site controls proven both ways: one run of the site, header, TLS, probe, deployment
and cache suites over a fleet of built sites (a compliant one, and one per break), then small
tests reading that run's rows. Also: a dead site errors within the configured timeouts, and a
full run fetches each URL at most once per method (counted at the edge)."""

from __future__ import annotations

import fcntl
import json
import socket
import threading
from collections import Counter
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote

import pytest

from conftest import Run, assert_finding, assert_passes, run_suite
from edgeaudit.demo.builder import CSP, SiteSpec
from edgeaudit.rules import tomlwrite

MODULES = ("suites/test_site.py", "suites/test_headers.py", "suites/test_tls.py", "suites/test_probes.py",
           "suites/test_deployment.py", "suites/test_cache.py")
CONTROLS = {
    "EA-SITE-01": "P1", "EA-SITE-02": "P2", "EA-SITE-03": "P3", "EA-SITE-04": "P3", "EA-SITE-05": "P4",
    "EA-SITE-06": "P3", "EA-HDR-01": "P2", "EA-HDR-02": "P3", "EA-HDR-03": "P3", "EA-HDR-04": "P3",
    "EA-HDR-05": "P4", "EA-HDR-06": "P4", "EA-HDR-07": "P4", "EA-HDR-08": "P3", "EA-HDR-09": "P3",
    "EA-TLS-01": "P2", "EA-TLS-02": "P1", "EA-TLS-03": "P3", "EA-TLS-04": "P2", "EA-TLS-05": "P3",
    "EA-PEN-01": "P1", "EA-PEN-02": "P2", "EA-PEN-03": "P2", "EA-PEN-04": "P2", "EA-PEN-05": "P1",
    "EA-PEN-06": "P3", "EA-PEN-07": "P3", "EA-PEN-08": "P4", "EA-PEN-09": "P2", "EA-DEP-02": "P2",
    "EA-DEP-04": "P2", "EA-CACHE-01": "P4", "EA-CACHE-02": "P4",
}
NO_FRAME_CSP = CSP.replace("; frame-ancestors 'none'", "")

# target -> (the switches that break it, {control: expected outcome}); every other control passes.
# A few breaks fail more than one control, as they would on AWS: the Observatory score (EA-HDR-08)
# counts the same missing header, a missing page is a broken link and a stale URL too, and S3's XML
# error is both a wrong 404 and a leak.
BROKEN = {
    "ok": ({}, {}),
    "no-about": ({"missing_objects": ("about.html",)},
                 {"EA-SITE-01": "failed", "EA-SITE-04": "failed", "EA-DEP-02": "failed", "EA-DEP-04": "failed"}),
    "https-only": ({"viewer_protocol_policy": "https-only"}, {"EA-SITE-02": "failed", "EA-HDR-08": "failed"}),
    "soft-404": ({"soft_404": True}, {"EA-SITE-03": "failed"}),
    "xml-errors": ({"custom_error_pages": False}, {"EA-SITE-03": "failed", "EA-PEN-07": "failed"}),
    "broken-link": ({"broken_link": True}, {"EA-SITE-04": "failed", "EA-DEP-04": "failed"}),
    "no-sitemap": ({"missing_objects": ("sitemap.xml",)}, {"EA-SITE-05": "failed"}),
    "mixed": ({"mixed_content": True}, {"EA-SITE-06": "failed"}),
    "short-hsts": ({"hsts_max_age": 86400}, {"EA-HDR-01": "failed"}),
    "no-hsts": ({"hsts_max_age": None}, {"EA-HDR-01": "failed", "EA-HDR-08": "failed"}),
    "csp-eval": ({"csp": "default-src 'self'; script-src 'self' 'unsafe-eval'; frame-ancestors 'none'"},
                 {"EA-HDR-02": "failed"}),
    "weak-csp": ({"csp": "frame-ancestors 'none'; upgrade-insecure-requests"},
                 {"EA-HDR-02": "failed", "EA-HDR-08": "failed"}),
    "no-nosniff": ({"content_type_options": False}, {"EA-HDR-03": "failed"}),
    "no-frame": ({"frame_options": None, "csp": NO_FRAME_CSP}, {"EA-HDR-04": "failed", "EA-HDR-08": "failed"}),
    "leaky-referrer": ({"referrer_policy": "unsafe-url"}, {"EA-HDR-05": "failed"}),
    "no-permissions": ({"permissions_policy": False}, {"EA-HDR-06": "failed"}),
    "powered-by": ({"origin_headers": (("X-Powered-By", "Express 4.18"),)}, {"EA-HDR-07": "failed"}),
    "cookie": ({"origin_headers": (("Set-Cookie", "theme=dark; Path=/; Secure"),)}, {"EA-HDR-09": "failed"}),
    "git": ({"extra_objects": ((".git/HEAD", b"ref: refs/heads/main\n", "text/plain"),)}, {"EA-PEN-01": "failed"}),
    "listing": ({"bucket_listing": True}, {"EA-PEN-02": "failed"}),
    "public-bucket": ({"public_bucket": True}, {"EA-PEN-03": "failed"}),
    "cors": ({"cors_reflection": True}, {"EA-PEN-04": "failed", "EA-HDR-08": "failed"}),
    "public-write": ({"public_write": True}, {"EA-PEN-05": "failed"}),
    "open-redirect": ({"open_redirect": True}, {"EA-PEN-06": "failed"}),
    "source-maps": ({"source_maps": True}, {"EA-PEN-08": "failed"}),
    "dangling-dns": ({"dangling_dns": True}, {"EA-PEN-09": "failed"}),
    "stale-index": ({"stale_objects": ("index.html",)}, {"EA-DEP-02": "failed", "EA-DEP-04": "failed"}),
    "stale-logo": ({"stale_objects": ("assets/logo.svg",)}, {"EA-DEP-04": "failed"}),
    "no-compress": ({"compress": False}, {"EA-CACHE-01": "failed"}),
    "short-asset-cache": ({"asset_cache_control": "public, max-age=3600"}, {"EA-CACHE-02": "failed"}),
    "long-html-cache": ({"html_cache_control": "public, max-age=86400"}, {"EA-CACHE-02": "failed"}),
}


def once(request: pytest.FixtureRequest, name: str, produce: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """What produce(workdir) returns, made once per test session even under xdist: the first worker
    to ask makes it, the others wait for it and read what it saved (a fleet run is the costliest
    thing these tests do, and module fixtures would otherwise run once per worker)."""
    base = request.getfixturevalue("tmp_path_factory").getbasetemp()
    root = base.parent if hasattr(request.config, "workerinput") else base  # an xdist worker: shared parent
    saved = root / f"{name}.json"
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not saved.exists():
            workdir = root / name
            workdir.mkdir()
            saved.write_text(json.dumps(produce(workdir)))
    return json.loads(saved.read_text())


def run_over(world, workdir: Path, targets: list[dict], *args: str, env: dict | None = None) -> Run:
    config = workdir / "edgeaudit.toml"
    config.write_text(tomlwrite.dumps({"targets": targets}))
    return run_suite(*args, "--edgeaudit-config", str(config), env={**world.aws_env, **(env or {})},
                     report_dir=workdir / "reports")


def as_run(saved: dict[str, Any]) -> Run:
    return Run(saved["returncode"], saved["output"], Path(saved["report_dir"]))


def kept(run: Run) -> dict[str, Any]:
    """A run as once() saves it (as_run reads it back)."""
    return {"returncode": run.returncode, "output": run.output, "report_dir": str(run.report_dir)}


def run_sites(request: pytest.FixtureRequest, name: str, specs: list[SiteSpec], *args: str) -> Run:
    """One run of `args` over a site per spec, made once per test session (see once)."""
    def produce(workdir: Path) -> dict[str, Any]:
        world = request.getfixturevalue("world")
        sites = [world.add(spec) for spec in specs]
        return kept(run_over(world, workdir, [site.target_entry() for site in sites], *args))
    return as_run(once(request, name, produce))


@pytest.fixture(scope="module")
def fleet_run(request) -> dict[str, Any]:
    """One run of the live-site controls over the compliant site and one broken site per switch."""
    def produce(workdir: Path) -> dict[str, Any]:
        world = request.getfixturevalue("world")
        sites = {name: world.add(SiteSpec(name=name).but(**switch)) for name, (switch, _) in BROKEN.items()}
        run = run_over(world, workdir, [site.target_entry() for site in sites.values()], *MODULES)
        return {**kept(run),
                "urls": {name: site.edge.url for name, site in sites.items()},
                "edge_errors": [error for site in sites.values() for error in site.edge.errors]}
    return once(request, "fleet-site", produce)


@pytest.fixture(scope="module")
def fleet(fleet_run) -> Run:
    return as_run(fleet_run)


@pytest.fixture(scope="module")
def urls(fleet_run) -> dict[str, str]:
    """target -> its edge's https URL"""
    return fleet_run["urls"]


def mine(run: Run, target: str) -> dict[str, str]:
    return {c: o for c, o in run.outcomes(target).items() if c in CONTROLS}


def test_fleet_reports_every_control_for_every_target(fleet):
    assert fleet.report["complete"] is True, fleet.output
    pairs = {(r["control"], r["target"]) for r in fleet.report["results"]}
    assert pairs >= {(c, t) for c in CONTROLS for t in BROKEN}


@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_compliant_site_passes(fleet, control):
    result = fleet.result(control, "ok")
    assert_passes(result, CONTROLS[control])


@pytest.mark.parametrize("target", [name for name in BROKEN if name != "ok"])
def test_broken_site_fails_exactly_its_controls(fleet, target):
    expected = BROKEN[target][1]
    assert {c: o for c, o in mine(fleet, target).items() if o != "passed"} == expected, fleet.output
    for control in expected:
        assert_finding(fleet.result(control, target), CONTROLS[control])


def evidence(fleet, control, target):
    return fleet.result(control, target)["evidence"]


def test_every_failing_case_names_its_offender(fleet, urls):
    def url(target, path):
        return urls[target].rstrip("/") + path

    assert evidence(fleet, "EA-SITE-01", "no-about")["offenders"] == ["/about.html"]
    assert evidence(fleet, "EA-SITE-02", "https-only")["status"] == 403
    assert evidence(fleet, "EA-SITE-03", "soft-404")["status"] == 200
    assert evidence(fleet, "EA-SITE-03", "xml-errors")["s3_xml_error"] == ["<Error>", "<Code>", "<RequestId>",
                                                                           "<HostId>"]
    assert list(evidence(fleet, "EA-SITE-04", "broken-link")["broken"]) == [
        url("broken-link", "/docs/getting-started.html")]
    assert evidence(fleet, "EA-SITE-05", "no-sitemap")["sitemap"]["status"] in (403, 404)
    assert evidence(fleet, "EA-SITE-06", "mixed")["mixed_content"] == {
        url("mixed", "/"): ["<img src> http://images.example.com/banner.png"]}
    assert len(evidence(fleet, "EA-HDR-01", "no-hsts")["offenders"]) == 3  # two pages and the 404 page
    assert "'unsafe-eval' in script sources" in fleet.result("EA-HDR-02", "csp-eval")["message"]
    assert "no script-src or default-src" in fleet.result("EA-HDR-02", "weak-csp")["message"]
    assert len(evidence(fleet, "EA-HDR-03", "no-nosniff")["offenders"]) == 3
    assert len(evidence(fleet, "EA-HDR-04", "no-frame")["offenders"]) == 3
    assert set(evidence(fleet, "EA-HDR-05", "leaky-referrer")["headers"].values()) == {"unsafe-url"}
    assert len(evidence(fleet, "EA-HDR-06", "no-permissions")["offenders"]) == 3
    assert "X-Powered-By: Express 4.18" in fleet.result("EA-HDR-07", "powered-by")["message"]
    assert evidence(fleet, "EA-HDR-09", "cookie")["offenders"] == {"theme": ["SameSite=Lax or Strict"]}
    assert "/.git/HEAD" in evidence(fleet, "EA-PEN-01", "git")["offenders"]
    assert "/?list-type=2" in evidence(fleet, "EA-PEN-02", "listing")["offenders"]
    assert evidence(fleet, "EA-PEN-03", "public-bucket")["offenders"] == ["GET", "LIST"]
    assert f"HEAD {url('cors', '/')}" in evidence(fleet, "EA-PEN-04", "cors")["offenders"]
    writes = set(evidence(fleet, "EA-PEN-05", "public-write")["offenders"])
    assert {"PUT (200)", "PATCH (200)", "DELETE (204)"} <= writes
    redirects = evidence(fleet, "EA-PEN-06", "open-redirect")["offenders"]  # every probe: //host, %2F%2F, 3 queries
    assert len(redirects) == 5 and all("evil.example" in unquote(probe) for probe in redirects)
    leaks = evidence(fleet, "EA-PEN-07", "xml-errors")["offenders"]
    not_found = next(probe for probe in leaks if probe.startswith("GET "))
    assert "<Code>" in leaks[not_found] and "<RequestId>" in leaks[not_found]
    assert evidence(fleet, "EA-PEN-08", "source-maps")["offenders"] == [url("source-maps", "/assets/app.8c2e4d.js.map")]
    assert set(evidence(fleet, "EA-PEN-09", "dangling-dns")["offenders"]) == {"old.localhost. CNAME",
                                                                               "media.localhost. CNAME"}
    assert evidence(fleet, "EA-DEP-02", "stale-index")["offenders"] == [url("stale-index", "/")]
    assert "differ" in evidence(fleet, "EA-DEP-02", "stale-index")["pages"][url("stale-index", "/")]["how"]
    assert list(evidence(fleet, "EA-DEP-04", "stale-logo")["offenders"]) == [url("stale-logo", "/assets/logo.svg")]
    compress = evidence(fleet, "EA-CACHE-01", "no-compress")["offenders"]
    assert compress["behaviours"] == ["(default)", "/assets/*"]
    assert set(compress["uncompressed"]) == {url("no-compress", "/assets/style.3f9a1c.css"),
                                             url("no-compress", "/assets/app.8c2e4d.js")}
    assert set(evidence(fleet, "EA-CACHE-02", "short-asset-cache")["offenders"]) == {
        url("short-asset-cache", "/assets/style.3f9a1c.css"), url("short-asset-cache", "/assets/app.8c2e4d.js")}
    assert set(evidence(fleet, "EA-CACHE-02", "long-html-cache")["offenders"]) == {
        url("long-html-cache", "/"), url("long-html-cache", "/about.html")}


def test_cache_lifetimes_are_measured_against_their_thresholds(fleet):
    def margin(target, name):
        m = fleet.result("EA-CACHE-02", target)["margins"][name]
        return m["observed"], m["limit"], m["margin"] >= 0
    assert margin("ok", "shortest_asset_max_age_s") == (31536000, 31536000, True)
    assert margin("ok", "longest_html_max_age_s")[1:] == (3600, True)
    assert margin("short-asset-cache", "shortest_asset_max_age_s") == (3600, 31536000, False)
    assert margin("long-html-cache", "longest_html_max_age_s") == (86400, 3600, False)


def test_observatory_evidence_names_the_modifiers(fleet, urls):
    home = urls["no-frame"]
    page = evidence(fleet, "EA-HDR-08", "no-frame")["pages"][home]
    assert page["score"] == 80 and page["grade"] == "B+"
    assert page["tests"]["x-frame-options"] == "x-frame-options-not-implemented (-20)"
    assert "x-frame-options-not-implemented -20" in fleet.result("EA-HDR-08", "no-frame")["message"]
    cors = evidence(fleet, "EA-HDR-08", "cors")["pages"][urls["cors"]]
    assert cors["tests"]["cross-origin-resource-sharing"].startswith(
        "cross-origin-resource-sharing-implemented-with-universal-access")
    ok = evidence(fleet, "EA-HDR-08", "ok")["pages"][urls["ok"]]
    assert (ok["score"], ok["grade"]) == (115, "A+")


def test_crawl_size_and_time_are_in_the_evidence(fleet):
    crawl = evidence(fleet, "EA-SITE-04", "ok")["crawl"]
    assert crawl["urls_fetched"] == 5 and crawl["html_pages"] == 2 and crawl["truncated"] is False
    assert crawl["elapsed_s"] >= 0 and crawl["concurrency"] == 8 and crawl["max_pages"] == 200


def test_edges_saw_no_origin_faults(fleet_run):
    assert fleet_run["edge_errors"] == []


# --- a site that cannot be reached ---------------------------------------------------------------

class DeadServer:
    """A loopback port that refuses, resets, or accepts and never answers."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.held: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        if behaviour == "refuse":
            self.listener.close()
        else:
            threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            if self.behaviour == "reset":
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                connection.close()
            else:
                self.held.append(connection)

    def close(self) -> None:
        self.listener.close()
        for connection in self.held:
            connection.close()


DEAD = {"refused": "refuse", "reset": "reset", "silent": "silent"}
# Controls that ask only AWS still evaluate for a dead site; every other one is an error.
AWS_ONLY = {"EA-PEN-03", "EA-PEN-09"}


@pytest.fixture(scope="module")
def dead_run(request) -> Run:
    def produce(workdir: Path) -> dict[str, Any]:
        world = request.getfixturevalue("world")
        servers = {name: (DeadServer(kind), DeadServer(kind)) for name, kind in DEAD.items()}
        alive = world.add(SiteSpec(name="dead-aws")).target_entry()  # its AWS side is alive
        targets = [{**alive, "name": name, "url": f"https://localhost:{https.port}/",
                    "http_url": f"http://localhost:{http.port}/"} for name, (https, http) in servers.items()]
        try:
            # short timeouts for this run only: 1 s to connect, 1 s to read, 1 s per TLS handshake
            run = run_over(world, workdir, targets, *MODULES,
                           env={"EDGEAUDIT_HTTP_TIMEOUT_S": "1,1", "EDGEAUDIT_TLS_TIMEOUT_S": "1"})
        finally:
            for pair in servers.values():
                for server in pair:
                    server.close()
        return kept(run)
    return as_run(once(request, "dead-site", produce))


@pytest.mark.parametrize(("target", "causes"), [("refused", ("refused",)), ("reset", ("reset", "not connected")),
                                               ("silent", ("timed out", "within 1s"))])
def test_dead_site_is_an_error_naming_the_cause(dead_run, target, causes):
    outcomes = mine(dead_run, target)
    assert set(outcomes) == set(CONTROLS), dead_run.output
    errors = {c for c, o in outcomes.items() if o == "error"}
    assert errors == set(CONTROLS) - AWS_ONLY, dead_run.output
    for control in errors:
        message = dead_run.result(control, target)["message"]
        assert any(cause in message for cause in causes), (control, message)


# --- each URL once per method --------------------------------------------------------------------

@pytest.fixture(scope="module")
def counted(request) -> tuple[list[tuple[str, str, str]], Run]:
    """A full scheduled run (every cadence but weekly) of the whole suite over a demo-like site,
    and every request its edge saw."""
    def produce(workdir: Path) -> dict[str, Any]:
        world = request.getfixturevalue("world")
        site = world.add(SiteSpec.demo().but(name="counted"))
        run = run_over(world, workdir, [site.target_entry()], "suites", "-m", "daily or monthly or quarterly")
        return {**kept(run),
                "requests_seen": site.edge.requests_seen}
    saved = once(request, "counted-site", produce)
    return [tuple(seen) for seen in saved["requests_seen"]], as_run(saved)


def test_each_url_is_fetched_at_most_once_per_method(counted):
    requests_seen, run = counted
    assert run.report["complete"] is True, run.output
    seen = Counter((scheme, method, path) for scheme, method, path in requests_seen)
    assert seen, "the run asked the edge nothing"
    assert {key: n for key, n in seen.items() if n > 1} == {}
    crawled = {path for scheme, method, path in seen if scheme == "https" and method == "GET"}
    assert {"/", "/about.html", "/assets/style.3f9a1c.css", "/assets/app.8c2e4d.js", "/assets/logo.svg",
            "/docs/getting-started.html", "/sitemap.xml"} <= crawled


def test_demo_site_has_exactly_its_documented_findings(counted):
    _, run = counted
    # the daily demo's three, and the monthly EA-DEP-04: the broken link is a crawled URL that does not answer 200
    expected = {"EA-HDR-06": "failed", "EA-SITE-04": "failed", "EA-TLS-01": "warned", "EA-DEP-04": "failed"}
    outcomes = mine(run, "counted")
    assert {c: o for c, o in outcomes.items() if o != "passed"} == expected, run.output
    assert set(outcomes) == {c for c in CONTROLS if c not in ("EA-SITE-05", "EA-CACHE-01", "EA-CACHE-02")}


def test_source_maps_published_on_purpose_are_not_a_finding(world, tmp_path):
    site = world.add(SiteSpec(name="maps-on-purpose", source_maps=True))
    run = run_over(world, tmp_path, [{**site.target_entry(), "allow_source_maps": True}],
                   "suites/test_probes.py", "-k", "source_maps")
    result = run.result("EA-PEN-08", "maps-on-purpose")
    assert result["outcome"] == "skipped" and "allow_source_maps" in result["message"]


# --- EA-HDR-02: sources that admit any script ------------------------------------------------------

# target -> the CSP its edge sends; every one but "keyed" and "own-wildcard" lets scripts from anywhere run.
ANY_SCRIPT_CSPS = {
    "csp-star": ("default-src 'self'; script-src 'self' *; frame-ancestors 'none'", "script-src", "*"),
    "csp-https": ("default-src https:; frame-ancestors 'none'", "default-src", "https:"),
    "csp-data": ("default-src 'self'; script-src 'self' data:; frame-ancestors 'none'", "script-src", "data:"),
    "csp-elem": ("default-src 'self'; script-src 'self'; script-src-elem 'self' https:; frame-ancestors 'none'",
                 "script-src-elem", "https:"),
    "csp-any-host": ("default-src 'self'; script-src 'self' https://*; frame-ancestors 'none'", "script-src",
                     "https://*"),
    "csp-tld": ("default-src 'self'; script-src 'self' *.com; frame-ancestors 'none'", "script-src", "*.com"),
    "csp-public-suffix": ("default-src 'self'; script-src 'self' https://*.co.uk; frame-ancestors 'none'",
                          "script-src", "https://*.co.uk"),
    # anyone can put a script on a distribution of their own under *.cloudfront.net
    "csp-shared": ("default-src 'self'; script-src 'self' https://*.cloudfront.net; frame-ancestors 'none'",
                   "script-src", "https://*.cloudfront.net"),
    # a wildcard over the site's own domain names the site's hosts only
    "csp-own-wildcard": ("default-src 'self'; script-src 'self' https://*.example.com; frame-ancestors 'none'",
                         None, None),
    # a nonce with 'strict-dynamic': browsers ignore https: (the fallback for older ones)
    "csp-keyed": ("default-src 'self'; script-src 'nonce-r4nd0m' 'strict-dynamic' https:; frame-ancestors 'none'",
                  None, None),
}


@pytest.fixture(scope="module")
def csp_run(request) -> Run:
    return run_sites(request, "csp-any-script", [SiteSpec(name=name, csp=csp)
                                                 for name, (csp, _, _) in ANY_SCRIPT_CSPS.items()],
                     "suites/test_headers.py", "-k", "content_security_policy")


@pytest.mark.parametrize("target", sorted(ANY_SCRIPT_CSPS))
def test_csp_sources_that_admit_any_script_fail(csp_run, target):
    _, directive, source = ANY_SCRIPT_CSPS[target]
    result = csp_run.result("EA-HDR-02", target)
    if directive is None:
        assert_passes(result, "P3")
        return
    assert result["outcome"] == "failed", csp_run.output
    assert_finding(result, "P3")
    assert f"{directive} allows scripts from anywhere: {source}" in result["message"]
    assert len(evidence(csp_run, "EA-HDR-02", target)["offenders"]) == 3  # two pages and the 404 page


# --- EA-CACHE-02: how long the edge keeps HTML ------------------------------------------------------

# target -> (switches, what the finding names, or None for a compliant site)
EDGE_LIFETIMES = {
    "html-s-maxage": ({"html_cache_control": "public, max-age=300, s-maxage=86400"},
                      "kept 86400 s at the edge by behaviour (default), s-maxage=86400"),
    "html-min-ttl": ({"html_cache_ttls": (86400, 86400, 31536000)},
                     "kept 86400 s at the edge by behaviour (default), max-age=300 (cache policy html-min-ttl-"),
    "html-no-header": ({"html_cache_control": ""}, "no Cache-Control lifetime: DefaultTTL (cache policy "
                                                   "Managed-CachingOptimized: MinTTL 1, DefaultTTL 86400"),
    "html-revalidated": ({"html_cache_control": "no-cache", "html_cache_ttls": (0, 0, 31536000)}, None),
}


@pytest.fixture(scope="module")
def edge_lifetime_run(request) -> Run:
    return run_sites(request, "edge-lifetimes", [SiteSpec(name=name).but(**switch)
                                                 for name, (switch, _) in EDGE_LIFETIMES.items()],
                     "suites/test_cache.py", "-k", "cache_lifetimes")


@pytest.mark.parametrize("target", sorted(EDGE_LIFETIMES))
def test_html_is_judged_by_how_long_the_edge_keeps_it(edge_lifetime_run, target):
    result = edge_lifetime_run.result("EA-CACHE-02", target)
    expected = EDGE_LIFETIMES[target][1]
    lifetimes = result["evidence"]["html_edge_lifetimes"]
    assert len(lifetimes) == 2, result  # the two pages of the site
    if expected is None:
        assert_passes(result, "P4")
        assert {page["seconds"] for page in lifetimes.values()} == {0}
        return
    assert result["outcome"] == "failed", edge_lifetime_run.output
    assert_finding(result, "P4")
    assert len(result["evidence"]["offenders"]) == 2 and expected in result["message"]
    assert result["margins"]["longest_html_edge_lifetime_s"]["margin"] < 0
