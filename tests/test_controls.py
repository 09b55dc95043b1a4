"""The first eight controls proven both ways: a compliant site passes each, and a site that
breaks exactly that control fails it with the right id, severity and evidence, while the other
seven pass. (The other controls have fleets of their own: tests/test_controls_*.py.)

One run of these controls checks all the sites at once, as a fleet of targets; each test below
reads its own rows of that run's JSON report.
"""

from __future__ import annotations

import re

import pytest

from conftest import Run, assert_passes, run_suite
from edgeaudit.demo.builder import SiteSpec
from edgeaudit.rules import tomlwrite

# target name -> (the switch that breaks it, {control: expected outcome}); every other control passes.
# Two breaks are outages and so fail more than their own control, as they would on AWS: a disabled
# distribution serves nothing, and an expired certificate fails every HTTPS check.
OUTAGE = {"EA-SITE-01": "failed", "EA-SITE-02": "failed", "EA-HDR-01": "failed"}
BROKEN = {
    "ok": ({}, {}),
    "disabled": ({"enabled": False}, {"EA-DEP-01": "failed", **OUTAGE}),
    "stuck": ({"status": "InProgress", "status_minutes": 45}, {"EA-DEP-01": "failed"}),
    "deploying": ({"status": "InProgress", "status_minutes": 5}, {"EA-DEP-01": "warned"}),
    "no-about": ({"missing_objects": ("about.html",)}, {"EA-SITE-01": "failed"}),
    "https-only": ({"viewer_protocol_policy": "https-only"}, {"EA-SITE-02": "failed"}),
    "assets-http": ({"assets_viewer_protocol_policy": "allow-all"}, {"EA-CF-01": "failed"}),
    "short-hsts": ({"hsts_max_age": 86400}, {"EA-HDR-01": "failed"}),
    "no-hsts": ({"hsts_max_age": None}, {"EA-HDR-01": "failed"}),
    "hsts-nosub": ({"hsts_include_subdomains": False}, {"EA-HDR-01": "warned"}),
    "expiring": ({"cert_days_left": 20}, {"EA-TLS-01": "warned"}),
    "expiring-soon": ({"cert_days_left": 5}, {"EA-TLS-01": "failed"}),
    "expired": ({"cert_days_left": -3}, {"EA-TLS-01": "failed", "EA-SITE-01": "error", "EA-HDR-01": "error"}),
    "public": ({"block_public_access": False}, {"EA-S3-01": "failed"}),
    "unversioned": ({"versioning": False}, {"EA-S3-05": "failed"}),
}
# control -> (severity, its test function in suites/)
CONTROLS = {"EA-DEP-01": ("P1", "test_distribution_is_deployed"), "EA-SITE-01": ("P1", "test_critical_pages_answer"),
            "EA-SITE-02": ("P2", "test_http_redirects_to_https"), "EA-HDR-01": ("P2", "test_strict_transport_security"),
            "EA-TLS-01": ("P2", "test_certificate_not_expiring"), "EA-S3-01": ("P1", "test_block_public_access"),
            "EA-S3-05": ("P2", "test_bucket_versioning"), "EA-CF-01": ("P2", "test_viewers_use_https")}


@pytest.fixture(scope="module")
def fleet(world, tmp_path_factory) -> Run:
    """One run of the eight controls over a compliant site and one broken site per switch."""
    sites = [world.add(SiteSpec(name=name).but(**switch)) for name, (switch, _) in BROKEN.items()]
    workdir = tmp_path_factory.mktemp("fleet")
    config = workdir / "edgeaudit.toml"
    config.write_text(tomlwrite.dumps({"targets": [site.target_entry() for site in sites]}))
    only = " or ".join(name for _, name in CONTROLS.values())
    return run_suite("suites", "-k", only, "--edgeaudit-config", str(config), env=world.aws_env,
                     report_dir=workdir / "reports")


def test_fleet_run_reports_every_control_for_every_target(fleet):
    report = fleet.report
    assert report["complete"] is True, fleet.output
    assert fleet.returncode == 1, fleet.output  # the broken sites fail P1/P2 controls
    pairs = {(r["control"], r["target"]) for r in report["results"]}
    assert pairs == {(c, t) for c in CONTROLS for t in BROKEN}
    assert report["run"]["api_calls"] > 0


@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_compliant_site_passes(fleet, control):
    result = fleet.result(control, "ok")
    assert_passes(result, CONTROLS[control][0])


