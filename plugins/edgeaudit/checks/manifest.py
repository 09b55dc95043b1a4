"""The release manifest (`release_manifest` of a target): the deploy pipeline's own record of
which object versions each release published. S3 forgets an object once its earlier versions
are deleted; the manifest does not, so with it the drills know every object of the previous
release and every object that changed.

It is JSON, a local file or an S3 object (`s3://bucket/key`), oldest release first, the live
release last:

    {"releases": [{"id": "r41", "objects": {"index.html": "<VersionId>", ...}},
                  {"id": "r42", "objects": {...}}]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from edgeaudit.aws.clients import Aws
from edgeaudit.checks.located import read_text
from edgeaudit.errors import NotEvaluated
from edgeaudit.rules.location import is_s3

FIX = ('write it at the end of every deployment: {"releases": [{"id": ..., "objects": {key: VersionId}}, ...]}, '
       "oldest first, the live release last")


@dataclass(frozen=True)
class Release:
    id: str
    objects: dict[str, str]  # key -> VersionId


@dataclass(frozen=True)
class Manifest:
    location: str
    releases: tuple[Release, ...]

    @property
    def live(self) -> Release:
        return self.releases[-1]

    @property
    def previous(self) -> Release | None:
        return self.releases[-2] if len(self.releases) > 1 else None

    def earlier_version(self, key: str, current: str) -> tuple[str, str] | None:
        """(release id, version id) of the newest earlier release that published another version
        of `key`: proof that the object changed."""
        for release in reversed(self.releases):
            version = release.objects.get(key)
            if version is not None and version != current:
                return release.id, version
        return None


def parse(location: str, text: str) -> Manifest:
    """Validate the document; a malformed manifest leaves the drills without their list."""
    def bad(problem: str) -> NotEvaluated:
        return NotEvaluated(f"release manifest {location}: {problem}. Fix: {FIX}")

    try:
        document = json.loads(text)
    except ValueError as exc:
        raise bad(f"not JSON ({exc})") from None
    raw = document.get("releases") if isinstance(document, dict) else None
    if not isinstance(raw, list) or not raw:
        raise bad('no "releases" list')
    releases = []
    for n, entry in enumerate(raw):
        objects = entry.get("objects") if isinstance(entry, dict) else None
        if not isinstance(objects, dict) or not isinstance(entry.get("id"), str) or not all(
                isinstance(k, str) and isinstance(v, str) and v for k, v in objects.items()):
            raise bad(f'releases[{n}] is not {{"id": "...", "objects": {{"key": "VersionId", ...}}}}')
        releases.append(Release(entry["id"], dict(objects)))
    return Manifest(location, tuple(releases))


def load(aws: Aws, location: str) -> Manifest:
    """Read the manifest from S3 (`s3://bucket/key`, needs s3:GetObject on it) or a local file
    (the config resolved relative paths)."""
    fix = (f"point release_manifest at the {'object' if is_s3(location) else 'file'} the deploy pipeline writes")
    return parse(location, read_text(aws, location, "release manifest", fix))


def stale_keys(manifest: Manifest, live: dict[str, Any], ignore: str = "") -> list[str]:
    """Keys whose live version is not the one the manifest's last release names (a manifest not
    written by the latest deployment describes another release)."""
    wanted = manifest.live.objects
    keys = (set(wanted) | set(live)) - {ignore}
    return sorted(k for k in keys if wanted.get(k) != (live.get(k) or {}).get("VersionId"))
