"""The scope of a run: which controls of the catalog it selected and, for every other one, why
not (-m, -k, --framework, --shard, the paths given, the built-in controls switched off); and
which targets of the config it checked. A report states it, so that an auditor reads a daily
run as a daily run and not as a fleet's whole compliance.

A control is selected when at least one of its items ran for some target. The reasons of the
others are read where pytest deselects (pytest_deselected) and, under xdist, handed by the
workers (which collect) to the controller (which does not)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from edgeaudit.reporting.results import ControlSpec
from edgeaudit.rules.catalog import builtin_folder, controls, suites_folders
from edgeaudit.rules.frameworks import maps_to
from edgeaudit.rules.shards import SHARD_FLAG, shard_of
from edgeaudit.run.options import setting

if TYPE_CHECKING:
    from edgeaudit.run.run import Run

def target_reasons(configured: Iterable[str], checked: Iterable[str], patterns: Iterable[str],
                   shard: tuple[int, int]) -> dict[str, str]:
    """Why each configured target the run does not check is left out (--target, else --shard)."""
    checked, patterns = set(checked), list(patterns)
    reasons = {}
    for name in configured:
        if name in checked:
            continue
        if patterns and not any(fnmatch.fnmatchcase(name, p) for p in patterns):
            reasons[name] = f"not selected by --target {' '.join(patterns)}"
        elif shard != (1, 1):
            reasons[name] = (f"not selected by {SHARD_FLAG} {shard[0]}/{shard[1]}: "
                             f"checked by shard {shard_of(name, shard[1])}/{shard[1]}")
    return reasons


def _unmatched(item: pytest.Item, config: pytest.Config) -> list[str]:
    """Which of -k and -m leave this item out, as pytest's mark plugin evaluates them."""
    given = [(flag, expr) for flag, expr in (("-k", config.option.keyword.strip()), ("-m", config.option.markexpr))
             if expr]
    try:
        from _pytest.mark import KeywordMatcher, MarkMatcher  # pytest's own matchers: the same verdict
        from _pytest.mark.expression import Expression
    except ImportError:  # another pytest: name what was given
        return [f"{flag} {expr}" for flag, expr in given]
    matchers = {"-k": lambda: KeywordMatcher.from_item(item), "-m": lambda: MarkMatcher.from_markers(item.iter_markers())}
    return [f"{flag} {expr}" for flag, expr in given if not Expression.compile(expr).evaluate(matchers[flag]())]


def marks_select(config: pytest.Config, node: pytest.Item) -> bool:
    """Whether -m keeps this node (True without -m, or when pytest's matchers are not found)."""
    if not config.option.markexpr:
        return True
    try:
        from _pytest.mark import MarkMatcher
        from _pytest.mark.expression import Expression
        expression = Expression.compile(config.option.markexpr)
    except (ImportError, SyntaxError):  # another pytest, or an -m that pytest itself will refuse
        return True
    return expression.evaluate(MarkMatcher.from_markers(node.iter_markers()))


def selected_by(config: pytest.Config, node: pytest.Item, marker: str) -> bool:
    """Whether -m keeps this node only for its `marker` (`-m deploy` for a control marked daily and
    deploy: yes; no -m, or `-m daily`: no)."""
    if not config.option.markexpr:
        return False
    try:
        from _pytest.mark import MarkMatcher
        from _pytest.mark.expression import Expression
        expression = Expression.compile(config.option.markexpr)
    except (ImportError, SyntaxError):
        return False
    marks = list(node.iter_markers())
    return (expression.evaluate(MarkMatcher.from_markers(marks))
            and not expression.evaluate(MarkMatcher.from_markers(m for m in marks if m.name != marker)))


