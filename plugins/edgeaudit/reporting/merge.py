"""Merging the reports of shards (`--shard K/N` jobs of a CI matrix) into the report that one
run over the whole fleet would have written: only shards of one run (its `run_id`), each
once, all of them unless the result is to be marked incomplete."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

from edgeaudit.reporting.report import SCHEMA, build_report
from edgeaudit.reporting.results import OUTCOMES, SEVERITY_RANK, gates, summarize
from edgeaudit.rules.shards import MAX_COUNT, SHARD_FLAG


class MergeError(ValueError):
    """Reports that cannot be one run's, or a report that is not one; phrased in one line."""


SHAPE_RUN = {"started": str, "finished": str, "selection": str, "demo": bool, "tool_version": str,
             "targets": list, "aws_account": (str, type(None)), "api_calls": int, "api_calls_by_operation": dict,
             "run_id": str, "shard": dict}
SHAPE_RESULT = {"control": str, "target": str, "nodeid": str, "title": str, "severity": str, "cadence": list,
                "categories": list, "outcome": str, "resource": str, "message": str, "evidence": dict,
                "remediation": str, "frameworks": dict, "waiver": (dict, type(None)), "duration_s": (int, float)}
# the same run: shards that differ in one of these are not one run's
SAME = (("run_id", "runs"), ("tool_version", "versions of edgeaudit"), ("demo", "demo and real runs"),
        ("aws_account", "AWS accounts"), ("selection", "selections"), ("frameworks", "framework selections"))


def _fields(where: str, value: Any, shape: dict[str, Any]) -> None:
    if not isinstance(value, dict):
        raise MergeError(f"{where} is not a table")
    for key, kind in shape.items():
        if key not in value:
            raise MergeError(f"{where}.{key} is missing")
        if not isinstance(value[key], kind) or (kind is int and isinstance(value[key], bool)):
            raise MergeError(f"{where}.{key} is a {type(value[key]).__name__}")


def check_shard(name: str, report: Any) -> None:
    """A shard's report as `edgeaudit.report/1` with a run identity (run_id, shard K/N): else
    MergeError naming the file and the field."""
    if not isinstance(report, dict) or report.get("schema") != SCHEMA:
        schema = report.get("schema") if isinstance(report, dict) else None
        raise MergeError(f"{name}: not an {SCHEMA} document (schema {schema!r})")
    if not isinstance(report.get("complete"), bool):
        raise MergeError(f"{name}: complete is missing or not true/false")
    run = report.get("run")
    _fields(f"{name}: run", run, SHAPE_RUN)
    shard = run["shard"]
    index, count = shard.get("index"), shard.get("count")
    if not (type(index) is int and type(count) is int and 1 <= index <= count <= MAX_COUNT):
        raise MergeError(f"{name}: run.shard is not {{index: K, count: N}} with 1 <= K <= N <= {MAX_COUNT}")
    if not all(isinstance(t, str) for t in run["targets"]):
        raise MergeError(f"{name}: run.targets is not a list of names")
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in run["api_calls_by_operation"].values()):
        raise MergeError(f"{name}: run.api_calls_by_operation is not a count per operation")
    if not isinstance(run.get("aws_account_alias"), (str, type(None))):
        raise MergeError(f"{name}: run.aws_account_alias is a {type(run['aws_account_alias']).__name__}")
    chosen = run.get("frameworks", [])
    if not (isinstance(chosen, list) and all(isinstance(f, str) for f in chosen)):
        raise MergeError(f"{name}: run.frameworks is not a list of framework ids")
    if not isinstance(report.get("results"), list):
        raise MergeError(f"{name}: results is not a list")
    for i, result in enumerate(report["results"]):
        _fields(f"{name}: results[{i}]", result, SHAPE_RESULT)
        if result["outcome"] not in OUTCOMES or result["severity"] not in SEVERITY_RANK:
            raise MergeError(f"{name}: results[{i}] has outcome {result['outcome']!r}, severity {result['severity']!r}")
    for section in ("waivers", "attestations"):
        if not (isinstance(report.get(section, []), list) and all(isinstance(e, dict) for e in report.get(section, []))):
            raise MergeError(f"{name}: {section} is not a list of tables")
    if "scope" in report:  # absent in reports of earlier versions
        _check_scope(name, report["scope"])


def _check_scope(name: str, scope: Any) -> None:
    """scope: selected and not_selected control ids, a reason for each not selected; the same of targets."""
    for where, part in ((f"{name}: scope", scope), (f"{name}: scope.targets", (scope or {}).get("targets"))):
        if not isinstance(part, dict):
            raise MergeError(f"{where} is not a table")
        for key in ("selected", "not_selected"):
            if not (isinstance(part.get(key), list) and all(isinstance(c, str) for c in part[key])):
                raise MergeError(f"{where}.{key} is not a list of ids")
        reasons = part.get("reasons")
        if not (isinstance(reasons, dict) and all(isinstance(v, str) for v in reasons.values())):
            raise MergeError(f"{where}.reasons is not a table of reasons")


