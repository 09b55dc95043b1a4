"""The edgeaudit pytest plugin (entry point `pytest11`).

It is active only for runs that collect the suites (`suites/`, or anything with `--demo`);
every other pytest run in the same environment behaves as if it were absent, apart from the
registered markers. When active it loads the config (or starts the demo environment),
parametrizes every control by target, supplies the fixtures, installs the read-only guard,
turns each control's reports into one result, and writes the JSON and HTML reports.
"""

from __future__ import annotations

import argparse
import configparser
import importlib.metadata
import json
import platform
import re
import secrets
import tempfile
import datetime as dt
import os
import tomllib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from _pytest.config.findpaths import determine_setup

from . import __version__, guard, limits, prefetch, tomlwrite
from .attestations import Verdict, evaluate, expiry_state
from .attestations import state as attestation_state
from .aws import Aws, AwsRegistry
from .errors import NotEvaluated
from .catalog import ID_PATTERN, SEVERITIES, done_with_suites, use_suites
from .crawl import Crawl, checked_crawl
from .config import DEFAULT_CONFIG_NAME, Config, ConfigError, Target, load, parse
from .browser import SHARED as SHARED_BROWSER
from .reporting.bundle import BundleError, check_private_key, write_bundle
from .evidence import Evidence, jsonable
from .reporting.html_render import render
from .interrupts import Deferred, RunInterrupts
from .reporting.ledger import covered_cadences, ledger, read_history, same_environment
from .redact import redact, redact_text
from .reporting.report import (append_history, build_report, iso, report_stem, selection_name, utc_now,
                     write_atomic, write_json)
from .reporting.trend import compare, mark_failing_since, measures, previous_report
from .schedule import SCHEDULES
from .results import (SEVERITY_RANK, ControlSpec, apply_waiver, build_result, error_message,
                      failure_message, gates, skip_reason, summarize)
from .site import Site
from .thresholds import Thresholds
from .tls import TlsProbe

MARKERS_FILE = Path(__file__).parent / "markers.ini"
RUN_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")


@dataclass
class RunState:
    """Everything the plugin knows about the current run; one per process."""

    active: bool = False
    catalog: bool = False
    worker: bool = False
    config: Config | None = None
    demo: Any = None
    fail_on: str = "P4"
    report_dir: Path = Path("reports")
    no_report: bool = False
    suites_dir: Path = Path("suites")
    started: dt.datetime = field(default_factory=utc_now)
    registry: AwsRegistry = field(default_factory=AwsRegistry)
    sites: dict[str, Site] = field(default_factory=dict)
    probes: dict[str, TlsProbe] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    expected: set[str] = field(default_factory=set)
    selected: set[str] = field(default_factory=set)  # control ids this process may run
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
    report: dict[str, Any] | None = None

    def site(self, target: Target) -> Site:
        if target.name not in self.sites:
            deadline = self.config.thresholds.http_deadline_s if self.config else None
            self.sites[target.name] = Site(target, deadline_s=limits.http_deadline(deadline))
        return self.sites[target.name]

    def probe(self, target: Target) -> TlsProbe:
        return self.probes.setdefault(target.name, TlsProbe(target))


STATE = pytest.StashKey[RunState]()
EVIDENCE = pytest.StashKey[Evidence]()
RESULT = pytest.StashKey[dict]()
CALLS_AT_START = pytest.StashKey[Counter]()
VIOLATIONS_AT_START = pytest.StashKey[int]()
GUARDED = pytest.StashKey[bool]()
VIOLATIONS_AT_INSTALL = pytest.StashKey[int]()


def _state(config: pytest.Config) -> RunState:
    return config.stash.get(STATE, None) or RunState()


# --- options ------------------------------------------------------------------------------------

