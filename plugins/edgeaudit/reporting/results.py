"""Turning one control's pytest reports into one result of the compliance report."""

from __future__ import annotations

import datetime as dt
import inspect
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions
import pytest

from edgeaudit.aws.clients import ACCESS_DENIED_CODES
from edgeaudit.aws.guard import ReadOnlyViolation
from edgeaudit.errors import NotEvaluated
from edgeaudit.redact import redact, redact_text
from edgeaudit.rules.catalog import (  # noqa: F401  (the outcome vocabulary, read from here too)
    CADENCES, CATEGORIES, FAILING, OUTCOMES, SEVERITY_RANK, WORST_FIRST)
from edgeaudit.rules.config import Target, Waiver


def item_target(item: pytest.Item | None) -> Target | None:
    """The target a control item runs against; None for any other test."""
    callspec = getattr(item, "callspec", None)
    if item is None or callspec is None or item.get_closest_marker("control") is None:
        return None
    target = callspec.params.get("target")
    return target if isinstance(target, Target) else None


@dataclass(frozen=True)
class ControlSpec:
    """What the `control` marker and the docstring say about a control."""

    id: str
    severity: str
    title: str
    remediation: str
    cadence: tuple[str, ...]
    categories: tuple[str, ...]
    frameworks: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, item: pytest.Item) -> "ControlSpec | None":
        marker = item.get_closest_marker("control")
        if marker is None:
            return None
        control_id = marker.args[0] if marker.args else marker.kwargs.get("id", "")
        doc = inspect.getdoc(getattr(item, "obj", None)) or ""
        title, _, rest = doc.partition("\n\n")  # the title is the first paragraph, however it is wrapped
        remediation = ""
        if "Remediation:" in rest:
            remediation = " ".join(rest.split("Remediation:", 1)[1].split())
        names = {m.name for m in item.iter_markers()}
        return cls(
            id=str(control_id), severity=str(marker.kwargs.get("severity", "")), title=" ".join(title.split()),
            remediation=remediation,
            cadence=tuple(c for c in CADENCES if c in names),
            categories=tuple(c for c in CATEGORIES if c in names),
            frameworks=dict(marker.kwargs.get("frameworks") or {}),
        )


def error_message(exc: BaseException) -> str:
    """Why a control could not be evaluated, in one line an operator can act on."""
    if isinstance(exc, (NotEvaluated, ReadOnlyViolation)):
        return str(exc)
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        if code in ACCESS_DENIED_CODES:
            return f"AccessDenied: the credentials lack permission for {exc.operation_name} ({error.get('Message', '')})"
        return f"{code} from {exc.operation_name}: {error.get('Message', '')}"
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return ("no AWS credentials found: configure the standard chain (AWS_PROFILE, SSO, environment "
                "or instance role) for this target")
    if isinstance(exc, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError,
                        botocore.exceptions.ReadTimeoutError)):
        return f"AWS endpoint unreachable: {exc}"
    return f"{type(exc).__name__}: {exc}"


def failure_message(exc: BaseException) -> str:
    """The assertion's own message, without pytest's rewritten comparison below it."""
    text = str(exc).strip()
    message = text.split("\nassert ", 1)[0].strip()
    return message or text.splitlines()[0] if text else "assertion failed"


def skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr or "skipped")


def waiver_for(waivers: tuple[Waiver, ...], control: str, target: str, today: dt.date) -> tuple[Waiver | None, str]:
    """The waiver that covers a failure, live ones first; ('', None) when there is none."""
    matching = [w for w in waivers if w.applies_to(control, target)]
    live = [w for w in matching if w.is_live(today)]
    if live:
        return max(live, key=lambda w: w.expires), "live"
    if matching:
        return max(matching, key=lambda w: w.expires), "expired"
    return None, ""


def build_result(spec: ControlSpec, *, nodeid: str, target: str, resource: str, outcome: str, message: str,
                 evidence: dict[str, Any], duration_s: float,
                 margins: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """One row of the JSON report (schema edgeaudit.report/1)."""
    return {
        "control": spec.id, "target": target, "nodeid": nodeid, "title": spec.title,
        "severity": spec.severity, "cadence": list(spec.cadence), "categories": list(spec.categories),
        "outcome": outcome, "resource": resource, "message": redact_text(message),
        "evidence": redact(evidence), "remediation": spec.remediation, "frameworks": dict(spec.frameworks),
        "waiver": None, "duration_s": round(duration_s, 3), "margins": margins or {},
    }


def apply_waiver(result: dict[str, Any], waivers: tuple[Waiver, ...], today: dt.date) -> dict[str, Any]:
    """A failure covered by a live waiver becomes `waived`; an expired one is shown but not applied."""
    if result["outcome"] != "failed":
        return result
    waiver, status = waiver_for(waivers, result["control"], result["target"], today)
    if waiver is not None:
        result["waiver"] = {**waiver.as_dict(), "status": status}
        if status == "live":
            result["outcome"] = "waived"
    return result


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {outcome: 0 for outcome in OUTCOMES}
    by_severity = {level: 0 for level in SEVERITY_RANK}
    for result in results:
        summary[result["outcome"]] += 1
        if result["outcome"] in FAILING and result["severity"] in by_severity:
            by_severity[result["severity"]] += 1
    summary["failed_by_severity"] = by_severity
    return summary


def gates(result: dict[str, Any], fail_on: str) -> bool:
    """Does this result make the run fail at the given --fail-on level? A write the read-only
    guard refused does at every level: the run, its page and a merge of its shards agree."""
    if "read_only_violation" in (result.get("evidence") or {}):
        return True
    return (result["outcome"] in FAILING
            and SEVERITY_RANK.get(result["severity"], 1) <= SEVERITY_RANK[fail_on])
