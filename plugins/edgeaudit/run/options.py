"""The run's settings: command-line options, ini options and environment variables, read in
that order, and checked before any control runs (a bad one is a usage error, exit code 4)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from edgeaudit.reporting.bundle import BundleError, check_private_key
from edgeaudit.rules.catalog import SEVERITIES, builtin_folder, known_frameworks, markers
from edgeaudit.rules.config import DEFAULT_CONFIG_NAME
from edgeaudit.rules.frameworks import UnknownFramework, resolve
from edgeaudit.rules.shards import MAX_COUNT, ShardError, auto_shard, whole_number

RUN_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")
_FLAGS = ("edgeaudit_demo", "edgeaudit_no_report", "edgeaudit_bundle")
_LISTS = ("edgeaudit_targets", "edgeaudit_frameworks")  # their environment variables are comma-separated


def add_options(parser: pytest.Parser) -> None:
    """The `edgeaudit` option group and its ini twins. Every option has an --edgeaudit- spelling,
    which no other plugin will take; the short one beside it is an alias."""
    group = parser.getgroup("edgeaudit", "edgeaudit compliance suite")
    group.addoption("--edgeaudit-config", dest="edgeaudit_config", metavar="PATH",
                    help=f"config file (default ./{DEFAULT_CONFIG_NAME}; env EDGEAUDIT_CONFIG)")
    group.addoption("--edgeaudit-demo", "--demo", dest="edgeaudit_demo", action="store_true", default=None,
                    help="run against the embedded demo environment (moto + a local HTTPS edge)")
    group.addoption("--edgeaudit-target", "--target", dest="edgeaudit_targets", action="append", metavar="NAME",
                    help="check only this target (repeatable; default all; env EDGEAUDIT_TARGET, comma-separated)")
    group.addoption("--edgeaudit-framework", "--framework", dest="edgeaudit_frameworks", action="append", metavar="ID",
                    help="run only the controls mapped to this framework, e.g. FSBP (repeatable; any case; "
                         "default all; env EDGEAUDIT_FRAMEWORK, comma-separated)")
    group.addoption("--edgeaudit-report-dir", "--report-dir", dest="edgeaudit_report_dir", metavar="DIR",
                    help="where reports are written (default reports/; env EDGEAUDIT_REPORT_DIR)")
    group.addoption("--edgeaudit-fail-on", "--fail-on", dest="edgeaudit_fail_on", choices=SEVERITIES,
                    help="lowest severity whose failures or errors make the exit code 1 (default P4: all)")
    group.addoption("--edgeaudit-no-report", "--no-report", dest="edgeaudit_no_report", action="store_true", default=None,
                    help="write no report files")
    group.addoption("--edgeaudit-shard", "--shard", dest="edgeaudit_shard", metavar="K/N",
                    help="check only shard K of N of the targets (deterministic; a CI matrix of N jobs); "
                         "auto: K and N from the engine (EDGEAUDIT_SHARD_INDEX/EDGEAUDIT_SHARD_COUNT, an "
                         "AWS Batch array job, a Kubernetes Indexed Job, GitLab parallel; env EDGEAUDIT_SHARD)")
    group.addoption("--edgeaudit-bundle", "--bundle", dest="edgeaudit_bundle", action="store_true", default=None,
                    help="also write the evidence bundle reports/<name>.bundle.zip (config: [report] bundle = true)")
    group.addoption("--edgeaudit-sign-key", "--sign-key", dest="edgeaudit_sign_key", metavar="PATH",
                    help="Ed25519 private key (PEM) that signs the bundle's manifest (env EDGEAUDIT_SIGN_KEY)")
    group.addoption("--edgeaudit-catalog", dest="edgeaudit_catalog", action="store_true", default=False,
                    help=argparse.SUPPRESS)  # `edgeaudit controls`: collect with a placeholder target
    parser.addini("edgeaudit_config", f"config file (default {DEFAULT_CONFIG_NAME})", default="")
    parser.addini("edgeaudit_demo", "run against the embedded demo environment", type="bool", default=False)
    parser.addini("edgeaudit_targets", "targets to check (default all)", type="args", default=[])
    parser.addini("edgeaudit_frameworks", "frameworks whose controls run (default all)", type="args", default=[])
    parser.addini("edgeaudit_report_dir", "where reports are written", default="reports")
    parser.addini("edgeaudit_fail_on", "lowest severity that fails the run", default="P4")
    parser.addini("edgeaudit_no_report", "write no report files", type="bool", default=False)
    parser.addini("edgeaudit_bundle", "write the evidence bundle", type="bool", default=False)
    parser.addini("edgeaudit_sign_key", "Ed25519 private key that signs the bundle", default="")
    parser.addini("edgeaudit_suites", "the folder of your own controls (every test there must be a control)",
                  default="suites")
    parser.addini("edgeaudit_builtin_controls", "run the controls that come with edgeaudit beside your own "
                  "(env EDGEAUDIT_BUILTIN_CONTROLS)", type="bool", default=True)


def setting(config: pytest.Config, name: str, env: str) -> Any:
    """Command line, then environment variable, then ini option."""
    value = config.getoption(name, None)
    if value not in (None, [], ""):
        return value
    if os.environ.get(env):
        raw = os.environ[env]
        if name in _FLAGS:
            return env_flag(env, raw)
        return [v.strip() for v in raw.split(",") if v.strip()] if name in _LISTS else raw
    return config.getini(name)


def env_flag(env: str, raw: str) -> bool:
    """A yes/no environment variable; any other word is a usage error, not a silent "no"."""
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise pytest.UsageError(f"{env}={raw!r} is not a yes or a no. Fix: set {env} to 1, true, yes or on "
                            "(or 0, false, no or off), or unset it")


def register_markers(config: pytest.Config) -> None:
    """The control, severity, cadence and category markers, registered in every run."""
    for name, description in markers().items():
        config.addinivalue_line("markers", f"{name}: {description}")


def suites_dir(config: pytest.Config) -> Path:
    """The folder of the user's own controls (edgeaudit_suites, from the rootdir)."""
    return (config.rootpath / config.getini("edgeaudit_suites")).resolve()


