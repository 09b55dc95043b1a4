"""The demo site's past runs, as its CI would have kept them in its history (a bucket of the
demo account, `[report] history` of the demo's config).

The demo environment lives for one run, but the site it plays has run on the procedures'
schedule for months: each cadence ran complete on each of its scheduled days (daily at 06:00
UTC, the others after it). EA-OPS-02 and the report's cadence ledger read these lines like any
site's; they are marked `demo`, so they never count for a real site sharing the folder. With a
signing key configured they are signed with it, as the site's CI would have signed them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from edgeaudit.reporting.history_lines import read, sign, signer
from edgeaudit.reporting.ledger import covered_cadences
from edgeaudit.reporting.store import HistoryStore
from edgeaudit.rules.schedule import window_opening

# longer than EA-OPS-02 looks back: the last two quarters' first weeks, and the last first week
# of January that has closed (372 days back on 7 January, its grace included)
DAYS_KEPT = 380
# the selection a site's CI runs for each cadence, and when in the day (UTC) it starts
SCHEDULED_RUNS = (("daily", 6), ("weekly", 7), ("monthly", 8), ("quarterly", 9), ("dr", 10), ("annually", 11))
NOTE = "a scheduled run of the demo site, as its CI keeps them (provided by the demo environment)"
# what the weekly runs measured of each critical page in the lab (EA-PERF-08's baseline)
WEEKLY_LAB = {"lcp_s": 2.4, "ttfb_ms": 600.0}


def past_runs(now: dt.datetime, targets: list[str], days: int = DAYS_KEPT,
              paths: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """A history line for every scheduled run that started in the `days` days before `now`; the
    weekly ones with the lab measurements of each target's critical `paths`."""
    weekly = {f"EA-PERF-08|{target}|{metric} {path}": value for target in targets
              for path in (paths or {}).get(target, []) for metric, value in WEEKLY_LAB.items()}
    lines = []
    for back in range(days, -1, -1):
        day = now.date() - dt.timedelta(days=back)
        for selection, hour in SCHEDULED_RUNS:
            started = dt.datetime.combine(day, dt.time(hour), tzinfo=dt.timezone.utc)
            if not window_opening(selection, day) or started > now:
                continue
            lines.append({
                "started": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "finished": (started + dt.timedelta(minutes=12)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "selection": selection, "complete": True, "demo": True, "targets": targets,
                "cadences": covered_cadences(selection), "note": NOTE,
                **({"measures": weekly} if selection == "weekly" and weekly else {}),
                "coverage": {target: covered_cadences(selection) for target in targets},
            })
    return lines


def write_history(store: HistoryStore, targets: list[str], now: dt.datetime | None = None,
                  paths: dict[str, list[str]] | None = None, sign_key: Path | None = None) -> int:
    """Append the past runs `store` does not hold yet as lines that count (a demo run after
    another adds only the days between), in one append; returns how many lines were added."""
    now = now or dt.datetime.now(dt.timezone.utc)
    key = signer(sign_key)
    known = {(e["started"], e.get("selection")) for e in read(store, now, key).entries if e.get("demo")}
    missing = [line for line in past_runs(now, targets, paths=paths)
               if (line["started"], line["selection"]) not in known]
    store.append([sign(line, key) for line in missing] if key else missing)
    return len(missing)
