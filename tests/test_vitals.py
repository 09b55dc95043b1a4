"""The lab metrics' arithmetic (CLS session windows, TBT, LCP before hidden, percentiles), the
device profiles, and the lab's answer when there is no browser."""

from __future__ import annotations

import pytest

from edgeaudit.checks.ttfb import percentile
from edgeaudit.errors import NotEvaluated
from edgeaudit.rules.config import ConfigError, Target, parse
from edgeaudit.web.browser import LAB_USER_AGENT
from edgeaudit.web.vitals import PROFILES, cls_score, lcp_ms, measure, summarize_run, tbt_ms


def shift(t, value):
    return {"t": t, "value": value}


def test_cls_is_the_largest_session_window():
    # window 1: 0.05 + 0.05 (gap 500 ms); a 1.2 s gap opens window 2: 0.08 + 0.04 + 0.03
    shifts = [shift(100, 0.05), shift(600, 0.05), shift(1800, 0.08), shift(2300, 0.04), shift(3000, 0.03)]
    assert cls_score(shifts) == 0.15


def test_a_session_window_closes_after_five_seconds():
    shifts = [shift(t, 0.02) for t in range(0, 7000, 900)]  # never a 1 s gap; 8 shifts over 6.3 s
    assert cls_score(shifts) == 0.12  # the first 5 s hold 6 shifts (0..4500)


def test_shifts_right_after_input_do_not_count():
    assert cls_score([shift(1000, 0.3), shift(3000, 0.02)], inputs=[800]) == 0.02
    assert cls_score([shift(1000, 0.3)], inputs=[400]) == 0.3  # 600 ms after the input: counted
    assert cls_score([]) == 0.0


def test_tbt_counts_the_part_over_50ms_of_long_tasks_after_fcp():
    tasks = [{"t": 100, "d": 300}, {"t": 600, "d": 120}, {"t": 900, "d": 50}, {"t": 1500, "d": 400}]
    assert tbt_ms(tasks, fcp=500) == 70 + 0 + 350
    assert tbt_ms(tasks, fcp=None) == 250 + 70 + 350


def test_lcp_is_the_last_candidate_before_the_page_is_hidden():
    assert lcp_ms([200.0, 900.0, 1500.0]) == 1500.0
    assert lcp_ms([200.0, 900.0, 1500.0], hidden_ms=1000.0) == 900.0
    assert lcp_ms([]) is None


def test_a_run_is_summarized_in_the_thresholds_units():
    raw = {"load": 1234.5, "fcp": 456.7, "ttfb": 80.04, "lcp": [456.7, 789.0], "hidden": None,
           "shifts": [shift(2000, 0.12)], "inputs": [], "longtasks": [{"t": 600, "d": 250}],
           "document": {"transfer": 2048}, "resources": [{"url": "a", "transfer": 1024}, {"url": "b", "transfer": 0}]}
    assert summarize_run(raw) == {"load_s": 1.234, "fcp_s": 0.457, "lcp_s": 0.789, "cls": 0.12, "tbt_ms": 200,
                                  "ttfb_ms": 80.0, "weight_kb": 3.0, "requests": 3}


def test_percentile_is_nearest_rank():
    values = list(range(1, 21))
    assert percentile(values, 0.95) == 19 and percentile(values, 0.5) == 10 and percentile([7], 0.95) == 7


def test_mobile_profile_throttles_as_lighthouse_does():
    mobile = PROFILES["mobile"]
    assert (mobile["cpu_slowdown"], mobile["rtt_ms"], mobile["down_kbps"]) == (4, 150, 1638.4)
    assert mobile["is_mobile"] and PROFILES["desktop"]["cpu_slowdown"] == 1
    assert "(lab vitals)" in LAB_USER_AGENT


def test_a_named_browser_that_is_missing_is_an_error_with_the_fix(tmp_path):
    target = Target("www", "https://www.example.com/", "b", "E1", browser_path=str(tmp_path / "chromium"))
    vitals = measure(target, runs=1)
    assert vitals.pages == {} and "is not an executable file" in vitals.lab_error
    with pytest.raises(NotEvaluated, match=r"apt-get install chromium.*configure a CrUX key"):
        vitals.lab()


def test_device_and_browser_path_are_target_keys(tmp_path):
    entry = {"name": "www", "url": "https://www.example.com/", "bucket": "b", "distribution_id": "E1"}
    config = parse(tmp_path / "edgeaudit.toml", {"targets": [{**entry, "device": "desktop",
                                                              "browser_path": "/opt/chromium"}]})
    assert (config.targets[0].device, config.targets[0].browser_path) == ("desktop", "/opt/chromium")
    assert parse(tmp_path / "e.toml", {"targets": [entry]}).targets[0].device == "mobile"
    with pytest.raises(ConfigError, match='device.*"mobile"'):
        parse(tmp_path / "edgeaudit.toml", {"targets": [{**entry, "device": "tablet"}]})


def test_one_browser_serves_the_whole_run():
    """A fleet's targets are measured one after another in one Chromium; a thread other than the
    owner's gets a browser of its own; a closed shared browser starts again on the next use."""
    import threading

    from edgeaudit.web.browser import SharedBrowser, find_chromium

    executable = find_chromium()
    if executable is None:
        pytest.skip("no Chromium on this machine")
    shared = SharedBrowser()
    try:
        with shared.use(executable) as first:
            pass
        with shared.use(executable) as second:
            assert second is first and second.is_connected()
        seen = []

        def elsewhere():
            with shared.use(executable) as other:
                seen.append((other is first, other.is_connected()))

        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
        assert seen == [(False, True)]
        shared.close()
        assert not first.is_connected()
        with shared.use(executable) as again:
            assert again is not first and again.is_connected()
    finally:
        shared.close()
