"""The newcomer's path: `pytest -m daily --demo` writes a real report, with or without xdist."""

from __future__ import annotations

import json
import re

import pytest

import ocsf_models
import report_schema
from conftest import REPO, run_suite


@pytest.fixture(scope="module")
def daily(tmp_path_factory):
    return run_suite("-m", "daily", "--demo", cwd=REPO, report_dir=tmp_path_factory.mktemp("daily"))


def test_daily_demo_writes_html_and_json(daily):
    # --report-dir DIR (two words) must not move pytest's rootdir to DIR
    assert f"rootdir: {REPO}" in daily.output and "testpaths: suites" in daily.output
    names = sorted(p.name for p in daily.report_dir.iterdir())
    assert any(re.fullmatch(r"daily-\d{8}T\d{6}Z\.html", n) for n in names), names
    assert any(re.fullmatch(r"daily-\d{8}T\d{6}Z\.json", n) for n in names), names
    assert "history.jsonl" not in names  # the demo keeps its history in a bucket of its account


def test_daily_demo_report_is_complete_and_valid(daily):
    report = daily.report
    report_schema.validate(report)
    assert report["complete"] is True and report["run"]["demo"] is True
    assert report["run"]["selection"] == "daily"
    assert report["run"]["api_calls"] > 0
    pairs = [(r["control"], r["target"]) for r in report["results"]]
    assert len(pairs) == len(set(pairs)), "one result per control and target"
    assert all("daily" in r["cadence"] for r in report["results"])
    assert {"EA-DEP-01", "EA-SITE-01", "EA-SITE-02", "EA-HDR-01", "EA-TLS-01"} <= {c for c, _ in pairs}


def test_demo_certificate_warns_as_documented(daily):
    tls = daily.result("EA-TLS-01", "www")
    assert tls["outcome"] == "warned"
    assert tls["evidence"]["days_left"] == 20


def test_demo_html_shows_verdict_and_demo_banner(daily):
    html = daily.html
    assert 'id="verdict"' in html and '<div class="demo">DEMO</div>' in html
    assert "EA-TLS-01" in html


def test_xdist_gives_the_same_results(daily, tmp_path):
    parallel = run_suite("-m", "daily", "--demo", "-n", "2", cwd=REPO, report_dir=tmp_path / "reports")
    def outcomes(run):
        # lab timings depend on the machine's load at that moment: for them, the same results
        # means the same controls and targets; for every other control, the same outcomes too
        return {(r["control"], r["target"], "performance" if "performance" in r["categories"] else r["outcome"])
                for r in run.report["results"]}
    assert parallel.report["complete"] is True, parallel.output
    assert outcomes(parallel) == outcomes(daily)
    # the target's controls ran on one worker: its reads were made once, as without xdist
    # (the controller, which runs no control, asks once more for the report's account and its alias)
    calls = parallel.report["run"]["api_calls_by_operation"], daily.report["run"]["api_calls_by_operation"]
    assert {op for op in calls[0].keys() | calls[1].keys() if calls[0].get(op) != calls[1].get(op)} <= {
        "sts:GetCallerIdentity", "iam:ListAccountAliases"}, calls


def test_a_targets_controls_share_one_worker():
    from edgeaudit.rules.scheduling import target_of

    targets = sorted(["www", "www-2", "shop"], key=len, reverse=True)
    assert target_of("suites/test_s3.py::test_versioning[www]", targets) == "www"
    assert target_of("suites/test_s3.py::test_versioning[www-2]", targets) == "www-2"
    assert target_of("suites/test_x.py::test_y[shop-case]", targets) == "shop"
    assert target_of("tests/test_own.py::test_z[3]", targets) is None
    assert target_of("tests/test_own.py::test_z", targets) is None


@pytest.fixture(scope="module")
def everything(tmp_path_factory):
    """`pytest --demo` with every marker: every control the demo can run."""
    return run_suite("--demo", cwd=REPO, report_dir=tmp_path_factory.mktemp("all"))


