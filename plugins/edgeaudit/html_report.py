"""The HTML compliance report, written through pytest-html.

pytest-html gives the self-contained page, the results table and its filters; this module adds
the verdict and the counts by severity at the top, the control columns (id, severity, outcome,
target, message) and the evidence table in each row, and writes the file atomically with
secrets redacted. Every value that came from a control or the network is escaped here.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any, Callable

import pytest
from pytest_html.report_data import ReportData
from pytest_html.selfcontained_report import SelfContainedReport
from pytest_html.util import _process_css, _read_template

import pytest_html

from .catalog import INCIDENT_LEVELS
from .redact import scrub_document
from .report import write_atomic
from .results import SEVERITY_RANK

STYLE = """
.edgeaudit-verdict { font-size: 1.6em; font-weight: bold; padding: .5em 1em; border-radius: 6px; margin: .5em 0; }
.edgeaudit-verdict.compliant { background: #e3f4e1; color: #1e5e1a; }
.edgeaudit-verdict.not-compliant { background: #fde2e1; color: #8a1c17; }
.edgeaudit-verdict.not-evaluated { background: #fff1cc; color: #7a5200; }
.edgeaudit-demo { font-size: 1.4em; font-weight: bold; color: #7a3e00; letter-spacing: .2em; }
table.edgeaudit-counts, table.edgeaudit-evidence { border-collapse: collapse; margin: .5em 0; }
table.edgeaudit-counts td, table.edgeaudit-counts th, table.edgeaudit-evidence td, table.edgeaudit-evidence th
  { border: 1px solid #ccc; padding: 2px 8px; text-align: left; vertical-align: top; }
.edgeaudit-outcome { font-weight: bold; text-transform: uppercase; }
.edgeaudit-outcome.failed, .edgeaudit-outcome.error { color: #b00; }
.edgeaudit-outcome.warned, .edgeaudit-outcome.waived { color: #a60; }
.edgeaudit-outcome.passed { color: #171; }
.edgeaudit-state.expired { color: #b00; font-weight: bold; } .edgeaudit-state.expiring { color: #a60; }
@media print { .controls, .filters, .collapse, .summary__reload, p.filter { display: none; } }
"""


def _cell(name: str, value: str, css: str = "") -> str:
    return f'<td class="col-{name} {css}">{value}</td>'


def _value(value: Any) -> str:
    if isinstance(value, (dict, list)):
        import json

        value = json.dumps(value, sort_keys=True, default=str)
    return escape(str(value))


def evidence_table(evidence: dict[str, Any]) -> str:
    rows = "".join(f"<tr><th>{escape(str(k))}</th><td>{_value(v)}</td></tr>" for k, v in evidence.items())
    return f'<table class="edgeaudit-evidence"><tr><th>evidence</th><th>observed</th></tr>{rows}</table>'


def verdict(summary: dict[str, Any], complete: bool) -> tuple[str, str]:
    if summary["failed"]:
        return "not-compliant", "NOT COMPLIANT"
    if summary["error"] or not complete:
        return "not-evaluated", "NOT EVALUATED" if summary["error"] else "INCOMPLETE"
    return "compliant", "COMPLIANT"


def _link(url: str) -> str:
    """Evidence links are http(s) URLs (the config checks it); anything else is shown as text."""
    if url.startswith(("https://", "http://")):
        return f'<a href="{escape(url, quote=True)}" rel="noopener noreferrer">{escape(url)}</a>'
    return escape(url)


def _waiver_table(waivers: list[dict[str, Any]]) -> str:
    if not waivers:
        return ""
    rows = "".join(
        f"<tr><td>{escape(w['control'])}</td><td>{escape(w.get('target') or 'all')}</td>"
        f"<td>{escape(w['reason'])}</td><td>{escape(w['approved_by'])}</td><td>{escape(w['expires'])}</td>"
        f'<td class="edgeaudit-state {escape(w["state"])}">{escape(w["state"])}</td></tr>' for w in waivers)
    return ('<h3>Waivers</h3><table class="edgeaudit-counts"><tr><th>control</th><th>target</th><th>reason</th>'
            f"<th>approved by</th><th>expires</th><th>state</th></tr>{rows}</table>")


def _attestation_table(attestations: list[dict[str, Any]]) -> str:
    if not attestations:
        return ""
    rows = "".join(
        f"<tr><td>{escape(a['control'])}</td><td>{escape(a.get('target') or 'all')}</td>"
        f"<td>{escape(a['status'])}</td><td>{escape(a['attested_by'])}</td><td>{escape(a['date'])}</td>"
        f"<td>{escape(a['expires'])}</td><td>{_link(a['evidence_url'])}</td>"
        f'<td class="edgeaudit-state {escape(a["state"])}">{escape(a["state"])}</td></tr>' for a in attestations)
    return ('<h3>Attestations</h3><table class="edgeaudit-counts"><tr><th>control</th><th>target</th>'
            "<th>status</th><th>attested by</th><th>date</th><th>expires</th><th>evidence</th><th>state</th></tr>"
            f"{rows}</table>")


class HtmlReport(SelfContainedReport):
    """pytest-html's self-contained report, fed with edgeaudit's results."""

    def __init__(self, path: Path, config: pytest.Config, state: Callable[[], dict[str, Any]]) -> None:
        resources = Path(pytest_html.__file__).parent / "resources"
        css = _process_css(resources / "style.css", []) + STYLE
        super().__init__(str(path), config, ReportData(config), _read_template([resources]), css)
        self._final_path = path
        self._state = state  # () -> {"results": {nodeid: result}, "summary", "run", "complete"}

    # -- pytest-html hooks ---------------------------------------------------------------------
    def pytest_html_report_title(self, report: Any) -> None:
        report.title = f"edgeaudit compliance report: {self._final_path.stem}"

    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells[1:1] = [
            '<th class="sortable" data-column-type="control">Control</th>',
            '<th class="sortable" data-column-type="severity">Severity</th>',
            '<th class="sortable" data-column-type="outcome">Outcome</th>',
            '<th class="sortable" data-column-type="target">Target</th>',
            "<th>Message</th>",
        ]

    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        result = getattr(report, "edgeaudit_result", None) or {}
        outcome = result.get("outcome", "")
        cells[1:1] = [
            _cell("control", escape(result.get("control", ""))),
            _cell("severity", escape(result.get("severity", ""))),
            _cell("outcome", escape(outcome), f"edgeaudit-outcome {escape(outcome)}"),
            _cell("target", escape(result.get("target", ""))),
            _cell("message", escape(result.get("message", ""))),
        ]

    def pytest_html_results_table_html(self, report: pytest.TestReport, data: list[str]) -> None:
        result = getattr(report, "edgeaudit_result", None)
        if not result:
            return
        parts = [f"<p><b>{escape(result['control'])}</b> {escape(result['title'])}"
                 f" &middot; resource: {escape(str(result.get('resource') or ''))}</p>"]
        if result["evidence"]:
            parts.append(evidence_table(result["evidence"]))
        if result.get("waiver"):
            w = result["waiver"]
            parts.append(f"<p>Waiver ({escape(w['status'])}): {escape(w['reason'])}, approved by "
                         f"{escape(w['approved_by'])}, expires {escape(w['expires'])}</p>")
        if result["remediation"]:
            parts.append(f"<p><b>Remediation:</b> {escape(result['remediation'])}</p>")
        data[0:0] = ["".join(parts)]

    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str],
                                    session: pytest.Session) -> None:
        state = self._state()
        counts, run = state["summary"], state["run"]
        css, text = verdict(counts, state["complete"])
        head = []
        if run.get("demo"):
            head.append('<p class="edgeaudit-demo">DEMO: embedded demo environment, not a real site</p>')
        head.append(f'<div class="edgeaudit-verdict {css}">{text}</div>')
        head.append(f"<p>Targets: {escape(', '.join(run['targets']))} &middot; selection: "
                    f"{escape(run['selection'])} &middot; started {escape(run['started'])} &middot; "
                    f"AWS account: {escape(str(run.get('aws_account') or 'unknown'))} &middot; "
                    f"edgeaudit {escape(run['tool_version'])} &middot; AWS API calls: {run['api_calls']}</p>")
        outcome_row = "".join(f"<td>{escape(k)}: {counts[k]}</td>" for k in
                              ("passed", "warned", "failed", "error", "skipped", "waived"))
        head.append(f'<table class="edgeaudit-counts"><tr>{outcome_row}</tr></table>')
        rows = "".join(
            f"<tr><td>{level} {escape(info['name'])}</td><td>{counts['failed_by_severity'][level]}</td>"
            f"<td>{escape(info['response'])}</td><td>{escape(info['escalation'])}</td></tr>"
            for level, info in INCIDENT_LEVELS.items())
        head.append('<table class="edgeaudit-counts"><tr><th>severity</th><th>failed or error</th>'
                    f"<th>response time</th><th>escalation</th></tr>{rows}</table>")
        failing = sorted((r for r in state["results"].values() if r["outcome"] in ("failed", "error")),
                         key=lambda r: (SEVERITY_RANK.get(r["severity"], 9), r["control"], r["target"]))
        if failing:
            items = "".join(
                f"<li><b>{escape(r['severity'])} {escape(r['control'])}</b> [{escape(r['target'])}] "
                f"{escape(r['outcome'])}: {escape(r['message'])}</li>" for r in failing)
            head.append(f"<h3>Failures and errors</h3><ul>{items}</ul>")
        report = state.get("report") or {}
        head.append(_waiver_table(report.get("waivers", [])))
        head.append(_attestation_table(report.get("attestations", [])))
        prefix.extend(part for part in head if part)

    # -- writing -------------------------------------------------------------------------------
    def _write_report(self, rendered_report: str) -> None:
        write_atomic(self._final_path, scrub_document(rendered_report))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """edgeaudit prints its own summary with every report path."""
