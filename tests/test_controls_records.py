"""Both ways for the GitHub-backed controls (EA-DEP-05, EA-MET-01, EA-CHG-01, EA-INC-01/02): a demo site that
publishes its version file, and a GitHub server of the demo's kind per history, compliant or
broken one way; each run is the suite run as a user runs it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from conftest import Run, assert_finding, assert_passes, run_suite

from edgeaudit.demo.builder import SiteSpec
from edgeaudit.demo.github import TOKEN_ENV, GitHubServer, Repository
from edgeaudit.rules import tomlwrite

SEVERITY = {"EA-DEP-05": "P2", "EA-MET-01": "P3", "EA-CHG-01": "P3", "EA-INC-01": "P2", "EA-INC-02": "P3"}
NOW = dt.datetime.now(dt.timezone.utc)
NEWEST = Repository.demo().runs[-1]["head_sha"]  # the commit the demo's newest deploy run deployed


@pytest.fixture(scope="module")
def versioned(world):
    """A site serving /version.txt with the commit of the demo repository's newest deploy."""
    return world.add(SiteSpec(name="versioned", extra_objects=(("version.txt", f"{NEWEST}\n".encode(),
                                                                "text/plain"),)))


def records_run(world, site, tmp_path: Path, repository: Repository | None = None, *,
                github: dict[str, Any] | None = None, token: bool = True, configured: bool = True,
                version_path: str = "/version.txt") -> Run:
    """Run suites/test_records.py over `site` with a GitHub server holding `repository`."""
    server = GitHubServer(repository or Repository.demo())
    try:
        document: dict[str, Any] = {"targets": [site.target_entry()]}
        if configured:
            document["github"] = github if github is not None else server.source(version_path=version_path)
        config = tmp_path / "edgeaudit.toml"
        config.write_text(tomlwrite.dumps(document))
        env = {**world.aws_env, TOKEN_ENV: server.token if token else None}
        return run_suite("suites/test_records.py", "--edgeaudit-config", str(config), env=env,
                         report_dir=tmp_path / "reports")
    finally:
        server.stop()


def test_a_team_that_deploys_reviewed_changes_passes(world, versioned, tmp_path):
    run = records_run(world, versioned, tmp_path)
    for control, severity in SEVERITY.items():
        assert_passes(run.result(control, "versioned"), severity)
    dep = run.result("EA-DEP-05", "versioned")["evidence"]
    assert dep["served_commit"] == NEWEST and dep["newest_run"]["conclusion"] == "success"
    assert run.result("EA-MET-01", "versioned")["evidence"]["success_rate"] == 1.0
    assert run.result("EA-CHG-01", "versioned")["evidence"]["required_approvals"]["count"] == 1


def test_a_failed_deploy_fails_the_newest_run_and_the_success_rate(world, versioned, tmp_path):
    repo = Repository.demo()
    failed = repo.deploy(NOW - dt.timedelta(hours=1), conclusion="failure")
    run = records_run(world, versioned, tmp_path, repo)
    dep = run.result("EA-DEP-05", "versioned")
    assert dep["outcome"] == "failed" and "ended failure" in dep["message"] and failed["html_url"] in dep["message"]
    assert_finding(dep, "P2")
    met = run.result("EA-MET-01", "versioned")
    assert met["outcome"] == "failed" and "10 of 11" in met["message"] and failed["html_url"] in met["message"]
    assert_finding(met, "P3")
    assert [r["html_url"] for r in met["evidence"]["failed_runs"]] == [failed["html_url"]]


def test_a_success_rate_under_the_threshold_fails_though_the_newest_run_succeeded(world, versioned, tmp_path):
    repo = Repository.demo()
    repo.deploy(NOW - dt.timedelta(days=2, hours=5), conclusion="failure")  # 10 of 11, the newest succeeded
    repo.deploy(NOW - dt.timedelta(hours=3))
    repo.runs[-1]["head_sha"] = NEWEST  # a redeploy of the served commit
    run = records_run(world, versioned, tmp_path, repo)
    assert run.result("EA-DEP-05", "versioned")["outcome"] == "passed"
    met = run.result("EA-MET-01", "versioned")
    assert met["outcome"] == "failed" and met["evidence"]["success_rate"] == round(11 / 12, 4)