def test_the_generated_policy_allows_every_call_the_suite_makes(everything):
    """Every operation of a whole demo run is allowed by the audit role's policy (docs/iam-policy.md's, the
    templates'), judged by the project's IAM evaluator: reads by the read statement, the drills'
    writes by the scratch statement only."""
    from edgeaudit.aws import auditrole, guard
    from edgeaudit.aws.clients import iam_action
    from edgeaudit.checks import policy

    statements = policy.parse(auditrole.policy("scratch"), "audit role")
    called = set(everything.report["run"]["api_calls_by_operation"])
    assert called, everything.output
    refused = []
    for operation in sorted(called):
        action = iam_action(*operation.split(":"))
        granting = {s.sid for s in statements if s.allow and s.matches_action(action)}
        read = guard.is_read(*operation.split(":"))
        if not (auditrole.READ_SID in granting if read else granting == {auditrole.SCRATCH_SID}):
            refused.append(f"{operation} ({action}): granted by {sorted(granting) or 'nothing'}")
    assert not refused, f"the generated policy does not allow: {refused}"
    assert any(not guard.is_read(*operation.split(":")) for operation in called), "the drills wrote nothing"


# --- the documented findings, and a past the demo brings like any site ---------------------------

DOCUMENTED = {"EA-TLS-01": "warned", "EA-HDR-06": "failed", "EA-SITE-04": "failed"}  # docs/getting-started.md's table
# The monthly EA-DEP-04 compares every crawled URL with its object: the broken link is a finding there too
MONTHLY = {"EA-DEP-04": "failed"}


def findings(run) -> dict[str, str]:
    return {r["control"]: r["outcome"] for r in run.report["results"] if r["outcome"] not in ("passed", "skipped")}


def test_the_whole_demo_has_exactly_the_documented_findings(everything):
    assert findings(everything) == {**DOCUMENTED, **MONTHLY}, everything.output


@pytest.fixture(scope="module")
def monthly(tmp_path_factory):
    return run_suite("-m", "monthly", "--demo", cwd=REPO, report_dir=tmp_path_factory.mktemp("monthly"))


def test_monthly_demo_has_only_documented_findings_and_its_cadences_on_schedule(monthly):
    assert findings(monthly) == {"EA-TLS-01": "warned", **MONTHLY}, monthly.output  # the other two are daily
    assert "docs/getting-started.html" in monthly.result("EA-DEP-04", "www")["message"]
    result = monthly.result("EA-OPS-02", "www")
    assert result["outcome"] == "passed", result
    assert {row["status"] for row in result["evidence"]["ledger"].values()} == {"within"}
    for control in ("EA-MAN-01", "EA-MAN-02", "EA-MAN-03"):
        assert monthly.result(control, "www")["outcome"] == "passed"


def test_the_demo_history_is_a_past_of_scheduled_runs_in_a_bucket_of_the_demo_account(monthly):
    """The demo keeps its history in S3 (`[report] history`), as a site's CI on fresh runners
    would: EA-OPS-02 reads the demo's scheduled runs there, and nothing lands in the report folder.
    (tests/test_history_store.py shows the lines and that a second demo run adds only what is new.)"""
    from edgeaudit.demo.environment import HISTORY

    result = monthly.result("EA-OPS-02", "www")
    assert HISTORY.startswith("s3://") and result["resource"] == HISTORY
    assert result["outcome"] == "passed" and result["evidence"]["ledger"]["quarterly"]["last_complete"]
    assert not (monthly.report_dir / "history.jsonl").exists()
    assert "Cadence" in monthly.html or "cadence" in monthly.html


def test_no_control_asks_whether_it_runs_in_the_demo():
    mentions = [f"{path.name}:{n}" for path in sorted((REPO / "suites").rglob("*.py"))
                for n, line in enumerate(path.read_text().splitlines(), 1) if "demo" in line.lower()]
    assert mentions == []


def test_the_demo_archives_its_report_set_to_an_object_lock_bucket_of_its_account(daily):
    archive = daily.report["run"]["archive"]
    assert archive["status"] == "archived", archive
    assert archive["location"].startswith("s3://edgeaudit-evidence-123456789012/edgeaudit/daily-")
    assert archive["object_lock"] is True and archive["default_retention"] == {"mode": "COMPLIANCE", "days": 365}
    assert archive["retention"]["mode"] == "COMPLIANCE"
    assert sorted(o["key"].rsplit("/", 1)[1].split(".", 1)[1] for o in archive["objects"]) == [
        "csv", "html", "json", "ocsf.json"]
    assert f"archive: {archive['location']} (4 files; Object Lock COMPLIANCE until " in daily.output


def test_every_ocsf_finding_of_the_daily_demo_is_valid_for_prowlers_models(daily):
    found = json.loads(daily._written(".ocsf.json").read_text())
    assert found and all(f["cloud"]["account"]["name"] for f in found)
    for finding in found:
        ocsf_models.validate(finding)
