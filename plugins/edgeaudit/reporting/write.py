"""Writing a report set: the JSON report, its history line, the HTML page that reads both, the
exports for other systems (OCSF findings, CSV), and the evidence bundle. The one way reports
reach the disk, at the end of a run and for `edgeaudit merge` alike."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeaudit.evidence import jsonable
from edgeaudit.redact import redact, redact_text
from edgeaudit.reporting.bundle import write_bundle
from edgeaudit.reporting.findings_csv import csv_text
from edgeaudit.reporting.history_lines import read as read_history
from edgeaudit.reporting.history_lines import sign, signer
from edgeaudit.reporting.html_render import render_parts
from edgeaudit.reporting.ledger import complete_cadences, coverage, evaluated, ledger, same_environment
from edgeaudit.reporting.ocsf import ocsf_parts
from edgeaudit.reporting.report import StagedFiles, report_parts, selection_label, selection_name, utc_now
from edgeaudit.reporting.store import HistoryStore, HistoryUnavailable
from edgeaudit.reporting.trend import compare, mark_failing_since, measures, previous_report


@dataclass(frozen=True)
class History:
    """The run history the report joins: its line is appended, its trend and ledger shown."""

    store: HistoryStore
    cadence_grace: dt.timedelta
    sign_key: Path | None = None  # the run's signing key: its line is signed, and lines read must verify


@dataclass(frozen=True)
class BundleParts:
    """What the evidence bundle holds besides the reports."""

    config: dict[str, Any]
    responses: dict[str, Any] = field(default_factory=dict)
    sign_key: Path | None = None


def write_report_set(report: dict[str, Any], stem: Path, *, history: History | None = None,
                     bundle: BundleParts | None = None) -> list[Path]:
    """<stem>.json, then the history line, then <stem>.html (which reads both and the previous
    report of the same selection beside it), <stem>.ocsf.json and <stem>.csv, then
    <stem>.bundle.zip; returns the report files written. Without `history` the set stands alone:
    no history line, no trend, no ledger (a merge of shards)."""
    if history is not None:
        selection = selection_label(report["run"]["selection"], report["run"].get("frameworks", []))
        previous = previous_report(stem.parent, selection_name(selection), stem)
        mark_failing_since(report, previous[1] if previous else None)
    files = StagedFiles()  # each written in parts, all put in place once every one is made
    try:
        files.add(stem.with_suffix(".json"), report_parts(report))
        files.add(export_path(stem, OCSF_SUFFIX), ocsf_parts(report))
        files.add(export_path(stem, ".csv"), [csv_text(report)])
        if history is not None:
            lines = _join(history, report, stem)
            runs = ledger(same_environment(lines, demo=report["run"]["demo"]), utc_now(), history.cadence_grace)
            page = render_parts(report, trend=compare(report, previous, lines), ledger=runs, name=stem.name)
        else:
            page = render_parts(report, name=stem.name)
        files.add(stem.with_suffix(".html"), page)
    except BaseException:
        files.discard()
        raise
    files.commit()
    written = [stem.with_suffix(".html"), stem.with_suffix(".json"), export_path(stem, OCSF_SUFFIX),
               export_path(stem, ".csv")]
    if bundle is not None:
        _write_bundle(stem, bundle)
        written.append(stem.with_suffix(".bundle.zip"))
    return written


OCSF_SUFFIX = ".ocsf.json"


def export_path(stem: Path, suffix: str) -> Path:
    """<stem>.ocsf.json, <stem>.csv: an export's name beside the JSON report."""
    return stem.with_name(stem.name + suffix)


def _join(history: History, report: dict[str, Any], stem: Path) -> list[dict[str, Any]]:
    """Append the run's line and read back the lines that count; a store out of reach costs the
    trend and the ledger, not the report, and so does a line that cannot be used (the terminal
    says why)."""
    key = signer(history.sign_key)
    try:
        line = _line(report, stem)
        history.store.append([sign(line, key) if key else line])
        vetted = read_history(history.store, utc_now(), key)
    except HistoryUnavailable as exc:
        print(f"edgeaudit: {redact_text(str(exc))}; the report shows no trend or ledger", file=sys.stderr)
        return []
    for warning in vetted.ignored:
        print(f"edgeaudit: warning: {redact_text(warning)}", file=sys.stderr)
    return vetted.entries


def _line(report: dict[str, Any], stem: Path) -> dict[str, Any]:
    """The run's history line: which targets and cadences it really covered (ledger.coverage)."""
    run = report["run"]
    cover = coverage(report)
    return {
        "started": run["started"], "finished": run["finished"], "selection": run["selection"],
        "complete": report["complete"] and evaluated(report), "demo": run["demo"], "targets": sorted(cover),
        "cadences": complete_cadences(cover, run["targets"]), "coverage": cover,
        "summary": report["summary"], "report": stem.with_suffix(".json").name, "measures": measures(report),
    }


def _write_bundle(stem: Path, parts: BundleParts) -> None:
    """The reports, the effective config, the AWS answers the run used, and the versions."""
    members = {
        stem.with_suffix(".json").name: stem.with_suffix(".json").read_bytes(),
        stem.with_suffix(".html").name: stem.with_suffix(".html").read_bytes(),
        "config.json": _json_bytes(parts.config),
        "aws-responses.json": _json_bytes(parts.responses),
        "versions.json": _json_bytes(versions()),
    }
    write_bundle(stem.with_suffix(".bundle.zip"), members, parts.sign_key)


def _json_bytes(value: Any) -> bytes:
    return redact_text(json.dumps(redact(jsonable(value)), indent=2, sort_keys=True)).encode() + b"\n"


def versions() -> dict[str, Any]:
    """The tool's and its dependencies' versions, for the evidence bundle."""
    packages = ("edgeaudit", "pytest", "pytest-xdist", "boto3", "botocore", "requests", "cryptography", "jinja2", "moto")
    found = {}
    for name in packages:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return {"python": platform.python_version(), "platform": platform.platform(), "packages": found}
