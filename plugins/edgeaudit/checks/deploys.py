"""The deploy workflow's runs on the production branch, as GitHub Actions records them
(EA-DEP-05, EA-MET-01, EA-CHG-01).

A run counts as a successful deployment only when it completed with conclusion `success`;
every other completed conclusion (failure, cancelled, timed_out, ...) is a deployment that did
not succeed, apart from `skipped`, which deployed nothing and is left out (and listed). Runs
still queued or in progress are not judged: they are incomplete data, listed as such.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from edgeaudit.web.github import ACTIONS, GitHub, Paged, parse_time


def runs(github: GitHub, since: dt.date | None = None) -> Paged:
    """The deploy workflow's runs on the production branch, newest first (created on or after `since`)."""
    params: dict[str, Any] = {"branch": github.source.branch}
    if since is not None:
        params["created"] = f">={since.isoformat()}"
    return github.pages(github.repo(f"/actions/workflows/{github.source.workflow}/runs"), ACTIONS, params,
                        key="workflow_runs")


def summary(run: dict[str, Any]) -> dict[str, Any]:
    """What the evidence shows of a run."""
    return {key: run.get(key) for key in ("run_number", "status", "conclusion", "head_sha", "event",
                                          "created_at", "run_started_at", "html_url")}


def completed(run: dict[str, Any]) -> bool:
    return run.get("status") == "completed"


def succeeded(run: dict[str, Any]) -> bool:
    return completed(run) and run.get("conclusion") == "success"


def started(run: dict[str, Any]) -> dt.datetime | None:
    return parse_time(run.get("run_started_at") or run.get("created_at"))


@dataclass
class Rate:
    """Deployment success over a window: successes / judged (completed, not skipped)."""

    successes: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    left_out: list[dict[str, Any]]

    @property
    def judged(self) -> int:
        return len(self.successes) + len(self.failures)

    @property
    def rate(self) -> float:
        return len(self.successes) / self.judged if self.judged else 0.0


def success_rate(found: list[dict[str, Any]]) -> Rate:
    """Split the runs into successes, failures and those left out (still running, or skipped)."""
    rate = Rate([], [], [])
    for run in found:
        if not completed(run) or run.get("conclusion") == "skipped":
            rate.left_out.append(run)
        elif succeeded(run):
            rate.successes.append(run)
        else:
            rate.failures.append(run)
    return rate


def served_commit(text: str) -> str:
    """The commit a version file names: its first word, lower case."""
    words = text.split()
    return words[0].lower() if words else ""


def same_commit(served: str, sha: str) -> bool:
    """The served text names `sha` in full, or by an abbreviation of at least 7 hex digits."""
    return len(served) >= 7 and all(c in "0123456789abcdef" for c in served) and sha.lower().startswith(served)
