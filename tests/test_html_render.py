"""The HTML page as a pure function of the report: values from the network stay escaped in every
section, the outcome and severity lists come from where they are declared, the page inlines its
package styles and script, and a report missing a field the page needs renders nothing."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib import resources

import pytest

from edgeaudit.catalog import SEVERITIES
from edgeaudit.frameworks import summary as framework_summary
from edgeaudit.reporting.html_render import render
from edgeaudit.reporting.ledger import LedgerRow
from edgeaudit.reporting.trend import Trend
from edgeaudit.results import FAILING, OUTCOMES, WORST_FIRST

EVIL = '<img src=x onerror="alert(1)">'


def _report(evil: str = EVIL) -> dict:
    def result(control: str, outcome: str, severity: str) -> dict:
        return {"control": control, "target": evil, "title": evil, "severity": severity, "outcome": outcome,
                "categories": [evil], "resource": evil, "message": evil, "remediation": evil,
                "frameworks": {evil: evil}, "evidence": {evil: evil, "nested": {"k": evil}},
                "margins": {evil: {"observed": 3, "limit": 14, "better": "higher", "margin": -11, "unit": evil,
                                   "margin_ratio": -0.79}}}

    results = [result("EA-OPS-01", "failed", "P1"), result("EA-OPS-02", "error", "P2"),
               result("EA-OPS-04", "warned", "P2"), result("EA-OPS-03", "passed", "P3")]
    summary = {o: sum(r["outcome"] == o for r in results) for o in OUTCOMES}
    summary["failed_by_severity"] = {s: sum(r["severity"] == s and r["outcome"] in FAILING for r in results)
                                     for s in SEVERITIES}
    summary["frameworks"] = framework_summary(results)
    return {"schema": "edgeaudit.report/1", "complete": False, "summary": summary, "results": results,
            "run": {"started": evil, "finished": evil, "selection": evil, "demo": False, "tool_version": evil,
                    "targets": [evil], "aws_account": evil, "note": evil},
            "waivers": [{"control": "EA-OPS-01", "target": evil, "reason": evil, "approved_by": evil, "expires": evil,
                         "state": "live"}],
            "attestations": [{"control": "EA-MAN-01", "target": evil, "status": evil, "attested_by": evil,
                              "date": evil, "expires": evil, "evidence_url": "https://x.example/" + evil,
                              "state": "live"}]}


def _page(evil: str = EVIL) -> str:
    trend = Trend(previous_name=evil, previous_started=evil, new={("EA-OPS-01", evil)}, resolved={(evil, evil)},
                  still={("EA-OPS-02", evil): evil}, series={(evil, evil, evil): [1.0, 2.0]})
    ledger = [LedgerRow(evil, evil, evil, evil, "within")]
    return render(_report(evil), trend=trend, ledger=ledger, name=evil)


class _Elements(HTMLParser):
    """The elements and attributes a browser would build from the page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [name for name, _ in attrs]


def test_every_value_from_the_network_stays_escaped_in_every_section():
    page = _page()
    assert EVIL not in page
    elements = _Elements()
    elements.feed(page)
    assert "img" not in elements.tags and "onerror" not in elements.attributes
    assert elements.tags.count("script") == 2  # the results' JSON and the package's own script
    sections = re.findall(r'<section id="(\w+)"', page)
    assert sections == ["counts", "frameworks", "failures", "warnings", "margins", "trend", "waivers", "attestations", "cadence",
                        "all", "run"]
    for section in sections[1:]:  # each shows the hostile value, as text
        text = page.split(f'<section id="{section}"', 1)[1].split("</section>", 1)[0]
        assert "&lt;img src=x onerror=" in text, section
    data = page.split('id="results-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and "\\u003cimg" in data  # cannot close its <script> element


def test_outcomes_and_severities_are_listed_from_where_they_are_declared():
    assert sorted(WORST_FIRST) == sorted(OUTCOMES) and WORST_FIRST[:len(FAILING)] == FAILING
    page = _page("plain")
    outcome_filter = page.split('id="f-outcome">', 1)[1].split("</select>", 1)[0]
    assert re.findall(r"<option>(\w+)</option>", outcome_filter) == list(WORST_FIRST)
    severity_filter = page.split('id="f-severity">', 1)[1].split("</select>", 1)[0]
    assert re.findall(r"<option>(\w+)</option>", severity_filter) == list(SEVERITIES)
    counts = page.split('<div class="chips">', 1)[1].split("</div>", 1)[0]
    assert re.findall(r'class="o-(\w+)"', counts) == list(WORST_FIRST)
    rows = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert re.findall(r'<tr data-i="\d+"><td class="o-(\w+)"', rows) == ["failed", "error", "warned", "passed"]


def test_the_page_inlines_its_package_styles_and_script_and_loads_nothing():
    page = _page("plain")
    static = resources.files("edgeaudit.reporting").joinpath("static")
    assert static.joinpath("report.css").read_text(encoding="utf-8") in page
    assert static.joinpath("report.js").read_text(encoding="utf-8") in page
    assert "default-src 'none'" in page
    assert not re.search(r"<(script|img|link|iframe)[^>]*\b(src|href)=", page)


@pytest.mark.parametrize("drop", ["message", "severity", "evidence"])
def test_a_report_missing_a_field_the_page_needs_renders_nothing(drop):
    report = _report("plain")
    del report["results"][0][drop]
    with pytest.raises(KeyError):
        render(report)