def builtin_suites(config: pytest.Config) -> Path | None:
    """The controls that come with the package, unless edgeaudit_builtin_controls = false."""
    raw = os.environ.get("EDGEAUDIT_BUILTIN_CONTROLS")
    wanted = env_flag("EDGEAUDIT_BUILTIN_CONTROLS", raw) if raw else config.getini("edgeaudit_builtin_controls")
    return builtin_folder() if wanted else None


def suites_dirs(config: pytest.Config) -> tuple[Path, ...]:
    """The folders the run's catalog reads: the built-in controls, then the user's own."""
    return tuple(dict.fromkeys(d for d in (builtin_suites(config), suites_dir(config)) if d is not None))


def _reaches(config: pytest.Config, suites: Path, args: list[str]) -> bool:
    """Is an argument at, inside or above this folder?"""
    base = config.invocation_params.dir
    for arg in args:
        path = (base / arg.split("::", 1)[0]).resolve()
        if path == suites or suites in path.parents or path in suites.parents:
            return True
    return False


def runs_suites(config: pytest.Config, suites: Path | tuple[Path, ...], args: list[str] | None = None) -> bool:
    """Does this run collect the suites? (An argument at, inside or above a folder of controls.)"""
    folders = (suites,) if isinstance(suites, Path) else suites
    return any(_reaches(config, folder, config.args if args is None else args) for folder in folders)


def activates(config: pytest.Config, args: list[str] | None = None, explicit: bool | None = None) -> bool:
    """Does this run audit (besides --demo)? When an argument reaches a folder of controls, or
    when pytest got no path to collect and a config file is there (named, or ./edgeaudit.toml).
    `pytest tests` elsewhere in the same environment stays a plain pytest run."""
    if runs_suites(config, suites_dirs(config), args):
        return True
    if explicit is None:
        explicit = config.args_source == pytest.Config.ArgsSource.ARGS
    return not explicit and config_path(config).is_file()


def add_builtin_controls(config: pytest.Config) -> None:
    """An audit collects the built-in controls besides the paths given, unless an argument
    already reaches into them (in the checkout, suites/ is the built-in folder)."""
    builtin = builtin_suites(config)
    if builtin is not None and builtin.is_dir() and not _reaches(config, builtin, config.args):
        config.args.append(str(builtin))


def config_path(config: pytest.Config) -> Path:
    """The config file the run reads (relative paths from where pytest was started)."""
    path = Path(str(setting(config, "edgeaudit_config", "EDGEAUDIT_CONFIG") or DEFAULT_CONFIG_NAME))
    return path if path.is_absolute() else config.invocation_params.dir / path


def runs_no_control(config: pytest.Config) -> bool:
    """Does this invocation only list (--co, --markers, --fixtures, --fixtures-per-test, --help)?"""
    option = config.option
    return any(getattr(option, name, False) for name in
               ("collectonly", "markers", "showfixtures", "show_fixtures_per_test", "help", "version"))


