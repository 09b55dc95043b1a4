"""A short Markdown summary of the report for the CI page: appended to the file that
`$GITHUB_STEP_SUMMARY` names when it is set (GitHub Actions shows it on the run's page and
appends per step, so several runs or a merge in one job each add theirs). The verdict, counts by
outcome, the failures, errors and warnings as a table, and the names of the report files.
Every value is escaped for Markdown (a `|` in a message does not split a cell, a `<` does not
start HTML, a `[` does not start a link) and the text is redacted."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edgeaudit.redact import redact_text
from edgeaudit.reporting.archive import summary_line as archive_line
from edgeaudit.reporting.html_render import verdict
from edgeaudit.reporting.results import OUTCOMES, SEVERITY_RANK

ENV = "GITHUB_STEP_SUMMARY"
SHOWN = ("failed", "error", "warned")  # worst first: the rows of the table
MAX_ROWS = 50         # the page stays short; the report has the rest
MAX_MESSAGE = 300
_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~#!{}])")


def escape(value: Any) -> str:
    """One table cell of plain text: Markdown and HTML characters escaped, on one line."""
    text = " ".join(redact_text(str(value)).split())
    return _SPECIAL.sub(r"\\\1", text)


def markdown(report: dict[str, Any], files: Sequence[str | Path] = ()) -> str:
    summary, run = report["summary"], report["run"]
    _, headline, why = verdict(report)
    lines = [f"## edgeaudit: {headline}", "",
             escape(f"{why}. Selection {run['selection']}, {len(run['targets'])} target(s)"
                    + (", demo" if run.get("demo") else "") + f", finished {run['finished']}."), "",
             "| " + " | ".join(OUTCOMES) + " |", "|" + "---:|" * len(OUTCOMES),
             "| " + " | ".join(str(summary[o]) for o in OUTCOMES) + " |", ""]
    rows = sorted((r for r in report["results"] if r["outcome"] in SHOWN),
                  key=lambda r: (SHOWN.index(r["outcome"]), SEVERITY_RANK.get(r["severity"], 9),
                                 r["control"], r["target"]))
    if rows:
        lines += ["| control | severity | target | outcome | message |", "|---|---|---|---|---|"]
        for r in rows[:MAX_ROWS]:
            message = r["message"] if len(r["message"]) <= MAX_MESSAGE else r["message"][:MAX_MESSAGE] + "..."
            lines.append("| " + " | ".join(escape(v) for v in (r["control"], r["severity"], r["target"],
                                                                 r["outcome"], message)) + " |")
        if len(rows) > MAX_ROWS:
            lines.append(f"\n{len(rows) - MAX_ROWS} more in the report.")
        lines.append("")
    if files:
        lines += ["Reports: " + ", ".join(escape(Path(f).name) for f in files), ""]
    if run.get("archive"):  # where the set was archived, or why not (a failure made the exit code 1)
        lines += [escape(archive_line(run["archive"])), ""]
    return redact_text("\n".join(lines) + "\n")


def append_step_summary(report: dict[str, Any], files: Sequence[str | Path] = (),
                        environ: Mapping[str, str] | None = None) -> Path | None:
    """Append the summary where $GITHUB_STEP_SUMMARY says; None when it is not set. A summary that
    cannot be written is said on stderr and does not fail the run: the reports are written."""
    target = (os.environ if environ is None else environ).get(ENV)
    if not target:
        return None
    path = Path(target)
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(markdown(report, files))
    except OSError as exc:
        sys.stderr.write(redact_text(f"edgeaudit: cannot append the summary to {ENV} ({path}): {exc}\n"))
        return None
    return path
