"""Collecting the controls: every control runs once per target, every test under suites/ must
be a well-formed control, and under xdist a target's controls share one worker."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from edgeaudit.aws import preflight
from edgeaudit.reporting.results import ControlSpec, item_target
from edgeaudit.rules.catalog import ID_PATTERN, SEVERITIES, reads_of, reserved_prefix, unreadable
from edgeaudit.rules.frameworks import maps_to
from edgeaudit.run.early import refused_at_import
from edgeaudit.run.options import runs_no_control
from edgeaudit.run.scope import hand_over, marks_select, record, take_over

if TYPE_CHECKING:
    from edgeaudit.run.run import Run


class Collection:
    """The collection hooks of an active run."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Every control runs once per target: test_x[www]. A control that -m leaves out is
        collected for the first target only, and pytest deselects that one item as it would all:
        a fleet's collection holds the selected controls' items, not the whole catalog's
        (a pytest item costs some kilobytes; 96 controls over 1,000 sites are 96,000 items)."""
        if metafunc.definition.get_closest_marker("control") is None:
            return
        if "target" not in metafunc.fixturenames:
            metafunc.fixturenames.append("target")
        targets = list(self.run.config.targets)
        if not marks_select(metafunc.config, metafunc.definition):
            targets = targets[:1]
        metafunc.parametrize("target", targets, ids=[t.name for t in targets])

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        """Every test under suites/ is a control with a well-formed, unique id, a severity and a title;
        with --framework, the controls mapped to none of those frameworks are deselected."""
        refused = refused_at_import(config)
        if refused:  # a conftest or a suite module wrote at import: no control to charge it to
            raise pytest.UsageError(f"edgeaudit: read-only guard: {refused[0]}, while conftest files and suites "
                                    "were imported. Fix: make no AWS writes at import time")
        problems = control_problems(items, self.run.suites_dir)
        if problems:
            raise pytest.UsageError("edgeaudit: invalid controls:\n  " + "\n  ".join(dict.fromkeys(problems)))
        if not self.run.config.targets:  # a shard that drew no target: nothing to check
            controls = [item for item in items if item.get_closest_marker("control")]
            config.hook.pytest_deselected(items=controls)
            items[:] = [item for item in items if not item.get_closest_marker("control")]
        if self.run.frameworks:  # --framework: the other controls are deselected, as -m deselects
            others = [item for item in items if (spec := ControlSpec.of(item)) is not None
                      and not maps_to(spec.frameworks, self.run.frameworks)]
            if others:
                config.hook.pytest_deselected(items=others)
                dropped = set(map(id, others))
                items[:] = [item for item in items if id(item) not in dropped]

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.run.expected = {item.nodeid for item in session.items if item.get_closest_marker("control")}
        self.run.selected = {spec.id for spec in map(ControlSpec.of, session.items) if spec is not None}
        if not self.run.worker and not runs_no_control(session.config):
            refuse_no_credentials(self.run)
        if self.run.worker:  # the controller collects nothing: it learns the scope from the workers
            hand_over(self.run, session.config.workeroutput)  # type: ignore[attr-defined]

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        """The report states why each control not selected was left out (-m, -k, --framework, ...)."""
        record(self.run, items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        take_over(self.run, getattr(node, "workeroutput", None) or {})

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """Under `-n N` (xdist's default `--dist load`) a target's controls share one worker, and
        so its read cache and its crawl; an explicit other `--dist` is left to xdist."""
        if config.getvalue("dist") != "load":
            return None
        from edgeaudit.rules.scheduling import TargetScheduling  # xdist is optional: imported only under it

        return TargetScheduling(config, log, (t.name for t in self.run.config.targets))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.run.expected = set(ids)


class TargetMajor:
    """The controls run target by target, in the config's order of targets and pytest's order
    within one, so that a target's answers can be forgotten after its last control (release.py)
    instead of living until the report is written. Last of the reordering hooks, so that it holds
    whatever order they chose within a target."""

    def __init__(self, run: Run) -> None:
        self.run = run

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        rank = {target.name: i for i, target in enumerate(self.run.config.targets)}
        slots = [i for i, item in enumerate(items) if _target_name(item) in rank]  # other tests keep their place
        ordered = sorted((items[i] for i in slots), key=lambda item: rank[_target_name(item)])  # stable
        for slot, item in zip(slots, ordered):
            items[slot] = item
        share_callspecs(items)


def share_callspecs(items: list[pytest.Item]) -> None:
    """Equal parametrizations share one `callspec`: pytest makes one per test (a few dicts and
    lists each), while a target's controls all hold the same one (`target=www`). Read-only once
    collected, so a fleet's tens of thousands of items can hold one per target."""
    shared: dict[tuple[Any, ...], Any] = {}
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None:
            continue
        key = (callspec.id, *map(id, callspec.params.values()))
        first = shared.setdefault(key, callspec)
        if first is not callspec and first == callspec:
            item.callspec = first  # type: ignore[attr-defined]


def _target_name(item: pytest.Item) -> str | None:
    return getattr(item_target(item), "name", None)


def control_problems(items: list[pytest.Item], suites_dir: Path) -> list[str]:
    """What makes the collected tests not a valid set of controls, one line each with its fix."""
    problems: list[str] = []
    owners: dict[str, str] = {}
    for item in items:
        spec = ControlSpec.of(item)
        where = f"{item.path}:{item.location[1] + 1} {item.originalname if hasattr(item, 'originalname') else item.name}"
        if spec is None:
            if suites_dir in Path(item.path).parents:
                problems.append(f'{where}: not a control. Fix: add @pytest.mark.control("EA-XXX-NN", severity="P3")')
            continue
        if not ID_PATTERN.match(spec.id):
            problems.append(f"{where}: control id {spec.id!r} is malformed. Fix: use the form PREFIX-XXX-NN "
                            "(your own prefix of 2 to 10 capitals and digits, e.g. ACME-WEB-01)")
        elif why := reserved_prefix(spec.id, Path(item.path)):
            problems.append(f"{where}: {why}")
        if spec.severity not in SEVERITIES:
            problems.append(f"{where}: severity {spec.severity!r} of {spec.id}. Fix: severity= one of {', '.join(SEVERITIES)}")
        if not spec.title:
            problems.append(f"{where}: {spec.id} has no docstring. Fix: its first line is the control's title")
        if suites_dir in Path(item.path).parents and (why := unreadable(
                spec.id, spec.severity, item.get_closest_marker("control").kwargs.get("reads"), suites_dir)):
            problems.append(f"{where}: {why}")
        owner = owners.setdefault(spec.id, where)
        if owner != where:
            problems.append(f"{where}: duplicate control id {spec.id} (also {owner}). Fix: ids are unique")
    return problems


def refuse_no_credentials(run: Run) -> None:
    """No AWS credentials at all is one usage error before any control runs, not an error in
    each control (a selection that reads nothing from AWS, and the demo, need none)."""
    if run.demo is not None or run.shared.get("demo") or not run.config.targets or not reads_of(run.selected):
        return
    if problem := preflight.credentials_problem(run.config.targets):
        raise pytest.UsageError(f"edgeaudit: {problem}, so no control that reads AWS can be evaluated. Fix: "
                                "set AWS_PROFILE (or a target's `profile`), or AWS_ACCESS_KEY_ID and "
                                "AWS_SECRET_ACCESS_KEY, or run where a role provides credentials "
                                "(pytest --demo needs none)")
