"""Memory flat in fleet size: the controls run target by target, and once a target's last
control has run, what the run held for it (its AWS answers, site answers, crawl, TLS probe,
vitals, evidence objects) is gone, at no extra AWS call. Watched from inside the run by a
test-only plugin (tests/memprobe.py), without and with xdist; no memory figure is asserted."""

from __future__ import annotations

import json
from itertools import groupby
from pathlib import Path
from typing import Any

import pytest

from conftest import Run, run_suite
from edgeaudit.demo.builder import SiteSpec
from edgeaudit.rules import tomlwrite

TESTS = Path(__file__).resolve().parent
NAMES = ("mem-a", "mem-b", "mem-c")
SELECTION = "(daily or weekly) and not performance"  # the lab's page loads are left to test_vitals


@pytest.fixture(scope="module")
def targets(world) -> list[dict[str, Any]]:
    return [world.add(SiteSpec(name=name)).target_entry() for name in NAMES]


@pytest.fixture(scope="module")
def runs(world, targets, tmp_path_factory) -> dict[tuple[str, int], tuple[Run, list[dict[str, Any]]]]:
    """(release|keep, workers) -> the run and what the probe saw, in the order it saw it."""
    done = {}
    for mode in ("release", "keep"):
        for workers in (0, 2):
            workdir = tmp_path_factory.mktemp(f"{mode}-{workers}")
            config = workdir / "edgeaudit.toml"
            config.write_text(tomlwrite.dumps({"targets": targets}))
            log = workdir / "probe"
            env = {**world.aws_env, "PYTHONPATH": str(TESTS), "MEMPROBE_LOG": str(log),
                   "MEMPROBE_KEEP": "1" if mode == "keep" else "0"}
            run = run_suite("suites", "-m", SELECTION, "-p", "memprobe", "-p", "no:randomly", "-n", str(workers),
                            "--edgeaudit-config", str(config), env=env, report_dir=workdir / "reports")
            assert run.returncode in (0, 1) and run.report["complete"], run.output
            lines = [json.loads(line) for part in sorted(workdir.glob("probe.*"))
                     for line in part.read_text().splitlines()]
            done[mode, workers] = (run, lines)
    return done


def per_worker(lines: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each process's lines about controls (the session's last line is left out)."""
    controls = [line for line in lines if "target" in line]
    return {worker: [line for line in controls if line["worker"] == worker]
            for worker in dict.fromkeys(line["worker"] for line in controls)}


@pytest.mark.parametrize("workers", [0, 2])
def test_controls_run_target_by_target(runs, workers):
    _, lines = runs["release", workers]
    seen: set[str] = set()
    for worker, own in per_worker(lines).items():
        order = [key for key, _ in groupby(line["target"] for line in own if line["when"] == "after")]
        assert len(order) == len(set(order)), f"{worker} ran a target's controls apart: {order}"
        assert not seen & set(order), "a target's controls ran on one worker"
        seen |= set(order)
    assert seen == set(NAMES)
    if workers:
        assert len(per_worker(lines)) == 2, "both workers had targets"


@pytest.mark.parametrize("workers", [0, 2])
def test_a_target_is_forgotten_after_its_last_control(runs, workers):
    _, lines = runs["release", workers]
    for worker, own in per_worker(lines).items():
        after = [line for line in own if line["when"] == "after"]
        for name in {line["target"] for line in own}:
            mine = [i for i, line in enumerate(after) if line["target"] == name]
            during = {part.split(":")[0] for line in own if line["when"] == "teardown" and line["target"] == name
                      for part in line["held"][name]}
            assert {"aws", "site", "crawl", "probe", "evidence"} <= during, f"{name} held them while it ran"
            for i in mine[:-1]:  # nothing a later control of the target reads is dropped before it
                teardown = next(line for line in own if line["when"] == "teardown"
                                and line["nodeid"] == after[i]["nodeid"])
                kept = {p for p in after[i]["held"][name] if not p.startswith("evidence:")}
                assert {p for p in teardown["held"][name] if not p.startswith("evidence:")} <= kept
                assert f"evidence:{after[i]['nodeid']}" not in after[i]["held"][name], "evidence goes with its result"
            for line in after[mine[-1]:]:
                assert line["held"][name] == [], f"{worker} still holds for {name} after its last control"


@pytest.mark.parametrize("workers", [0, 2])
def test_forgetting_costs_no_aws_call_and_changes_no_result(runs, workers):
    (released, _), (kept, kept_lines) = runs["release", workers], runs["keep", workers]
    last = [line for line in kept_lines if line["when"] == "after"][-1]
    assert any(last["held"].values()), "without release the run holds every target to its end"
    assert released.report["run"]["api_calls_by_operation"] == kept.report["run"]["api_calls_by_operation"]
    assert ({(r["control"], r["target"], r["outcome"]) for r in released.report["results"]}
            == {(r["control"], r["target"], r["outcome"]) for r in kept.report["results"]})


@pytest.mark.parametrize("workers", [0, 2])
def test_a_targets_controls_share_one_parametrization(runs, workers):
    """pytest makes a callspec per test; once collected, a target's controls hold one."""
    _, lines = runs["release", workers]
    collected = [line for line in lines if line["when"] == "collected"]
    assert len(collected) == max(workers, 1)  # under xdist the workers collect, the controller not
    for line in collected:
        assert line["parametrized"] > line["parametrizations"] == line["callspecs"] == len(NAMES), line


@pytest.mark.parametrize("workers", [0, 2])
def test_pytest_keeps_one_slim_report_per_control_once_it_is_logged(runs, workers):
    """pytest's terminal keeps every report to the end of the run, in each process: once logged,
    a report has no keywords and of its result only the fields read after logging (the run's
    results hold the whole), a passed setup or teardown with no captured output is not kept, no
    process holds a test it has run (session.items keeps its node id), and the controller holds no
    JUnit XML test case unwritten. Without the release (keep) the terminal holds all three reports
    of each control, with keywords, and every item stays."""
    (released, lines), (_, kept_lines) = runs["release", workers], runs["keep", workers]
    finish = [line for line in lines if line["when"] == "finish"]
    assert len(finish) == 1 + workers  # the controller and each worker
    for line in finish:
        assert line["silent_setups_and_teardowns"] == 0 and line["with_keywords"] == 0, line
        assert line["whole_results"] == 0, line
        assert line["items_held"] == line["items"] - line["ran"], line  # xdist: those other workers ran
    controller = next(line for line in finish if line["worker"] == "main")
    assert controller["reports"] == len(released.report["results"])  # the call reports only
    assert controller["junit_cases_held"] == 0
    kept = next(line for line in kept_lines if line["when"] == "finish" and line["worker"] == "main")
    assert kept["silent_setups_and_teardowns"] > 0 and kept["with_keywords"] == kept["reports"]
    assert kept["whole_results"] == len(released.report["results"])
    assert all(line["items_held"] == line["items"] for line in kept_lines if line["when"] == "finish")
