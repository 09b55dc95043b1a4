"""Rollback readiness: the release live before the latest deployment, rebuilt from the version
history of a versioned bucket.

A burst of writes is versions and delete markers whose LastModified fall within `window_s` of
each other. Not every burst is a release: a regenerated sitemap an hour after a deployment is
a burst too. The latest deployment is the burst that published the live index page (every
release rewrites it); without an index page, the burst that changed the most objects; when
bursts tie, nothing tells, and the drills are not evaluated. The previous release is the
point-in-time view just before the latest deployment began: for every key, its newest version
or delete marker older than that moment (a delete marker there means the key was not part of
the release).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
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
    keys: frozenset[str] = frozenset()
    found_by: str = ""


class Undecided(Exception):
    """Nothing in the history tells which burst of writes was the latest deployment."""


def bursts(history: History, window_s: float = DEPLOY_WINDOW_S) -> list[Deployment]:
    """Every burst of writes, oldest first: writes each at most window_s after the one before."""
    entries = sorted((*history.versions, *history.delete_markers), key=lambda e: e["LastModified"])
    window = dt.timedelta(seconds=window_s)
    groups: list[list[dict[str, Any]]] = []
    for entry in entries:
        if groups and entry["LastModified"] - groups[-1][-1]["LastModified"] <= window:
            groups[-1].append(entry)
        else:
            groups.append([entry])
    return [Deployment(g[0]["LastModified"], g[-1]["LastModified"], len(g), frozenset(e["Key"] for e in g))
            for g in groups]


def latest_deployment(history: History, window_s: float = DEPLOY_WINDOW_S,
                      index: str = "index.html") -> Deployment | None:
    """The burst that published the live index page, else the burst that changed the most objects;
    None for a bucket without writes; Undecided when bursts tie and nothing else tells."""
    found = bursts(history, window_s)
    if not found:
        return None
    live_index = next((v for v in history.versions if v["Key"] == index and v.get("IsLatest")), None)
    if live_index is not None:
        chosen = next(b for b in found if b.started <= live_index["LastModified"] <= b.finished)
        how = f"the burst of writes that published the live index page {index} (every release rewrites it)"
    else:
        most = max(len(b.keys) for b in found)
        widest = [b for b in found if len(b.keys) == most]
        if len(widest) > 1:
            raise Undecided(f"no live index page {index} and {len(widest)} bursts of writes each changed {most} "
                            "objects, so nothing tells which was the latest deployment")
        chosen = widest[0]
        how = f"no live index page {index}: the burst of writes that changed the most objects ({most})"
    later = [b for b in found if b.started > chosen.finished]
    if later:
        keys = sorted({k for b in later for k in b.keys})
        how += (f"; {sum(b.writes for b in later)} later write(s) in {len(later)} burst(s) count as no release: "
                + ", ".join(keys[:10]) + (" and more" if len(keys) > 10 else ""))
    return replace(chosen, found_by=how)


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
    if manifest is not None:
        return _from_manifest(history, window_s, index, manifest)
    latest = latest_deployment(history, window_s, index)
    if latest is None:
        return None
    members = view_before(history, latest.started)
    lost = {}
    if members and index not in members:
        lost[index] = "the index page has no version in the previous release (its earlier versions were deleted)"
    return PreviousRelease(f"version history: the versions live before {latest.started:%Y-%m-%d %H:%M:%S} UTC",
                           latest, members, lost)


def _from_manifest(history: History, window_s: float, index: str, manifest: "Manifest") -> PreviousRelease | None:
    """The previous release as the manifest names it (the manifest tells the releases apart, so
    the bursts of writes only date the latest one)."""
    try:
        latest = latest_deployment(history, window_s, index)
    except Undecided:
        latest = bursts(history, window_s)[-1]
    if latest is None:
        return None
    latest = replace(latest, found_by=f"release manifest {manifest.location}: release {manifest.live.id} is live "
                                      "(its versions are the bucket's live ones)")
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
