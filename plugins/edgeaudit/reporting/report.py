"""The machine-readable report (`edgeaudit.report/1`), `history.jsonl`, and atomic writes."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from edgeaudit.redact import redact, redact_text
from edgeaudit.reporting.jsonparts import object_parts
from edgeaudit.reporting.resultstore import StoredResults
from edgeaudit.rules.frameworks import summary as framework_summary

SCHEMA = "edgeaudit.report/1"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def selection_name(markexpr: str) -> str:
    """The -m expression made file-safe: 'weekly and security' -> 'weekly-and-security'."""
    return re.sub(r"[^A-Za-z0-9]+", "-", markexpr).strip("-").lower() or "all"


def selection_label(markexpr: str, frameworks: Iterable[str] = ()) -> str:
    """What a report's name says it covers: the -m expression and the --framework ids
    ('daily FSBP' names daily-fsbp-..., which is not a whole daily run)."""
    return " ".join([markexpr or "all", *frameworks])


def report_stem(report_dir: Path, markexpr: str, started: dt.datetime) -> Path:
    """reports/<selection>-<UTC yyyymmddThhmmssZ>, with a suffix if that name is taken."""
    stem = f"{selection_name(markexpr)}-{started.strftime('%Y%m%dT%H%M%SZ')}"
    candidate, n = report_dir / stem, 1
    while candidate.with_suffix(".json").exists() or candidate.with_suffix(".html").exists():
        n += 1
        candidate = report_dir / f"{stem}-{n}"
    return candidate


def write_atomic(path: Path, text: str) -> None:
    """Write to a temp file beside `path`, then rename: readers never see half a report.
    Every text file the run writes passes here (or write_atomic_parts, or a StagedFiles), so here
    is the last redaction pass."""
    write_atomic_parts(path, [text])


def write_atomic_parts(path: Path, parts: Iterable[str]) -> None:
    """write_atomic for a text made in parts (a JSON record, a template's output of a value):
    each part is redacted as it is written, so no value may span two parts."""
    files = StagedFiles()
    files.add(path, parts)
    files.commit()


def write_atomic_bytes(path: Path, data: bytes) -> None:
    os.replace(stage(path, [data]), path)


def stage(path: Path, chunks: Iterable[bytes]) -> str:
    """Write `chunks` to a synced temp file beside `path` and return its name; renaming it onto
    `path` is the caller's, so that several files can be put in place together."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.writelines(chunks)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a report is an ordinary file
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


class StagedFiles:
    """A report set's files, each written in parts beside its place, then all put in place
    together: a report that fails to render or export midway leaves none of its files."""

    def __init__(self) -> None:
        self.staged: dict[Path, str] = {}

    def add(self, path: Path, parts: Iterable[str]) -> None:
        self.staged[path] = stage(path, (redact_text(part).encode("utf-8") for part in parts))

    def commit(self) -> None:
        for path, tmp in self.staged.items():
            os.replace(tmp, path)
        self.staged.clear()

    def discard(self) -> None:
        for tmp in self.staged.values():
            Path(tmp).unlink(missing_ok=True)
        self.staged.clear()


def build_report(*, run: dict[str, Any], summary: dict[str, Any], results: Sequence[dict[str, Any]], complete: bool,
                 waivers: list[dict[str, Any]] | None = None,
                 attestations: list[dict[str, Any]] | None = None,
                 scope: dict[str, Any] | None = None,
                 thresholds: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The JSON report; `waivers` and `attestations` list the config's, each with its state;
    `thresholds` the effective thresholds beside the defaults and the procedures'. The
    summary gains the per-framework view of the results (of the run's --framework selection).
    `scope` (edgeaudit.run.scope) says which controls and targets the run selected, and why not the others."""
    summary = {**summary, "frameworks": framework_summary(results, run.get("frameworks") or ())}
    report = redact({"schema": SCHEMA, "complete": complete, "run": run, "summary": summary, "results": [],
                     "waivers": waivers or [], "attestations": attestations or [],
                     "thresholds": thresholds or [],
                     **({"scope": scope} if scope is not None else {})})
    report["results"] = results if isinstance(results, StoredResults) else redact(results)  # a store's are
    return report


def report_parts(report: dict[str, Any]) -> Iterator[str]:
    """<stem>.json in parts: its results one at a time (a fleet's report is large)."""
    return itertools.chain(object_parts(report, "results"), ["\n"])


def write_json(path: Path, report: dict[str, Any]) -> None:
    write_atomic_parts(path, report_parts(report))


