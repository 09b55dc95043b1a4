"""Field data from the Chrome UX Report API (faked with `responses`, in the API's recorded
shapes), and how it decides EA-PERF-03/04/05: field first when present, the lab otherwise,
a 404 (an origin without enough traffic) skipped with its reason, no data at all an error."""

from __future__ import annotations

import importlib.util
import json

import pytest
import responses

from conftest import REPO
from edgeaudit.errors import NotEvaluated
from edgeaudit.evidence import Evidence
from edgeaudit.rules.config import Target
from edgeaudit.rules.thresholds import Thresholds
from edgeaudit.web import crux
from edgeaudit.web.vitals import PageLab, Vitals, add_field_data

ORIGIN = "https://www.example.com"
# A queryRecord answer as the API gives it: histograms, p75 per metric (CLS as a string), the period.
RECORD = {
    "record": {
        "key": {"formFactor": "PHONE", "origin": ORIGIN},
        "metrics": {
            "cumulative_layout_shift": {
                "histogram": [{"start": "0.00", "end": "0.10", "density": 0.83},
                              {"start": "0.10", "end": "0.25", "density": 0.11}, {"start": "0.25", "density": 0.06}],
                "percentiles": {"p75": "0.05"}},
            "first_contentful_paint": {
                "histogram": [{"start": 0, "end": 1800, "density": 0.79}, {"start": 1800, "end": 3000, "density": 0.14},
                              {"start": 3000, "density": 0.07}], "percentiles": {"p75": 1412}},
            "interaction_to_next_paint": {
                "histogram": [{"start": 0, "end": 200, "density": 0.88}, {"start": 200, "end": 500, "density": 0.09},
                              {"start": 500, "density": 0.03}], "percentiles": {"p75": 152}},
            "largest_contentful_paint": {
                "histogram": [{"start": 0, "end": 2500, "density": 0.81}, {"start": 2500, "end": 4000, "density": 0.13},
                              {"start": 4000, "density": 0.06}], "percentiles": {"p75": 2080}},
            "experimental_time_to_first_byte": {
                "histogram": [{"start": 0, "end": 800, "density": 0.74}, {"start": 800, "end": 1800, "density": 0.2},
                              {"start": 1800, "density": 0.06}], "percentiles": {"p75": 712}},
        },
        "collectionPeriod": {"firstDate": {"year": 2026, "month": 10, "day": 29},
                             "lastDate": {"year": 2026, "month": 11, "day": 25}},
    }
}
NOT_FOUND = {"error": {"code": 404, "message": "chrome ux report data not found", "status": "NOT_FOUND"}}


def record(**p75s):
    """RECORD with some p75 values replaced."""
    data = json.loads(json.dumps(RECORD))
    for metric, value in p75s.items():
        data["record"]["metrics"][metric]["percentiles"]["p75"] = value
    return data


