"""Rollback readiness: the release live before the latest deployment, rebuilt from the version
history of a versioned bucket.

A deployment is a burst of writes: versions and delete markers whose LastModified fall within
`window_s` of each other. The previous release is the point-in-time view just before the
newest burst began: for every key, its newest version or delete marker older than that moment
(a delete marker there means the key was not part of the release).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterable

DEPLOY_WINDOW_S = 300


@dataclass
class History:
    versions: list[dict[str, Any]] = field(default_factory=list)
    delete_markers: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_pages(cls, pages: Iterable[dict[str, Any]]) -> "History":
        history = cls()
        for page in pages:
            history.versions.extend(page.get("Versions", []))
            history.delete_markers.extend(page.get("DeleteMarkers", []))
        return history


@dataclass(frozen=True)
class Deployment:
    started: dt.datetime
    finished: dt.datetime
    writes: int


def latest_deployment(history: History, window_s: float = DEPLOY_WINDOW_S) -> Deployment | None:
    """The newest burst of writes: walking back from the newest write while each gap is <= window_s."""
    times = sorted((e["LastModified"] for e in (*history.versions, *history.delete_markers)), reverse=True)
    if not times:
        return None
    window = dt.timedelta(seconds=window_s)
    started, writes = times[0], 1
    for moment in times[1:]:
        if started - moment > window:
            break
        started, writes = moment, writes + 1
    return Deployment(started, times[0], writes)


def view_before(history: History, moment: dt.datetime) -> dict[str, dict[str, Any]]:
    """key -> the version live just before `moment` (keys deleted or not yet written then are absent)."""
    newest: dict[str, tuple[dt.datetime, bool, dict[str, Any]]] = {}
    for is_marker, entries in ((False, history.versions), (True, history.delete_markers)):
        for entry in entries:
            if entry["LastModified"] >= moment:
                continue
            known = newest.get(entry["Key"])
            if known is None or entry["LastModified"] > known[0]:
                newest[entry["Key"]] = (entry["LastModified"], is_marker, entry)
    return {key: entry for key, (_, is_marker, entry) in newest.items() if not is_marker}
