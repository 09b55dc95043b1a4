"""Forgetting a target once its last control has run, so that a fleet's memory does not grow
with its size.

The controls run target by target (collection.TargetMajor; under xdist a target's controls
share one worker), so when the next control belongs to another target, or none follows, the
target's cached AWS answers, its site's answers and crawl, its TLS probe and its vitals are
no longer needed: they are dropped. What other targets may read stays for the process: the
account-wide reads (caller identity, the bucket list, IAM, shared CloudFront policies) and any
answer that names a resource another target names too. A control's evidence object is dropped
after its own result is built: the result holds what the report shows. A test report, once
every plugin has logged it, keeps no keywords (pytest's -k vocabulary, a dict per report) and no
per-test AWS call counts: the terminal keeps every report until the run ends, three per control.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Iterator

import pytest

from .config import Target
from .crawl import forget as forget_crawl
from .evidence import jsonable
from .outcomes import EVIDENCE
from .redact import redact
from .results import item_target
from .reporting.report import write_atomic
from .vitals import forget as forget_vitals

if TYPE_CHECKING:
    from .run import Run


def own_names(target: Target) -> set[str]:
    """The names of the target's own AWS resources, as its read calls pass them."""
    return {name for name in (target.bucket, target.replica_bucket, target.scratch_bucket, target.distribution_id)
            if name}


class Release:
    """Drops each target's answers after its last control, in every process of the run."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.released = 0

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
        yield
        if EVIDENCE in item.stash:  # its result is built (teardown's report was the last)
            del item.stash[EVIDENCE]
        target = item_target(item)
        following = item_target(nextitem)
        if target is not None and (following is None or following.name != target.name):
            self.release(target, item.config)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """After junitxml, pytest-html, the terminal and the results have read the report."""
        report.keywords = {}
        if hasattr(report, "edgeaudit_calls"):
            del report.edgeaudit_calls

    def release(self, target: Target, config: pytest.Config) -> None:
        """Forget what the run holds for `target`. With --bundle its AWS answers are written
        aside first (as an xdist worker's are): the bundle holds every answer the run used."""
        run = self.run
        others = {name for other in run.config.targets if other.name != target.name for name in own_names(other)}
        forgotten = run.registry.cache.release(own_names(target), others)
        if forgotten and run.bundle and not run.no_report:
            self.released += 1
            worker = getattr(config, "workerinput", {}).get("workerid", "controller")
            write_atomic(run._responses_file(f"{worker}-released-{self.released}"),
                         json.dumps(redact(jsonable(forgotten))))
        site = run.sites.pop(target.name, None)
        if site is not None:
            forget_crawl(site)
            site.session.close()
        run.probes.pop(target.name, None)
        forget_vitals(config, target.name)
