"""Without xdist, a target's independent AWS reads run side by side, up to `http_concurrency`,
and only the reads that the selected controls make."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest

from edgeaudit.demo.builder import SiteSpec


@contextlib.contextmanager
def watched(world, delay_s: float = 0.05):
    """Count the suite's requests in flight at the moto server (each held `delay_s`, as a network
    would): the peak is how many reads ran side by side."""
    server = world.server._server  # ThreadedMotoServer's WSGI server looks its app up per request
    app = server.app
    seen = {"now": 0, "peak": 0, "requests": 0}
    lock = threading.Lock()

    def counting(environ, start_response):
        if "edgeaudit/" not in environ.get("HTTP_USER_AGENT", ""):  # the edges read S3 too
            return app(environ, start_response)
        if environ.get("PATH_INFO", "").startswith("/policy/"):  # Access Analyzer, which moto lacks: its
            return app(environ, start_response)                  # server error is retried, one call counted
        with lock:
            seen["now"] += 1
            seen["requests"] += 1
            seen["peak"] = max(seen["peak"], seen["now"])
        try:
            time.sleep(delay_s)
            return app(environ, start_response)
        finally:
            with lock:
                seen["now"] -= 1

    server.app = counting
    try:
        yield seen
    finally:
        server.app = app


def test_reads_run_side_by_side_up_to_http_concurrency(world, suite_runner):
    site = world.add(SiteSpec(name="prefetch"))
    for concurrency in (3, 1):
        with watched(world) as seen:
            run = suite_runner([site], "-m", "weekly and not performance",
                               config_extra={"thresholds": {"http_concurrency": concurrency}})
        assert run.report["complete"] is True, run.output
        assert seen["peak"] == concurrency, (concurrency, seen)
        by_operation = run.report["run"]["api_calls_by_operation"]
        assert seen["requests"] == run.report["run"]["api_calls"] - by_operation.get(
            "accessanalyzer:CheckNoPublicAccess", 0), "every read counted once"


@pytest.mark.parametrize("cadence", ["daily", "weekly", "monthly", "quarterly"])
def test_reading_ahead_makes_no_call_the_controls_would_not(world, suite_runner, cadence):
    """The same calls as a run that reads nothing ahead (http_concurrency = 1), for each cadence."""
    site = world.add(SiteSpec(name=f"ahead-{cadence}"))
    calls = []
    for concurrency in (8, 1):
        run = suite_runner([site], "-m", f"{cadence} and not performance",
                           config_extra={"thresholds": {"http_concurrency": concurrency}})
        assert run.report["complete"] is True, run.output
        calls.append(run.report["run"]["api_calls_by_operation"])
    assert calls[0] == calls[1]


def test_only_the_selected_controls_reads_are_made(world, suite_runner):
    site = world.add(SiteSpec(name="prefetch-one"))
    run = suite_runner([site], "-k", "test_distribution_is_deployed")
    assert [r["control"] for r in run.report["results"]] == ["EA-DEP-01"], run.output
    # the control's one read, and the controller's questions for the report's account and its alias
    assert run.report["run"]["api_calls_by_operation"] == {"cloudfront:GetDistribution": 1,
                                                           "sts:GetCallerIdentity": 1, "iam:ListAccountAliases": 1}