def suite():
    spec = importlib.util.spec_from_file_location("perf_suite", REPO / "suites" / "test_performance.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def target(**extra) -> Target:
    return Target("www", f"{ORIGIN}/", "bucket", "E1", paths=("/",), crux_api_key_env="CRUX_KEY", **extra)


def lab_vitals(**lab) -> Vitals:
    run = {"load_s": 1.0, "fcp_s": 0.9, "lcp_s": 1.1, "cls": 0.0, "tbt_ms": 0, "weight_kb": 10, "requests": 4, **lab}
    return Vitals("mobile", {}, pages={"/": PageLab(f"{ORIGIN}/", [run])}, browser="Chromium 156")


@responses.activate
def test_query_reads_every_p75_in_the_thresholds_units():
    call = responses.post(crux.ENDPOINT, json=RECORD)
    data = crux.query(f"{ORIGIN}/about/", "secret-key")
    sent = json.loads(call.calls[0].request.body)
    assert sent == {"origin": ORIGIN, "formFactor": "PHONE", "metrics": list(crux.METRICS)}
    assert "key=secret-key" in call.calls[0].request.url
    assert data.p75("largest_contentful_paint") == 2.08 and data.p75("first_contentful_paint") == 1.412
    assert data.p75("cumulative_layout_shift") == 0.05  # a string in the answer
    assert data.p75("interaction_to_next_paint") == 152 and data.p75("experimental_time_to_first_byte") == 712
    assert data.evidence()["collection_period"] == "2026-10-29..2026-11-25"
    assert "secret-key" not in json.dumps(data.evidence())


@responses.activate
def test_an_origin_without_enough_traffic_is_skipped_with_the_reason():
    responses.post(crux.ENDPOINT, status=404, json=NOT_FOUND)
    with pytest.raises(crux.FieldUnavailable) as caught:
        crux.query(ORIGIN, "k", "DESKTOP")
    assert caught.value.skipped and "no DESKTOP data for https://www.example.com (404" in caught.value.reason


@responses.activate
def test_a_refused_key_is_an_error_not_a_skip():
    responses.post(crux.ENDPOINT, status=400, json={"error": {"code": 400, "message": "API key not valid."}})
    with pytest.raises(crux.FieldUnavailable) as caught:
        crux.query(ORIGIN, "bad")
    assert not caught.value.skipped and "400: API key not valid." in caught.value.reason


@responses.activate
def test_field_data_decides_lcp_cls_and_inp(monkeypatch):
    monkeypatch.setenv("CRUX_KEY", "k")
    responses.post(crux.ENDPOINT, json=record(cumulative_layout_shift="0.31"))
    vitals = lab_vitals(cls=0.0)  # the lab saw no shift; the field's p75 decides
    add_field_data(vitals, target())
    perf, evidence = suite(), Evidence()
    with pytest.raises(AssertionError, match=r"expected CLS under 0.1; larger: https://www.example.com 0.31"):
        perf.test_cumulative_layout_shift(vitals, Thresholds(), evidence)
    assert evidence.values["source"] == "field" and evidence.values["field"]["form_factor"] == "PHONE"
    evidence = Evidence()
    perf.test_largest_contentful_paint(vitals, Thresholds(), evidence)
    assert evidence.margins["lcp_s p75"]["observed"] == 2.08 and evidence.values["source"] == "field"
    evidence = Evidence()
    perf.test_responsiveness(vitals, Thresholds(), evidence)
    assert evidence.values["inp_ms p75"] == 152 and "tbt_ms /" not in evidence.values
    evidence = Evidence()
    perf.test_first_contentful_paint(vitals, Thresholds(), evidence)  # lab first: the browser measured it
    assert evidence.values["source"] == "lab"


@responses.activate
def test_a_404_falls_back_to_the_lab_and_says_so(monkeypatch):
    monkeypatch.setenv("CRUX_KEY", "k")
    responses.post(crux.ENDPOINT, status=404, json=NOT_FOUND)
    vitals = lab_vitals(cls=0.4)
    add_field_data(vitals, target())
    evidence = Evidence()
    with pytest.raises(AssertionError, match=r"larger: / 0.4"):
        suite().test_cumulative_layout_shift(vitals, Thresholds(), evidence)
    assert evidence.values["source"] == "lab"
    assert evidence.values["field"].startswith("skipped: CrUX has no PHONE data for https://www.example.com (404")


@responses.activate
def test_without_browser_field_fcp_stands_in_and_without_both_the_controls_error(monkeypatch):
    monkeypatch.setenv("CRUX_KEY", "k")
    responses.post(crux.ENDPOINT, json=RECORD)
    vitals = Vitals("mobile", {}, lab_error="no Chromium for the lab measurements: install Chromium")
    add_field_data(vitals, target())
    evidence = Evidence()
    suite().test_first_contentful_paint(vitals, Thresholds(), evidence)
    assert evidence.values["source"] == "field" and evidence.values["fcp_s p75"] == 1.412
    with pytest.raises(NotEvaluated, match="no Chromium"):
        suite().test_page_load_time(vitals, Thresholds(), Evidence())  # load time is lab only

    monkeypatch.delenv("CRUX_KEY")
    bare = Vitals("mobile", {}, lab_error="no Chromium for the lab measurements: install Chromium")
    add_field_data(bare, target())
    for control in ("test_page_load_time", "test_first_contentful_paint", "test_largest_contentful_paint",
                    "test_cumulative_layout_shift", "test_responsiveness"):
        with pytest.raises(NotEvaluated, match=r"install Chromium; field data: error: \$CRUX_KEY"):
            getattr(suite(), control)(bare, Thresholds(), Evidence())
