"""The run object: what edgeaudit knows about one active run, and the hooks that start and end
it. `pytest_configure` builds it (Run.start) and registers it as a plugin only when edgeaudit
is active, so none of its hooks asks whether it is."""

from __future__ import annotations

import datetime as dt
import json
import os
import tomllib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from edgeaudit import __version__
from edgeaudit.aws import guard
from edgeaudit.aws.clients import Aws, AwsRegistry
from edgeaudit.evidence import jsonable
from edgeaudit.interrupts import Deferred, RunInterrupts
from edgeaudit.redact import redact, redact_text, register_secret
from edgeaudit.reporting import history_lines
from edgeaudit.reporting.archive import archive_report
from edgeaudit.reporting.archive import summary_line as archive_line
from edgeaudit.reporting.report import build_report, iso, report_stem, selection_label, utc_now, write_atomic
from edgeaudit.reporting.results import SEVERITY_RANK, gates, summarize
from edgeaudit.reporting.resultstore import ResultStore
from edgeaudit.reporting.step_summary import append_step_summary
from edgeaudit.reporting.store import HistoryStore, open_store
from edgeaudit.reporting.write import OCSF_SUFFIX, BundleParts, History, export_path, write_report_set
from edgeaudit.rules import limits, tomlwrite
from edgeaudit.rules.attestations import expiry_state
from edgeaudit.rules.attestations import state as attestation_state
from edgeaudit.rules.catalog import clashes
from edgeaudit.rules.config import Config, ConfigError, Target, load, parse
from edgeaudit.rules.thresholds import Thresholds, comparison
from edgeaudit.run.early import guard_run
from edgeaudit.run.options import (
    activates,
    check_report_dir,
    check_sign_key,
    config_path,
    fail_on,
    frameworks,
    parse_shard,
    run_id,
    runs_no_control,
    runs_suites,
    setting,
    suites_dir,
    suites_dirs,
)
from edgeaudit.run.scope import of_run as scope_of_run
from edgeaudit.web.browser import SHARED as SHARED_BROWSER
from edgeaudit.web.browser import sandboxed
from edgeaudit.web.site import Site
from edgeaudit.web.tls import TlsProbe

RUN = pytest.StashKey["Run"]()


