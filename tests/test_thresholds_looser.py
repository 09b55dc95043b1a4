"""Thresholds looser than the operational procedures: allowed, and shown. The report lists every
threshold the run judged by beside its default and the procedures' value, and the verdict
counts those looser than the procedures."""

from __future__ import annotations

import pytest

import report_schema
from edgeaudit.demo.builder import SiteSpec
from edgeaudit.reporting.html_render import verdict
from edgeaudit.rules.thresholds import MAX, MIN, SPECS, comparison


def _row(rows: list[dict], key: str) -> dict:
    return next(row for row in rows if row["key"] == key)


def test_the_procedures_values_are_the_seed_rows_of_the_catalog():
    assert {k: s.procedures for k, s in SPECS.items() if s.procedures is not None} == {
        "page_load_s": 3.0, "fcp_s": 1.5, "lcp_s": 2.5, "cls": 0.1}
    assert SPECS["lcp_s"].direction == MAX and SPECS["observatory_min_score"].direction == MIN


@pytest.mark.parametrize(("key", "value", "looser", "than_default"), [
    ("lcp_s", 600, True, True),           # a max: higher is looser
    ("lcp_s", 2.0, False, False),         # stricter
    ("cls", 0.1, False, False),           # the procedures' own value
    ("observatory_min_score", 50, False, True),  # a min: lower is looser; the procedures name no score
    ("observatory_min_score", 100, False, False),
    ("http_concurrency", 64, False, False),      # neither way is looser
])
def test_looser_depends_on_the_direction(key, value, looser, than_default):
    row = _row(comparison({key: value}), key)
    assert (row["effective"], row["looser"], row["looser_than_default"]) == (value, looser, than_default)
    assert row["default"] == SPECS[key].default and row["procedures"] == SPECS[key].procedures


def test_verdict_counts_thresholds_looser_than_the_procedures():
    report = {"summary": {"passed": 1, "warned": 0, "failed": 0, "error": 0, "skipped": 0, "waived": 0},
              "results": [], "complete": True, "run": {"fail_on": "P4", "exit_code": 0},
              "thresholds": comparison({"lcp_s": 600, "cls": 10, "observatory_min_score": 0})}
    _, headline, why = verdict(report)
    assert headline.endswith("with 2 thresholds looser than the procedures"), headline
    assert "looser than the procedures: cls, lcp_s" in why
    _, strict, _ = verdict({**report, "thresholds": comparison({})})
    assert "looser" not in strict


def test_report_lists_effective_thresholds_beside_the_procedures(suite_runner, world):
    site = world.add(SiteSpec(name="loose"))
    run = suite_runner([site], "-k", "origin_failover",
                       config_extra={"thresholds": {"lcp_s": 600, "observatory_min_score": 10, "rto_min": 30}})
    report = run.report
    report_schema.validate(report)
    rows = report["thresholds"]
    assert [r["key"] for r in rows] == list(SPECS)
    assert _row(rows, "lcp_s") == {"key": "lcp_s", "effective": 600, "default": 2.5, "procedures": 2.5,
                                   "direction": "max", "looser": True, "looser_than_default": True}
    assert _row(rows, "observatory_min_score")["looser_than_default"] is True
    assert _row(rows, "rto_min")["looser"] is False and _row(rows, "rto_min")["looser_than_default"] is False
    html = run.html
    assert "with 1 threshold looser than the procedures" in html
    assert "1 threshold looser than the operational procedures: lcp_s." in html
    assert "looser than the default" in html
