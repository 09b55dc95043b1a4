"""Forgetting a target once its last control has run, so that a fleet's memory does not grow
with its size.

The controls run target by target (collection.TargetMajor; under xdist a target's controls
share one worker), so when the next control belongs to another target, or none follows, the
target's cached AWS answers, its site's answers and crawl, its TLS probe and its vitals are
no longer needed: they are dropped. What other targets may read stays for the process: the
account-wide reads (caller identity, the bucket list, IAM, shared CloudFront policies) and any
answer that names a resource another target names too. A control's evidence object is dropped
after its own result is built: the result holds what the report shows. Once its protocol is
over, a test leaves pytest's list of the session's items (`Ran` holds its place: its node id
and location): pytest and xdist look an item up there only to run it, and a fleet's tens of
thousands of items, with what each kept from its run, would otherwise live until the end.

pytest keeps every test's reports until the run ends (the terminal, for its summary), three per
control, in the controller and in each xdist worker. Once every plugin has logged one, it keeps
no keywords (pytest's -k vocabulary), properties (JUnit XML has written them) or AWS call counts;
a worker's keeps no result (xdist has sent it), the controller's only the fields read after the
report is logged (the outcome, for the terminal's summary word and pytest-html's row, and the
row's control and severity; the run's results hold the whole result); and a passed setup or
teardown report with no captured output leaves the terminal's list: the terminal shows those
only for their captured output (-rP, or beside a failure), and such a report has none.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Iterator, NamedTuple

import pytest

from edgeaudit.evidence import jsonable
from edgeaudit.redact import redact
from edgeaudit.reporting.report import write_atomic
from edgeaudit.reporting.results import item_target
from edgeaudit.rules.config import Target
from edgeaudit.run.html_view import COLUMNS
from edgeaudit.run.outcomes import EVIDENCE, RESULT
from edgeaudit.web.crawl import forget as forget_crawl
from edgeaudit.web.vitals import forget as forget_vitals

if TYPE_CHECKING:
    from edgeaudit.run.run import Run


def own_names(target: Target) -> set[str]:
    """The names of the target's own AWS resources, as its read calls pass them."""
    return {name for name in (target.bucket, target.replica_bucket, target.scratch_bucket, target.distribution_id)
            if name}


class Ran(NamedTuple):
    """What stays of a test in the session's items once it has run."""

    nodeid: str
    location: tuple[str, int | None, str]


# what is read of a result once its report is logged: the outcome and pytest-html's columns
KEPT_ON_REPORT = tuple(dict.fromkeys(("outcome", *(key for key, _ in COLUMNS))))


class Release:
    """Drops each target's answers after its last control, in every process of the run."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.released = 0
        self.places: dict[int, int] = {}  # id of an item to run: its index in session.items

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.places = {id(item): i for i, item in enumerate(session.items)}

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
        yield
        for key in (EVIDENCE, RESULT):  # its result is built and logged (teardown's report was the last)
            if key in item.stash:
                del item.stash[key]
        place = self.places.pop(id(item), None)
        if place is not None and item.session.items[place] is item:
            item.session.items[place] = Ran(item.nodeid, item.location)  # type: ignore[call-overload]
        target = item_target(item)
        following = item_target(nextitem)
        if target is not None and (following is None or following.name != target.name):
            self.release(target, item.config)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.terminal = session.config.pluginmanager.get_plugin("terminalreporter")

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """After junitxml, pytest-html, xdist, the terminal and the results have read the report."""
        report.keywords, report.user_properties = {}, []
        report.__dict__.pop("edgeaudit_calls", None)
        result = report.__dict__.pop("edgeaudit_result", None)
        if result and not self.run.worker:
            kept_fields = {key: result[key] for key in KEPT_ON_REPORT if key in result}
            report.edgeaudit_result = kept_fields  # type: ignore[attr-defined]
        kept = getattr(self.terminal, "stats", {}).get("")  # passed setups and teardowns
        if report.passed and report.when != "call" and not report.sections and kept and kept[-1] is report:
            kept.pop()

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