@dataclass
class Run:
    """Everything edgeaudit knows about the current run; one per process (controller or worker)."""

    config: Config
    catalog: bool = False
    worker: bool = False
    demo: Any = None
    shared: dict[str, Any] = field(default_factory=dict)  # what the controller hands to xdist workers
    fail_on: str = "P4"
    report_dir: Path = Path("reports")
    no_report: bool = False
    suites_dir: Path = Path("suites")
    started: dt.datetime = field(default_factory=utc_now)
    registry: AwsRegistry = field(default_factory=AwsRegistry)
    sites: dict[str, Site] = field(default_factory=dict)
    probes: dict[str, TlsProbe] = field(default_factory=dict)
    results: ResultStore = field(default_factory=ResultStore)  # the controller's, packed
    calls: Counter[str] = field(default_factory=Counter)
    expected: set[str] = field(default_factory=set)
    selected: set[str] = field(default_factory=set)  # control ids this process may run
    deselected: dict[str, list[str]] = field(default_factory=dict)  # control id: why pytest deselected it
    configured: Config | None = None                 # the config before --target and --shard
    frameworks: tuple[str, ...] = ()                 # --framework: only their controls run (none: all)
    warmed: set[str] = field(default_factory=set)    # targets whose reads were started
    other_failures: int = 0
    saved_env: dict[str, str | None] = field(default_factory=dict)
    stem: Path | None = None
    bundle: bool = False
    sign_key: Path | None = None
    interrupts: RunInterrupts | None = None
    run_id: str = ""
    shard: tuple[int, int] = (1, 1)
    aws_account: str | None = None
    aws_account_alias: str | None = None  # the account's IAM alias, when it has one and IAM tells
    report: dict[str, Any] | None = None
    # the run's own door to its evidence places, handed only to the end-of-run code (and the demo's history)
    _evidence: guard.EvidenceDoor | None = field(default=None, init=False, repr=False)
    junit: Path | None = None  # the JUnit XML the run asked pytest for, beside its report
    usage_error: bool = False  # the run ended on a usage error before any control ran

    # --- starting -------------------------------------------------------------------------------

    @classmethod
    def start(cls, config: pytest.Config) -> Run | None:
        """The run object of an active run (config loaded or demo started), or None when this
        run does not collect the suites. It is in config.stash[RUN] as soon as it exists, so
        that pytest_unconfigure closes it even when its start fails."""
        workerinput = getattr(config, "workerinput", None)
        placeholder = Config(None, (Target("catalog", "https://catalog.invalid/", "-", "-"),), Thresholds())
        demo = bool(setting(config, "edgeaudit_demo", "EDGEAUDIT_DEMO"))
        # listing (--co, --markers, --fixtures) runs no control, so it needs no config: without
        # one it collects the controls against the catalog's placeholder target
        unconfigured = (workerinput is None and not demo and runs_no_control(config)
                        and runs_suites(config, suites_dirs(config)) and not config_path(config).is_file())
        if config.getoption("edgeaudit_catalog") or unconfigured:
            _refuse_clashes(config)
            run = cls(placeholder, catalog=True, no_report=True, suites_dir=suites_dir(config),
                      worker=workerinput is not None)
            run.frameworks = frameworks(config)  # `--co --framework FSBP` lists those controls
            config.stash[RUN] = run
            return run
        if workerinput is not None:
            shared = workerinput.get("edgeaudit")
            if not shared:
                return None
            started = dt.datetime.fromisoformat(shared["started"])
        else:
            if not (demo or activates(config)):
                return None
            started = utc_now()
            shared = {"started": started.isoformat()}
        _refuse_clashes(config)
        run = cls(placeholder, worker=workerinput is not None, shared=shared, started=started,
                  suites_dir=suites_dir(config))
        config.stash[RUN] = run
        run._configure(config, demo)
        return run

    def _configure(self, config: pytest.Config, demo: bool) -> None:
        self.fail_on = fail_on(config)
        self.frameworks = frameworks(config)
        self.report_dir = Path(str(setting(config, "edgeaudit_report_dir", "EDGEAUDIT_REPORT_DIR")))
        self.no_report = bool(setting(config, "edgeaudit_no_report", "EDGEAUDIT_NO_REPORT"))
        if not self.worker and not self.no_report:
            check_report_dir(self.report_dir)
        try:
            limits.check_environment()  # a bad EDGEAUDIT_*_TIMEOUT_S is one usage error, not an error per control
            sandboxed()  # likewise a bad EDGEAUDIT_CHROMIUM_SANDBOX
            if demo:
                _start_demo(self, self.shared, config)
            else:
                self.config = load(config_path(config))
            self.configured = self.config
            self.config = self.config.select(list(setting(config, "edgeaudit_targets", "EDGEAUDIT_TARGET") or []))
            shard = config.getoption("edgeaudit_shard") or os.environ.get("EDGEAUDIT_SHARD")
            if shard:
                self.shard = parse_shard(shard)
                self.config = self.config.shard(*self.shard)
        except ConfigError as exc:
            raise pytest.UsageError(redact_text(f"edgeaudit: {exc}")) from None
        for target in self.configured.targets:  # the values of the secrets the config names, by value
            if target.crux_api_key_env:
                register_secret(os.environ.get(target.crux_api_key_env))
        self.bundle = bool(setting(config, "edgeaudit_bundle", "EDGEAUDIT_BUNDLE")) or self.config.bundle
        sign_key = setting(config, "edgeaudit_sign_key", "EDGEAUDIT_SIGN_KEY")
        self.sign_key = Path(sign_key) if sign_key else None
        if self.sign_key is not None:
            check_sign_key(config, self.sign_key)
        guard_run(config, True)
        guard.allow_scratch_in(target.scratch_bucket or "" for target in self.config.targets)
        try:  # minted before any control runs: a second door is refused (a conftest's is caught here)
            self._evidence = guard.evidence_door(self.config.evidence_places())
        except guard.ReadOnlyViolation as exc:
            raise pytest.UsageError(f"edgeaudit: read-only guard: {exc}; something imported before the run "
                                    "(a conftest or a plugin) tried to open it") from None
        if self.demo is not None:
            _demo_history(self)
        if not self.worker:
            self.run_id = run_id(self.started)
            self.interrupts = RunInterrupts()
            self.interrupts.install()
        if not self.worker and not self.no_report:
            self.stem = report_stem(self.report_dir, selection_label(config.option.markexpr or "", self.frameworks),
                                    self.started)
            if not config.option.xmlpath and not runs_no_control(config):  # JUnit XML for CI, next to the others
                config.option.xmlpath = str(self.stem.with_suffix(".xml"))
                self.junit = self.stem.with_suffix(".xml")

    def site(self, target: Target) -> Site:
        if target.name not in self.sites:
            self.sites[target.name] = Site(target, deadline_s=limits.http_deadline(self.config.thresholds.http_deadline_s))
            self.sites[target.name].check_name()
        return self.sites[target.name]

    def probe(self, target: Target) -> TlsProbe:
        return self.probes.setdefault(target.name, TlsProbe(target))

    def history_store(self, *, appending: bool = False) -> HistoryStore:
        """Where the run reads its history: [report] history, else the report folder's; a store
        `appending` (the run's end-of-run code only) holds the run's evidence door."""
        return open_store(self.config.history, self.report_dir, self._evidence if appending else None)

    def read_history(self) -> history_lines.Vetted:
        """The history's lines that count, verified with the run's signing key if one is set."""
        return history_lines.read(self.history_store(), utc_now(), history_lines.signer(self.sign_key))

    def close(self) -> None:
        """Stop what the run started and give the environment back (pytest_unconfigure)."""
        SHARED_BROWSER.close()  # the lab's Chromium, if a control started it
        if self.usage_error and self.junit is not None:  # a usage error before any control: no report at all
            self.junit.unlink(missing_ok=True)
        if self.demo is not None:
            self.demo.stop()
        for key, value in self.saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if self.interrupts is not None:
            self.interrupts.uninstall()

    # --- hooks ----------------------------------------------------------------------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """xdist: hand the run's start time and the demo's endpoints to each worker."""
        if self.shared:
            node.workerinput["edgeaudit"] = self.shared

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """The report, written whatever interrupts arrive meanwhile (they are held until it is)."""
        with Deferred(reraise=False):
            if self.worker:
                self._hand_over_responses(session)
            elif not self.catalog:
                self._finish(session, exitstatus)

    def _responses_file(self, worker: str) -> Path:
        return self.report_dir / f".aws-responses-{self.started.strftime('%Y%m%dT%H%M%SZ')}-{worker}.json"

    def _hand_over_responses(self, session: pytest.Session) -> None:
        """A worker leaves what it read for the controller, which bundles every worker's."""
        if self.bundle and not self.no_report:
            workerid = session.config.workerinput["workerid"]  # type: ignore[attr-defined]
            write_atomic(self._responses_file(workerid), json.dumps(redact(jsonable(self.registry.cache.responses()))))

    def _finish(self, session: pytest.Session, exitstatus: int) -> None:
        results = self.results.view(lambda r: (r["control"], r["target"], r["nodeid"]))
        empty_shard = self.shard != (1, 1) and not self.config.targets  # reported all the same: merge wants every shard
        if not results and not empty_shard:  # --co, a usage error, an end before any control: no run to report
            self.usage_error = exitstatus == pytest.ExitCode.USAGE_ERROR
            return
        if empty_shard and exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
            exitstatus = session.exitstatus = pytest.ExitCode.OK
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED or bool(session.shouldfail or session.shouldstop)
        complete = not interrupted and self.expected <= set(self.results)
        if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) and not self.other_failures:
            failing = any(gates(r, self.fail_on) for r in results)  # a refused write at every level
            session.exitstatus = pytest.ExitCode.TESTS_FAILED if failing else pytest.ExitCode.OK
        run = {
            "started": iso(self.started), "finished": iso(utc_now()),
            "selection": session.config.option.markexpr or "all",
            "demo": self.demo is not None or bool(self.shared.get("demo")),
            "tool_version": __version__, "targets": [t.name for t in self.config.targets],
            "aws_account": self.aws_account, "aws_account_alias": self.aws_account_alias,
            "api_calls": sum(self.calls.values()),
            "api_calls_by_operation": dict(sorted(self.calls.items())),
            "run_id": self.run_id, "shard": {"index": self.shard[0], "count": self.shard[1]},
            "fail_on": self.fail_on, "exit_code": int(session.exitstatus), "frameworks": list(self.frameworks),
        }
        today, warn_days = dt.date.today(), self.config.thresholds.waiver_warn_days
        waivers = [{**w.as_dict(), "state": expiry_state(w.expires, today, warn_days)} for w in self.config.waivers]
        attestations = [{**a.as_dict(), "state": attestation_state(a, today, warn_days)}
                        for a in self.config.attestations]
        self.report = build_report(run=run, summary=summarize(results), results=results, complete=complete,
                                   waivers=waivers, attestations=attestations,
                                   scope=scope_of_run(self, session.config, results),
                                   thresholds=comparison(self.config.thresholds.as_dict()))
        if self.no_report or self.stem is None:
            append_step_summary(self.report)  # the CI page's summary, when $GITHUB_STEP_SUMMARY is set
            return
        history = History(self.history_store(appending=True),
                          dt.timedelta(hours=self.config.thresholds.cadence_grace_h), self.sign_key)
        written = write_report_set(self.report, self.stem, history=history,
                                   bundle=self._bundle_parts() if self.bundle else None)
        if self.config.archive:  # after the local set: a bucket out of reach costs no local report
            shard = f"-shard{self.shard[0]}of{self.shard[1]}" if self.shard[1] > 1 else ""
            archive_report(self.report, self.stem, written, self.config.archive, self.stem.name + shard,
                           door=self._evidence)
            session.exitstatus = self.report["run"]["exit_code"]
        xml = session.config.option.xmlpath
        append_step_summary(self.report, [*written, *([xml] if xml else [])])

    def _bundle_parts(self) -> BundleParts:
        """The effective config and the AWS answers the run used (the workers' too)."""
        responses = self.registry.cache.responses()
        for part in self.report_dir.glob(self._responses_file("*").name):
            responses.update(json.loads(part.read_text(encoding="utf-8")))
            part.unlink()
        return BundleParts(config=self.config.effective(), responses=responses, sign_key=self.sign_key)

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        if self.report is None:
            return
        summary, write = self.report["summary"], terminalreporter.write_line
        terminalreporter.section("edgeaudit")
        failing = summary["failed_by_severity"]
        write("results: " + ", ".join(f"{summary[k]} {k}" for k in
                                      ("passed", "warned", "failed", "error", "skipped", "waived")))
        write("failed or error by severity: " + ", ".join(f"{level} {failing[level]}" for level in SEVERITY_RANK)
              + f" (exit code gates on {self.fail_on} and above)")
        if not self.report["complete"]:
            write("the run did not complete: the report is marked complete: false", red=True)
        if self.stem is not None:
            write(f"report: {self.stem.with_suffix('.html')}")
            write(f"json:   {self.stem.with_suffix('.json')}")
            write(f"ocsf:   {export_path(self.stem, OCSF_SUFFIX)}")
            write(f"csv:    {export_path(self.stem, '.csv')}")
            if config.option.xmlpath:
                write(f"junit:  {config.option.xmlpath}")
            if self.bundle:
                write(f"bundle: {self.stem.with_suffix('.bundle.zip')}{' (signed)' if self.sign_key else ''}")
            if archive := self.report["run"].get("archive"):
                write(archive_line(archive), red=archive["status"] != "archived")

    def ask_aws_account(self) -> None:
        """The account of the credentials the run starts with (the first target's, before any role
        it assumes) and its alias, the name people know it by (OCSF's cloud.account.name): one STS
        and one IAM call, counted, made when the session starts so that no call stands between the
        end of the run and its report. The answers are shared with the controls through the read
        cache; a failure trips no breaker of theirs (they meet and report it themselves), and an
        alias IAM does not give leaves the account named by its id."""
        if not self.config.targets or self.catalog:
            return
        asker = AwsRegistry()
        asker.cache, asker.calls = self.registry.cache, self.registry.calls
        before = self.registry.calls.snapshot()
        aws = Aws(asker, replace(self.config.targets[0], role_arn=None, external_id=None))
        try:
            self.aws_account = aws.account_id
            self.aws_account_alias = aws.account_alias
        except Exception:  # an unknown account or alias is shown as such; the controls carry the errors
            pass
        finally:
            self.calls.update(self.registry.calls.snapshot() - before)


