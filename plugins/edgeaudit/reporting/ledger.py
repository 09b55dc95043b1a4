"""The cadence ledger: when each cadence of the procedures last ran complete, and which windows
of the look-back period the procedures' schedule (schedule.py) has closed without one. EA-OPS-02
and the report read the same facts.

A run counts for a cadence only as far as it went: for the targets it evaluated, when it was
complete, not a lone shard, and ran every control of that cadence for the target (whatever -m,
-k, --deselect or --framework left out). `coverage` reads that from the report's results; the
run's history line keeps it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from _pytest.mark.expression import Expression

from edgeaudit.rules.catalog import CADENCES, controls
from edgeaudit.rules.schedule import SCHEDULES, covers, due_windows
from edgeaudit.rules.thresholds import DEFAULTS

LEDGER_CADENCES = ("daily", "weekly", "monthly", "quarterly", "annually", "dr")
EVALUATED = ("passed", "warned", "failed", "waived")  # outcomes that judged something (not error, not skipped)


@dataclass(frozen=True)
class LedgerRow:
    cadence: str
    last_complete: str | None
    age: str
    window: str   # the scheduled windows a run must cover, e.g. "25 windows since 2026-11-02 (every business day)"
    status: str   # within, overdue, never
    missed: tuple[str, ...] = field(default=())  # each window of the look-back period no complete run covered


def covered_cadences(markexpr: str) -> list[str]:
    """The cadences (and dr) whose controls an -m expression keeps in full: 'daily' covers daily,
    'weekly and security' covers none; no -m covers all. What a selection asks for, not what a
    run did: the history reads `coverage`."""
    if not markexpr:
        return [*CADENCES, "dr"]
    expression = Expression.compile(markexpr)
    return [c for c in (*CADENCES, "dr") if expression.evaluate(lambda name, **_: name == c)]


def run_cadences(run: dict[str, Any]) -> list[str]:
    """The cadences a report's selection asks for in full (-m): none for a selection of frameworks."""
    if run.get("frameworks"):
        return []
    try:
        return covered_cadences("" if run["selection"] == "all" else run["selection"])
    except SyntaxError:  # not a -m expression: a report written by hand or by another tool
        return []


def cadence_controls(folder: Any = None) -> dict[str, set[str]]:
    """The catalog's control ids of each cadence (and of dr)."""
    catalog = controls(folder)
    return {c: {i for i, d in catalog.items() if c in d.markers} for c in (*CADENCES, "dr")}


def evaluated(report: dict[str, Any]) -> bool:
    """Whether the run judged at least one control (all `error` or all skipped: it judged nothing)."""
    return any(r.get("outcome") in EVALUATED for r in report.get("results", []))


def coverage(report: dict[str, Any], by_cadence: dict[str, set[str]] | None = None) -> dict[str, list[str]]:
    """Target: the cadences the run covered for it in full. Nothing for a run that was incomplete,
    a lone shard, a --framework subset, or evaluated nothing; for each target, only the cadences
    every control of which has a result for that target and one of which it evaluated."""
    run = report["run"]
    if not report.get("complete") or run.get("frameworks") or (run.get("shard") or {}).get("count", 1) != 1:
        return {}
    by_cadence = cadence_controls() if by_cadence is None else by_cadence
    ran: dict[str, set[str]] = {}
    judged: dict[str, set[str]] = {}
    for r in report.get("results", []):
        ran.setdefault(r["target"], set()).add(r["control"])
        if r.get("outcome") in EVALUATED:
            judged.setdefault(r["target"], set()).add(r["control"])
    out = {}
    for target in run.get("targets", []):
        cadences = [c for c, ids in by_cadence.items()
                    if ids and ids <= ran.get(target, set()) and ids & judged.get(target, set())]
        if cadences:
            out[target] = cadences
    return out


def complete_cadences(cover: dict[str, list[str]], targets: list[str]) -> list[str]:
    """The cadences covered for every one of `targets` (none when a target was not covered)."""
    if not targets or any(t not in cover for t in targets):
        return []
    return [c for c in (*CADENCES, "dr") if all(c in cover[t] for t in targets)]


def line_cadences(entry: dict[str, Any], target: str | None = None) -> list[str]:
    """The cadences a history line vouches for: for `target`, or for its whole run. A line
    written before `coverage` was recorded counts for the targets it names."""
    if not entry.get("complete"):
        return []
    cover = entry.get("coverage")
    if isinstance(cover, dict):
        if target is None:
            return [c for c in entry.get("cadences", []) if isinstance(c, str)]
        found = cover.get(target)
        return [c for c in found if isinstance(c, str)] if isinstance(found, list) else []
    if target is not None and target not in (entry.get("targets") or []):
        return []
    cadences = entry.get("cadences")
    return [c for c in cadences if isinstance(c, str)] if isinstance(cadences, list) else []


def same_environment(history: list[dict[str, Any]], *, demo: bool) -> list[dict[str, Any]]:
    """The runs of the same kind of environment: a demo run's history never counts for a site."""
    return [e for e in history if bool(e.get("demo")) == demo]


def _parse(moment: str) -> dt.datetime:
    return dt.datetime.strptime(moment, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


def _human(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} d"


def _runs(history: list[dict[str, Any]], cadence: str, target: str | None) -> list[dt.datetime]:
    times = []
    for entry in history:
        if cadence in line_cadences(entry, target):
            try:
                times.append(_parse(str(entry["started"])))
            except (KeyError, ValueError):
                continue
    return sorted(times)


def last_complete(history: list[dict[str, Any]], cadence: str, target: str | None = None) -> dt.datetime | None:
    """When a complete run covering `cadence` (for `target`, if given) last started."""
    return max(_runs(history, cadence, target), default=None)


def ledger(history: list[dict[str, Any]], now: dt.datetime,
           grace: dt.timedelta = dt.timedelta(hours=DEFAULTS["cadence_grace_h"]),
           target: str | None = None) -> list[LedgerRow]:
    """One row per cadence: every window of its look-back period that the schedule closed more
    than `grace` ago, and those no complete run covered (one that started on or after the
    window's first day and before its end plus `grace`)."""
    rows = []
    for cadence in LEDGER_CADENCES:
        windows = due_windows(cadence, now, grace)
        window = (f"{len(windows)} window{'s' if len(windows) > 1 else ''} since {windows[-1][0].isoformat()} "
                  f"({SCHEDULES[cadence]})")
        runs = _runs(history, cadence, target)
        missed = tuple(_name(w) for w in reversed(windows) if not any(covers(cadence, t, w, grace) for t in runs))
        if not runs:
            rows.append(LedgerRow(cadence, None, "", window, "never", missed))
            continue
        ran = runs[-1]
        rows.append(LedgerRow(cadence, ran.strftime("%Y-%m-%dT%H:%M:%SZ"), _human(now - ran), window,
                              "overdue" if missed else "within", missed))
    return rows


def _name(window: tuple[dt.date, dt.date]) -> str:
    first, last = window
    return first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"
