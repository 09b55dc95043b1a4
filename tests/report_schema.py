"""The JSON report's shape (DESIGN.md, schema edgeaudit.report/1), checked field by field."""

from __future__ import annotations

import re
from typing import Any

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
RUN = {"started": str, "finished": str, "selection": str, "demo": bool, "tool_version": str, "targets": list,
       "aws_account": (str, type(None)), "api_calls": int, "run_id": str, "shard": dict}
SUMMARY = {"passed": int, "warned": int, "failed": int, "error": int, "skipped": int, "waived": int,
           "failed_by_severity": dict}
RESULT = {"control": str, "target": str, "nodeid": str, "title": str, "severity": str, "cadence": list,
          "categories": list, "outcome": str, "resource": str, "message": str, "evidence": dict,
          "remediation": str, "frameworks": dict, "waiver": (dict, type(None)), "duration_s": (int, float)}
OUTCOMES = {"passed", "warned", "failed", "error", "skipped", "waived"}
NUMBER = (int, float)
THRESHOLD = {"key": str, "effective": NUMBER, "default": NUMBER, "procedures": (*NUMBER, type(None)),
             "direction": (str, type(None)), "looser": bool, "looser_than_default": bool}


def _fields(where: str, value: dict[str, Any], spec: dict[str, Any]) -> None:
    for key, kind in spec.items():
        assert key in value, f"{where}.{key} missing"
        assert isinstance(value[key], kind), f"{where}.{key} is {type(value[key]).__name__}"


def validate(report: dict[str, Any]) -> None:
    assert report["schema"] == "edgeaudit.report/1"
    assert isinstance(report["complete"], bool)
    _fields("run", report["run"], RUN)
    assert ISO.match(report["run"]["started"]) and ISO.match(report["run"]["finished"])
    _fields("summary", report["summary"], SUMMARY)
    assert set(report["summary"]["failed_by_severity"]) == {"P1", "P2", "P3", "P4"}
    for i, result in enumerate(report["results"]):
        _fields(f"results[{i}]", result, RESULT)
        assert re.match(r"^[A-Z][A-Z0-9]{1,9}-[A-Z0-9]+-\d{2}$", result["control"])
        assert result["severity"] in {"P1", "P2", "P3", "P4"}
        assert result["outcome"] in OUTCOMES
    counted = {outcome: sum(r["outcome"] == outcome for r in report["results"]) for outcome in OUTCOMES}
    assert counted == {k: report["summary"][k] for k in OUTCOMES}
    validate_scope(report)
    validate_thresholds(report)


def validate_thresholds(report: dict[str, Any]) -> None:
    """thresholds: every threshold the run judged by, beside its default and the procedures'."""
    assert report["thresholds"], "thresholds missing"
    for i, row in enumerate(report["thresholds"]):
        _fields(f"thresholds[{i}]", row, THRESHOLD)
        assert row["direction"] in ("max", "min", None)
        assert not row["looser"] or row["procedures"] is not None


def validate_scope(report: dict[str, Any]) -> None:
    """scope: the control ids selected (every one with a result) and not, a reason for each of
    the latter; the same of the targets."""
    scope = report["scope"]
    for where, part in (("scope", scope), ("scope.targets", scope["targets"])):
        _fields(where, part, {"selected": list, "not_selected": list, "reasons": dict})
        assert not set(part["selected"]) & set(part["not_selected"]), f"{where}: selected and not"
        assert set(part["reasons"]) == set(part["not_selected"]), f"{where}: a reason for each not selected"
        assert all(isinstance(why, str) and why for why in part["reasons"].values())
    assert all(re.match(r"^[A-Z][A-Z0-9]{1,9}-[A-Z0-9]+-\d{2}$", c) for c in scope["selected"] + scope["not_selected"])
    assert {r["control"] for r in report["results"]} <= set(scope["selected"])
    assert set(scope["targets"]["selected"]) == set(report["run"]["targets"])