def _refuse_clashes(config: pytest.Config) -> None:
    """A user's control that reuses a built-in id is a usage error naming both files."""
    if clashing := clashes(suites_dirs(config)):
        raise pytest.UsageError(f"edgeaudit: {clashing[0]}. Fix: give your control an id of its own "
                                "(or set edgeaudit_builtin_controls = false to run only your own)")


def _start_demo(state: Run, shared: dict[str, Any], config: pytest.Config) -> None:
    """The controller starts the demo once; xdist workers get its config and endpoints."""
    if "demo" not in shared:
        from edgeaudit.demo import load_environment  # the demo is an optional extra: imported for --demo only

        state.demo = load_environment().start()
        # as TOML text: xdist hands it to the workers, and dates do not travel as Python objects
        shared["demo"] = {"config": tomlwrite.dumps(state.demo.run_config_data), "env": state.demo.aws_env}
    for key, value in shared["demo"]["env"].items():
        state.saved_env.setdefault(key, os.environ.get(key))
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    state.config = parse(Path("<demo>"), tomllib.loads(shared["demo"]["config"]))


def _demo_history(state: Run) -> None:
    """The demo site's past scheduled runs, added where its config keeps the history (a bucket of
    the demo account, as a site's CI keeps it between runs on fresh runners)."""
    from edgeaudit.demo.history import write_history

    write_history(state.history_store(appending=True), [site.spec.name for site in state.demo.sites],
                  paths={site.spec.name: list(site.spec.paths) for site in state.demo.sites}, sign_key=state.sign_key)
