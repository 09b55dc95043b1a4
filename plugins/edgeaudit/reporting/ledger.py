"""The cadence ledger: when each cadence of the procedures last ran complete, and whether that
covers the newest window the procedures' schedule (schedule.py) has closed. EA-OPS-02 and the
report read the same facts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from _pytest.mark.expression import Expression

from edgeaudit.rules.catalog import CADENCES
from edgeaudit.rules.schedule import SCHEDULES, last_due
from edgeaudit.rules.thresholds import DEFAULTS

LEDGER_CADENCES = ("daily", "weekly", "monthly", "quarterly", "dr")


@dataclass(frozen=True)
class LedgerRow:
    cadence: str
    last_complete: str | None
    age: str
    window: str   # the scheduled window a run must cover, e.g. "since 2026-11-27 (every business day)"
    status: str   # within, overdue, never


def covered_cadences(markexpr: str) -> list[str]:
    """The cadences (and dr) whose controls this selection runs in full: 'daily' covers daily,
    'weekly and security' covers none; no -m covers all. EA-OPS-02 reads these from history."""
    if not markexpr:
        return [*CADENCES, "dr"]
    expression = Expression.compile(markexpr)
    return [c for c in (*CADENCES, "dr") if expression.evaluate(lambda name, **_: name == c)]


def run_cadences(run: dict[str, Any]) -> list[str]:
    """The cadences a report's run covered in full, as its history line records them: none for a
    selection of frameworks, every one for the whole suite."""
    if run.get("frameworks"):
        return []
    try:
        return covered_cadences("" if run["selection"] == "all" else run["selection"])
    except SyntaxError:  # not a -m expression: a report written by hand or by another tool
        return []


def same_environment(history: list[dict[str, Any]], *, demo: bool) -> list[dict[str, Any]]:
    """The runs of the same kind of environment: a demo run's history never counts for a site."""
    return [e for e in history if bool(e.get("demo")) == demo]


def _parse(moment: str) -> dt.datetime:
    return dt.datetime.strptime(moment, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


def _human(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} d"


def last_complete(history: list[dict[str, Any]], cadence: str) -> dt.datetime | None:
    """When a complete run covering `cadence` last started."""
    times = [_parse(e["started"]) for e in history if e.get("complete") and cadence in e.get("cadences", [])]
    return max(times, default=None)


def ledger(history: list[dict[str, Any]], now: dt.datetime,
           grace: dt.timedelta = dt.timedelta(hours=DEFAULTS["cadence_grace_h"])) -> list[LedgerRow]:
    """One row per cadence: its newest complete run against the newest window the schedule
    closed more than `grace` ago (a run that started on or after the window's first day covers it)."""
    rows = []
    for cadence in LEDGER_CADENCES:
        first, _ = last_due(cadence, now, grace)
        window = f"since {first.isoformat()} ({SCHEDULES[cadence]})"
        ran = last_complete(history, cadence)
        if ran is None:
            rows.append(LedgerRow(cadence, None, "", window, "never"))
            continue
        covered = ran >= dt.datetime.combine(first, dt.time(), tzinfo=dt.timezone.utc)
        rows.append(LedgerRow(cadence, ran.strftime("%Y-%m-%dT%H:%M:%SZ"), _human(now - ran), window,
                              "within" if covered else "overdue"))
    return rows