def _one_run(named: list[tuple[str, dict[str, Any]]], allow_partial: bool) -> tuple[int, list[int]]:
    """The shards' common count N and the missing indexes; MergeError for shards of different runs."""
    for key, what in SAME:  # an account that could not be asked (None) is no other account
        values = {json.dumps(r["run"].get(key, [])): n for n, r in named  # frameworks: absent in older reports
                  if not (key == "aws_account" and r["run"][key] is None)}
        if len(values) > 1:
            seen = ", ".join(f"{value} in {name}" for value, name in values.items())
            raise MergeError(f"the reports are of different {what} ({key}: {seen}): merge the shards of one run")
    counts = {r["run"]["shard"]["count"] for _, r in named}
    if len(counts) > 1:
        raise MergeError(f"the reports are shards of different splits (of {', '.join(map(str, sorted(counts)))})")
    count, seen = counts.pop(), {}
    for name, report in named:
        index = report["run"]["shard"]["index"]
        if index in seen:
            raise MergeError(f"shard {index}/{count} is given twice ({seen[index]} and {name})")
        seen[index] = name
    if count > len(seen) and not allow_partial:  # counted before any list of them is made
        first = [k for k in range(1, min(count, len(seen) + 10) + 1) if k not in seen][:10]
        more = count - len(seen) - len(first)
        raise MergeError(f"shard(s) {', '.join(f'{k}/{count}' for k in first)}{f' and {more} more' if more else ''} "
                         "missing: give every shard's report, or --allow-partial for a report marked incomplete")
    return count, [k for k in range(1, count + 1) if k not in seen]


def _unique(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen, out = set(), []
    for item in items:
        key = json.dumps(item, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def merge(reports: list[dict[str, Any]], names: list[str] | None = None,
          allow_partial: bool = False, fail_on: str = "P4") -> dict[str, Any]:
    """One report from the shards of one run (same run id, version, account, demo or not,
    selection; each of shards 1..N once); with `allow_partial`, missing shards are allowed and
    the result is marked incomplete. `fail_on` is the gate of the merge's exit code (its
    --fail-on); both are recorded, so that the page's verdict is the exit code's."""
    if not reports:
        raise MergeError("no reports to merge")
    names = names or [f"report {i + 1}" for i in range(len(reports))]
    named = list(zip(names, reports))
    for name, report in named:
        check_shard(name, report)
    count, missing = _one_run(named, allow_partial)
    results, owners = [], {}
    for report in reports:
        for result in report["results"]:
            key = (result["control"], result["target"])
            if key in owners:
                raise MergeError(f"{key[0]} [{key[1]}] is in two reports: shards must not share a target")
            owners[key] = True
            results.append(result)
    results.sort(key=lambda r: (r["control"], r["target"], r["nodeid"]))
    runs = [r["run"] for r in reports]
    calls: Counter[str] = Counter()
    for run in runs:
        calls.update(run["api_calls_by_operation"])
    complete = all(r["complete"] for r in reports) and not missing
    run = {
        "started": min(r["started"] for r in runs), "finished": max(r["finished"] for r in runs),
        "selection": runs[0]["selection"], "demo": runs[0]["demo"], "tool_version": runs[0]["tool_version"],
        "targets": sorted({t for r in runs for t in r["targets"]}), "aws_account": next((r["aws_account"] for r in runs if r["aws_account"]), None),
        "aws_account_alias": next((r.get("aws_account_alias") for r in runs if r.get("aws_account_alias")), None),
        "api_calls": sum(r["api_calls"] for r in runs), "api_calls_by_operation": dict(sorted(calls.items())),
        "run_id": runs[0]["run_id"], "shard": {"index": 1, "count": 1}, "frameworks": runs[0].get("frameworks", []),
        "merged_from": len(reports), "shards": {"count": count, "missing": missing}, "fail_on": fail_on,
        "exit_code": 1 if not complete or any(gates(r, fail_on) for r in results) else 0,
    }
    return build_report(run=run, summary=summarize(results), results=results,
                        complete=complete,
                        waivers=_unique([w for r in reports for w in r.get("waivers", [])]),
                        attestations=_unique([a for r in reports for a in r.get("attestations", [])]),
                        thresholds=_unique([t for r in reports for t in r.get("thresholds", [])]),
                        scope=merged_scope([r["scope"] for r in reports if "scope" in r], run["targets"])
                        if any("scope" in r for r in reports) else None)


def _by_shard(reason: str) -> bool:
    return SHARD_FLAG in reason


def _better(reason: str, known: str | None) -> bool:
    """A shard's reason of its own gives way to any other (the first shard's stays otherwise)."""
    return known is None or (_by_shard(known) and not _by_shard(reason))


def merged_scope(scopes: list[dict[str, Any]], targets: Iterable[str]) -> dict[str, Any]:
    """The scope of shards merged: selected in any shard is selected; a control or target left
    out by one shard's --shard alone is not left out by the run when another shard has it."""
    selected = {c for s in scopes for c in s["selected"]}
    reasons: dict[str, str] = {}
    for s in scopes:
        for control, why in s["reasons"].items():
            if control not in selected and _better(why, reasons.get(control)):
                reasons[control] = why
    checked = set(targets)
    target_reasons: dict[str, str] = {}
    for s in scopes:
        for name, why in (s.get("targets") or {}).get("reasons", {}).items():
            if name not in checked and _better(why, target_reasons.get(name)):
                target_reasons[name] = why + (" (that report was not merged)" if _by_shard(why) else "")
    return {"selected": sorted(selected), "not_selected": sorted(reasons), "reasons": dict(sorted(reasons.items())),
            "targets": {"selected": sorted(checked), "not_selected": sorted(target_reasons),
                        "reasons": dict(sorted(target_reasons.items()))}}
