"""Deployment, change and incident records (seed: Daily and Weekly Operations monitor the GitHub
Actions deployments and their success rate; change categories and process; the incident log).

These controls read the repository of [github] with a read-only token; the incident controls
read the incident log ([incidents] log) instead when there is one: a file, or an S3 object read
with s3:GetObject.
"""

import datetime as dt

import pytest

from edgeaudit.checks import changes, deploys, incident_rules
from edgeaudit.errors import NotEvaluated
from edgeaudit.rules.schedule import latest_opening
from edgeaudit.web.github import ACTIONS, MAX_PAGES


def _where(source):
    return f"github:{source.repository} {source.workflow} on {source.branch}"


def _period_start(today):
    """The first day of the previous monthly window: consecutive monthly audits overlap, none leaves a gap."""
    return latest_opening("monthly", latest_opening("monthly", today) - dt.timedelta(days=1))


def _stopped(found, evidence):
    """Say so when pagination stopped before the oldest run of the period."""
    evidence.record("pages_read", found.pages)
    if not found.complete:
        evidence.warn(f"read the newest {len(found.items)} runs only ({MAX_PAGES} pages): older runs of the "
                      "period were not judged")


@pytest.mark.control("EA-DEP-05", severity="P2")
@pytest.mark.daily
@pytest.mark.availability
def test_newest_deploy_succeeded(github, site, thresholds, evidence):
    """The newest deploy workflow run on the production branch succeeded and the edge serves its commit.

    The served commit is read from the file [github] version_path names (not set: not compared);
    a run in progress longer than deploy_stuck_min warns.

    Remediation: open the failed run (its link is in the evidence), fix the cause and deploy
    again; a served commit that differs means the upload or the invalidation did not finish.
    """
    gh = github()
    evidence.resource = _where(gh.source)
    page = gh.get(gh.repo(f"/actions/workflows/{gh.source.workflow}/runs"), ACTIONS,
                  {"branch": gh.source.branch, "per_page": 100}).get("workflow_runs", [])
    running = [run for run in page if not deploys.completed(run)]
    done = [run for run in page if deploys.completed(run) and run.get("conclusion") != "skipped"]
    if not done:
        raise NotEvaluated(f"no completed run of {gh.source.workflow} on {gh.source.branch} among the newest "
                           f"{len(page)} ({len(running)} in progress): nothing deployed to judge")
    newest = done[0]
    evidence.record("newest_run", deploys.summary(newest))
    evidence.record("in_progress", [deploys.summary(run) for run in running])
    now = dt.datetime.now(dt.timezone.utc)
    minutes = max([(now - (deploys.started(run) or now)).total_seconds() / 60 for run in running], default=0.0)
    evidence.measure("minutes_in_progress", round(minutes, 1), thresholds.deploy_stuck_min, unit="min")

    assert deploys.succeeded(newest), (f"the newest deploy run #{newest.get('run_number')} on {gh.source.branch} "
                                       f"ended {newest.get('conclusion')}: {newest.get('html_url')}")
    if gh.source.version_path is None:
        evidence.record("served_commit", "not compared: [github] version_path is not set")
    else:
        response = site.get(gh.source.version_path)
        assert response.status_code == 200, (f"{site.url(gh.source.version_path)} answers {response.status_code}: "
                                             "the version file [github] version_path names is not served")
        served = deploys.served_commit(response.text)
        evidence.record("served_commit", served)
        deployed = [newest["head_sha"], *(run["head_sha"] for run in running)]
        assert any(deploys.same_commit(served, sha) for sha in deployed), (
            f"the edge serves commit {served[:40]!r}, not {newest['head_sha']} that run "
            f"#{newest.get('run_number')} deployed")
    if minutes > thresholds.deploy_stuck_min:
        evidence.warn(f"a deploy run has been in progress for {minutes:.0f} min, over deploy_stuck_min "
                      f"({thresholds.deploy_stuck_min} min)")


@pytest.mark.control("EA-MET-01", severity="P3")
@pytest.mark.weekly
def test_deploy_success_rate(github, thresholds, evidence):
    """The deploy workflow's success rate over deploy_success_window_days is at least deploy_success_rate_min.

    Runs on the production branch that completed count; skipped runs and runs in progress do not.

    Remediation: read the failed runs listed in the evidence and fix what makes deployments
    fail (tests, credentials, flaky steps) before the next release.
    """
    gh = github()
    evidence.resource = _where(gh.source)
    days = thresholds.deploy_success_window_days
    since = dt.date.today() - dt.timedelta(days=days)
    found = deploys.runs(gh, since)
    rate = deploys.success_rate(found.items)
    evidence.record("since", since)
    evidence.record("successes", len(rate.successes))
    evidence.record("failed_runs", [deploys.summary(run) for run in rate.failures])
    evidence.record("not_counted", [deploys.summary(run) for run in rate.left_out])
    _stopped(found, evidence)
    if not rate.judged:
        raise NotEvaluated(f"no completed run of {gh.source.workflow} on {gh.source.branch} since {since}: "
                           "no deployment to rate")
    evidence.measure("success_rate", round(rate.rate, 4), thresholds.deploy_success_rate_min, better="higher")
    assert rate.rate >= thresholds.deploy_success_rate_min, (
        f"{len(rate.successes)} of {rate.judged} deploy runs succeeded in {days} days ({rate.rate:.1%}, under "
        f"{thresholds.deploy_success_rate_min:.1%}); failed: " + "; ".join(
            f"#{run.get('run_number')} {run.get('conclusion')} {run.get('html_url')}" for run in rate.failures))