def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("edgeaudit", "edgeaudit compliance suite")
    group.addoption("--edgeaudit-config", dest="edgeaudit_config", metavar="PATH",
                    help=f"config file (default ./{DEFAULT_CONFIG_NAME}; env EDGEAUDIT_CONFIG)")
    group.addoption("--demo", dest="edgeaudit_demo", action="store_true", default=None,
                    help="run against the embedded demo environment (moto + a local HTTPS edge)")
    group.addoption("--target", dest="edgeaudit_targets", action="append", metavar="NAME",
                    help="check only this target (repeatable; default all; env EDGEAUDIT_TARGET, comma-separated)")
    group.addoption("--report-dir", dest="edgeaudit_report_dir", metavar="DIR",
                    help="where reports are written (default reports/; env EDGEAUDIT_REPORT_DIR)")
    group.addoption("--fail-on", dest="edgeaudit_fail_on", choices=SEVERITIES,
                    help="lowest severity whose failures or errors make the exit code 1 (default P4: all)")
    group.addoption("--no-report", dest="edgeaudit_no_report", action="store_true", default=None,
                    help="write no report files")
    group.addoption("--shard", dest="edgeaudit_shard", metavar="K/N",
                    help="check only shard K of N of the targets (deterministic; a CI matrix of N jobs)")
    group.addoption("--bundle", dest="edgeaudit_bundle", action="store_true", default=None,
                    help="also write the evidence bundle reports/<name>.bundle.zip (config: [report] bundle = true)")
    group.addoption("--sign-key", dest="edgeaudit_sign_key", metavar="PATH",
                    help="Ed25519 private key (PEM) that signs the bundle's manifest (env EDGEAUDIT_SIGN_KEY)")
    group.addoption("--edgeaudit-catalog", dest="edgeaudit_catalog", action="store_true", default=False,
                    help=argparse.SUPPRESS)  # `edgeaudit controls`: collect with a placeholder target
    parser.addini("edgeaudit_config", f"config file (default {DEFAULT_CONFIG_NAME})", default="")
    parser.addini("edgeaudit_demo", "run against the embedded demo environment", type="bool", default=False)
    parser.addini("edgeaudit_targets", "targets to check (default all)", type="args", default=[])
    parser.addini("edgeaudit_report_dir", "where reports are written", default="reports")
    parser.addini("edgeaudit_fail_on", "lowest severity that fails the run", default="P4")
    parser.addini("edgeaudit_no_report", "write no report files", type="bool", default=False)
    parser.addini("edgeaudit_bundle", "write the evidence bundle", type="bool", default=False)
    parser.addini("edgeaudit_sign_key", "Ed25519 private key that signs the bundle", default="")
    parser.addini("edgeaudit_suites", "the folder of controls (every test there must be a control)",
                  default="suites")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    _find_rootdir_again(early_config, args)
    _guard_before_conftests(early_config)


def _guard_before_conftests(config: pytest.Config) -> None:
    """A run that will collect the suites is guarded before any conftest is imported: a write at
    import time is refused too. pytest_configure makes the final decision."""
    known = config.known_args_namespace
    demo = (getattr(known, "edgeaudit_demo", None) or config.getini("edgeaudit_demo")
            or os.environ.get("EDGEAUDIT_DEMO", "").lower() in ("1", "true", "yes", "on"))
    paths, _ = config._decide_args(args=known.file_or_dir, pyargs=known.pyargs, testpaths=config.getini("testpaths"),
                                   invocation_dir=config.invocation_params.dir, rootpath=config.rootpath, warn=False)
    if demo or _runs_suites(config, (config.rootpath / config.getini("edgeaudit_suites")).resolve(), paths):
        _guard(config, True)


def _guard(config: pytest.Config, on: bool) -> None:
    """Install or remove this run's read-only guard, once each."""
    if config.stash.get(GUARDED, False) != on:
        if on:
            guard.install()
            config.stash[VIOLATIONS_AT_INSTALL] = len(guard.violations)
        else:
            guard.uninstall()
        config.stash[GUARDED] = on


def _find_rootdir_again(early_config: pytest.Config, args: list[str]) -> None:
    """Find the rootdir again once our options are known.

    pytest settles its rootdir and ini file before it loads plugins, so in `--report-dir DIR`
    or `--edgeaudit-config FILE` (two words) the value was taken for a test path, and a
    rootdir elsewhere loses the project's ini (testpaths, markers). Redo that step with the
    real test paths; the ini's addopts are added back in front of the arguments.
    """
    known = early_config.known_args_namespace
    if known.rootdir or known.inifilename:
        return
    found = determine_setup(inifile=None, override_ini=known.override_ini, args=known.file_or_dir,
                            rootdir_cmd_arg=None, invocation_dir=early_config.invocation_params.dir)
    rootpath, inipath, inicfg = found[:3]
    if rootpath == early_config.rootpath and inipath == early_config.inipath:
        return
    early_config._rootpath, early_config._inipath, early_config._inicfg = rootpath, inipath, inicfg
    early_config._inicache.clear()
    early_config._parser.extra_info.update(rootdir=str(rootpath), inifile=str(inipath))
    known.confcutdir = str(inipath.parent if inipath else rootpath)
    args[:0] = early_config.getini("addopts")


def _setting(config: pytest.Config, name: str, env: str) -> Any:
    """Command line, then environment variable, then ini option."""
    value = config.getoption(name, None)
    if value not in (None, [], ""):
        return value
    if os.environ.get(env):
        raw = os.environ[env]
        if name in ("edgeaudit_demo", "edgeaudit_no_report", "edgeaudit_bundle"):
            return raw.lower() in ("1", "true", "yes", "on")
        return [v.strip() for v in raw.split(",") if v.strip()] if name == "edgeaudit_targets" else raw
    return config.getini(name)


