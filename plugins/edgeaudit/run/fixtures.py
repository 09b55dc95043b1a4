"""The fixtures controls use: the target, its config and thresholds, and the layers that reach
it (AWS reads, the site over HTTP, its crawl, its TLS endpoint, its vitals), the evidence a
control records, and the run's history. A plugin module registered only in active runs."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any, Callable

import pytest

from edgeaudit.aws import prefetch
from edgeaudit.aws.clients import Aws
from edgeaudit.checks import incident_log
from edgeaudit.checks.incident_rules import Incident, Source
from edgeaudit.checks.incidents import IssueIncidents
from edgeaudit.errors import NotEvaluated
from edgeaudit.evidence import Evidence
from edgeaudit.reporting.history_lines import Vetted
from edgeaudit.reporting.ledger import same_environment
from edgeaudit.reporting.results import ControlSpec
from edgeaudit.reporting.store import HistoryUnavailable
from edgeaudit.rules import limits
from edgeaudit.rules.attestations import Verdict, evaluate
from edgeaudit.rules.config import Config, Target
from edgeaudit.rules.location import is_s3
from edgeaudit.rules.schedule import SCHEDULES
from edgeaudit.rules.thresholds import Thresholds
from edgeaudit.run.outcomes import EVIDENCE
from edgeaudit.run.run import RUN, Run
from edgeaudit.run.scope import selected_by
from edgeaudit.web.crawl import Crawl, checked_crawl
from edgeaudit.web.github import GitHub
from edgeaudit.web.site import Site
from edgeaudit.web.tls import TlsProbe

GITHUB = pytest.StashKey[GitHub]()  # one client (one connection pool) for the run's GitHub reads
# the incident log as each credential scope read it: its incidents, or why it could not be read
INCIDENT_LOGS = pytest.StashKey[dict[tuple[str, ...], "list[Incident] | NotEvaluated"]]()
NO_INCIDENT_SOURCE = ('no incident source: add [incidents] with log = "incidents.jsonl" (a JSON-lines log, or '
                      '"s3://bucket/key"; `edgeaudit incident` appends to it), or [github] with repository = '
                      '"owner/name" and token_env = "GITHUB_TOKEN" (issues labelled incident), to the config; or '
                      'declare that there is none: [incidents] absent = "why"')


def _run(request: pytest.FixtureRequest) -> Run:
    return request.config.stash[RUN]


@pytest.fixture
def target(request: pytest.FixtureRequest) -> Target:
    """The site under check; controls in suites/ are parametrized with every configured target."""
    raise pytest.UsageError("the `target` fixture is for controls: mark the test with "
                            "@pytest.mark.control and run it from suites/ with a config or --demo")


@pytest.fixture
def edgeaudit_config(request: pytest.FixtureRequest) -> Config:
    """The run's config: its targets, thresholds, waivers and attestations."""
    return _run(request).config


@pytest.fixture
def thresholds(edgeaudit_config: Config) -> Thresholds:
    """The catalog's thresholds with the config's overrides."""
    return edgeaudit_config.thresholds


@pytest.fixture
def aws(request: pytest.FixtureRequest, target: Target, thresholds: Thresholds) -> Aws:
    """Cached, read-only AWS clients for the target: aws.s3, aws.cloudfront, aws.client(name, region).
    The target's first control also starts the reads the selected controls will make, side by side."""
    run = _run(request)
    client = Aws(run.registry, target)
    if target.name not in run.warmed:
        run.warmed.add(target.name)
        prefetch.warm(client, run.selected, thresholds.http_concurrency)
    return client


@pytest.fixture
def site(request: pytest.FixtureRequest, target: Target) -> Site:
    """The live site over HTTP(S), shared by every control of the target."""
    return _run(request).site(target)


@pytest.fixture
def crawl(site: Site, thresholds: Thresholds, evidence: Evidence) -> Callable[[], Crawl]:
    """The target's crawl, made once per run and shared: a control calls `crawl()` where it reads
    it, so that what it asks before (and a skip) comes first, as in its own body."""
    return lambda: checked_crawl(site, evidence, thresholds)


@pytest.fixture
def github(request: pytest.FixtureRequest, edgeaudit_config: Config, evidence: Evidence) -> Callable[[], GitHub]:
    """The deploy workflow's repository ([github]), read-only: a control calls `github()` where it
    reads it. Not configured: not evaluated, naming the lines that configure it; declared absent
    (`absent = "why"`): a skip naming the reason."""
    def client() -> GitHub:
        source = edgeaudit_config.github
        if source is None:
            raise NotEvaluated('no GitHub source: add [github] with repository = "owner/name" and token_env = '
                               '"GITHUB_TOKEN" to the config, or declare it absent = "how you deploy instead"')
        if source.absent is not None:
            pytest.skip(f"the config declares no GitHub source: {source.absent}")
        evidence.record("repository", source.repository)
        if GITHUB not in request.config.stash:
            request.config.stash[GITHUB] = GitHub.from_source(
                source, deadline_s=limits.http_deadline(edgeaudit_config.thresholds.http_deadline_s))
        return request.config.stash[GITHUB]

    return client


