"""The controls in pytest-html's report, when pytest-html is installed and `--html` is given:
Control, Severity and Outcome columns, each control's details and evidence and a link to
edgeaudit's own report as extras, the targets and the AWS account in its environment table.

pytest-html's counts and filters know only pytest's outcomes, to which warned and waived are
passes and a control not evaluated is a failure: its Result cell shows edgeaudit's word
(Warned, Waived, Error) while keeping pytest's, which its filters read (see result_cell).

Everything is built on the controller from `report.edgeaudit_result` (xdist carries it from
the workers), passes edgeaudit.redact, and is escaped: pytest-html inserts cells, extras and
environment values as HTML. pytest-html itself is imported only when a run writes its report.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest

from edgeaudit.redact import redact, redact_text
from edgeaudit.reporting.results import OUTCOMES

if TYPE_CHECKING:
    from edgeaudit.run.run import Run

# (pytest-html's data-column-type, header): after its Result column
COLUMNS = (("outcome", "Outcome"), ("control", "Control"), ("severity", "Severity"))


# edgeaudit's outcomes that pytest-html would label with pytest's word ("Passed", "Failed")
RELABELLED = {"warned": "Warned", "waived": "Waived", "error": "Error"}
_CELL_TEXT = re.compile(r"<td.*?>(.*?)</td>")  # how pytest-html reads a cell's value (basereport._hydrate_data)


def result_cell(cell: str, shown: str) -> str:
    """A Result cell that shows `shown` and keeps pytest's label for pytest-html's filters.

    pytest-html takes a row's result (which its filters and sorting use) from the first
    `<td ...>text</td>` of the cell's HTML; a row whose result is not one of pytest's outcomes
    is hidden by every filter. The attribute holds pytest's label where that reading finds it;
    the browser shows the cell's text."""
    match = _CELL_TEXT.search(cell)
    kept = match.group(1) if match else "Passed"
    return f'<td class="col-result" data-pytest-result="<td>{escape(kept, quote=False)}</td>">{escape(shown)}</td>'


def register(config: pytest.Config, run: Run) -> None:
    """Join pytest-html where it writes its report: on the controller of a run given --html."""
    if run.worker or run.catalog or not config.pluginmanager.has_plugin("html"):
        return
    html_path = config.getoption("htmlpath", None)
    if html_path:
        # where pytest-html writes it (its own resolution of the option)
        page = Path.cwd() / Path(os.path.expandvars(html_path)).expanduser()
        view = PytestHtmlView(run, page, config.option.markexpr or "")
        config.pluginmanager.register(view, "edgeaudit-pytest-html")


def report_link(report: Path, page: Path) -> str:
    """edgeaudit's HTML report as seen from pytest-html's page: relative, so that the two
    files can be moved or published together."""
    try:
        return quote(Path(os.path.relpath(report.resolve(), page.resolve().parent)).as_posix())
    except ValueError:  # another drive (Windows): no relative path exists
        return report.resolve().as_uri()


