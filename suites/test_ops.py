"""Operational procedures (seed: validate-env, validate-operational-procedures)."""

import datetime as dt
import json
from pathlib import Path

import pytest

from edgeaudit.aws import preflight
from edgeaudit.checks import declared, dependencies
from edgeaudit.errors import NotEvaluated
from edgeaudit.reporting import ledger
from edgeaudit.rules.attestations import expiry_state


@pytest.mark.control("EA-OPS-01", severity="P2", reads=("sts:GetCallerIdentity", "iam:ListAccountAliases"))
@pytest.mark.daily
@pytest.mark.infrastructure
def test_preflight(selected_controls, aws, target, evidence):
    """The credentials work and allow every read the selected controls make.

    Remediation: attach the read-only audit policy of the README to the auditing principal
    (or the role in role_arn); the evidence lists each missing IAM action, the controls that
    need it, and the actions that could not be tried (no resource to try them on, or billed).
    """
    evidence.resource = f"credentials for {target.name}"
    try:
        identity = aws.sts.get_caller_identity()
    except NotEvaluated as exc:
        raise AssertionError(f"expected working AWS credentials; STS GetCallerIdentity: {exc}") from None
    evidence.record("identity", {"account": identity["Account"], "arn": identity["Arn"]})
    probes = preflight.probes_for(selected_controls)
    allowed, missing, not_probed = preflight.try_all(aws, target, probes)
    needed_by = preflight.needed_by(selected_controls)
    evidence.record("actions_tried", len(probes))
    evidence.record("allowed", allowed)
    evidence.record("missing", missing)
    evidence.record("missing_for", {action: needed_by.get(action, []) for action in missing})
    evidence.record("not_probed", {**preflight.unprobed(selected_controls), **not_probed})
    assert not missing, (f"expected every read the selected controls make to be allowed; {identity['Arn']} lacks "
                         + "; ".join(f"{a} (for {', '.join(needed_by.get(a, []))})" for a in missing))


@pytest.mark.control("EA-OPS-02", severity="P3")
@pytest.mark.monthly
def test_cadence_evidence(vetted_history, thresholds, history_location, target, evidence):
    """Each cadence of the procedures ran completely on its schedule.

    Remediation: schedule `pytest -m daily` (every business day), weekly (Mondays), monthly (the
    first Monday), quarterly and dr (the first week of each quarter), annually (the first week of
    January) in CI or cron with the same report folder, keep reports/history.jsonl between runs (or set [report] history to an S3
    location that every runner shares), and run the cadences the ledger shows as overdue.
    """
    evidence.resource = history_location
    evidence.record("history", vetted_history.evidence())
    if vetted_history.ignored:
        evidence.warn(f"{len(vetted_history.ignored)} history line(s) ignored: {'; '.join(vetted_history.ignored[:3])}")
    run_history = vetted_history.entries
    if not run_history:
        raise NotEvaluated(f"no earlier run in {history_location}: the schedule cannot be judged without the "
                           "history of runs. Keep reports/history.jsonl between CI runs (restore it as a cache "
                           "or the previous job's artifact before the run, save it after), set [report] history "
                           "= \"s3://bucket/prefix/history.jsonl\" so that every runner shares one, or run from "
                           "one folder")
    grace = dt.timedelta(hours=thresholds.cadence_grace_h)
    rows = ledger.ledger(run_history, dt.datetime.now(dt.timezone.utc), grace, target=target.name)
    evidence.record("grace_h", thresholds.cadence_grace_h)
    evidence.record("ledger", {r.cadence: {"last_complete": r.last_complete, "age": r.age, "required": r.window,
                                           "status": r.status, "missed": list(r.missed)} for r in rows})
    late = [f"{r.cadence} ({'never ran' if r.status == 'never' else f'last ran {r.age} ago'}; "
            f"no complete run of {target.name} in {_windows(r.missed)} of the {r.window}, "
            f"grace {thresholds.cadence_grace_h:g} h)"
            for r in rows if r.status != "within"]
    assert not late, f"expected a complete run of every cadence on its schedule; overdue: {'; '.join(late)}"


def _windows(missed: tuple[str, ...]) -> str:
    """The missed windows for a message: the first five by name, then how many more (the evidence has all)."""
    named = ", ".join(missed[:5]) + (f" and {len(missed) - 5} more" if len(missed) > 5 else "")
    return f"{len(missed)} window{'s' if len(missed) > 1 else ''} ({named})"


def _last_outcome(history: list[dict], report_dir: Path, control: str, target: str) -> tuple[str, str] | None:
    """The outcome of `control` on `target` in the newest report of the history that ran it (and
    that report's name), read from the report folder."""
    for entry in reversed(history):
        report = report_dir / str(entry.get("report", ""))
        if not entry.get("report") or not report.is_file():
            continue
        try:
            results = json.loads(report.read_text(encoding="utf-8")).get("results", [])
        except (OSError, json.JSONDecodeError):
            continue
        for result in results:
            if result.get("control") == control and result.get("target") == target:
                return result.get("outcome", ""), report.name
    return None


@pytest.mark.control("EA-OPS-03", severity="P4")
@pytest.mark.monthly
def test_waiver_health(edgeaudit_config, thresholds, target, report_dir, run_history, evidence):
    """Every waiver of the target is live, still needed, and not about to lapse.

    Remediation: renew or remove expired waivers (after fixing the finding), remove waivers
    of controls that now pass, and have waivers that expire soon reviewed by their approver.
    """
    evidence.resource = f"waivers of {target.name}"
    today = dt.date.today()
    waivers = [w for w in edgeaudit_config.waivers if w.target in (None, target.name)]
    problems, expiring, states = [], [], {}
    for waiver in waivers:
        name = f"{waiver.control} (approved by {waiver.approved_by}, expires {waiver.expires.isoformat()})"
        state = expiry_state(waiver.expires, today, int(thresholds.waiver_warn_days))
        states[waiver.control] = state
        if state == "expired":
            problems.append(f"{name} expired")
        elif state == "expiring":
            expiring.append(name)
        last = _last_outcome(run_history, Path(report_dir), waiver.control, target.name)
        if last and last[0] == "passed":
            problems.append(f"{name} matches nothing: the control passed in {last[1]}")
    evidence.record("waivers", states)
    evidence.record("expiring_within_days", {"days": thresholds.waiver_warn_days, "waivers": expiring})
    assert not problems, f"expected live waivers that cover a finding; {'; '.join(problems)}"
    if expiring:
        evidence.warn(f"waivers expiring within {thresholds.waiver_warn_days} days: {'; '.join(expiring)}")


@pytest.mark.control("EA-OPS-04", severity="P3")
@pytest.mark.monthly
@pytest.mark.security
def test_dependency_review(target, edgeaudit_config, evidence):
    """The site's lockfile has no package with a known vulnerability.

    Remediation: upgrade the packages the evidence names (npm audit fix, or a pinned upgrade
    in the requirements), rebuild and redeploy the site.
    """
    declared.require(target, evidence, "lockfile")
    base = edgeaudit_config.path.parent if edgeaudit_config.path and edgeaudit_config.path.is_file() else Path.cwd()
    lockfile = (base / target.lockfile).resolve()
    evidence.resource = str(lockfile)
    found = dependencies.review(lockfile)
    evidence.record("tool", found.tool)
    evidence.record("packages", found.packages)
    evidence.record("vulnerable", found.vulnerable)
    assert not found.vulnerable, (f"expected no known-vulnerable package in {lockfile.name}; {found.tool} found "
                                  + "; ".join(f"{name} ({what})" for name, what in sorted(found.vulnerable.items())))