def test_the_edge_serving_another_commit_fails(world, versioned, tmp_path):
    repo = Repository.demo()
    newer = repo.deploy(NOW - dt.timedelta(hours=1))
    run = records_run(world, versioned, tmp_path, repo)
    dep = run.result("EA-DEP-05", "versioned")
    assert dep["outcome"] == "failed" and newer["head_sha"] in dep["message"] and NEWEST in dep["message"]


def test_a_run_in_progress_too_long_warns(world, versioned, tmp_path):
    repo = Repository.demo()
    repo.deploy(NOW - dt.timedelta(hours=2), status="in_progress")
    run = records_run(world, versioned, tmp_path, repo)
    dep = run.result("EA-DEP-05", "versioned")
    assert dep["outcome"] == "warned" and "deploy_stuck_min" in dep["message"]
    assert dep["evidence"]["minutes_in_progress"] >= 119


def test_unreviewed_changes_and_an_unprotected_branch_fail(world, versioned, tmp_path):
    repo = Repository.demo()
    repo.protection = None
    own = repo.deploy(NOW - dt.timedelta(days=3), author="mallory", approver="mallory")
    pushed = repo.deploy(NOW - dt.timedelta(days=2), pull=False)
    late = repo.deploy(NOW - dt.timedelta(days=6), labels=("emergency",), review_after=dt.timedelta(days=4))
    run = records_run(world, versioned, tmp_path, repo)
    chg = run.result("EA-CHG-01", "versioned")
    assert chg["outcome"] == "failed"
    assert_finding(chg, "P3")
    assert "branch main does not require pull request reviews" in chg["message"]
    assert f"{own['head_sha'][:12]}: PR #{own['run_number']} by mallory: approved only by its author" in chg["message"]
    assert f"{pushed['head_sha'][:12]} (run #{pushed['run_number']}) is no pull request merged" in chg["message"]
    assert f"PR #{late['run_number']} by alice: no approval" in chg["message"] and "emergency" in chg["message"]
    assert len(chg["evidence"]["offenders"]) == 4


def test_branch_protection_unreadable_is_not_evaluated(world, versioned, tmp_path):
    repo = Repository.demo()
    repo.protection_status = 403
    chg = records_run(world, versioned, tmp_path, repo).result("EA-CHG-01", "versioned")
    assert chg["outcome"] == "error" and "Administration: read" in chg["message"]


def test_a_rate_limit_leaves_every_control_not_evaluated_naming_the_reset(world, versioned, tmp_path):
    repo = Repository.demo()
    repo.rate_limited = True
    run = records_run(world, versioned, tmp_path, repo)
    for control in SEVERITY:
        result = run.result(control, "versioned")
        assert result["outcome"] == "error" and "rate limit" in result["message"] and "resets at" in result["message"]


def test_a_missing_token_is_not_evaluated_naming_the_variable(world, versioned, tmp_path):
    run = records_run(world, versioned, tmp_path, token=False)
    for control in SEVERITY:
        result = run.result(control, "versioned")
        assert result["outcome"] == "error" and f"{TOKEN_ENV} ([github] token_env) holds no token" in result["message"]


def test_no_github_source_is_not_evaluated_naming_the_fix(world, versioned, tmp_path):
    """Neither [github] nor [incidents]: every control is not evaluated; the incident controls
    name both lines that would give them a source."""
    run = records_run(world, versioned, tmp_path, configured=False)
    for control in SEVERITY:
        result = run.result(control, "versioned")
        assert result["outcome"] == "error" and "[github] with repository" in result["message"]
        if control.startswith("EA-INC"):
            assert 'add [incidents] with log = "incidents.jsonl"' in result["message"]


def test_a_declared_absent_source_is_skipped_with_its_reason(world, versioned, tmp_path):
    run = records_run(world, versioned, tmp_path, github={"absent": "we deploy from GitLab"})
    for control in SEVERITY:
        result = run.result(control, "versioned")
        assert result["outcome"] == "skipped" and "we deploy from GitLab" in result["message"]


def test_without_version_path_the_evidence_says_the_commit_was_not_compared(world, versioned, tmp_path):
    server_source = {"repository": "example/www", "token_env": TOKEN_ENV}
    repo = Repository.demo()
    server = GitHubServer(repo)
    try:
        config = tmp_path / "edgeaudit.toml"
        config.write_text(tomlwrite.dumps({"targets": [versioned.target_entry()],
                                           "github": {**server_source, "api_url": server.url}}))
        run = run_suite("suites/test_records.py", "--edgeaudit-config", str(config), "-k", "newest_deploy",
                        env={**world.aws_env, TOKEN_ENV: server.token}, report_dir=tmp_path / "reports")
    finally:
        server.stop()
    dep = run.result("EA-DEP-05", "versioned")
    assert dep["outcome"] == "passed" and dep["evidence"]["served_commit"].startswith("not compared")


