"""What happens before the run object exists: pytest's rootdir found again once our options
are known, and the read-only guard installed before any conftest or suite is imported.

The package's only uses of pytest's internals are here (determine_setup, Config._decide_args,
and the writes in _adopt_rootdir): pytest settles the rootdir and the test paths before a
plugin's options are parsed, and offers no public way to redo either."""

from __future__ import annotations

import os

import pytest
from _pytest.config.findpaths import determine_setup

from edgeaudit.aws import guard
from edgeaudit.run.options import activates, env_flag

GUARDED = pytest.StashKey[bool]()
VIOLATIONS_AT_INSTALL = pytest.StashKey[int]()


def guard_run(config: pytest.Config, on: bool) -> None:
    """Install or remove this run's read-only guard, once each."""
    if config.stash.get(GUARDED, False) != on:
        if on:
            guard.install()
            config.stash[VIOLATIONS_AT_INSTALL] = len(guard.violations)
        else:
            guard.uninstall()
        config.stash[GUARDED] = on


def refused_at_import(config: pytest.Config) -> list[str]:
    """The writes the guard refused while conftest files and suites were imported."""
    return guard.violations[config.stash.get(VIOLATIONS_AT_INSTALL, len(guard.violations)):]


def guard_before_conftests(config: pytest.Config) -> None:
    """A run that will collect the suites is guarded before any conftest is imported: a write at
    import time is refused too. pytest_configure makes the final decision."""
    known = config.known_args_namespace
    demo = getattr(known, "edgeaudit_demo", None) or config.getini("edgeaudit_demo") or _demo_env()
    paths, source = config._decide_args(args=known.file_or_dir, pyargs=known.pyargs,
                                        testpaths=config.getini("testpaths"), invocation_dir=config.invocation_params.dir,
                                        rootpath=config.rootpath, warn=False)
    if demo or activates(config, paths, explicit=source == pytest.Config.ArgsSource.ARGS):
        guard_run(config, True)


def _demo_env() -> bool:
    """EDGEAUDIT_DEMO read as every yes/no variable is (options.env_flag); a word that is neither
    guards the run here, and pytest_configure then refuses it with the fix."""
    raw = os.environ.get("EDGEAUDIT_DEMO", "")
    if not raw.strip():
        return False
    try:
        return env_flag("EDGEAUDIT_DEMO", raw)
    except pytest.UsageError:
        return True


def find_rootdir_again(early_config: pytest.Config, args: list[str]) -> None:
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
    _adopt_rootdir(early_config, rootpath, inipath, inicfg)
    known.confcutdir = str(inipath.parent if inipath else rootpath)
    args[:0] = early_config.getini("addopts")


def _adopt_rootdir(config: pytest.Config, rootpath: object, inipath: object, inicfg: object) -> None:
    """The package's only write to pytest's private attributes. pytest offers no public hook
    or setter for the rootdir and ini file: they are settled before any plugin's option is
    parsed, and the first hook a plugin gets (pytest_load_initial_conftests) comes after."""
    config._rootpath, config._inipath, config._inicfg = rootpath, inipath, inicfg  # type: ignore[assignment]
    config._inicache.clear()
    config._parser.extra_info.update(rootdir=str(rootpath), inifile=str(inipath))
