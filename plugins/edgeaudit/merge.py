"""Merging the reports of shards (`--shard K/N` jobs of a CI matrix) into the report that one
run over the whole fleet would have written."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from .report import build_report
from .results import summarize


class MergeError(ValueError):
    """Reports that cannot be one run's."""


def _unique(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen, out = set(), []
    for item in items:
        key = json.dumps(item, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def merge(reports: list[dict[str, Any]]) -> dict[str, Any]:
    if not reports:
        raise MergeError("no reports to merge")
    for report in reports:
        if report.get("schema") != "edgeaudit.report/1":
            raise MergeError(f"not an edgeaudit.report/1 document (schema {report.get('schema')!r})")
    selections = {r["run"]["selection"] for r in reports}
    if len(selections) > 1:
        raise MergeError(f"the reports are of different selections: {', '.join(sorted(selections))}")
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
        calls.update(run.get("api_calls_by_operation") or {})
    accounts = sorted({run.get("aws_account") for run in runs if run.get("aws_account")})
    run = {
        "started": min(r["started"] for r in runs), "finished": max(r["finished"] for r in runs),
        "selection": selections.pop(), "demo": any(r.get("demo") for r in runs),
        "tool_version": runs[0]["tool_version"], "targets": sorted({t for r in runs for t in r["targets"]}),
        "aws_account": accounts[0] if len(accounts) == 1 else (", ".join(accounts) or None),
        "api_calls": sum(r.get("api_calls", 0) for r in runs), "api_calls_by_operation": dict(sorted(calls.items())),
        "merged_from": len(reports),
    }
    return build_report(run=run, summary=summarize(results), results=results,
                        complete=all(r["complete"] for r in reports),
                        waivers=_unique([w for r in reports for w in r.get("waivers", [])]),
                        attestations=_unique([a for r in reports for a in r.get("attestations", [])]))
