"""The embedded demo environment: a moto server on 127.0.0.1, seeded sites, and their edges.

`pytest --demo` starts one for the run; the project's own tests start one per test session and
build the sites they need. Nothing here reaches beyond loopback.

moto's server is the optional `demo` extra, so nothing outside this package imports it, and the
plugin imports this package only for --demo, through `load_environment`.

Imports: reporting/, checks/, aws/, web/, rules/ and the ground.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from edgeaudit.demo.environment import DemoEnvironment

INSTALL = "pip install 'edgeaudit[demo]'"


def load_environment() -> type[DemoEnvironment]:
    """The demo environment's class; without the demo extra, one usage error saying how to add
    it (an install for real sites leaves moto out, and --demo should say so, not crash)."""
    try:
        with warnings.catch_warnings():  # moto's own hint when its server's stack is missing: ours follows
            warnings.filterwarnings("ignore", "When using MotoServer", UserWarning)
            from edgeaudit.demo.environment import DemoEnvironment
    except ModuleNotFoundError as missing:
        module = (missing.name or "").partition(".")[0]
        if module == "edgeaudit":
            raise
        raise pytest.UsageError(f"--demo: the demo environment needs the demo extra (moto's server), which is not "
                                f"installed (no module named {module!r}). Fix: {INSTALL}") from None
    return DemoEnvironment
