"""The controller's results, held packed (edgeaudit.reporting.resultstore), and its JUnit XML, spooled
(edgeaudit.run.junit.SpooledLogXML): what a fleet's run holds per test until its report is written."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from edgeaudit.reporting.html_render import verdict
from edgeaudit.reporting.report import build_report
from edgeaudit.reporting.resultstore import ResultStore, StoredResults, ordered

SECRET = "AKIAIOSFODNN7EXAMPLE"


def _result(control: str, target: str, outcome: str = "passed", severity: str = "P2", **extra) -> dict:
    return {"control": control, "target": target, "nodeid": f"suites/t.py::t[{target}]", "outcome": outcome,
            "severity": severity, "evidence": {"n": 1, "ratio": 0.1 + 0.2, "names": ["a", "b"]}, **extra}


def test_a_stored_result_reads_back_as_it_went_in_but_redacted():
    store = ResultStore()
    store["a"] = _result("EA-TLS-01", "www", message=f"key {SECRET} seen")
    back = store["a"]
    assert back == {**_result("EA-TLS-01", "www"), "message": back["message"]}
    assert back["message"] == "key <redacted> seen"
    assert back is not store["a"]  # each read unpacks a copy


def test_a_view_orders_unpacks_and_writes_back():
    store = ResultStore()
    for nodeid, control, target in (("3", "EA-B-01", "x"), ("1", "EA-A-01", "y"), ("2", "EA-A-01", "x")):
        store[nodeid] = _result(control, target)
    view = store.view(lambda r: (r["control"], r["target"]))
    assert isinstance(view, StoredResults) and len(view) == 3
    assert [(r["control"], r["target"]) for r in view] == [("EA-A-01", "x"), ("EA-A-01", "y"), ("EA-B-01", "x")]
    changed = {**view[0], "failing_since": "2026-12-01T00:00:00Z"}
    view[0] = changed
    assert store["2"]["failing_since"] == "2026-12-01T00:00:00Z"
    by_target = ordered(view, lambda r: (r["target"], r["control"]))
    assert isinstance(by_target, StoredResults)
    assert [(r["target"], r["control"]) for r in by_target] == [("x", "EA-A-01"), ("x", "EA-B-01"), ("y", "EA-A-01")]
    assert [r["control"] for r in ordered(list(view), lambda r: r["target"])] == ["EA-A-01", "EA-B-01", "EA-A-01"]


CASES = """
import pytest

def test_passes(record_property):
    record_property("owner", "ops")

def test_fails():
    print("captured before the failure")
    assert 1 == 2

@pytest.mark.skip(reason="not today")
def test_skipped():
    pass

@pytest.fixture
def broken():
    raise RuntimeError("setup breaks")

def test_errors(broken):
    pass
"""

SPOOLING = """
import os
from edgeaudit.run.junit import JunitNames

def pytest_configure(config):
    if os.environ.get("SPOOL_JUNIT") == "1":
        config.pluginmanager.register(JunitNames(config), "spooling")
"""


def _document(path) -> str:
    root = ET.parse(path).getroot()
    for element in root.iter():
        for volatile in ("time", "timestamp", "hostname"):
            element.attrib.pop(volatile, None)
    return ET.tostring(root, encoding="unicode")


def test_spooled_junit_xml_is_the_document_pytest_writes(pytester, monkeypatch):
    """Each case written to the spool once finalized, the document written from it at the end:
    the same document as pytest's junitxml, a collection error and captured output included."""
    pytester.makepyfile(test_cases=CASES, test_broken="import a_module_that_is_not_there")
    pytester.makeconftest(SPOOLING)
    documents = {}
    for spool in ("0", "1"):
        monkeypatch.setenv("SPOOL_JUNIT", spool)
        path = pytester.path / f"junit-{spool}.xml"
        pytester.inline_run(f"--junitxml={path}", "-o", "junit_logging=all", "-p", "no:cacheprovider", "-p", "no:edgeaudit",
                            "--continue-on-collection-errors")
        documents[spool] = _document(path)
    assert "captured before the failure" in documents["0"] and "a_module_that_is_not_there" in documents["0"]
    assert documents["1"] == documents["0"]
    assert "edgeaudit-spooled" not in documents["1"]


def test_the_page_verdict_of_stored_results_counts_no_gating_failure_below_the_gate():
    """A stored result is unpacked afresh at each read: the verdict must not tell a gating
    failure from one below the gate by object identity."""
    store = ResultStore()
    store["1"] = _result("EA-TLS-01", "www", outcome="failed", severity="P1")
    store["2"] = _result("EA-HDR-02", "www", outcome="failed", severity="P4")
    store["3"] = _result("EA-S3-01", "www")
    run = {"started": "2026-12-01T00:00:00Z", "finished": "2026-12-01T00:01:00Z", "fail_on": "P2", "exit_code": 1}
    summary = {"passed": 1, "warned": 0, "failed": 2, "error": 0, "skipped": 0, "waived": 0}
    report = build_report(run=run, summary=summary, results=store.view(lambda r: r["control"]), complete=True)
    css, headline, why = verdict(report)
    assert (css, headline) == ("not-compliant", "NOT COMPLIANT at P2 and above")
    assert why == "1 P1 failure: the run fails (--fail-on P2); 1 P4 failure below the gate"
