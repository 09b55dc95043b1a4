"""The errors every floor raises: why a control could not be evaluated, and a config problem.

A control that meets NotEvaluated (or a subclass) ends as an `error` outcome naming the cause,
never a pass and never a fail. The AWS layer, the site, the crawl, TLS and the lab all raise
them. ConfigError is bad input: one message naming the file, the key and the fix, and exit code
4. Nothing here imports another edgeaudit module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class NotEvaluated(Exception):
    """The control could not gather its data; the report shows an `error` with this message."""


class AccessDeniedError(NotEvaluated):
    """AWS refused a read: the message names the IAM action the credentials lack."""

    def __init__(self, action: str, resource: str, detail: str) -> None:
        self.action, self._parts = action, (action, resource, detail)
        super().__init__(f"AccessDenied: the credentials lack {action}"
                         f"{' on ' + resource if resource else ''} ({detail})")

    def __reduce__(self) -> tuple[Any, tuple[str, str, str]]:
        return (AccessDeniedError, self._parts)  # the read cache hands out copies


class SiteUnreachable(NotEvaluated):
    """The site could not be asked: refused, reset, timed out, TLS failure."""


class ConfigError(ValueError):
    """A config problem, phrased for the person who has to fix the file."""

    def __init__(self, path: Path | str, key: str, problem: str, fix: str) -> None:
        self.path, self.key, self.problem, self.fix = str(path), key, problem, fix
        super().__init__(f"{path}: {key}: {problem}. Fix: {fix}")