def fail_on(config: pytest.Config) -> str:
    value = str(setting(config, "edgeaudit_fail_on", "EDGEAUDIT_FAIL_ON")).upper()
    if value not in SEVERITIES:
        raise pytest.UsageError(f"--fail-on / edgeaudit_fail_on: {value!r} is not a severity. "
                                f"Fix: use one of {', '.join(SEVERITIES)}")
    return value


def check_sign_key(config: pytest.Config, path: Path) -> None:
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


def check_report_dir(path: Path) -> None:
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


def shared_run_id(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The run id every job of one run sees, and the variables it came from: EDGEAUDIT_RUN_ID,
    else the engine's id of the whole run (GitHub Actions' run id and attempt, GitLab's pipeline
    id, the AWS Batch array job's id: a child's AWS_BATCH_JOB_ID is `<array job id>:<index>`);
    None when there is none (a Kubernetes Job's pods see no such id: EDGEAUDIT_RUN_ID from the
    downward API)."""
    if environ.get("EDGEAUDIT_RUN_ID") is not None:
        return environ["EDGEAUDIT_RUN_ID"], "EDGEAUDIT_RUN_ID"
    if environ.get("GITHUB_RUN_ID"):
        return (f"github-{environ['GITHUB_RUN_ID']}-{environ.get('GITHUB_RUN_ATTEMPT') or 1}",
                "GITHUB_RUN_ID / GITHUB_RUN_ATTEMPT")
    if environ.get("CI_PIPELINE_ID"):
        return f"gitlab-{environ['CI_PIPELINE_ID']}", "CI_PIPELINE_ID"
    if environ.get("AWS_BATCH_JOB_ID"):
        return f"aws-batch-{environ['AWS_BATCH_JOB_ID'].split(':', 1)[0]}", "AWS_BATCH_JOB_ID"
    return None


def run_id(started: dt.datetime) -> str:
    """The identity every shard of one run shares, so that `edgeaudit merge` refuses shards of
    other runs: the shared id (above), which every job of a matrix or array sees; else the start
    time with a random part (shards started by hand then need one EDGEAUDIT_RUN_ID)."""
    shared = shared_run_id(os.environ)
    if shared is None:
        return f"{started:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
    found, source = shared
    if not RUN_ID.fullmatch(found):
        raise pytest.UsageError(f"{source}: run id {found!r} is not 1 to 100 letters, digits or ._:- . "
                                "Fix: set EDGEAUDIT_RUN_ID to such an id, the same for every shard of the run")
    return found


def frameworks(config: pytest.Config) -> tuple[str, ...]:
    """The frameworks whose controls the run selects (none: all controls), as the catalog spells them."""
    asked = list(setting(config, "edgeaudit_frameworks", "EDGEAUDIT_FRAMEWORK") or [])
    try:  # known: the ids the run's folders of controls map to
        return resolve((name for value in asked for name in str(value).split(",")), known_frameworks())
    except UnknownFramework as exc:
        raise pytest.UsageError(f"--framework / edgeaudit_frameworks / EDGEAUDIT_FRAMEWORK: {exc}") from None


def parse_shard(text: str, environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """`--shard K/N`, or `--shard auto`: K and N from the engine that started this job."""
    if text.strip().lower() == "auto":
        return _auto_shard(os.environ if environ is None else environ)
    index, _, count = (whole_number(part) for part in text.partition("/"))
    if index is None or count is None or not 1 <= index <= count <= MAX_COUNT:
        raise pytest.UsageError(f"--shard {text}: not of the form K/N with 1 <= K <= N <= {MAX_COUNT} in digits 0-9. "
                                "Fix: e.g. --shard 2/4")
    return index, count


def _auto_shard(environ: Mapping[str, str]) -> tuple[int, int]:
    """The engine's shard; shards of more than one job also need a run id they all share, or
    `edgeaudit merge` would refuse them after the whole run: refused before it instead."""
    try:
        index, count, source = auto_shard(environ)
    except ShardError as exc:
        raise pytest.UsageError(str(exc)) from None
    if count > 1 and shared_run_id(environ) is None:
        raise pytest.UsageError(
            f"--shard auto: shard {index}/{count} from {source.index}, but no run id that every shard shares "
            "(EDGEAUDIT_RUN_ID, GITHUB_RUN_ID, CI_PIPELINE_ID or AWS_BATCH_JOB_ID). Fix: set EDGEAUDIT_RUN_ID, "
            "the same in every shard; in a Kubernetes Job from the downward API: valueFrom: fieldRef: "
            "fieldPath: metadata.labels['batch.kubernetes.io/controller-uid']")
    return index, count
