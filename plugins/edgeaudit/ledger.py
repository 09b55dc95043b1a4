"""The cadence ledger: when each cadence of the procedures last ran complete, and whether that
is within the window the procedures require. EA-OPS-02 and the report read the same facts."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# How old the last complete run of each cadence may be (daily: a business day plus slack).
WINDOWS = {"daily": dt.timedelta(hours=26), "weekly": dt.timedelta(days=8), "monthly": dt.timedelta(days=32),
           "quarterly": dt.timedelta(days=93), "dr": dt.timedelta(days=93)}


@dataclass(frozen=True)
class LedgerRow:
    cadence: str
    last_complete: str | None
    age: str
    window: str
    status: str  # within, overdue, never


def read_history(path: Path) -> list[dict[str, Any]]:
    """The summary lines of earlier runs; a damaged line is passed over, not fatal."""
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and "started" in entry:
            entries.append(entry)
    return entries


def _parse(moment: str) -> dt.datetime:
    return dt.datetime.strptime(moment, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


def _human(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} d"


def last_complete(history: list[dict[str, Any]], cadence: str, *, demo: bool) -> dt.datetime | None:
    """When a complete run covering `cadence` last started (demo runs count only for the demo)."""
    times = [_parse(e["started"]) for e in history
             if e.get("complete") and cadence in e.get("cadences", []) and bool(e.get("demo")) == demo]
    return max(times, default=None)


def ledger(history: list[dict[str, Any]], now: dt.datetime, *, demo: bool = False) -> list[LedgerRow]:
    rows = []
    for cadence, window in WINDOWS.items():
        last = last_complete(history, cadence, demo=demo)
        if last is None:
            rows.append(LedgerRow(cadence, None, "", _human(window), "never"))
            continue
        age = now - last
        rows.append(LedgerRow(cadence, last.strftime("%Y-%m-%dT%H:%M:%SZ"), _human(age), _human(window),
                              "within" if age <= window else "overdue"))
    return rows
