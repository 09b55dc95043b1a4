"""A control's input that the target either sets or declares absent, with a reason: a key left
out is a finding, never a skip (a site with no replica says so in its config)."""

from __future__ import annotations

from typing import Any

import pytest

from edgeaudit.rules.config import Target, undeclared


def require(target: Target, evidence: Any, key: str, *, record: bool = True) -> None:
    """Skip with the config's reason when the target declares `key` absent; else fail, saying how
    to declare it, unless the target sets it (`record`: show the value in the evidence)."""
    reason = target.declared_absent(key)
    if reason is not None:
        evidence.record("declared_absent", {key: reason})
        pytest.skip(f"declared absent in the config: {key} ({reason})")
    value = getattr(target, key)
    if record:
        evidence.record(key, value)
    assert value not in (None, ""), undeclared(target, key)
