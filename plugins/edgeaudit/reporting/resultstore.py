"""The controller's results, held packed until the report is written.

A fleet's run gathers tens of thousands of results on the controller, and they live until the
report set is written. As Python objects a result takes kilobytes; packed (its JSON, compressed)
a few hundred bytes. The report is written from a view (`StoredResults`) that unpacks one result
at a time, so the whole set is never held unpacked either. Results are redacted as they enter.
"""

from __future__ import annotations

import json
import zlib
from typing import Any, Callable, Iterable, Iterator, MutableMapping, Sequence, overload

from edgeaudit.redact import redact

Result = dict[str, Any]


class ResultStore(MutableMapping[str, Result]):
    """node id -> result, each kept redacted and packed; reading one unpacks a fresh copy."""

    def __init__(self) -> None:
        self._packed: dict[str, bytes] = {}

    def __getitem__(self, nodeid: str) -> Result:
        return json.loads(zlib.decompress(self._packed[nodeid]))

    def __setitem__(self, nodeid: str, result: Result) -> None:
        self._packed[nodeid] = zlib.compress(json.dumps(redact(result), separators=(",", ":")).encode(), 1)

    def __delitem__(self, nodeid: str) -> None:
        del self._packed[nodeid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._packed)

    def __len__(self) -> int:
        return len(self._packed)

    def view(self, key: Callable[[Result], Any]) -> StoredResults:
        """Every result, ordered by `key` (each unpacked once to find its place)."""
        return StoredResults(self, list(self._packed)).ordered(key)


class StoredResults(Sequence[Result]):
    """An ordered list of a store's results that unpacks each as it is read; assigning to a
    place packs the result again (trend.mark_failing_since adds to failing results)."""

    def __init__(self, store: ResultStore, nodeids: list[str]) -> None:
        self.store, self.nodeids = store, nodeids

    @overload
    def __getitem__(self, index: int) -> Result: ...
    @overload
    def __getitem__(self, index: slice) -> list[Result]: ...

    def __getitem__(self, index: int | slice) -> Result | list[Result]:
        if isinstance(index, slice):
            return [self.store[nodeid] for nodeid in self.nodeids[index]]
        return self.store[self.nodeids[index]]

    def __setitem__(self, index: int, result: Result) -> None:
        self.store[self.nodeids[index]] = result

    def __len__(self) -> int:
        return len(self.nodeids)

    def __iter__(self) -> Iterator[Result]:
        return (self.store[nodeid] for nodeid in self.nodeids)

    def ordered(self, key: Callable[[Result], Any]) -> StoredResults:
        return StoredResults(self.store, sorted(self.nodeids, key=lambda nodeid: key(self.store[nodeid])))


def ordered(results: Iterable[Result], key: Callable[[Result], Any]) -> Sequence[Result]:
    """The results sorted by `key`: a view of a store's, or a list of any others (a report read
    back from its file, a merge of shards)."""
    if isinstance(results, StoredResults):
        return results.ordered(key)
    return sorted(results, key=key)
