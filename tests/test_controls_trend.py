"""EA-PERF-08, the performance trend, both ways in real headless Chromium: a site whose history
shows it was as fast before passes; one that was ten times faster four weeks running warns; one
with no earlier weekly runs is not evaluated, and its measurements enter the history."""

from __future__ import annotations

import json
import os

import pytest

from conftest import run_suite
from edgeaudit.demo.builder import SiteSpec
from edgeaudit.rules import tomlwrite
from edgeaudit.web.browser import find_chromium

if find_chromium() is None and os.environ.get("CI"):
    raise RuntimeError("CI must install Debian's chromium: the lab vitals tests may not skip there")
pytestmark = pytest.mark.skipif(find_chromium() is None, reason="no Chromium on this machine (apt-get install chromium)")


@pytest.fixture(scope="module")
def site(world):
    return world.add(SiteSpec(name="trend", paths=("/",)))


def _line(day: int, measures: dict[str, float]) -> str:
    started = f"2026-11-{day:02d}T07:00:00Z"
    return json.dumps({"started": started, "finished": started, "selection": "weekly", "complete": True,
                       "demo": False, "targets": ["trend"], "cadences": ["weekly"], "measures": measures}) + "\n"


def _run(world, site, tmp_path, earlier: dict[str, float] | None, weeks: int = 4):
    history = tmp_path / "history.jsonl"
    history.write_text("".join(_line(2 + 7 * week, {f"EA-PERF-08|trend|{k}": v for k, v in earlier.items()})
                               for week in range(weeks)) if earlier else "")
    config = tmp_path / "edgeaudit.toml"
    config.write_text(tomlwrite.dumps({
        "thresholds": {"vitals_runs": 1},
        "report": {"history": str(history)},
        "targets": [{**site.target_entry(), "device": "desktop"}]}))
    done = run_suite("suites/test_trend.py", "--edgeaudit-config", str(config), "-p", "no:randomly",
                     env=world.aws_env, report_dir=tmp_path / "reports")
    return done, history


def test_as_fast_as_the_four_weeks_before_passes(world, site, tmp_path):
    done, _ = _run(world, site, tmp_path, {"lcp_s /": 30.0, "ttfb_ms /": 30000.0})
    result = done.result("EA-PERF-08", "trend")
    assert result["outcome"] == "passed" and result["severity"] == "P3", result
    assert result["evidence"]["baselines"]["lcp_s /"]["median"] == 30.0
    assert result["margins"]["lcp_s /"]["limit"] == 36.0  # 20 % above the median


def test_slower_than_the_four_weeks_before_warns_naming_the_page(world, site, tmp_path):
    done, _ = _run(world, site, tmp_path, {"lcp_s /": 0.0001, "ttfb_ms /": 0.0001})
    result = done.result("EA-PERF-08", "trend")
    assert result["outcome"] == "warned" and result["severity"] == "P3", result
    assert "more than 20% slower than usual: lcp_s / " in result["message"]
    assert "ttfb_ms / " in result["message"]


def test_without_four_earlier_weeks_it_is_not_evaluated_and_keeps_its_measurements(world, site, tmp_path):
    done, history = _run(world, site, tmp_path, {"lcp_s /": 1.0, "ttfb_ms /": 100.0}, weeks=3)
    result = done.result("EA-PERF-08", "trend")
    assert result["outcome"] == "error", result
    assert "no baseline yet for lcp_s /: 3 earlier weekly runs" in result["message"]
    last = json.loads(history.read_text().splitlines()[-1])
    assert {"EA-PERF-08|trend|lcp_s /", "EA-PERF-08|trend|ttfb_ms /"} <= set(last["measures"]), \
        "this run's medians are the next runs' baseline"
