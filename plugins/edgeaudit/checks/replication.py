"""Origin against replica: which current objects the replica lacks or holds in another state.

Both listings are paginated (1,000 keys a page), so the comparison holds for any bucket size;
it keeps one small record per key, not the objects.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterable


@dataclass(frozen=True)
class Entry:
    size: int
    etag: str
    last_modified: dt.datetime


@dataclass
class Comparison:
    origin_objects: int = 0
    replica_objects: int = 0
    origin_bytes: int = 0
    missing: dict[str, Entry] = field(default_factory=dict)   # in the origin, not in the replica
    stale: dict[str, Entry] = field(default_factory=dict)     # in both, size or ETag differ

    @property
    def behind(self) -> dict[str, Entry]:
        return {**self.missing, **self.stale}

    def oldest_change(self) -> tuple[str, dt.datetime] | None:
        """The origin object whose change the replica has lacked the longest."""
        if not self.behind:
            return None
        key = min(self.behind, key=lambda k: self.behind[k].last_modified)
        return key, self.behind[key].last_modified


def entries(pages: Iterable[dict[str, Any]]) -> dict[str, Entry]:
    """key -> Entry from list_objects_v2 pages."""
    return {o["Key"]: Entry(int(o.get("Size", 0)), str(o.get("ETag", "")).strip('"'), o["LastModified"])
            for page in pages for o in page.get("Contents", [])}


def compare(origin_pages: Iterable[dict[str, Any]], replica_pages: Iterable[dict[str, Any]]) -> Comparison:
    origin, replica = entries(origin_pages), entries(replica_pages)
    result = Comparison(len(origin), len(replica), sum(e.size for e in origin.values()))
    for key, entry in origin.items():
        copy = replica.get(key)
        if copy is None:
            result.missing[key] = entry
        elif (copy.size, copy.etag) != (entry.size, entry.etag):
            result.stale[key] = entry
    return result


def covers_all_objects(rule: dict[str, Any]) -> bool:
    """A replication rule whose filter selects every object (no prefix, no tag)."""
    if rule.get("Prefix"):  # the older V1 rule shape
        return False
    rule_filter = rule.get("Filter")
    if not rule_filter:
        return True
    if "And" in rule_filter:
        return not rule_filter["And"].get("Prefix") and not rule_filter["And"].get("Tags")
    return not rule_filter.get("Prefix") and "Tag" not in rule_filter