@pytest.mark.parametrize("target", [name for name in BROKEN if name != "ok"])
def test_broken_site_fails_exactly_its_control(fleet, target):
    expected = BROKEN[target][1]
    outcomes = fleet.outcomes(target)
    assert {c: o for c, o in outcomes.items() if o != "passed"} == expected, fleet.output
    for control in expected:
        result = fleet.result(control, target)
        assert result["severity"] == CONTROLS[control][0]
        assert result["message"], result
        if result["outcome"] == "error":  # not evaluated: the message names the cause
            assert "TLS handshake" in result["message"] and "certificate" in result["message"]
        else:
            assert result["evidence"], result


def test_dep01_evidence_names_status_and_age(fleet):
    stuck = fleet.result("EA-DEP-01", "stuck")
    assert stuck["evidence"]["status"] == "InProgress"
    minutes = stuck["evidence"]["minutes_in_progress"]
    assert minutes >= 44  # built 45 minutes back; the fleet's build and run add their own minutes
    said = re.search(r"InProgress for (\d+) min", stuck["message"])
    assert said and abs(int(said.group(1)) - minutes) <= 1, stuck["message"]
    assert fleet.result("EA-DEP-01", "disabled")["evidence"]["enabled"] is False


def test_dep01_measures_the_minutes_in_progress_against_its_threshold_also_when_deployed(fleet):
    stuck = fleet.result("EA-DEP-01", "stuck")["margins"]["minutes_in_progress"]
    assert stuck["limit"] == 30 and stuck["observed"] >= 44 and stuck["margin"] < 0
    deployed = fleet.result("EA-DEP-01", "ok")["margins"]["minutes_in_progress"]
    assert (deployed["observed"], deployed["limit"], deployed["margin"]) == (0, 30, 30)


def test_site01_names_the_missing_page(fleet):
    result = fleet.result("EA-SITE-01", "no-about")
    assert result["evidence"]["offenders"] == ["/about.html"]
    assert result["evidence"]["pages"]["/about.html"]["status"] == 404


def test_site02_shows_the_answer_instead_of_a_redirect(fleet):
    result = fleet.result("EA-SITE-02", "https-only")
    assert result["evidence"]["status"] == 403
    assert fleet.result("EA-SITE-02", "ok")["evidence"]["status"] == 301


def test_cf01_checks_every_behaviour_not_only_the_default(fleet):
    result = fleet.result("EA-CF-01", "assets-http")
    assert result["evidence"]["offenders"] == ["/assets/*"]
    assert result["evidence"]["behaviours"]["(default)"] == "redirect-to-https"


def test_hdr01_checks_pages_and_the_404_page(fleet):
    result = fleet.result("EA-HDR-01", "short-hsts")
    headers = result["evidence"]["headers"]
    assert len(headers) == 3 and any("edgeaudit-" in url for url in headers)  # "/", "/about.html", a 404
    assert all(value.startswith("max-age=86400") for value in headers.values())
    assert set(result["evidence"]["offenders"]) == set(headers)
    assert "includeSubDomains" in fleet.result("EA-HDR-01", "hsts-nosub")["message"]


def test_tls01_warn_band_and_failure(fleet):
    warned = fleet.result("EA-TLS-01", "expiring")
    assert warned["evidence"]["days_left"] == 20
    assert warned["message"] == "certificate expires in 20 days"
    assert fleet.result("EA-TLS-01", "expiring-soon")["evidence"]["days_left"] == 5
    assert "expired 3 days ago" in fleet.result("EA-TLS-01", "expired")["message"]


def test_s3_evidence_names_the_settings(fleet):
    public = fleet.result("EA-S3-01", "public")
    assert public["evidence"]["bucket"] == {name: False for name in
                                            ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")}
    assert fleet.result("EA-S3-05", "unversioned")["evidence"]["versioning"] == "Disabled"


def test_each_read_goes_to_aws_once_per_target(fleet):
    """The cache: each distinct read is one call, however many controls ask (STS once for the run)."""
    by_operation = fleet.report["run"]["api_calls_by_operation"]
    targets = len(BROKEN)
    assert by_operation["cloudfront:GetDistribution"] == targets
    assert by_operation["s3:GetBucketVersioning"] == targets
    assert by_operation["sts:GetCallerIdentity"] == 1


def test_edges_saw_no_origin_faults(fleet, world):
    """A 502 from an edge would be a fault of the test environment, not a finding."""
    assert [error for site in world.sites for error in site.edge.errors] == []
