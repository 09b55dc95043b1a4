"""A test-only pytest plugin (tests/test_memory.py loads it with -p memprobe): it writes, from
inside a run, what the run holds for each target at the end of each control's teardown (before
edgeaudit forgets anything) and once the control is over (after it may have), one JSON line per
control into $MEMPROBE_LOG.<worker>, once collected how many parametrizations its items hold,
and at the session's end what pytest's terminal still keeps of the tests' reports (and of their
results), how many of the session's items it holds and how many JUnit XML test cases it holds
unwritten. With MEMPROBE_KEEP=1 it unregisters edgeaudit's release, so
that a run forgetting nothing can be compared with one that forgets."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

import pytest
from _pytest.junitxml import xml_key

from edgeaudit.reporting.results import item_target
from edgeaudit.run.outcomes import EVIDENCE
from edgeaudit.run.release import KEPT_ON_REPORT, own_names
from edgeaudit.run.run import RUN
from edgeaudit.web import crawl, vitals

_RAN: list[pytest.Item] = []


def _held(config: pytest.Config) -> dict[str, list[str]]:
    """target -> what the process holds for it: its AWS answers (keys naming its own resources),
    site, crawl, TLS probe, vitals, and the evidence objects of its controls that ran."""
    run = config.stash[RUN]
    keys = run.registry.cache.keys()
    crawled, measured = crawl.held(), vitals.held(config)
    held: dict[str, list[str]] = {}
    for target in run.config.targets:
        parts = [f"aws:{key}" for key in keys if any(f'"{name}"' in key for name in own_names(target))]
        parts += ["site"] * (target.name in run.sites) + ["crawl"] * (target.name in crawled)
        parts += ["probe"] * (target.name in run.probes) + ["vitals"] * (target.name in measured)
        parts += [f"evidence:{item.nodeid}" for item in _RAN
                  if EVIDENCE in item.stash and getattr(item_target(item), "name", None) == target.name]
        held[target.name] = parts
    return held


def _write(config: pytest.Config, line: dict[str, Any]) -> None:
    worker = getattr(config, "workerinput", {}).get("workerid", "main")
    with Path(f"{os.environ['MEMPROBE_LOG']}.{worker}").open("a", encoding="utf-8") as log:
        log.write(json.dumps({"worker": worker, **line}) + "\n")


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("MEMPROBE_KEEP") == "1":
        config.pluginmanager.unregister(name="edgeaudit-release")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    yield
    _RAN.append(item)
    target = item_target(item)
    if target is not None:
        _write(item.config, {"when": "teardown", "nodeid": item.nodeid, "target": target.name,
                             "held": _held(item.config)})


@pytest.hookimpl(hookwrapper=True, tryfirst=True)  # outermost: after edgeaudit's release has run
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    yield
    target = item_target(item)
    if target is not None:
        _write(item.config, {"when": "after", "nodeid": item.nodeid, "target": target.name,
                             "held": _held(item.config)})


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    params = [item.callspec for item in session.items if hasattr(item, "callspec")]
    _write(session.config, {"when": "collected", "callspecs": len({id(p) for p in params}),
                            "parametrizations": len({p.id for p in params}), "parametrized": len(params)})


def pytest_sessionfinish(session: pytest.Session) -> None:
    terminal = session.config.pluginmanager.get_plugin("terminalreporter")
    reports = [r for kept in getattr(terminal, "stats", {}).values() for r in kept if isinstance(r, pytest.TestReport)]
    junit = session.config.stash.get(xml_key, None)
    _write(session.config, {"when": "finish", "reports": len(reports),
                            "silent_setups_and_teardowns": sum(r.when != "call" and r.passed and not r.sections
                                                               for r in reports),
                            "with_keywords": sum(bool(r.keywords) for r in reports),
                            "whole_results": sum(bool(set(getattr(r, "edgeaudit_result", None) or ())
                                                      - set(KEPT_ON_REPORT)) for r in reports),
                            "items": len(session.items), "ran": len(_RAN),
                            "items_held": sum(isinstance(item, pytest.Item) for item in session.items),
                            "junit_cases_held": sum(bool(case.__dict__) for case in
                                                    getattr(junit, "node_reporters_ordered", []))})
