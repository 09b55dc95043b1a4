"""The config `edgeaudit init` writes for one site: the example shipped with edgeaudit, with the
site's values in its [[targets]] table and every other key left as the example's comment, so
that the file explains itself and still loads."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgeaudit.rules.tomlwrite import value_text

EXAMPLE = Path(__file__).resolve().parent.parent / "edgeaudit.example.toml"
# A key line of the example's [[targets]] table, set or commented out: `# key = value  # why`.
KEY_LINE = re.compile(r"^(?:# )?(?P<key>[a-z_]+) = (?P<value>.*?)(?P<comment>\s+#.*)?$")
# Keys the example sets with values of its own invented site: never copied into a real config.
EXAMPLE_ONLY = ("monthly_budget_usd", "allowed_writers")


def starter_config(site: Mapping[str, Any], example: str | None = None) -> str:
    """The example's text with `site`'s values set in its [[targets]] table; keys `site` does not
    give stay commented out, and a key it gives that the example lacks is added at the end."""
    lines = (EXAMPLE.read_text(encoding="utf-8") if example is None else example).splitlines()
    start = lines.index("[[targets]]")
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].strip()), len(lines))
    left = dict(site)
    for i in range(start + 1, end):
        match = KEY_LINE.match(lines[i])
        if not match:
            continue
        key, comment = match["key"], match["comment"] or ""
        if key in left:
            lines[i] = f"{key} = {value_text(left.pop(key))}{comment}"
        elif key in EXAMPLE_ONLY or not lines[i].startswith("#"):
            lines[i] = f"# {key} = {match['value']}{comment}"
    lines[end:end] = [f"{key} = {value_text(value)}" for key, value in left.items()]
    return "\n".join(lines) + "\n"