def _register_markers(config: pytest.Config) -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(MARKERS_FILE, encoding="utf-8")
    for name, description in parser["markers"].items():
        config.addinivalue_line("markers", f"{name}: {description}")


def _runs_suites(config: pytest.Config, suites: Path, args: list[str] | None = None) -> bool:
    """Does this run collect the suites? (An argument at, inside or above the suites folder.)"""
    base = config.invocation_params.dir
    for arg in config.args if args is None else args:
        path = (base / arg.split("::", 1)[0]).resolve()
        if path == suites or suites in path.parents or path in suites.parents:
            return True
    return False


# --- configure ----------------------------------------------------------------------------------

@pytest.hookimpl(tryfirst=True)  # before junitxml reads its path
def pytest_configure(config: pytest.Config) -> None:
    _register_markers(config)
    state = RunState()
    config.stash[STATE] = state
    workerinput = getattr(config, "workerinput", None)
    state.worker = workerinput is not None
    state.suites_dir = (config.rootpath / config.getini("edgeaudit_suites")).resolve()
    use_suites(state.suites_dir)  # the controls it declares: the ids waivers and attestations may name
    demo = bool(_setting(config, "edgeaudit_demo", "EDGEAUDIT_DEMO"))
    if config.getoption("edgeaudit_catalog"):
        state.active, state.no_report, state.catalog = True, True, True
        state.config = Config(None, (Target("catalog", "https://catalog.invalid/", "-", "-"),), Thresholds())
        return
    if state.worker:
        shared = workerinput.get("edgeaudit")
        if not shared:
            return _guard(config, False)
        state.active = True
        state.started = dt.datetime.fromisoformat(shared["started"])
    else:
        state.active = demo or _runs_suites(config, state.suites_dir)
        if not state.active:
            return _guard(config, False)  # the early guess was wrong: stay out of the way
        shared = {"started": state.started.isoformat()}
    state.fail_on = str(_setting(config, "edgeaudit_fail_on", "EDGEAUDIT_FAIL_ON")).upper()
    if state.fail_on not in SEVERITIES:
        raise pytest.UsageError(f"--fail-on / edgeaudit_fail_on: {state.fail_on!r} is not a severity. "
                                f"Fix: use one of {', '.join(SEVERITIES)}")
    state.report_dir = Path(str(_setting(config, "edgeaudit_report_dir", "EDGEAUDIT_REPORT_DIR")))
    state.no_report = bool(_setting(config, "edgeaudit_no_report", "EDGEAUDIT_NO_REPORT"))
    if not state.worker and not state.no_report:
        _check_report_dir(state.report_dir)
    try:
        limits.check_environment()  # a bad EDGEAUDIT_*_TIMEOUT_S is one usage error, not an error per control
        if demo:
            _start_demo(state, shared, config)
        else:
            path = Path(str(_setting(config, "edgeaudit_config", "EDGEAUDIT_CONFIG") or DEFAULT_CONFIG_NAME))
            state.config = load(path if path.is_absolute() else config.invocation_params.dir / path)
        state.config = state.config.select(list(_setting(config, "edgeaudit_targets", "EDGEAUDIT_TARGET") or []))
        shard = config.getoption("edgeaudit_shard") or os.environ.get("EDGEAUDIT_SHARD")
        if shard:
            state.shard = _parse_shard(shard)
            state.config = state.config.shard(*state.shard)
    except ConfigError as exc:
        raise pytest.UsageError(redact_text(f"edgeaudit: {exc}")) from None
    state.bundle = bool(_setting(config, "edgeaudit_bundle", "EDGEAUDIT_BUNDLE")) or state.config.bundle
    sign_key = _setting(config, "edgeaudit_sign_key", "EDGEAUDIT_SIGN_KEY")
    state.sign_key = Path(sign_key) if sign_key else None
    if state.sign_key is not None:
        _check_sign_key(config, state.sign_key)
    config.stash["edgeaudit_shared"] = shared  # type: ignore[index]
    _guard(config, True)
    guard.allow_scratch_in(target.scratch_bucket or "" for target in state.config.targets)
    if not state.worker:
        state.run_id = _run_id(state.started)
        state.interrupts = RunInterrupts()
        state.interrupts.install()
    if not state.worker and not state.no_report:
        state.stem = report_stem(state.report_dir, config.option.markexpr or "", state.started)
        if not config.option.xmlpath:  # JUnit XML for CI, next to the others
            config.option.xmlpath = str(state.stem.with_suffix(".xml"))


