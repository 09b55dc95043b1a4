"""TOML written by tomlkit, for the documents edgeaudit writes itself (the demo's config, test
configs, an appended attestation): keys are quoted as TOML needs ("app.env" stays one key),
and a user's file keeps its comments and layout when an entry is added to it."""

from __future__ import annotations

from typing import Any

import tomlkit


def _without_none(value: Any) -> Any:
    """TOML has no null: a None in a table is a key left out."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_without_none(v) for v in value]
    return value


def _inline(value: Any) -> Any:
    """The value as tomlkit writes it on one line: tables inline, arrays of them too."""
    if isinstance(value, dict):
        table = tomlkit.inline_table()
        table.update({k: _inline(v) for k, v in value.items()})
        return table
    if isinstance(value, (list, tuple)):
        array = tomlkit.array()
        array.extend(_inline(v) for v in value)
        return array
    return tomlkit.item(value)


def value_text(value: Any) -> str:
    """One value as TOML writes it, on one line."""
    return _inline(_without_none(value)).as_string()


def dumps(document: dict[str, Any]) -> str:
    """Top-level tables become [name]; lists of tables become [[name]] entries."""
    return tomlkit.dumps(_without_none(document))


def append_entries(text: str, key: str, entries: list[dict[str, Any]]) -> str:
    """`text` (a TOML document) with `entries` added to its array of tables `key`, everything
    else left as written: comments, quoting, order and blank lines."""
    document = tomlkit.parse(text)
    if key not in document:
        document.append(key, tomlkit.aot())
    for entry in entries:
        document[key].append(_without_none(entry))
    return tomlkit.dumps(document)
