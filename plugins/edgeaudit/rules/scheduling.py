"""xdist scheduling by target: every control of one target runs on one worker.

A target's AWS reads are cached, and its crawl shared, inside one process; spreading its
controls over workers would repeat both on each. xdist's own `loadgroup` relies on rewriting
node ids, which pytest 9.2 no longer allows, so the grouping is done here instead: the
control's node id ends in its target's name (`test_x[www]`), and that name is the work unit.
"""

from __future__ import annotations

from typing import Any, Iterable

from xdist.scheduler import LoadScopeScheduling


class TargetScheduling(LoadScopeScheduling):
    """xdist's load-by-scope scheduler with one scope per target; other tests keep their own."""

    def __init__(self, config: Any, log: Any, targets: Iterable[str]) -> None:
        super().__init__(config, log)
        self._targets = sorted(set(targets), key=len, reverse=True)  # longest first: "www-2" before "www"

    def _split_scope(self, nodeid: str) -> str:
        return target_of(nodeid, self._targets) or nodeid


def target_of(nodeid: str, targets: Iterable[str]) -> str | None:
    """The target a control's node id belongs to: the parametrize id is the target's name,
    alone or beside other ids (`[www]`, `[www-case]`, `[case-www]`)."""
    if not nodeid.endswith("]") or "[" not in nodeid:
        return None
    param = nodeid[nodeid.rindex("[") + 1:-1]
    for name in targets:
        if param == name or param.startswith(f"{name}-") or param.endswith(f"-{name}"):
            return name
    return None