def _redact_terminal(config: pytest.Config) -> None:
    """Everything pytest prints through its terminal writer (failures, warnings, summaries)
    passes redact_text first: the terminal's one choke point."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    writer = getattr(reporter, "_tw", None)
    if writer is None or getattr(writer, "edgeaudit_redacts", False):
        return
    write = writer.write

    def redacted_write(msg: str, **kwargs: Any) -> None:
        write(redact_text(msg), **kwargs)

    writer.write, writer.edgeaudit_redacts = redacted_write, True


def _check_sign_key(config: pytest.Config, path: Path) -> None:
    """A key that cannot sign stops the run before any control runs; one others can read warns."""
    fix = "Fix: point it at an Ed25519 private key in PEM (openssl genpkey -algorithm ed25519 -out key.pem)"
    if not path.is_file():
        raise pytest.UsageError(f"--sign-key / EDGEAUDIT_SIGN_KEY: no file at {path}. {fix}")
    try:
        warnings = check_private_key(path)
    except BundleError as exc:
        raise pytest.UsageError(f"--sign-key / EDGEAUDIT_SIGN_KEY: {exc}. {fix}") from None
    for warning in warnings:
        config.issue_config_time_warning(pytest.PytestConfigWarning(f"edgeaudit: {warning}"), stacklevel=2)


def _check_report_dir(path: Path) -> None:
    """Reports that could not be written stop the run before any control runs, not after."""
    where = "--report-dir / EDGEAUDIT_REPORT_DIR"
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise pytest.UsageError(f"{where}: {existing} is a file, not a folder. Fix: name a folder for the reports")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise pytest.UsageError(f"{where}: cannot write in {existing} ({exc.strerror or exc}). "
                                "Fix: name a folder this user can write to") from None


def _run_id(started: dt.datetime) -> str:
    """The identity every shard of one run shares, so that `edgeaudit merge` refuses shards of
    other runs: EDGEAUDIT_RUN_ID, else the CI's id of the pipeline run (GitHub Actions' run id and
    attempt, GitLab's pipeline id), which every job of a matrix sees; else the start time with a
    random part (shards started by hand then need one EDGEAUDIT_RUN_ID)."""
    if os.environ.get("EDGEAUDIT_RUN_ID") is not None:
        run_id, source = os.environ["EDGEAUDIT_RUN_ID"], "EDGEAUDIT_RUN_ID"
    elif os.environ.get("GITHUB_RUN_ID"):
        run_id = f"github-{os.environ['GITHUB_RUN_ID']}-{os.environ.get('GITHUB_RUN_ATTEMPT') or 1}"
        source = "GITHUB_RUN_ID / GITHUB_RUN_ATTEMPT"
    elif os.environ.get("CI_PIPELINE_ID"):
        run_id, source = f"gitlab-{os.environ['CI_PIPELINE_ID']}", "CI_PIPELINE_ID"
    else:
        return f"{started:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
    if not RUN_ID.fullmatch(run_id):
        raise pytest.UsageError(f"{source}: run id {run_id!r} is not 1 to 100 letters, digits or ._:- . "
                                "Fix: set EDGEAUDIT_RUN_ID to such an id, the same for every shard of the run")
    return run_id


def _parse_shard(text: str) -> tuple[int, int]:
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
        raise pytest.UsageError(f"--shard {text}: not of the form K/N with 1 <= K <= N. Fix: e.g. --shard 2/4")
    return int(index), int(count)


def _start_demo(state: RunState, shared: dict[str, Any], config: pytest.Config) -> None:
    """The controller starts the demo once; xdist workers get its config and endpoints."""
    if "demo" not in shared:
        from .demo import load_environment  # the demo is an optional extra: imported for --demo only

        state.demo = load_environment().start()
        # as TOML text: xdist hands it to the workers, and dates do not travel as Python objects
        shared["demo"] = {"config": tomlwrite.dumps(state.demo.config_data), "env": state.demo.aws_env,
                          "history": str(_demo_history(state))}
    for key, value in shared["demo"]["env"].items():
        state.saved_env.setdefault(key, os.environ.get(key))
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    state.config = parse(Path("<demo>"), tomllib.loads(shared["demo"]["config"]))


def _demo_history(state: RunState) -> Path:
    """The demo site's past scheduled runs, written where this run keeps its history (a real
    site's CI keeps reports/history.jsonl between runs; the demo environment brings its own)."""
    from .demo.history import write_history

    path = (state.demo.workdir if state.no_report else state.report_dir) / "history.jsonl"
    write_history(path, [site.spec.name for site in state.demo.sites])
    return path


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: hand the run's start time and the demo's endpoints to each worker."""
    shared = node.config.stash.get("edgeaudit_shared", None)  # type: ignore[call-overload]
    if shared:
        node.workerinput["edgeaudit"] = shared


def pytest_unconfigure(config: pytest.Config) -> None:
    _guard(config, False)
    done_with_suites()
    state = config.stash.get(STATE, None)
    if state is None or not state.active:
        return
    SHARED_BROWSER.close()  # the lab's Chromium, if a control started it
    if state.demo is not None:
        state.demo.stop()
    for key, value in state.saved_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if state.interrupts is not None:
        state.interrupts.uninstall()


# --- collection -----------------------------------------------------------------------------------

def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every control runs once per target: test_x[www]."""
    state = _state(metafunc.config)
    if not state.active or state.config is None or metafunc.definition.get_closest_marker("control") is None:
        return
    if "target" not in metafunc.fixturenames:
        metafunc.fixturenames.append("target")
    targets = list(state.config.targets)
    metafunc.parametrize("target", targets, ids=[t.name for t in targets])


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under suites/ is a control with a well-formed, unique id, a severity and a title."""
    state = _state(config)
    if not state.active:
        return
    refused = guard.violations[config.stash.get(VIOLATIONS_AT_INSTALL, len(guard.violations)):]
    if refused:  # a conftest or a suite module wrote at import: no control to charge it to
        raise pytest.UsageError(f"edgeaudit: read-only guard: {refused[0]}, while conftest files and suites were "
                                "imported. Fix: make no AWS writes at import time")
    problems: list[str] = []
    owners: dict[str, str] = {}
    for item in items:
        spec = ControlSpec.of(item)
        where = f"{item.path}:{item.location[1] + 1} {item.originalname if hasattr(item, 'originalname') else item.name}"
        if spec is None:
            if state.suites_dir in Path(item.path).parents:
                problems.append(f'{where}: not a control. Fix: add @pytest.mark.control("EA-XXX-NN", severity="P3")')
            continue
        if not ID_PATTERN.match(spec.id):
            problems.append(f"{where}: control id {spec.id!r} is malformed. Fix: use the form EA-XXX-NN")
        if spec.severity not in SEVERITIES:
            problems.append(f"{where}: severity {spec.severity!r} of {spec.id}. Fix: severity= one of {', '.join(SEVERITIES)}")
        if not spec.title:
            problems.append(f"{where}: {spec.id} has no docstring. Fix: its first line is the control's title")
        owner = owners.setdefault(spec.id, where)
        if owner != where:
            problems.append(f"{where}: duplicate control id {spec.id} (also {owner}). Fix: ids are unique")
    if problems:
        raise pytest.UsageError("edgeaudit: invalid controls:\n  " + "\n  ".join(dict.fromkeys(problems)))
    if state.config is not None and not state.config.targets:  # a shard that drew no target: nothing to check
        controls = [item for item in items if item.get_closest_marker("control")]
        config.hook.pytest_deselected(items=controls)
        items[:] = [item for item in items if not item.get_closest_marker("control")]


def pytest_collection_finish(session: pytest.Session) -> None:
    state = _state(session.config)
    if state.active:
        state.expected = {item.nodeid for item in session.items if item.get_closest_marker("control")}
        state.selected = {spec.id for spec in map(ControlSpec.of, session.items) if spec is not None}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under `-n N` (xdist's default `--dist load`) a target's controls share one worker, and
    so its read cache and its crawl; an explicit other `--dist` is left to xdist."""
    state = _state(config)
    if not state.active or state.config is None or config.getvalue("dist") != "load":
        return None
    from .scheduling import TargetScheduling  # xdist is optional: imported only under it

    return TargetScheduling(config, log, (t.name for t in state.config.targets))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    state = _state(node.config)
    if state.active:
        state.expected = set(ids)


