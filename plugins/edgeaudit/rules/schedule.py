"""The procedures' schedule (operational-procedures.md): on which days each cadence is due.

daily = every business day (Monday to Friday), weekly = each Monday, monthly = the first Monday
of each month, quarterly and dr = the first week of each quarter, annually = the first week of
January. Days are UTC days; there is no holiday calendar. EA-OPS-02 (runs) and the manual
controls (attestations) read the same schedule.
"""

from __future__ import annotations

import datetime as dt

SCHEDULES = {
    "daily": "every business day",
    "weekly": "each Monday",
    "monthly": "the first Monday of the month",
    "quarterly": "the first week of the quarter",
    "dr": "the first week of the quarter",
    "annually": "the first week of the year",
}
_LOOKBACK_DAYS = 400  # more than any gap between two scheduled windows
# The look-back period EA-OPS-02 judges: every window of the last 35 days for the frequent
# cadences, the last two windows for the others (one run does not cover the windows it missed),
# the last one for annually (a second would ask the history to reach back two years).
LOOKBACK_DAYS = {"daily": 35, "weekly": 35}
WINDOWS_JUDGED = {"annually": 1}
WINDOWS_JUDGED_OTHERWISE = 2


def window_opening(cadence: str, day: dt.date) -> tuple[dt.date, dt.date] | None:
    """The scheduled window (first day, last day) of `cadence` that opens on `day`, if one does."""
    if cadence not in SCHEDULES:
        raise ValueError(f"no schedule for {cadence!r}; known: {', '.join(SCHEDULES)}")
    if cadence == "daily" and day.weekday() < 5:
        return day, day
    if cadence == "weekly" and day.weekday() == 0:
        return day, day
    if cadence == "monthly" and day.weekday() == 0 and day.day <= 7:
        return day, day
    if cadence in ("quarterly", "dr") and day.day == 1 and day.month in (1, 4, 7, 10):
        return day, day + dt.timedelta(days=6)
    if cadence == "annually" and day.day == 1 and day.month == 1:
        return day, day + dt.timedelta(days=6)
    return None


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)


def last_due(cadence: str, now: dt.datetime, grace: dt.timedelta) -> tuple[dt.date, dt.date]:
    """The newest window that has closed by `now` (its last day ended more than `grace` ago):
    a complete run must have started on or after its first day. A Monday looks back to Friday."""
    for back in range(_LOOKBACK_DAYS):
        window = window_opening(cadence, now.date() - dt.timedelta(days=back))
        if window and _midnight(window[1] + dt.timedelta(days=1)) + grace <= now:
            return window
    raise ValueError(f"no {cadence} window closed in the {_LOOKBACK_DAYS} days before {now:%Y-%m-%d}")


def due_windows(cadence: str, now: dt.datetime, grace: dt.timedelta) -> list[tuple[dt.date, dt.date]]:
    """Every window of the look-back period that has closed by `now` (with `grace`), newest
    first: those of the last LOOKBACK_DAYS days, else the last WINDOWS_JUDGED windows."""
    newest = last_due(cadence, now, grace)
    if cadence not in LOOKBACK_DAYS:
        windows = [newest]
        while len(windows) < WINDOWS_JUDGED.get(cadence, WINDOWS_JUDGED_OTHERWISE):
            windows.append(_window_before(cadence, windows[-1][0]))
        return windows
    oldest = now.date() - dt.timedelta(days=LOOKBACK_DAYS[cadence])
    windows, day = [], newest[0]
    while day >= oldest:
        if window := window_opening(cadence, day):
            windows.append(window)
        day -= dt.timedelta(days=1)
    return windows


def _window_before(cadence: str, first: dt.date) -> tuple[dt.date, dt.date]:
    for back in range(1, _LOOKBACK_DAYS):
        window = window_opening(cadence, first - dt.timedelta(days=back))
        if window:
            return window
    raise ValueError(f"no {cadence} window in the {_LOOKBACK_DAYS} days before {first:%Y-%m-%d}")


def covers(cadence: str, started: dt.datetime, window: tuple[dt.date, dt.date], grace: dt.timedelta) -> bool:
    """Whether a run that started at `started` counts for `window`: on or after its first day,
    before its last day ended plus `grace` (a late run still counts, an earlier one never), and
    before the next window opened (one run counts for one window, never for the one before)."""
    end = min(_midnight(window[1] + dt.timedelta(days=1)) + grace, _midnight(next_window(cadence, window[0])[0]))
    return _midnight(window[0]) <= started < end


def next_window(cadence: str, after: dt.date) -> tuple[dt.date, dt.date]:
    """The first window of `cadence` that opens after the day `after`."""
    for ahead in range(1, _LOOKBACK_DAYS):
        window = window_opening(cadence, after + dt.timedelta(days=ahead))
        if window:
            return window
    raise ValueError(f"no {cadence} window in the {_LOOKBACK_DAYS} days after {after:%Y-%m-%d}")


def holds_until(cadence: str, done: dt.date) -> dt.date:
    """The last day that something done on `done` still counts: the last day of the next
    scheduled window, by which it must be done again (a monthly item done on 2 November holds
    until the first Monday of December)."""
    return next_window(cadence, done)[1]


def latest_opening(cadence: str, today: dt.date) -> dt.date:
    """The first day of the newest window that opened on or before `today`."""
    for back in range(_LOOKBACK_DAYS):
        window = window_opening(cadence, today - dt.timedelta(days=back))
        if window:
            return window[0]
    raise ValueError(f"no {cadence} window in the {_LOOKBACK_DAYS} days before {today:%Y-%m-%d}")
