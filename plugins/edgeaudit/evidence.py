"""The `evidence` fixture's object: what a control observed, for the report."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

from .redact import redact, redact_text


def jsonable(value: Any) -> Any:
    """A JSON-safe copy of an observed value (dates as ISO text, sets sorted, bytes summarised)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(jsonable(v) for v in value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, Path):
        return str(value)
    return str(value)


class Evidence:
    """`evidence.record(key, value)` adds an observed value; `evidence.warn(msg)` turns a pass
    into `warned` (inside a warning band); `evidence.resource` names what was checked."""

    def __init__(self, resource: str | None = None) -> None:
        self.values: dict[str, Any] = {}
        self.warnings: list[str] = []
        self.resource = resource

    def record(self, key: str, value: Any) -> None:
        self.values[key] = redact(jsonable(value))

    def warn(self, message: str) -> None:
        self.warnings.append(redact_text(message))