# --- fixtures -------------------------------------------------------------------------------------

@pytest.fixture
def target(request: pytest.FixtureRequest) -> Target:
    """The site under check; controls in suites/ are parametrized with every configured target."""
    raise pytest.UsageError("the `target` fixture is for controls: mark the test with "
                            "@pytest.mark.control and run it from suites/ with a config or --demo")


@pytest.fixture
def edgeaudit_config(request: pytest.FixtureRequest) -> Config:
    config = _state(request.config).config
    assert config is not None, "edgeaudit is not active in this run"
    return config


@pytest.fixture
def thresholds(edgeaudit_config: Config) -> Thresholds:
    """The catalog's thresholds with the config's overrides."""
    return edgeaudit_config.thresholds


@pytest.fixture
def aws(request: pytest.FixtureRequest, target: Target, thresholds: Thresholds) -> Aws:
    """Cached, read-only AWS clients for the target: aws.s3, aws.cloudfront, aws.client(name, region).
    The target's first control also starts the reads the selected controls will make, side by side."""
    state = _state(request.config)
    client = Aws(state.registry, target)
    if target.name not in state.warmed:
        state.warmed.add(target.name)
        prefetch.warm(client, state.selected, thresholds.http_concurrency)
    return client


@pytest.fixture
def site(request: pytest.FixtureRequest, target: Target) -> Site:
    """The live site over HTTP(S), shared by every control of the target."""
    return _state(request.config).site(target)