def test_late_unlabelled_and_bot_acknowledged_incidents_fail(world, versioned, tmp_path):
    repo = Repository.demo()
    late = repo.incident(NOW - dt.timedelta(days=3), "P1", ack_after=dt.timedelta(minutes=12))
    unlabelled = repo.incident(NOW - dt.timedelta(days=2), None, ack_after=dt.timedelta(minutes=1))
    botted = repo.incident(NOW - dt.timedelta(days=1), "P2", ack_after=dt.timedelta(minutes=1),
                           acked_by="github-actions[bot]")
    own = repo.incident(NOW - dt.timedelta(hours=5), "P3", ack_after=dt.timedelta(minutes=1), acked_by="carol")
    run = records_run(world, versioned, tmp_path, repo)
    inc = run.result("EA-INC-01", "versioned")
    assert inc["outcome"] == "failed"
    assert_finding(inc, "P2")
    assert f"#{late['number']} (P1) acknowledged after 12 min, over 5 min" in inc["message"]
    assert f"#{unlabelled['number']} has no level label" in inc["message"]
    assert f"#{botted['number']} (P2) unacknowledged for" in inc["message"]
    assert f"#{own['number']} (P3) unacknowledged for" in inc["message"]  # the reporter's own comment
    assert len(inc["evidence"]["offenders"]) == 4


def test_a_p1_closed_without_a_postmortem_in_time_fails(world, versioned, tmp_path):
    repo = Repository.demo()
    missing = repo.incident(NOW - dt.timedelta(days=10), "P1", ack_after=dt.timedelta(minutes=2),
                            closed_after=dt.timedelta(hours=2))
    late = repo.incident(NOW - dt.timedelta(days=20), "P2", ack_after=dt.timedelta(minutes=2),
                         closed_after=dt.timedelta(hours=2), postmortem_after=dt.timedelta(days=7))
    unnamed = repo.incident(NOW - dt.timedelta(days=9), "P2", ack_after=dt.timedelta(minutes=2),
                            closed_after=dt.timedelta(hours=2), postmortem_after=dt.timedelta(days=1),
                            postmortem_text="logs: https://logs.example.com/{n}")
    recent = repo.incident(NOW - dt.timedelta(days=1), "P1", ack_after=dt.timedelta(minutes=2),
                           closed_after=dt.timedelta(hours=2))
    run = records_run(world, versioned, tmp_path, repo)
    inc = run.result("EA-INC-02", "versioned")
    assert inc["outcome"] == "failed"
    assert_finding(inc, "P3")
    expected = [f"#{n['number']} ({n['labels'][1]['name']})" for n in (unnamed, missing, late)]
    assert inc["evidence"]["offenders"] == expected
    # closed a day ago: still within postmortem_max_days, judged but not a finding
    assert f"#{recent['number']}" in [i["incident"] for i in inc["evidence"]["closed_incidents"]]


def test_a_repository_without_deployments_or_incidents(world, versioned, tmp_path):
    """No run: not evaluated, never a pass; no deployment in the period warns (only the branch's
    rule was judged); no incident in the period passes, showing none was found."""
    run = records_run(world, versioned, tmp_path, Repository())
    dep, met = run.result("EA-DEP-05", "versioned"), run.result("EA-MET-01", "versioned")
    assert dep["outcome"] == "error" and "no completed run of deploy.yml on main" in dep["message"]
    assert met["outcome"] == "error" and "no deployment to rate" in met["message"]
    chg = run.result("EA-CHG-01", "versioned")
    assert chg["outcome"] == "warned" and "no successful deployment" in chg["message"]
    assert run.result("EA-INC-01", "versioned")["evidence"]["incidents"] == []


def test_a_version_file_the_site_does_not_serve_fails(world, versioned, tmp_path):
    run = records_run(world, versioned, tmp_path, version_path="/no-such-version.txt")
    dep = run.result("EA-DEP-05", "versioned")
    assert dep["outcome"] == "failed" and "no-such-version.txt answers 404" in dep["message"]
    assert_finding(dep, "P2")