class PytestHtmlView:
    """pytest-html's hooks, filled from the results of the run (controller only)."""

    def __init__(self, run: Run, page: Path, selection: str) -> None:
        self.run, self.selection = run, selection
        self.link = report_link(run.stem.with_suffix(".html"), page) if run.stem is not None else None
        self.latest: dict[str, dict[str, Any]] = {}  # a test's result until its teardown report
        self.page_data: Any = None  # pytest-html's ReportData, handed over with the title

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_report_title(self, report: Any) -> None:
        self.page_data = report
        demo = " (demo)" if self.run.demo is not None else ""
        report.title = f"edgeaudit: {self.selection or 'all controls'}{demo}"

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells[1:1] = [f'<th class="sortable" data-column-type="{key}">{label}</th>' for key, label in COLUMNS]

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        if not cells:  # another plugin removed the row
            return
        result = getattr(report, "edgeaudit_result", None) or {}
        if result.get("outcome") in RELABELLED:
            cells[0] = result_cell(cells[0], RELABELLED[result["outcome"]])
        cells[1:1] = [f'<td class="col-{key}">{escape(str(result.get(key, "")))}</td>' for key, _ in COLUMNS]

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """pytest-html gathers a test's extras from all its reports when the teardown report
        arrives: the final result's extras are added to that one."""
        result = getattr(report, "edgeaudit_result", None)
        if result:
            self.latest[report.nodeid] = result
        if report.when == "teardown" and report.nodeid in self.latest:
            report.extras = [*getattr(report, "extras", []), *self.extras(self.latest.pop(report.nodeid))]

    def extras(self, result: dict[str, Any]) -> list[dict[str, Any]]:
        """The details shown below the row, the evidence as JSON, and the link to edgeaudit's report."""
        from pytest_html import extras  # only here: edgeaudit runs without pytest-html

        clean = redact(result)
        shown = [extras.html(details_html(clean)), extras.json(clean["evidence"], name="evidence")]
        if self.link:
            shown.append(extras.url(escape(self.link), name="edgeaudit report"))
        return shown

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str],
                                    session: pytest.Session) -> None:
        """edgeaudit's counts above pytest's, and the run in the environment table (the account
        is known only once the session started, after pytest-html read its metadata)."""
        counts = Counter(r["outcome"] for r in self.run.results.values())
        line = "edgeaudit: " + ", ".join(f"{counts[o]} {o}" for o in OUTCOMES)
        if self.link:
            line += f' &mdash; <a href="{escape(self.link)}">edgeaudit report</a>'
        prefix.append(f'<p class="edgeaudit-summary">{line}</p>')
        if self.page_data is not None:
            environment = self.page_data.data.get("environment") or {}
            self.page_data.set_data("environment", {**redact(environment), **self.environment()})

    def environment(self) -> dict[str, Any]:
        """The run's rows of the environment table, escaped (pytest-html shows them as HTML)."""
        run = self.run
        rows: dict[str, Any] = {
            "edgeaudit targets": {escape(redact_text(t.name)): escape(redact_text(t.url)) for t in run.config.targets},
            "AWS account": escape(f"{run.aws_account} ({run.aws_account_alias})" if run.aws_account and
                                  run.aws_account_alias else run.aws_account or
                                  "unknown (the account could not be read)"),
            "edgeaudit run id": escape(run.run_id),
        }
        if self.link:
            rows["edgeaudit report"] = f'<a href="{escape(self.link)}">{escape(run.stem.name + ".html")}</a>'
        return rows


def details_html(result: dict[str, Any]) -> str:
    """A control's result as pytest-html shows it below the row: what it found, where, the
    waiver, the remediation, and the evidence."""
    parts = [f"<p><strong>{escape(result['control'])}</strong> ({escape(result['severity'])}) "
             f"on {escape(result['target'])}: <strong>{escape(result['outcome'])}</strong> &mdash; "
             f"{escape(result['title'])}</p>"]
    if result.get("message"):
        parts.append(f"<p>{escape(result['message'])}</p>")
    if result.get("resource"):
        parts.append(f"<p>resource: {escape(result['resource'])}</p>")
    waiver = result.get("waiver")
    if waiver:
        parts.append(f"<p>waiver ({escape(str(waiver.get('status', '')))}): {escape(str(waiver.get('reason', '')))}, "
                     f"approved by {escape(str(waiver.get('approved_by', '')))}, "
                     f"expires {escape(str(waiver.get('expires', '')))}</p>")
    if result.get("remediation"):
        parts.append(f"<p>remediation: {escape(result['remediation'])}</p>")
    evidence = json.dumps(result.get("evidence") or {}, indent=2, sort_keys=True, default=str)
    parts.append(f'<pre class="edgeaudit-evidence">{escape(evidence)}</pre>')
    return '<div class="edgeaudit-result">' + "".join(parts) + "</div>"