@pytest.fixture
def crawl(site: Site, thresholds: Thresholds, evidence: Evidence) -> Callable[[], Crawl]:
    """The target's crawl, made once per run and shared: a control calls `crawl()` where it reads
    it, so that what it asks before (and a skip) comes first, as in its own body."""
    return lambda: checked_crawl(site, evidence, thresholds)


@pytest.fixture
def selected_controls(request: pytest.FixtureRequest) -> list[str]:
    """The ids of the controls this run collected, sorted (EA-OPS-01 tries the reads they make)."""
    return sorted({spec.id for item in request.session.items if (spec := ControlSpec.of(item))})


@pytest.fixture
def tls_probe(request: pytest.FixtureRequest, target: Target) -> TlsProbe:
    """The target's TLS endpoint: the served certificate."""
    return _state(request.config).probe(target)


@pytest.fixture
def vitals(request: pytest.FixtureRequest, target: Target, thresholds: Thresholds) -> Any:
    """The target's Core Web Vitals (lab in headless Chromium, field from CrUX when configured),
    measured on first use and shared by every EA-PERF control of the run."""
    from .vitals import measured

    return measured(request.config, target, thresholds)


@pytest.fixture
def report_dir(request: pytest.FixtureRequest) -> Path:
    """Where this run writes its reports and reads reports/history.jsonl (EA-OPS-02, EA-OPS-03)."""
    return _state(request.config).report_dir


