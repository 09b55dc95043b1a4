"""From pytest's reports to control results: each control's setup, call and teardown reports
become one result (outcome, message, evidence, waiver), shown with its own status letter, and
every report's text is redacted before JUnit XML, the terminal or xdist see it."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import TYPE_CHECKING, Any, Iterator

import pytest

from edgeaudit.aws import guard
from edgeaudit.errors import NotEvaluated
from edgeaudit.evidence import Evidence
from edgeaudit.redact import redact, redact_text
from edgeaudit.reporting.results import (
    ControlSpec,
    apply_waiver,
    build_result,
    error_message,
    failure_message,
    item_target,
    skip_reason,
)

if TYPE_CHECKING:
    from edgeaudit.run.run import Run

EVIDENCE = pytest.StashKey[Evidence]()
RESULT = pytest.StashKey[dict]()
CALLS_AT_START = pytest.StashKey[Counter]()
VIOLATIONS_AT_START = pytest.StashKey[int]()


class Outcomes:
    """The hooks that turn a control's reports into its result; in every process of the run."""

    def __init__(self, run: Run) -> None:
        self.run = run

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        item.stash[CALLS_AT_START] = self.run.registry.calls.snapshot()
        item.stash[VIOLATIONS_AT_START] = len(guard.violations)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        self._record_result(item, call, report)
        redact_report(item.config, report)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Iterator[None]:
        """A collection error is redacted too: JUnit XML and the terminal show its text."""
        outcome = yield
        report: pytest.CollectReport = outcome.get_result()
        if report.failed:
            redact_report(collector.config, report)

    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config) -> Any:
        result = getattr(report, "edgeaudit_result", None)
        if not result:
            return None
        if result["outcome"] == "warned":
            return "warned", "W", ("WARNED", {"yellow": True})
        if result["outcome"] == "waived":
            return "waived", "w", ("WAIVED", {"yellow": True})
        if result["outcome"] == "error" and report.when == "call":
            return "error", "E", ("ERROR", {"red": True})
        return None

    def _record_result(self, item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
        """A control's report becomes its result (outcome, message, evidence, waiver)."""
        spec = ControlSpec.of(item)
        if spec is None:
            return
        if report.when == "teardown":
            delta = self.run.registry.calls.snapshot() - item.stash.get(CALLS_AT_START, Counter())
            report.edgeaudit_calls = dict(delta)  # type: ignore[attr-defined]
            if not report.failed or item.stash.get(RESULT, {}).get("outcome") == "error":
                return
        elif report.when == "setup" and report.passed:
            return
        result = self._result_for(item, call, report, spec)
        if result is None:
            return
        item.stash[RESULT] = result
        report.edgeaudit_result = result  # type: ignore[attr-defined]
        # JUnit XML takes a test's properties from its last report: keep them on the item too
        properties = {"control": spec.id, "severity": spec.severity, "outcome": result["outcome"],
                      "target": result["target"]}
        for holder in (item.user_properties, report.user_properties):
            holder[:] = [(k, v) for k, v in holder if k not in properties] + list(properties.items())
        if result["outcome"] == "waived":
            report.outcome, report.longrepr = "passed", None
        elif result["outcome"] == "error" and call.excinfo is not None and isinstance(call.excinfo.value, NotEvaluated):
            report.longrepr = f"not evaluated: {result['message']}"  # the cause, not a traceback

    def _result_for(self, item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport,
                    spec: ControlSpec) -> dict[str, Any] | None:
        collected = item.stash.get(EVIDENCE, None) or Evidence()
        target = item_target(item)
        new_violations = guard.violations[item.stash.get(VIOLATIONS_AT_START, len(guard.violations)):]
        outcome, message = "", ""
        if new_violations:
            outcome, message = "error", new_violations[0]
            collected.values["read_only_violation"] = new_violations[0]
            item.session.shouldfail = f"read-only guard: {new_violations[0]}"
        elif report.skipped:
            outcome, message = "skipped", skip_reason(report)
        elif report.failed:
            exc = call.excinfo.value if call.excinfo else None
            if report.when == "call" and isinstance(exc, AssertionError):
                outcome, message = "failed", failure_message(exc)
            else:
                prefix = "" if report.when == "call" else f"{report.when}: "
                outcome, message = "error", prefix + (error_message(exc) if exc else str(report.longrepr))
        elif report.when == "call":
            outcome = "warned" if collected.warnings else "passed"
            message = "; ".join(collected.warnings)
        if not outcome:
            return None
        duration = item.stash.get(RESULT, {}).get("duration_s", 0.0) + report.duration
        result = build_result(spec, nodeid=item.nodeid, target=target.name if target else "",
                              resource=collected.resource or (target.url if target else ""), outcome=outcome,
                              message=message, evidence=collected.values, duration_s=duration,
                              margins=collected.margins)
        return apply_waiver(result, self.run.config.waivers, dt.date.today())


class Collector:
    """Gathers the results on the controller (xdist workers send their reports there)."""

    def __init__(self, run: Run) -> None:
        self.run = run

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.run.ask_aws_account()
        redact_terminal(session.config)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        result = getattr(report, "edgeaudit_result", None)
        if result:
            self.run.results[report.nodeid] = result
        self.run.calls.update(getattr(report, "edgeaudit_calls", None) or {})
        if report.failed and not result and report.nodeid not in self.run.results:
            self.run.other_failures += 1


def redact_report(config: pytest.Config, report: pytest.TestReport | pytest.CollectReport) -> None:
    """The failure text, captured output and properties of a test, redacted before JUnit XML,
    the terminal or xdist see them (through pytest's own report serialization)."""
    data = config.hook.pytest_report_to_serializable(config=config, report=report)
    clean = config.hook.pytest_report_from_serializable(config=config, data=redact(data))
    report.longrepr, report.sections = clean.longrepr, clean.sections
    if isinstance(report, pytest.TestReport):
        report.user_properties = [tuple(p) for p in clean.user_properties]


def redact_terminal(config: pytest.Config) -> None:
    """Everything pytest prints through its terminal writer (failures, warnings, summaries)
    passes redact_text first: the terminal's one choke point."""
    if config.pluginmanager.get_plugin("terminalreporter") is None:  # -p no:terminal
        return
    writer = config.get_terminal_writer()
    if getattr(writer, "edgeaudit_redacts", False):
        return
    write = writer.write

    def redacted_write(msg: str, **kwargs: Any) -> None:
        write(redact_text(msg), **kwargs)

    writer.write, writer.edgeaudit_redacts = redacted_write, True
