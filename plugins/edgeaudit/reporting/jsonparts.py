"""JSON documents written in parts, one record at a time, so that a report of a large fleet is
never held whole as one string beside the results it was made from. The parts join to exactly
what `json.dumps(redact(document), indent=2)` makes; each record is redacted on its own."""

from __future__ import annotations

import json
from typing import Any, Iterable, Iterator, Sequence

from edgeaudit.redact import redact, redact_text


def array_parts(records: Iterable[Any], level: int = 0) -> Iterator[str]:
    """A JSON array at nesting `level`, one redacted record a part."""
    inner = "\n" + "  " * (level + 1)
    empty = True
    for record in records:
        yield ("[" if empty else ",") + inner + json.dumps(redact(record), indent=2).replace("\n", inner)
        empty = False
    yield "[]" if empty else "\n" + "  " * level + "]"


def object_parts(document: dict[str, Any], streamed: str) -> Iterator[str]:
    """A JSON object whose list under `streamed` is written one record a part (the results)."""
    if not document:
        yield "{}"
        return
    for n, (name, value) in enumerate(document.items()):
        yield ("{" if n == 0 else ",") + "\n  " + json.dumps(redact_text(name)) + ": "
        if name == streamed and isinstance(value, Sequence) and not isinstance(value, str):
            yield from array_parts(value, level=1)
        else:
            yield json.dumps(redact({name: value})[redact_text(name)], indent=2).replace("\n", "\n  ")
    yield "\n}"
