"""The edgeaudit pytest plugin (entry point `pytest11`).

It is active only for runs that audit: `--demo`, an argument reaching a folder of controls (the
built-in `edgeaudit.suites`, or the user's `suites/`), or no path given and a config file there;
an active run collects the built-in controls besides the user's own (edgeaudit_builtin_controls);
every other pytest run in the same environment behaves as if it were absent, apart from the
registered markers and options. When active, pytest_configure builds the run object
(edgeaudit.run.run: the config or the demo, the results, the end-of-run reports) and registers it
with the hooks that need it: collection (a control per target, validation), outcomes (reports
to results, redaction) and fixtures. None of them then needs to ask whether the run is active.
"""

from __future__ import annotations

import pytest

from edgeaudit.rules.catalog import done_with_suites, use_suites
from edgeaudit.run import fixtures, html_view
from edgeaudit.run.collection import Collection, TargetMajor
from edgeaudit.run.early import find_rootdir_again, guard_before_conftests, guard_run
from edgeaudit.run.junit import JunitNames
from edgeaudit.run.options import add_builtin_controls, add_options, register_markers, suites_dirs
from edgeaudit.run.outcomes import Collector, Outcomes
from edgeaudit.run.release import Release
from edgeaudit.run.run import RUN, Run


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    find_rootdir_again(early_config, args)
    guard_before_conftests(early_config)


@pytest.hookimpl(tryfirst=True)  # before junitxml reads its path
def pytest_configure(config: pytest.Config) -> None:
    register_markers(config)
    use_suites(*suites_dirs(config))  # the controls they declare: the ids waivers and attestations may name
    run = Run.start(config)
    if run is None:
        guard_run(config, False)  # the early guess was wrong: stay out of the way
        return
    add_builtin_controls(config)  # besides the user's paths (controller and xdist workers alike)
    plugins = config.pluginmanager
    plugins.register(run, "edgeaudit-run")
    plugins.register(Collection(run), "edgeaudit-collection")
    plugins.register(TargetMajor(run), "edgeaudit-target-major")
    plugins.register(Release(run), "edgeaudit-release")
    plugins.register(Outcomes(run), "edgeaudit-outcomes")
    plugins.register(fixtures, "edgeaudit-fixtures")
    if not run.worker:
        plugins.register(Collector(run), "edgeaudit-collector")
        plugins.register(JunitNames(config), "edgeaudit-junit")  # control ids in JUnit XML names
        html_view.register(config, run)  # only with pytest-html's --html


def pytest_unconfigure(config: pytest.Config) -> None:
    guard_run(config, False)
    done_with_suites()
    run = config.stash.get(RUN, None)
    if run is not None:
        run.close()
