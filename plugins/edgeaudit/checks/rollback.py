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
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from edgeaudit.checks.manifest import Manifest

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


@dataclass
class PreviousRelease:
    """The release to roll back to: its members (key -> version entry of the listing) and the
    members the bucket no longer keeps (key -> why)."""

    source: str
    latest: Deployment
    members: dict[str, dict[str, Any]]
    lost: dict[str, str] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        return sum(int(v.get("Size", 0)) for v in self.members.values())


def previous_release(history: History, window_s: float, index: str,
                     manifest: "Manifest | None" = None) -> PreviousRelease | None:
    """The previous release: with a release manifest, the versions its next-to-last release
    names; else the view just before the latest deployment, where only the index page (which
    every release serves) is known to belong even when its versions were deleted."""
    latest = latest_deployment(history, window_s)
    if latest is None:
        return None
    if manifest is not None:
        release = manifest.previous
        kept = {(v["Key"], v.get("VersionId")): v for v in history.versions}
        members, lost = {}, {}
        for key, version in sorted((release.objects if release else {}).items()):
            if (key, version) in kept:
                members[key] = kept[key, version]
            else:
                lost[key] = f"version {version} of release {release.id} (release manifest) is no longer in the bucket"
        source = (f"release manifest {manifest.location}, release {release.id}" if release
                  else f"release manifest {manifest.location} (it names no release before {manifest.live.id})")
        return PreviousRelease(source, latest, members, lost)
    members = view_before(history, latest.started)
    lost = {}
    if members and index not in members:
        lost[index] = "the index page has no version in the previous release (its earlier versions were deleted)"
    return PreviousRelease(f"version history: the versions live before {latest.started:%Y-%m-%d %H:%M:%S} UTC",
                           latest, members, lost)