def why(run: Run, item: pytest.Item, spec: ControlSpec) -> str:
    """Why pytest deselected this control item: every filter of the run that leaves it out."""
    if not run.config.targets:
        return f"not selected by {SHARD_FLAG} {run.shard[0]}/{run.shard[1]} (no target in this shard)"
    flags = _unmatched(item, item.config)
    if run.frameworks and not maps_to(spec.frameworks, run.frameworks):
        flags.append(f"--framework {', '.join(run.frameworks)}")
    return f"not selected by {' and '.join(flags)}" if flags else "deselected (--deselect or another plugin)"


def record(run: Run, items: list[pytest.Item]) -> None:
    """pytest_deselected: note each deselected control with why, in run.deselected."""
    for item in items:
        spec = ControlSpec.of(item)
        if spec is not None and (reason := why(run, item, spec)) not in run.deselected.setdefault(spec.id, []):
            run.deselected[spec.id].append(reason)


def hand_over(run: Run, into: dict[str, Any]) -> None:
    """An xdist worker's selection, for the controller (which collects nothing itself)."""
    into["edgeaudit_scope"] = {"collected": sorted(run.selected), "deselected": run.deselected}


def take_over(run: Run, handed: dict[str, Any]) -> None:
    """The controller adds what a worker handed over."""
    mine = handed.get("edgeaudit_scope")
    if not mine:
        return
    run.selected.update(mine["collected"])
    for control, reasons in mine["deselected"].items():
        known = run.deselected.setdefault(control, [])
        known += [reason for reason in reasons if reason not in known]


def restricted(args: Iterable[str], folders: Iterable[Path], base: Path) -> list[str]:
    """The command-line paths that name only part of the folders of controls (a module, a node id)."""
    roots = [folder.resolve() for folder in folders]
    out = []
    for arg in args:
        path = (base / arg.split("::", 1)[0]).resolve()
        if "::" in arg or any(root in path.parents for root in roots):
            out.append(arg)
    return out


def scope(*, catalog: Iterable[str], selected: Iterable[str], collected: Iterable[str],
          deselected: Mapping[str, list[str]], builtin_off: Iterable[str] = (), partial_args: Iterable[str] = (),
          targets: Iterable[str] = (), target_reasons: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The report's `scope`: selected and not-selected control ids, a reason for each of the
    latter, and the targets checked and not (with theirs)."""
    selected, collected, off, partial_args = set(selected), set(collected), set(builtin_off), list(partial_args)
    known = set(catalog) | selected | off
    reasons: dict[str, str] = {}
    for control in sorted(known - selected):
        if control in off:
            reasons[control] = "the built-in controls are switched off (edgeaudit_builtin_controls = false)"
        elif deselected.get(control):
            reasons[control] = "; ".join(deselected[control])
        elif control in collected:
            reasons[control] = "selected, but not run: the run ended before it"
        elif partial_args:
            reasons[control] = f"not collected: the command line names only {' '.join(partial_args)}"
        else:
            reasons[control] = "not collected (see the run's collection errors)"
    target_reasons = dict(target_reasons or {})
    return {"selected": sorted(selected), "not_selected": sorted(reasons), "reasons": reasons,
            "targets": {"selected": sorted(targets), "not_selected": sorted(target_reasons),
                        "reasons": target_reasons}}


def of_run(run: Run, config: pytest.Config, results: list[dict[str, Any]]) -> dict[str, Any]:
    """The scope of the run that ends, for its report."""
    builtin = builtin_folder()
    folders = suites_folders()
    off = set(controls(builtin)) - set(controls()) if builtin.resolve() not in folders else set()
    configured = [t.name for t in (run.configured or run.config).targets]
    patterns = list(setting(config, "edgeaudit_targets", "EDGEAUDIT_TARGET") or [])
    return scope(catalog=controls(), selected={r["control"] for r in results}, collected=run.selected,
                 deselected=run.deselected, builtin_off=off,
                 partial_args=restricted(config.args, folders, config.invocation_params.dir),
                 targets=[t.name for t in run.config.targets],
                 target_reasons=target_reasons(configured, [t.name for t in run.config.targets], patterns, run.shard))
