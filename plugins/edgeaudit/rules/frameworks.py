"""Framework views: the controls seen through the outside frameworks they map to (AWS Security
Hub FSBP, Mozilla Observatory, ZAP alerts, ...). A control declares the mapping once, on its
marker (`frameworks={"FSBP": "CloudFront.7, CloudFront.8"}`); a run may select the controls of
some frameworks (`--framework FSBP`), and every report summarises its results per framework and
per requirement, so that an auditor of one framework reads the answer to that framework."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from edgeaudit.rules.catalog import OUTCOMES, WORST_FIRST


class UnknownFramework(ValueError):
    """A framework id no control maps to; the message names the known ones."""


def requirements(value: str) -> list[str]:
    """The requirement ids of one mapping: "CloudFront.7, CloudFront.8" is two requirements."""
    return [part.strip() for part in str(value).split(",") if part.strip()]


def resolve(asked: Iterable[str], known: Iterable[str]) -> tuple[str, ...]:
    """The asked ids as the controls spell them (matched case-insensitively), in the order asked,
    each once; UnknownFramework for an id no control maps to."""
    spelled = {name.lower(): name for name in known}
    chosen: list[str] = []
    for name in (str(a).strip() for a in asked):
        if not name:
            continue
        if name.lower() not in spelled:
            raise UnknownFramework(f"framework {name!r} is not one the controls map to. "
                                   f"Fix: use one of {', '.join(sorted(spelled.values(), key=str.lower))}")
        if spelled[name.lower()] not in chosen:
            chosen.append(spelled[name.lower()])
    return tuple(chosen)


def maps_to(mapping: Mapping[str, Any], selected: Iterable[str]) -> bool:
    """Is a control with this mapping in the selection? (No selection: every control is.)"""
    wanted = {name.lower() for name in selected}
    return not wanted or any(name.lower() in wanted for name in mapping)


def _natural(text: str) -> list[Any]:
    """Sort key: CloudFront.9 before CloudFront.10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", text)]


def summary(results: list[dict[str, Any]], selected: Iterable[str] = ()) -> dict[str, Any]:
    """Per framework (only the selected ones, when the run selected some): its controls, its
    results by outcome, and per requirement the worst outcome of the results mapped to it and
    the controls that prove it. A control mapped to two requirements counts for each."""
    rank = {outcome: i for i, outcome in enumerate(WORST_FIRST)}
    views: dict[str, dict[str, Any]] = {}
    for result in results:
        for name, value in (result.get("frameworks") or {}).items():
            if not maps_to({name: value}, selected):
                continue
            view = views.setdefault(name, {"controls": set(), **{o: 0 for o in OUTCOMES}, "requirements": {}})
            view["controls"].add(result["control"])
            view[result["outcome"]] += 1
            for requirement in requirements(value):
                entry = view["requirements"].setdefault(requirement, {"outcome": "passed", "controls": set()})
                entry["controls"].add(result["control"])
                if rank.get(result["outcome"], 0) < rank.get(entry["outcome"], 0):
                    entry["outcome"] = result["outcome"]
    out = {}
    for name in sorted(views, key=str.lower):
        view = views[name]
        out[name] = {"controls": len(view["controls"]), **{o: view[o] for o in OUTCOMES},
                     "requirements": {req: {"outcome": entry["outcome"], "controls": sorted(entry["controls"])}
                                      for req, entry in sorted(view["requirements"].items(),
                                                               key=lambda item: _natural(item[0]))}}
    return out
