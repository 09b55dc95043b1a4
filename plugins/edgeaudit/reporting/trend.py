"""What changed since the previous report of the same selection: new failures, resolved ones,
those still failing (and since when), and the history of every measured value."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FAILING = ("failed", "error")
SERIES_POINTS = 30

Key = tuple[str, str]


@dataclass
class Trend:
    previous_name: str
    previous_started: str
    new: set[Key] = field(default_factory=set)
    resolved: set[Key] = field(default_factory=set)
    still: dict[Key, str] = field(default_factory=dict)   # -> failing since (UTC time)
    series: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)


def previous_report(report_dir: Path, selection: str, current: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest JSON report of the same selection written before `current`."""
    candidates = sorted(p for p in report_dir.glob(f"{selection}-*.json")
                        if p.name < current.name and p.stem[len(selection) + 1:][:1].isdigit())
    for path in reversed(candidates):
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(report, dict) and report.get("schema") == "edgeaudit.report/1":  # not <stem>.ocsf.json
            return path, report
    return None


def _failing(report: dict[str, Any]) -> dict[Key, dict[str, Any]]:
    return {(r["control"], r["target"]): r for r in report["results"] if r["outcome"] in FAILING}


def mark_failing_since(report: dict[str, Any], previous: dict[str, Any] | None) -> None:
    """Give each failing result the time its failure streak began (carried from report to report)."""
    before = _failing(previous) if previous else {}
    results = report["results"]
    for i, result in enumerate(results):
        if result["outcome"] not in FAILING:
            continue
        earlier = before.get((result["control"], result["target"]))
        if earlier is not None:
            result["failing_since"] = earlier.get("failing_since") or previous["run"]["started"]
        else:
            result["failing_since"] = report["run"]["started"]
        results[i] = result  # a stored result is a copy: put it back


def measures(report: dict[str, Any]) -> dict[str, float]:
    """The numeric measured values of a run, for history.jsonl: 'control|target|name' -> value."""
    out = {}
    for result in report["results"]:
        for name, margin in (result.get("margins") or {}).items():
            if isinstance(margin.get("observed"), (int, float)) and not isinstance(margin["observed"], bool):
                out[f"{result['control']}|{result['target']}|{name}"] = margin["observed"]
    return out


def compare(report: dict[str, Any], previous: tuple[Path, dict[str, Any]] | None,
            history: list[dict[str, Any]]) -> Trend | None:
    if previous is None:
        return None
    path, before = previous
    now, then = _failing(report), _failing(before)
    trend = Trend(path.stem, before["run"]["started"])
    trend.new = set(now) - set(then)
    trend.still = {key: now[key].get("failing_since") or before["run"]["started"] for key in set(now) & set(then)}
    current = {(r["control"], r["target"]) for r in report["results"]}
    trend.resolved = {key for key in set(then) - set(now) if key in current}
    series: dict[tuple[str, str, str], list[float]] = {}
    for entry in history[-SERIES_POINTS:]:
        for key, value in (entry.get("measures") or {}).items():
            control, target, name = key.split("|", 2)
            series.setdefault((control, target, name), []).append(value)
    trend.series = {key: values for key, values in series.items() if len(values) >= 2}
    return trend
