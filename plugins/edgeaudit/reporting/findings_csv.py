"""The report's results as CSV (`<stem>.csv`): one row per result, for a spreadsheet, a ticket
import or a GRC tool. Cells are redacted, and a cell a spreadsheet would read as a formula (it
starts with = + - @, or a tab or carriage return) gets a leading ' so it stays text: a message
holds what a site answered, and that must not run in whoever opens the file."""

from __future__ import annotations

import csv
import io
from typing import Any

from edgeaudit.redact import redact_text

COLUMNS = ("control", "title", "severity", "target", "outcome", "message", "resource", "measured", "threshold",
           "frameworks", "waiver")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """The cell as text, redacted, never a formula."""
    text = redact_text("" if value is None else str(value))
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _measured(margins: dict[str, dict[str, Any]]) -> str:
    return "; ".join(f"{name} = {m['observed']}{' ' + m['unit'] if m.get('unit') else ''}"
                     for name, m in margins.items())


def _threshold(margins: dict[str, dict[str, Any]]) -> str:
    """A minimum as `>=`, a maximum as `<=` (evidence.measure's `better`)."""
    return "; ".join(f"{name} {'>=' if m.get('better') == 'higher' else '<='} {m['limit']}"
                     f"{' ' + m['unit'] if m.get('unit') else ''}" for name, m in margins.items())


def _waiver(waiver: dict[str, Any] | None) -> str:
    if not waiver:
        return ""
    state = " (expired: not applied)" if waiver.get("status") == "expired" else ""
    return f"until {waiver.get('expires')}{state}, approved by {waiver.get('approved_by')}: {waiver.get('reason')}"


def row(result: dict[str, Any]) -> list[str]:
    margins = result.get("margins") or {}
    frameworks = "; ".join(f"{name} {ids}" for name, ids in (result.get("frameworks") or {}).items())
    values = (result["control"], result["title"], result["severity"], result["target"], result["outcome"],
              result["message"], result["resource"], _measured(margins), _threshold(margins), frameworks,
              _waiver(result.get("waiver")))
    return [safe_cell(value) for value in values]


def csv_text(report: dict[str, Any]) -> str:
    """<stem>.csv: a header row, then one row per result (RFC 4180 line ends, what spreadsheets expect)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(row(result) for result in report["results"])
    return buffer.getvalue()