@pytest.fixture
def run_history(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    """The earlier runs in reports/history.jsonl against the same kind of environment (a demo
    run's lines never count for a site, nor a site's for the demo), oldest first (EA-OPS-02)."""
    demo = request.config.stash.get("edgeaudit_shared", {}).get("demo")  # type: ignore[call-overload]
    path = Path(demo["history"]) if demo else _state(request.config).report_dir / "history.jsonl"
    return same_environment(read_history(path), demo=bool(demo))


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


# --- running --------------------------------------------------------------------------------------

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    state = _state(item.config)
    if state.active:
        item.stash[CALLS_AT_START] = state.registry.calls.snapshot()
        item.stash[VIOLATIONS_AT_START] = len(guard.violations)


def _result_for(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport,
                state: RunState, spec: ControlSpec) -> dict[str, Any] | None:
    collected = item.stash.get(EVIDENCE, None) or Evidence()
    target: Target | None = getattr(item, "callspec", None) and item.callspec.params.get("target")
    new_violations = guard.violations[item.stash.get(VIOLATIONS_AT_START, len(guard.violations)):]
    outcome, message = "", ""
    if new_violations:
        outcome, message = "error", new_violations[0]
        collected.values["read_only_violation"] = new_violations[0]
        item.session.shouldfail = f"read-only guard: {new_violations[0]}"
    elif report.skipped:
        outcome, message = "skipped", skip_reason(report)
    elif report.failed:
        exc = call.excinfo.value if call.excinfo else None
        if report.when == "call" and isinstance(exc, AssertionError):
            outcome, message = "failed", failure_message(exc)
        else:
            prefix = "" if report.when == "call" else f"{report.when}: "
            outcome, message = "error", prefix + (error_message(exc) if exc else str(report.longrepr))
    elif report.when == "call":
        outcome = "warned" if collected.warnings else "passed"
        message = "; ".join(collected.warnings)
    if not outcome:
        return None
    duration = item.stash.get(RESULT, {}).get("duration_s", 0.0) + report.duration
    result = build_result(spec, nodeid=item.nodeid, target=target.name if target else "",
                          resource=collected.resource or (target.url if target else ""), outcome=outcome,
                          message=message, evidence=collected.values, duration_s=duration,
                          margins=collected.margins)
    return apply_waiver(result, state.config.waivers if state.config else (), dt.date.today())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    state = _state(item.config)
    if state.active:
        _record_result(item, call, report, state)
        _redact_report(item.config, report)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """A collection error is redacted too: JUnit XML and the terminal show its text."""
    outcome = yield
    report: pytest.CollectReport = outcome.get_result()
    if report.failed and _state(collector.config).active:
        _redact_report(collector.config, report)


def _redact_report(config: pytest.Config, report: pytest.TestReport | pytest.CollectReport) -> None:
    """The failure text, captured output and properties of a test, redacted before JUnit XML,
    the terminal or xdist see them (through pytest's own report serialization)."""
    data = config.hook.pytest_report_to_serializable(config=config, report=report)
    clean = config.hook.pytest_report_from_serializable(config=config, data=redact(data))
    report.longrepr, report.sections = clean.longrepr, clean.sections
    if isinstance(report, pytest.TestReport):
        report.user_properties = [tuple(p) for p in clean.user_properties]


def _record_result(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport,
                   state: RunState) -> None:
    """A control's report becomes its result (outcome, message, evidence, waiver)."""
    spec = ControlSpec.of(item)
    if spec is None:
        return
    if report.when == "teardown":
        delta = state.registry.calls.snapshot() - item.stash.get(CALLS_AT_START, Counter())
        report.edgeaudit_calls = dict(delta)  # type: ignore[attr-defined]
        if not report.failed or item.stash.get(RESULT, {}).get("outcome") == "error":
            return
    elif report.when == "setup" and report.passed:
        return
    result = _result_for(item, call, report, state, spec)
    if result is None:
        return
    item.stash[RESULT] = result
    report.edgeaudit_result = result  # type: ignore[attr-defined]
    # JUnit XML takes a test's properties from its last report: keep them on the item too
    properties = {"control": spec.id, "severity": spec.severity, "outcome": result["outcome"],
                  "target": result["target"]}
    for holder in (item.user_properties, report.user_properties):
        holder[:] = [(k, v) for k, v in holder if k not in properties] + list(properties.items())
    if result["outcome"] == "waived":
        report.outcome, report.longrepr = "passed", None
    elif result["outcome"] == "error" and call.excinfo is not None and isinstance(call.excinfo.value, NotEvaluated):
        report.longrepr = f"not evaluated: {result['message']}"  # the cause, not a traceback


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    result = getattr(report, "edgeaudit_result", None)
    if not result:
        return None
    if result["outcome"] == "warned":
        return "warned", "W", ("WARNED", {"yellow": True})
    if result["outcome"] == "waived":
        return "waived", "w", ("WAIVED", {"yellow": True})
    if result["outcome"] == "error" and report.when == "call":
        return "error", "E", ("ERROR", {"red": True})
    return None


class _Collector:
    """Gathers results on the controller; a plugin object so that it can see its config."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        result = getattr(report, "edgeaudit_result", None)
        if result:
            self.state.results[report.nodeid] = result
        self.state.calls.update(getattr(report, "edgeaudit_calls", None) or {})
        if report.failed and not result and report.nodeid not in self.state.results:
            self.state.other_failures += 1


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    state = _state(session.config)
    if state.active and not state.worker:
        session.config.pluginmanager.register(_Collector(state), "edgeaudit-collector")
        state.aws_account = _aws_account(state)
        _redact_terminal(session.config)


# --- finishing ------------------------------------------------------------------------------------

def _aws_account(state: RunState) -> str | None:
    """The account of the credentials the run starts with (the first target's, before any role
    it assumes): one STS call, counted, made when the session starts so that no call stands
    between the end of the run and its report. The answer is shared with the controls through
    the read cache; a failure trips no breaker of theirs (they meet and report it themselves)."""
    if state.config is None or not state.config.targets or state.catalog:
        return None
    asker = AwsRegistry()
    asker.cache, asker.calls = state.registry.cache, state.registry.calls
    before = state.registry.calls.snapshot()
    try:
        return Aws(asker, replace(state.config.targets[0], role_arn=None, external_id=None)).account_id
    except Exception:  # an unknown account is shown as such; the controls carry the errors
        return None
    finally:
        state.calls.update(state.registry.calls.snapshot() - before)


def _responses_file(state: RunState, worker: str) -> Path:
    return state.report_dir / f".aws-responses-{state.started.strftime('%Y%m%dT%H%M%SZ')}-{worker}.json"


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The report, written whatever interrupts arrive meanwhile (they are held until it is)."""
    with Deferred(reraise=False):
        _finish(session, exitstatus)


def _finish(session: pytest.Session, exitstatus: int) -> None:
    state = _state(session.config)
    if state.worker and state.bundle and not state.no_report:
        # the controller bundles what every worker read
        workerid = session.config.workerinput["workerid"]  # type: ignore[attr-defined]
        write_atomic(_responses_file(state, workerid), json.dumps(redact(jsonable(state.registry.cache.responses()))))
    if not state.active or state.worker or state.catalog or state.config is None:
        return
    results = sorted(state.results.values(), key=lambda r: (r["control"], r["target"], r["nodeid"]))
    empty_shard = state.shard != (1, 1) and not state.config.targets  # reported all the same: merge wants every shard
    if not results and not state.expected and not empty_shard:
        return
    if empty_shard and exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        exitstatus = session.exitstatus = pytest.ExitCode.OK
    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED or bool(session.shouldfail or session.shouldstop)
    complete = not interrupted and state.expected <= set(state.results)
    violated = any("read_only_violation" in r["evidence"] for r in results)
    if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) and not state.other_failures:
        failing = violated or any(gates(r, state.fail_on) for r in results)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED if failing else pytest.ExitCode.OK
    summary = summarize(results)
    run = {
        "started": iso(state.started), "finished": iso(utc_now()),
        "selection": session.config.option.markexpr or "all", "demo": state.demo is not None or bool(
            session.config.stash.get("edgeaudit_shared", {}).get("demo")),  # type: ignore[call-overload]
        "tool_version": __version__, "targets": [t.name for t in state.config.targets],
        "aws_account": state.aws_account, "api_calls": 0, "api_calls_by_operation": {},
        "run_id": state.run_id, "shard": {"index": state.shard[0], "count": state.shard[1]},
        "fail_on": state.fail_on, "exit_code": int(session.exitstatus),
    }
    run["api_calls"] = sum(state.calls.values())
    run["api_calls_by_operation"] = dict(sorted(state.calls.items()))
    today, warn_days = dt.date.today(), state.config.thresholds.waiver_warn_days
    waivers = [{**w.as_dict(), "state": expiry_state(w.expires, today, warn_days)} for w in state.config.waivers]
    attestations = [{**a.as_dict(), "state": attestation_state(a, today, warn_days)}
                    for a in state.config.attestations]
    state.report = build_report(run=run, summary=summary, results=results, complete=complete,
                                waivers=waivers, attestations=attestations)
    if state.no_report or state.stem is None:
        return
    _write_reports(state, state.report, state.stem)


