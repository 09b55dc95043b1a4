"""The HTML page as a pure function of the report: values from the network stay escaped in every
section, the outcome and severity lists come from where they are declared, the page inlines its
package styles and script, and a report missing a field the page needs renders nothing."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from importlib import resources

import pytest

from edgeaudit.reporting.html_render import evidence_view, render, verdict
from edgeaudit.reporting.ledger import LedgerRow, ledger
from edgeaudit.reporting.merge import merge
from edgeaudit.reporting.results import FAILING, OUTCOMES, WORST_FIRST, gates
from edgeaudit.reporting.trend import Trend
from edgeaudit.rules.catalog import SEVERITIES
from edgeaudit.rules.frameworks import summary as framework_summary

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
                              "state": "live"}],
            "thresholds": [{"key": evil, "effective": evil, "default": 1, "procedures": 1, "direction": "max",
                            "looser": True, "looser_than_default": True}],
            "scope": {"selected": ["EA-OPS-01"], "not_selected": [evil], "reasons": {evil: evil},
                      "targets": {"selected": [evil], "not_selected": [evil], "reasons": {evil: evil}}}}


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
    assert sections == ["counts", "frameworks", "failures", "warnings", "margins", "trend", "waivers", "thresholds",
                        "attestations", "cadence", "scope", "all", "run"]
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


HOSTILE = "<script>alert(1)</script>"
EVIDENCE = {
    "headers": {"https://a.example/": {"enforced": [HOSTILE], "report_only": None},
                "https://a.example/about.html": None},
    "behaviours": [{"path": "/*", "compress": True, "policy": None}, {"path": "/img/*", "compress": False}],
    "checked": True, "offenders": [], "sitemap": {"status": 200, "error": None},
}
DAYS = {"observed": 20, "limit": 14, "better": "higher", "margin": 6, "unit": "days", "margin_ratio": 0.4286}


class _Tables(HTMLParser):
    """Every table of a piece of the page as rows of cell texts (a nested table's text stays in its own table)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.open: list[list[list[str]]] = []
        self.tables: list[list[list[str]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.open.append([])
        elif tag == "tr":
            self.open[-1].append([])
        elif tag in ("td", "th"):
            self.open[-1][-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.tables.append(self.open.pop())

    def handle_data(self, data: str) -> None:
        if self.open and self.open[-1] and self.open[-1][-1]:
            self.open[-1][-1][-1] += data

    def with_header(self, *header: str) -> list[list[str]]:
        """The rows under the table whose first row is `header`."""
        found = [t for t in self.tables if t and [c.strip() for c in t[0]] == list(header)]
        assert len(found) == 1, (header, self.tables)
        return [[c.strip() for c in row] for row in found[0][1:]]


def _evidence_page() -> tuple[str, str]:
    """The page of a report whose failure and pass carry EVIDENCE and a measured value; and its failure card."""
    report = _report("plain")
    by_control = {r["control"]: r for r in report["results"]}
    by_control["EA-OPS-01"].update(evidence=dict(EVIDENCE, days_left=20), margins={"days_left": DAYS})
    by_control["EA-OPS-03"].update(evidence={"days_left": 40}, margins={"days_left": {**DAYS, "observed": 40,
                                                                                      "margin": 26}})
    page = render(report)
    card = page.split('<div class="card failed">', 1)[1].split("</div>\n", 2)[1]
    return page, card


def test_records_by_url_and_lists_of_records_are_tables_with_a_column_per_field():
    _, card = _evidence_page()
    tables = _Tables(card.split("<details", 1)[0])
    assert tables.with_header("URL", "enforced", "report_only") == [
        ["https://a.example/", HOSTILE, "missing"], ["https://a.example/about.html", "missing", "missing"]]
    assert tables.with_header("path", "compress", "policy") == [["/*", "yes", "missing"], ["/img/*", "no", "missing"]]
    rows = [[cell.strip() for cell in row] for table in tables.tables for row in table]
    assert ["status", "200"] in rows and ["error", "missing"] in rows  # a record of its own: field, value
    assert ["checked", "yes"] in rows and ["offenders", "none"] in rows


def test_evidence_shows_no_json_or_python_reprs_outside_the_folded_raw_json():
    page, card = _evidence_page()
    shown = card.split("<details", 1)[0]
    for repr_text in ("None", "null", "True", "true", "False", "false", "{", "[", "&#39;", "&#34;"):
        assert repr_text not in shown, repr_text
    assert '<span class=missing>missing</span>' in shown


def test_every_measured_value_shows_its_threshold_and_margin_in_its_card_and_in_all_results():
    page, card = _evidence_page()
    assert ["days_left", "20 days", "\u2265 14", "6 days"] in _Tables(card).with_header(
        "evidence", "observed", "threshold", "margin")
    rows = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0].split("<tr data-i=")[1:]
    measured = {re.search(r"<td>(EA-\w+-\d+)</td>", row)[1]: row.split("<td class=measured>", 1)[1] for row in rows}
    assert "days_left: 20 days &middot; &ge; 14 &middot; margin 6 days" in measured["EA-OPS-01"]
    assert "days_left: 40 days &middot; &ge; 14 &middot; margin 26 days" in measured["EA-OPS-03"]  # a pass too


def test_the_raw_json_is_folded_under_the_tables_and_is_the_evidence():
    _, card = _evidence_page()
    assert card.index("<table") < card.index('<details class=raw><summary>raw JSON</summary><pre>')
    raw = card.split("<summary>raw JSON</summary><pre>", 1)[1].split("</pre></details>", 1)[0]
    assert json.loads(html.unescape(raw)) == dict(EVIDENCE, days_left=20)


def test_a_hostile_header_value_stays_text():
    page, card = _evidence_page()
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in card.split("<details", 1)[0]  # in the table
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in card.split("<details", 1)[1]  # and in the raw JSON
    elements = _Elements()
    elements.feed(page)
    assert elements.tags.count("script") == 2


@pytest.mark.parametrize("value, view", [
    (None, {"text": "missing", "missing": True}),
    (False, {"text": "no", "missing": False}),
    ([], {"text": "none", "missing": False}),
    (["a"], {"items": [{"text": "a", "missing": False}]}),
    ({"k": 1}, {"pairs": [("k", {"text": "1", "missing": False})]}),
    ({"/x": {"a": 1}, "/y": None}, {"columns": ["URL", "a"], "rows": [
        [{"text": "/x", "missing": False}, {"text": "1", "missing": False}],
        [{"text": "/y", "missing": False}, {"text": "missing", "missing": True}]]}),
])
def test_evidence_view_lays_out_each_shape(value, view):
    assert evidence_view(value) == view


def _plain(results: list[dict], run: dict | None = None, complete: bool = True) -> dict:
    """A report of these results, counted as a run counts them."""
    summary = {o: sum(r["outcome"] == o for r in results) for o in OUTCOMES}
    summary["failed_by_severity"] = {s: sum(r["severity"] == s and r["outcome"] in FAILING for r in results)
                                     for s in SEVERITIES}
    run = {"started": "2026-11-27T09:00:00Z", "finished": "2026-11-27T09:01:00Z", "selection": "daily",
           "demo": False, "tool_version": "0.1.0", "targets": ["www"], "aws_account": "111122223333",
           **(run or {})}
    return {"schema": "edgeaudit.report/1", "complete": complete, "run": run, "summary": summary, "results": results}


def _result(control: str, outcome: str, severity: str, **fields) -> dict:
    return {"control": control, "target": "www", "title": f"{control} holds", "severity": severity,
            "outcome": outcome, "categories": ["security"], "resource": "https://www.example.com/",
            "message": f"{control} {outcome}", "remediation": f"fix {control}", "frameworks": {}, "evidence": {},
            **fields}


def _section(page: str, name: str) -> str:
    return page.split(f'<section id="{name}"', 1)[1].split("</section>", 1)[0]


def test_a_warning_has_its_card_by_severity_with_evidence_and_remediation():
    warning = _result("EA-TLS-01", "warned", "P2", message="certificate expires in 20 days",
                      evidence={"days_left": 20, "warn_days": 30, "fail_days": 14},
                      remediation="Renew the certificate in ACM")
    page = render(_plain([warning, _result("EA-HDR-06", "failed", "P3"), _result("EA-S3-01", "warned", "P4")]))
    warnings = _section(page, "warnings")
    assert re.findall(r"<h3>(P\d) ", warnings) == ["P2", "P4"]  # by severity, most severe first
    card = warnings.split('<div class="card warned">', 2)[1]
    assert "EA-TLS-01" in card and "certificate expires in 20 days" in card and "Renew the certificate in ACM" in card
    assert "days_left" in card and "warn_days" in card
    assert "EA-TLS-01" not in _section(page, "failures") and "EA-HDR-06" not in warnings
    assert "No control warned." in _section(render(_plain([_result("EA-S3-01", "passed", "P1")])), "warnings")


VERDICTS = [  # (results, --fail-on, the headline the page opens with)
    ([("failed", "P3")], "P2", "COMPLIANT at P2 and above (1 P3 failure below the gate)"),
    ([("failed", "P3"), ("error", "P4"), ("error", "P4")], "P2",
     "COMPLIANT at P2 and above (1 P3 failure, 2 P4 errors below the gate)"),
    ([("failed", "P3")], "P4", "NOT COMPLIANT at P4 and above"),
    ([("failed", "P3")], None, "NOT COMPLIANT at P4 and above"),  # a report from before fail_on was recorded
    ([("error", "P1"), ("failed", "P4")], "P1", "NOT EVALUATED at P1 and above"),
    ([("warned", "P1"), ("passed", "P2")], "P1", "COMPLIANT at P1 and above"),
]


@pytest.mark.parametrize("outcomes, fail_on, headline", VERDICTS)
def test_the_verdict_is_the_exit_codes_at_the_fail_on_level(outcomes, fail_on, headline):
    results = [_result(f"EA-OPS-{i:02d}", outcome, severity) for i, (outcome, severity) in enumerate(outcomes)]
    report = _plain(results, {"fail_on": fail_on} if fail_on else {})
    page = render(report)
    shown = page.split('id="verdict">', 1)[1].split("<small>", 1)[0]
    assert shown == headline
    assert f"--fail-on {fail_on or 'P4'}" in page.split('id="verdict">', 1)[1].split("</div>", 1)[0]
    failing = any(gates(r, fail_on or "P4") for r in results)  # what the run's exit code says
    assert shown.startswith("COMPLIANT") is not failing
    assert verdict(report)[1] == headline  # the CI step summary says the same
    if shown.startswith("COMPLIANT"):
        assert "the run passes" in verdict(report)[2]
        report["run"]["exit_code"] = 2  # pytest's own failure, say: the verdict does not hide it
        assert "exit code 2 for a cause outside the controls" in verdict(report)[2]


@pytest.mark.parametrize("fail_on", ["P1", "P4"])
def test_a_run_that_evaluated_nothing_is_not_evaluated_whatever_the_gate(fail_on):
    """No credentials, no network: every control ended `error` (or was skipped); below the gate too."""
    results = [_result("EA-OPS-01", "error", "P2"), _result("EA-S3-01", "error", "P3"),
               _result("EA-OPS-04", "skipped", "P3")]
    css, headline, why = verdict(_plain(results, {"fail_on": fail_on}))
    assert (css, headline) == ("not-evaluated", "NOT EVALUATED"), headline
    assert why.startswith("none of the 3 control results was evaluated (2 not evaluated, 1 skipped)")
    assert 'id="verdict">NOT EVALUATED<small>' in render(_plain(results, {"fail_on": fail_on}))


def test_the_verdict_counts_the_controls_not_evaluated():
    results = [_result("EA-OPS-01", "failed", "P2"), _result("EA-S3-01", "error", "P3"),
               _result("EA-S3-02", "error", "P4"), _result("EA-S3-03", "passed", "P1")]
    assert verdict(_plain(results, {"fail_on": "P2"}))[1] == "NOT COMPLIANT at P2 and above"
    assert "; 2 control results not evaluated" in verdict(_plain(results, {"fail_on": "P2"}))[2]
    assert "; 1 control result not evaluated" in verdict(_plain(results[2:], {"fail_on": "P3"}))[2]


def _shard(index: int, severity: str) -> dict:
    """Shard `index` of 2 of one run, with one failure of this severity."""
    result = {**_result(f"EA-OPS-0{index}", "failed", severity), "nodeid": f"t[{index}]", "cadence": ["daily"],
              "waiver": None, "duration_s": 0.1, "target": f"site-{index}"}
    report = _plain([result], {"api_calls": 1, "api_calls_by_operation": {}, "run_id": "r1",
                               "shard": {"index": index, "count": 2}, "fail_on": "P4", "targets": [f"site-{index}"]})
    return report


def test_a_merged_report_records_the_fail_on_of_the_merge_and_its_page_says_it():
    shard = _shard
    merged = merge([shard(1, "P3"), shard(2, "P4")], fail_on="P2")
    assert merged["run"]["fail_on"] == "P2" and merged["run"]["exit_code"] == 0
    assert verdict(merged)[1] == "COMPLIANT at P2 and above (1 P3 failure, 1 P4 failure below the gate)"
    gated = merge([shard(1, "P3"), shard(2, "P4")])
    assert gated["run"]["fail_on"] == "P4" and gated["run"]["exit_code"] == 1
    assert verdict(gated)[1] == "NOT COMPLIANT at P4 and above"


@pytest.mark.parametrize("fail_on, code, headline", [("P2", 0, "COMPLIANT at P2 and above (1 P3 failure, 1 P4 failure"),
                                                     ("P3", 1, "NOT COMPLIANT at P3 and above")])
def test_edgeaudit_merge_fail_on_is_the_merged_reports_gate_and_exit_code(tmp_path, fail_on, code, headline):
    paths = []
    for index, severity in ((1, "P3"), (2, "P4")):
        paths.append(tmp_path / f"shard-{index}.json")
        paths[-1].write_text(json.dumps(_shard(index, severity)))
    done = subprocess.run([sys.executable, "-m", "edgeaudit.cli", "merge", *map(str, paths), "--output",
                           str(tmp_path / "m"), "--fail-on", fail_on], capture_output=True, text=True)
    assert done.returncode == code, done.stderr
    merged = json.loads(next((tmp_path / "m").glob("*-merged.json")).read_text())
    assert merged["run"]["fail_on"] == fail_on and merged["run"]["exit_code"] == code
    page = next((tmp_path / "m").glob("*-merged.html")).read_text()
    assert page.split('id="verdict">', 1)[1].startswith(headline)


class _Text(HTMLParser):
    """The text a reader sees: no script, no style, no folded raw JSON (<pre>)."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hidden += tag in ("script", "style", "pre", "title")

    def handle_endtag(self, tag: str) -> None:
        self.hidden -= tag in ("script", "style", "pre", "title")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


PYTHON_REPRS = re.compile(r"\b(True|False|None)\b|\[['\"]|\{['\"]|['\"]: ")


def test_no_value_reads_as_python_writes_it():
    odd = {"flag": True, "off": False, "nothing": None, "hosts": ["www", "api"], "table": {"a": 1, "b": None},
           "records": [{"url": "/", "ok": True}], "nested": {"x": {"y": [False]}}, "empty": [], "blank": {}}
    thresholds = {"warn_days": 30, "strict": False, "hosts": ["www"], "limits": {"a": 1}}
    results = [_result("EA-TLS-01", outcome, severity, evidence={**odd, "thresholds": thresholds},
                       frameworks={"FSBP": "ACM.1, ACM.2"}, resource=None,
                       margins={"days_left": {"observed": 20, "limit": 30, "better": "higher", "margin": -10,
                                              "unit": None, "margin_ratio": None}})
               for outcome, severity in (("failed", "P1"), ("warned", "P2"), ("error", "P3"), ("passed", "P4"))]
    report = _plain(results, {**odd, "frameworks": [], "shard": {"index": 1, "count": 1}, "aws_account": None,
                              "api_calls_by_operation": {"s3:GetBucketPolicy": 2}, "fail_on": "P2"},
                    complete=False)
    report["summary"]["frameworks"] = framework_summary(results)
    report["waivers"] = [{"control": "EA-TLS-01", "target": None, "reason": ["a", "b"], "approved_by": None,
                          "expires": False, "state": "live"}]
    report["attestations"] = [{"control": "EA-MAN-01", "target": None, "status": True, "attested_by": None,
                               "date": None, "expires": ["2027-01-01"], "evidence_url": "none", "state": "live"}]
    report["scope"] = {"selected": ["EA-TLS-01"], "not_selected": ["EA-S3-01", "EA-S3-02"],
                       "reasons": {"EA-S3-01": "not selected by -m daily"},
                       "targets": {"selected": ["www"], "not_selected": ["api"], "reasons": {}}}
    ledger = [LedgerRow("daily", None, "", "since 2026-11-27 (every business day)", "never")]
    trend = Trend(previous_name="prev", previous_started="2026-11-26T09:00:00Z", new=set(), resolved=set(), still={},
                  series={("EA-TLS-01", "www", "days_left"): [1.0, 2.0]})
    text = _Text()
    text.feed(render(report, trend=trend, ledger=ledger, name="odd"))
    visible = " ".join(text.parts)
    found = PYTHON_REPRS.search(visible)
    assert not found, visible[max(0, found.start() - 80):found.end() + 80]
    for shown in ("www, api", "yes", "no", "ACM.1, ACM.2", "s3:GetBucketPolicy"):
        assert shown in visible


def test_a_cadence_outside_the_runs_selection_is_marked_so_not_never():
    now = dt.datetime(2026, 12, 1, 9, tzinfo=dt.timezone.utc)
    rows = ledger([], now)
    page = render(_plain([_result("EA-S3-01", "passed", "P1")], {"selection": "daily"}), ledger=rows)
    cadence = _section(page, "cadence")
    by_cadence = {re.search(r"<td>(\w+)</td>", row).group(1): row for row in cadence.split("<tr>")[2:]}
    assert set(by_cadence) == {"daily", "weekly", "monthly", "quarterly", "annually", "dr"}
    assert 'class="state-never">never' in by_cadence["daily"]  # selected and never run: that is a finding
    for other in ("weekly", "monthly", "quarterly", "annually", "dr"):
        assert "not in this run's selection" in by_cadence[other] and "state-never" not in by_cadence[other]
    everything = _section(render(_plain([], {"selection": "all"}), ledger=rows), "cadence")
    assert everything.count('class="state-never"') == 6 and "not in this run" not in everything