@pytest.fixture
def incident_source(request: pytest.FixtureRequest, edgeaudit_config: Config, target: Target,
                    evidence: Evidence, github: Callable[[], GitHub]) -> Callable[[], Source]:
    """Where EA-INC-01/02 read incidents: the log [incidents] names, else [github]'s issues. Neither:
    not evaluated, naming the lines that configure either; declared absent: a skip with the reason.
    The log is read once per run and credential scope (an s3:// log with the target's session)."""
    def source() -> Source:
        chosen = edgeaudit_config.incidents
        if chosen is None:
            if edgeaudit_config.github is None:
                raise NotEvaluated(NO_INCIDENT_SOURCE)
            if edgeaudit_config.github.absent is not None:
                pytest.skip(f"the config declares no GitHub source: {edgeaudit_config.github.absent} "
                            '(an incident log, [incidents] log = "incidents.jsonl", would be read instead)')
            return IssueIncidents(github())
        if chosen.absent is not None:
            evidence.record("declared_absent", {"incidents": chosen.absent})
            pytest.skip(f"the config declares no incident log: {chosen.absent}")
        location = str(chosen.log)
        evidence.record("incident_log", location)
        logs = request.config.stash.setdefault(INCIDENT_LOGS, {})
        scope = (location, target.profile or "", target.role_arn or "") if is_s3(location) else (location,)
        if scope not in logs:
            try:
                logs[scope] = incident_log.load(Aws(_run(request).registry, target) if is_s3(location) else None,
                                                location)
            except NotEvaluated as exc:
                logs[scope] = exc
        found = logs[scope]
        if isinstance(found, NotEvaluated):
            raise copy.copy(found)
        return incident_log.LoggedIncidents(location, found, target.name,
                                            known={t.name for t in (_run(request).configured or edgeaudit_config).targets})

    return source


@pytest.fixture
def selected_controls(request: pytest.FixtureRequest) -> list[str]:
    """The ids of the controls this run collected, sorted (EA-OPS-01 tries the reads they make)."""
    return sorted(_run(request).selected)


@pytest.fixture
def tls_probe(request: pytest.FixtureRequest, target: Target) -> TlsProbe:
    """The target's TLS endpoint: the served certificate."""
    return _run(request).probe(target)


@pytest.fixture
def vitals(request: pytest.FixtureRequest, target: Target, thresholds: Thresholds) -> Any:
    """The target's Core Web Vitals (lab in headless Chromium, field from CrUX when configured),
    measured on first use and shared by every EA-PERF control of the run."""
    from edgeaudit.web.vitals import measured

    return measured(request.config, target, thresholds)


@pytest.fixture
def post_deploy(request: pytest.FixtureRequest) -> bool:
    """True in the post-deployment check: the run's -m selects this control by its `deploy`
    marker. Data older than the deployment (28 days of field data, a day of error rates) then
    describes the release before it."""
    return selected_by(request.config, request.node, "deploy")


@pytest.fixture
def report_dir(request: pytest.FixtureRequest) -> Path:
    """Where this run writes its reports and reads reports/history.jsonl (EA-OPS-02, EA-OPS-03)."""
    return _run(request).report_dir


@pytest.fixture
def history_location(request: pytest.FixtureRequest) -> str:
    """Where the run keeps its history: `[report] history` (a path or s3://...), else
    <report dir>/history.jsonl."""
    return _run(request).history_store().where


@pytest.fixture
def vetted_history(request: pytest.FixtureRequest) -> Vetted:
    """The earlier runs in the run's history (history_location) that count: against the same
    kind of environment (a demo run's lines never count for a site, nor a site's for the demo),
    well-formed, not dated in the future, signed by the run's key when one is configured; and
    what was left out. A history out of reach leaves the control not evaluated."""
    run = _run(request)
    try:
        vetted = run.read_history()
    except HistoryUnavailable as exc:
        raise NotEvaluated(str(exc)) from None
    vetted.entries = same_environment(vetted.entries, demo=bool(run.shared.get("demo")))
    return vetted


@pytest.fixture
def run_history(vetted_history: Vetted) -> list[dict[str, Any]]:
    """The earlier runs that count (vetted_history), oldest first (EA-OPS-02)."""
    return vetted_history.entries


@pytest.fixture
def evidence(request: pytest.FixtureRequest, target: Target) -> Evidence:
    """Observed values for the report: evidence.record(key, value), evidence.warn(message)."""
    collected = Evidence(resource=target.url)
    request.node.stash[EVIDENCE] = collected
    return collected


@pytest.fixture
def attestation(request: pytest.FixtureRequest, target: Target, edgeaudit_config: Config,
                evidence: Evidence) -> Verdict:
    """For a manual control (EA-MAN-*): what the attestations say for this target, recorded
    as evidence. It counts until the control's cadence (its marker) is next due; one whose
    `expires` ends it sooner, within waiver_warn_days, warns."""
    control = ControlSpec.of(request.node)
    assert control is not None, "the attestation fixture is for controls"
    cadences = [c for c in control.cadence if c in SCHEDULES]
    assert cadences, f"{control.id} carries no cadence marker ({', '.join(SCHEDULES)}): its attestations cannot lapse"
    verdict = evaluate(edgeaudit_config.attestations, control.id, cadences[0], target.name, dt.date.today(),
                       edgeaudit_config.thresholds.waiver_warn_days)
    evidence.resource = f"attestation of {control.id}"
    for key, value in verdict.evidence.items():
        evidence.record(key, value)
    if verdict.ok and verdict.expiring:
        evidence.warn(f"attestation expires in {verdict.evidence['days_until_expiry']} days")
    return verdict