def _write_reports(state: RunState, report: dict[str, Any], stem: Path) -> None:
    """JSON, then the history line, then the HTML that reads both (and the previous report)."""
    previous = previous_report(state.report_dir, selection_name(report["run"]["selection"]), stem)
    mark_failing_since(report, previous[1] if previous else None)
    write_json(stem.with_suffix(".json"), report)
    run = report["run"]
    history_path = state.report_dir / "history.jsonl"
    append_history(history_path, {
        "started": run["started"], "finished": run["finished"], "selection": run["selection"],
        "complete": report["complete"], "demo": run["demo"], "targets": run["targets"],
        "cadences": covered_cadences("" if run["selection"] == "all" else run["selection"]),
        "summary": report["summary"], "report": stem.with_suffix(".json").name, "measures": measures(report),
    })
    history = read_history(history_path)
    page = render(report, trend=compare(report, previous, history),
                  ledger=ledger(same_environment(history, demo=run["demo"]), utc_now(),
                                dt.timedelta(hours=state.config.thresholds.cadence_grace_h)), name=stem.name)
    write_atomic(stem.with_suffix(".html"), page)
    if state.bundle:
        _write_bundle(state, stem)


def _write_bundle(state: RunState, stem: Path) -> None:
    """The reports, the effective config, the AWS answers the run used, and the versions."""
    responses = state.registry.cache.responses()
    for part in state.report_dir.glob(_responses_file(state, "*").name):
        responses.update(json.loads(part.read_text(encoding="utf-8")))
        part.unlink()
    members = {
        stem.with_suffix(".json").name: stem.with_suffix(".json").read_bytes(),
        stem.with_suffix(".html").name: stem.with_suffix(".html").read_bytes(),
        "config.json": _json_bytes(state.config.effective() if state.config else {}),
        "aws-responses.json": _json_bytes(responses),
        "versions.json": _json_bytes(versions()),
    }
    write_bundle(stem.with_suffix(".bundle.zip"), members, state.sign_key)


def _json_bytes(value: Any) -> bytes:
    return redact_text(json.dumps(redact(jsonable(value)), indent=2, sort_keys=True)).encode() + b"\n"


def versions() -> dict[str, Any]:
    """The tool's and its dependencies' versions, for the evidence bundle."""
    packages = ("edgeaudit", "pytest", "pytest-xdist", "boto3", "botocore", "requests", "cryptography", "moto")
    found = {}
    for name in packages:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return {"python": platform.python_version(), "platform": platform.platform(), "packages": found}


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = _state(config)
    if not state.active or state.worker or state.report is None:
        return
    summary, write = state.report["summary"], terminalreporter.write_line
    terminalreporter.section("edgeaudit")
    failing = summary["failed_by_severity"]
    write("results: " + ", ".join(f"{summary[k]} {k}" for k in
                                  ("passed", "warned", "failed", "error", "skipped", "waived")))
    write("failed or error by severity: " + ", ".join(f"{level} {failing[level]}" for level in SEVERITY_RANK)
          + f" (exit code gates on {state.fail_on} and above)")
    if not state.report["complete"]:
        write("the run did not complete: the report is marked complete: false", red=True)
    if state.stem is not None:
        write(f"report: {state.stem.with_suffix('.html')}")
        write(f"json:   {state.stem.with_suffix('.json')}")
        if config.option.xmlpath:
            write(f"junit:  {config.option.xmlpath}")
        if state.bundle:
            write(f"bundle: {state.stem.with_suffix('.bundle.zip')}{' (signed)' if state.sign_key else ''}")
