"""Field data from the Chrome UX Report API (faked with `responses`, in the API's recorded
shapes), and how EA-PERF-03/04/05 use it: every critical page is judged in the lab, the
origin's field p75 is a second verdict beside it (shown, not judged, right after a deployment),
a 404 (an origin without enough traffic) skipped with its reason, no lab an error."""

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
def test_a_slow_page_fails_however_fine_the_origin_is_in_the_field(monkeypatch):
    monkeypatch.setenv("CRUX_KEY", "k")
    responses.post(crux.ENDPOINT, json=RECORD)  # the origin's p75: LCP 2.08 s, CLS 0.05, INP 152 ms
    vitals = lab_vitals(lcp_s=6.0, cls=0.3, tbt_ms=450)
    add_field_data(vitals, target())
    perf, evidence = suite(), Evidence()
    with pytest.raises(AssertionError, match=r"expected LCP under 2.5s; slower: / 6.0s$"):
        perf.test_largest_contentful_paint(vitals, Thresholds(), evidence, False)
    assert evidence.values["source"] == "lab and field" and evidence.values["field"]["judged"] is True
    assert evidence.margins["lcp_s field p75"]["observed"] == 2.08 and evidence.margins["lcp_s /"]["observed"] == 6.0
    with pytest.raises(AssertionError, match=r"larger: / 0.3$"):
        perf.test_cumulative_layout_shift(vitals, Thresholds(), Evidence(), False)
    with pytest.raises(AssertionError, match=r"seen / 450ms$"):
        perf.test_responsiveness(vitals, Thresholds(), Evidence(), False)


@responses.activate
def test_field_data_is_a_second_verdict_beside_the_lab(monkeypatch):
    monkeypatch.setenv("CRUX_KEY", "k")
    responses.post(crux.ENDPOINT, json=record(cumulative_layout_shift="0.31", interaction_to_next_paint=380))
    vitals = lab_vitals(cls=0.0)  # the lab saw no shift; the field's p75 fails it all the same
    add_field_data(vitals, target())
    perf, evidence = suite(), Evidence()
    with pytest.raises(AssertionError, match=r"under 0.1; larger: https://www.example.com \(field p75\) 0.31"):
        perf.test_cumulative_layout_shift(vitals, Thresholds(), evidence, False)
    assert evidence.values["field"]["form_factor"] == "PHONE" and evidence.values["offenders"] == {
        "https://www.example.com (field p75)": 0.31}
    evidence = Evidence()
    with pytest.raises(AssertionError, match=r"field INP p75 <= 200ms; seen https://www.example.com \(field p75\) 380"):
        perf.test_responsiveness(vitals, Thresholds(), evidence, False)
    assert evidence.values["tbt_ms /"] == 0 and evidence.values["inp_ms field p75"] == 380
    evidence = Evidence()
    perf.test_largest_contentful_paint(vitals, Thresholds(), evidence, False)  # both verdicts pass
    assert evidence.margins["lcp_s field p75"]["observed"] == 2.08 and evidence.margins["lcp_s /"]["observed"] == 1.1


@responses.activate
def test_right_after_a_deployment_field_data_is_shown_not_judged(monkeypatch):
    monkeypatch.setenv("CRUX_KEY", "k")
    responses.post(crux.ENDPOINT, json=record(largest_contentful_paint=5200, cumulative_layout_shift="0.4",
                                              interaction_to_next_paint=900))
    vitals = lab_vitals()
    add_field_data(vitals, target())
    perf = suite()
    for control in ("test_largest_contentful_paint", "test_cumulative_layout_shift", "test_responsiveness"):
        evidence = Evidence()
        getattr(perf, control)(vitals, Thresholds(), evidence, True)
        assert evidence.values["field"]["judged"] is False and "before it" in evidence.values["field"]["why_not_judged"]
        assert not any("field" in name for name in evidence.margins) and evidence.values["offenders"] == {}
    with pytest.raises(AssertionError, match="slower: / 3.0s"):  # the lab still judges every page
        perf.test_largest_contentful_paint(lab_vitals(lcp_s=3.0), Thresholds(), Evidence(), True)


@responses.activate
def test_a_404_leaves_the_lab_alone_and_says_so(monkeypatch):
    monkeypatch.setenv("CRUX_KEY", "k")
    responses.post(crux.ENDPOINT, status=404, json=NOT_FOUND)
    vitals = lab_vitals(cls=0.4)
    add_field_data(vitals, target())
    evidence = Evidence()
    with pytest.raises(AssertionError, match=r"larger: / 0.4"):
        suite().test_cumulative_layout_shift(vitals, Thresholds(), evidence, False)
    assert evidence.values["source"] == "lab"
    assert evidence.values["field"].startswith("skipped: CrUX has no PHONE data for https://www.example.com (404")


@responses.activate
def test_without_a_browser_the_lab_controls_error_unless_the_field_fails(monkeypatch):
    monkeypatch.setenv("CRUX_KEY", "k")
    responses.post(crux.ENDPOINT, json=record(cumulative_layout_shift="0.31"))
    vitals = Vitals("mobile", {}, lab_error="no Chromium for the lab measurements: install Chromium")
    add_field_data(vitals, target())
    perf = suite()
    for control in ("test_first_contentful_paint", "test_largest_contentful_paint", "test_responsiveness"):
        with pytest.raises(NotEvaluated, match="no Chromium"):  # FCP has no field stand-in; LCP, INP pass there
            (getattr(perf, control)(vitals, Thresholds(), Evidence()) if control == "test_first_contentful_paint"
             else getattr(perf, control)(vitals, Thresholds(), Evidence(), False))
    with pytest.raises(NotEvaluated, match="no Chromium"):
        perf.test_page_load_time(vitals, Thresholds(), Evidence())  # load time is lab only
    evidence = Evidence()
    with pytest.raises(AssertionError, match=r"\(field p75\) 0.31"):  # a failing field verdict needs no lab
        perf.test_cumulative_layout_shift(vitals, Thresholds(), evidence, False)
    assert evidence.values["lab"].startswith("no Chromium")

    monkeypatch.delenv("CRUX_KEY")
    bare = Vitals("mobile", {}, lab_error="no Chromium for the lab measurements: install Chromium")
    add_field_data(bare, target())
    for control in ("test_page_load_time", "test_first_contentful_paint"):
        with pytest.raises(NotEvaluated, match=r"install Chromium; field data: error: \$CRUX_KEY"):
            getattr(perf, control)(bare, Thresholds(), Evidence())
    for control in ("test_largest_contentful_paint", "test_cumulative_layout_shift", "test_responsiveness"):
        with pytest.raises(NotEvaluated, match=r"install Chromium; field data: error: \$CRUX_KEY"):
            getattr(perf, control)(bare, Thresholds(), Evidence(), False)
