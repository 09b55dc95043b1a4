"""The `evidence` fixture's object: what a control observed, for the report."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

from edgeaudit.redact import redact, redact_text


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
    """`evidence.record(key, value)` adds an observed value; `evidence.measure(name, observed,
    limit)` adds one checked against a threshold (the report shows its margin);
    `evidence.warn(msg)` turns a pass into `warned` (inside a warning band);
    `evidence.require_none(offenders, msg)` records what offends and fails on any;
    `evidence.resource` names what was checked."""

    def __init__(self, resource: str | None = None) -> None:
        self.values: dict[str, Any] = {}
        self.warnings: list[str] = []
        self.margins: dict[str, dict[str, Any]] = {}
        self.resource = resource

    def __repr__(self) -> str:
        """The keys recorded, not their values (those are the report's, redacted)."""
        recorded = ", ".join(self.values) or "nothing recorded"
        warned = f"; {len(self.warnings)} warnings" if self.warnings else ""
        return f"<Evidence {redact_text(self.resource or '(no resource)')}: {recorded}{warned}>"

    def record(self, key: str, value: Any) -> None:
        self.values[key] = redact(jsonable(value))

    def measure(self, name: str, observed: float, limit: float, *, better: str = "lower", unit: str = "") -> None:
        """Record a value checked against a threshold, so the report can show how far it is from
        its limit: `better="lower"` for a maximum (LCP <= 2.5 s), "higher" for a minimum (days
        to expiry >= 14). A negative margin is over the limit."""
        if better not in ("lower", "higher"):
            raise ValueError('better is "lower" (a maximum) or "higher" (a minimum)')
        margin = (limit - observed) if better == "lower" else (observed - limit)
        self.values[name] = jsonable(observed)
        self.margins[name] = {"observed": jsonable(observed), "limit": jsonable(limit), "better": better,
                              "margin": jsonable(round(margin, 6)), "unit": unit,
                              "margin_ratio": round(margin / abs(limit), 4) if limit else None}

    def require_none(self, offenders: Any, message: str) -> None:
        """The usual end of a control: record its offenders (under "offenders") and fail with
        `message` when there is any, so that a failure always shows what failed."""
        self.record("offenders", offenders)
        if offenders:
            raise AssertionError(message)

    def warn(self, message: str) -> None:
        self.warnings.append(redact_text(message))