@pytest.mark.control("EA-CHG-01", severity="P3")
@pytest.mark.monthly
def test_deployments_reviewed(github, thresholds, evidence):
    """Every deployment traces to a change approved by someone other than its author; the branch requires reviews.

    The deployments are the successful deploy runs since the previous monthly audit; each one's
    commit must be a pull request merged into the production branch, approved (its final commit)
    by someone else before the merge, or for an emergency change (emergency_label) within
    emergency_review_days after it.

    Remediation: require pull request reviews on the production branch (branch protection or a
    ruleset), deploy only merged and reviewed commits, and review each emergency change after it.
    """
    gh = github()
    evidence.resource = _where(gh.source)
    today = dt.date.today()
    since = _period_start(today)
    guard = changes.protection(gh)
    evidence.record("since", since)
    evidence.record("required_approvals", {"count": guard.approvals, "source": guard.source,
                                           "enforce_admins": guard.enforce_admins})
    offenders = []
    if not guard.approvals:
        offenders.append(f"branch {gh.source.branch} does not require pull request reviews")
    found = deploys.runs(gh, since)
    _stopped(found, evidence)
    deployed = {run["head_sha"]: run for run in reversed(found.items) if deploys.succeeded(run)}
    now = dt.datetime.now(dt.timezone.utc)
    verdicts = []
    for sha, run in deployed.items():
        pull = changes.merged_pull(gh, sha)
        if pull is None:
            offenders.append(f"{sha[:12]} (run #{run.get('run_number')}) is no pull request merged into "
                             f"{gh.source.branch}")
            continue
        verdict = changes.judge(pull, changes.reviews(gh, pull["number"]), sha, gh.source.emergency_label,
                                thresholds.emergency_review_days, now)
        verdicts.append(verdict)
        if verdict.problem:
            offenders.append(f"{sha[:12]}: {verdict.problem}")
    evidence.record("deployments", [v.__dict__ for v in verdicts])
    pending = [v for v in verdicts if v.pending]
    if pending:
        evidence.warn(f"{len(pending)} emergency change(s) not yet reviewed, within emergency_review_days: "
                      + ", ".join(f"PR #{v.pull}" for v in pending))
    if not deployed:
        evidence.warn(f"no successful deployment since {since}: only the branch's review rule was judged")
    evidence.require_none(offenders, "unreviewed changes: " + "; ".join(offenders))


@pytest.mark.control("EA-INC-01", severity="P2")
@pytest.mark.monthly
def test_incidents_acknowledged_in_time(incident_source, thresholds, evidence):
    """Every incident of the period was acknowledged within its level's response time.

    Incidents are the entries of the incident log ([incidents] log) or, without one, the issues
    labelled [github] incident_label with a level label P1..P4, acknowledged by the first comment
    or assignment by a person other than the reporter.

    Remediation: acknowledge incidents within incident_ack_p1_min .. incident_ack_p4_min (the
    on-call person records it, or comments or assigns themself), give every incident its level,
    and review the escalation path of the late ones.
    """
    source = incident_source()
    evidence.resource = source.where
    limits = {"P1": thresholds.incident_ack_p1_min, "P2": thresholds.incident_ack_p2_min,
              "P3": thresholds.incident_ack_p3_min, "P4": thresholds.incident_ack_p4_min}
    since = _period_start(dt.date.today())
    now = dt.datetime.now(dt.timezone.utc)
    evidence.record("since", since)
    evidence.record("response_time_min", limits)
    judged = incident_rules.acknowledgements(source.opened(since), limits, since, now, source.unlevelled)
    evidence.record("incidents", judged.seen)
    if judged.pending:
        evidence.warn(f"{len(judged.pending)} incident(s) not yet acknowledged, within their response time: "
                      + ", ".join(judged.pending))
    evidence.require_none(judged.offenders, "incidents not acknowledged in time: " + "; ".join(judged.offenders))


@pytest.mark.control("EA-INC-02", severity="P3")
@pytest.mark.monthly
def test_incidents_have_postmortems(incident_source, thresholds, evidence):
    """Every P1 and P2 incident closed in the period links a post-mortem within postmortem_max_days.

    From the incident log, its postmortem (a URL) and postmortem_at; from GitHub issues, a comment
    on the closed issue that names it ("post-mortem") and links it.

    Remediation: write the post-mortem of each incident listed and link it: `edgeaudit incident ID
    --postmortem URL`, or a comment on its issue.
    """
    source = incident_source()
    evidence.resource = source.where
    since = _period_start(dt.date.today())
    now = dt.datetime.now(dt.timezone.utc)
    evidence.record("since", since)
    judged = incident_rules.postmortems(source.closed(since, thresholds.postmortem_max_days),
                                        thresholds.postmortem_max_days, since, now)
    evidence.record("closed_incidents", judged.seen)
    if judged.pending:
        evidence.warn(f"post-mortem not linked yet, within postmortem_max_days: {', '.join(judged.pending)}")
    evidence.require_none(judged.offenders, f"no post-mortem linked within {thresholds.postmortem_max_days:g} days "
                                            f"of closing: {', '.join(judged.offenders)}")
