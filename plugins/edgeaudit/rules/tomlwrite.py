"""A small TOML writer for the documents edgeaudit writes itself (the demo's config, test
configs): tables of strings, numbers, booleans, dates and lists of those."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any


def value_text(value: Any) -> str:
    """One value as TOML writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {value_text(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _table(header: str, table: dict[str, Any]) -> str:
    lines = [header] + [f"{k} = {value_text(v)}" for k, v in table.items() if v is not None]
    return "\n".join(lines) + "\n"


def dumps(document: dict[str, Any]) -> str:
    """Top-level tables become [name]; lists of tables become [[name]] entries."""
    parts = []
    for key, value in document.items():
        if isinstance(value, dict):
            parts.append(_table(f"[{key}]", value))
        elif isinstance(value, list) and all(isinstance(v, dict) for v in value):
            parts.extend(_table(f"[[{key}]]", entry) for entry in value)
        else:
            parts.insert(0, f"{key} = {value_text(value)}\n")
    return "\n".join(parts)
