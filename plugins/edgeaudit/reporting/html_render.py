"""The HTML compliance report: one self-contained page rendered from the JSON report.

It is built from the same data as the JSON (plus the history and the previous report of the
same selection), so a merged or re-rendered report looks the same as the one a run wrote. It
answers an auditor's questions in order: the verdict, how bad, what failed with its evidence,
how close the passes are to their limits, what changed since last time, which risks were
accepted, whether the checks ran as often as the procedures require, then every result.

The markup is templates/report.html, the styles and the script are static/report.css and
static/report.js; this module only orders and measures what the page shows. Jinja2 escapes
every value that came from a control or the network (autoescape); the page loads nothing (its
Content-Security-Policy forbids any request, the CSS and the script are inlined) and works
without a server.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any, Iterable, Iterator

import jinja2
from markupsafe import Markup, escape

from edgeaudit.reporting.ledger import EVALUATED, LedgerRow, run_cadences
from edgeaudit.reporting.results import FAILING, SEVERITY_RANK, WORST_FIRST, gates
from edgeaudit.reporting.resultstore import ordered
from edgeaudit.reporting.trend import Trend
from edgeaudit.rules.catalog import INCIDENT_LEVELS, SEVERITIES

NO_RATIO = 9e9  # a measure without a margin ratio sorts last in the margins table
WAIVER_LABELS = {"live": "live", "expiring": "expires soon", "expired": "expired: enforced again",
                 "remove": "the control now passes: remove this waiver"}


def _value(value: Any) -> Any:
    """A value as a reader reads it, never as Python writes it: yes/no, a dash for nothing,
    lists joined, tables as key: value rows (escaped here, as autoescape would)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "\u2014"
    if isinstance(value, dict):
        if not value:
            return "\u2014"
        rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(_value(v))}</td></tr>" for k, v in value.items())
        return Markup(f'<table class="kv">{rows}</table>')
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
        if not items:
            return "\u2014"
        shown = [_value(v) for v in items]
        if any(isinstance(v, Markup) for v in shown):
            return Markup("").join(Markup('<div class="item">') + escape(v) + Markup("</div>") for v in shown)
        return ", ".join(str(v) for v in shown)
    return value


def _text(value: Any) -> str:
    """A single value as a reader says it: null is "missing" (an absent header), booleans yes/no."""
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _key_label(keys: list[str]) -> str:
    """The heading of the first column of a table keyed by URL, path or resource."""
    return "URL" if all(k.startswith(("http://", "https://", "/")) for k in keys) else "key"


def evidence_view(value: Any) -> dict[str, Any]:
    """An evidence value as the template shows it, so that it reads as evidence, not as JSON:
    {"text"} for a single value, {"items"} for a list of single values, {"columns", "rows"} for a
    list of records or for records keyed by URL or resource (a column per field), {"pairs"} for
    any other mapping. Nested values are views themselves; every text is escaped by the template."""
    if isinstance(value, (list, dict)) and not value:
        return {"text": "none", "missing": False}
    if isinstance(value, list):
        if all(isinstance(v, dict) for v in value):
            columns = list(dict.fromkeys(k for v in value for k in v))
            return {"columns": columns, "rows": [[evidence_view(v.get(k)) for k in columns] for v in value]}
        return {"items": [evidence_view(v) for v in value]}
    if isinstance(value, dict):
        records = [v for v in value.values() if isinstance(v, dict) and v]
        if records and all(isinstance(v, dict) or v is None for v in value.values()):
            fields = list(dict.fromkeys(k for v in records for k in v))
            rows = [[{"text": key, "missing": False}] + [evidence_view((v or {}).get(k)) for k in fields]
                    for key, v in value.items()]
            return {"columns": [_key_label(list(value))] + fields, "rows": rows}
        return {"pairs": [(key, evidence_view(v)) for key, v in value.items()]}
    return {"text": _text(value), "missing": value is None}


def _raw_json(value: Any) -> str:
    """The value as the JSON report has it, indented, for the folded raw view (escaped as text)."""
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def scope_view(scope: dict[str, Any] | None) -> dict[str, Any] | None:
    """The scope section: counts, and the controls (and targets) not selected grouped by reason,
    the largest group first; None for a report of an earlier version, which has no scope."""
    if not scope:
        return None

    def grouped(ids: list[str], reasons: dict[str, str]) -> list[dict[str, Any]]:
        groups: dict[str, list[str]] = {}
        for control in ids:
            groups.setdefault(reasons.get(control, "no reason recorded"), []).append(control)
        return [{"reason": reason, "ids": members}
                for reason, members in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))]

    targets = scope.get("targets") or {"selected": [], "not_selected": [], "reasons": {}}
    return {"selected": scope["selected"], "not_selected": scope["not_selected"],
            "known": len(scope["selected"]) + len(scope["not_selected"]),
            "groups": grouped(scope["not_selected"], scope["reasons"]),
            "targets": targets["selected"], "other_targets": grouped(targets["not_selected"], targets["reasons"])}


def _json_for_script(value: Any) -> Markup:
    """JSON that cannot close the <script> element it sits in."""
    text = json.dumps(value, default=str).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


def _json_array_for_script(values: Iterable[Any]) -> Iterator[Markup]:
    """`_json_for_script` of a list, one value a part: a fleet's results are not held as one text."""
    yield Markup("[")
    for n, value in enumerate(values):
        yield Markup(", " if n else "") + _json_for_script(value)
    yield Markup("]")


def _static(name: str) -> Markup:
    """One of the package's own files, inlined as it is: the page must load nothing."""
    return Markup(resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8"))


@functools.cache
def _environment() -> jinja2.Environment:
    """The one Jinja2 environment of edgeaudit's pages (templates/), escaping every value."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader(__package__, "templates"), autoescape=True,
        undefined=jinja2.StrictUndefined,          # a missing report field fails, never renders blank
        finalize=lambda v: "" if v is None else v,  # an absent value shows as nothing, not "None"
        trim_blocks=True, lstrip_blocks=True)
    environment.filters["value"] = _value
    environment.filters["scope_view"] = scope_view
    environment.filters["script_json"] = _json_for_script
    environment.filters["evidence_view"] = evidence_view
    environment.filters["raw_json"] = _raw_json
    return environment


def _template() -> jinja2.Template:
    return _environment().get_template("report.html")


def catalog_page(controls: list[dict[str, Any]]) -> str:
    """The printable catalog of controls for auditors (`edgeaudit controls --format html`)."""
    return _environment().get_template("catalog.html").render(controls=controls)


def gate(report: dict[str, Any]) -> str:
    """The --fail-on level the run's exit code gated on; a report from before it was recorded
    gated on the default, P4."""
    return report["run"].get("fail_on") or "P4"


def _counted(results: list[dict[str, Any]]) -> str:
    """'1 P3 failure, 2 P4 errors': results counted by severity and outcome, most severe first."""
    counts: dict[tuple[str, str], int] = {}
    for r in results:
        key = (r["severity"], "failure" if r["outcome"] == "failed" else "error")
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{n} {level} {kind}{'s' if n > 1 else ''}"
                     for (level, kind), n in sorted(counts.items(), key=lambda i: (SEVERITY_RANK.get(i[0][0], 9), i[0][1])))


def looser_thresholds(report: dict[str, Any]) -> list[str]:
    """The thresholds the run judged by that are looser than the operational procedures'."""
    return sorted({row["key"] for row in report.get("thresholds") or [] if row.get("looser")})


def verdict(report: dict[str, Any]) -> tuple[str, str, str]:
    """(css class, headline, explanation): the verdict the exit code gave, at the report's
    --fail-on level, saying what failed below the gate so that a green build is never unexplained,
    and how many thresholds were looser than the procedures (a verdict by looser rules says so)."""
    css, headline, why = _verdict(report)
    looser = looser_thresholds(report)
    if looser:
        plural = "s" if len(looser) > 1 else ""
        headline += f" with {len(looser)} threshold{plural} looser than the procedures"
        why += f"; looser than the procedures: {', '.join(looser)}"
    return css, headline, why


def _verdict(report: dict[str, Any]) -> tuple[str, str, str]:
    fail_on, summary, results = gate(report), report["summary"], report["results"]
    at = f"at {fail_on} and above"
    gating: list[dict[str, Any]] = []
    below: list[dict[str, Any]] = []  # failing, but not at the gate
    for r in results:
        if gates(r, fail_on):
            gating.append(r)
        elif r["outcome"] in FAILING:
            below.append(r)
    unjudged = sum(r["outcome"] == "error" for r in results)
    if results and not any(r["outcome"] in EVALUATED for r in results):
        return ("not-evaluated", "NOT EVALUATED",
                f"none of the {len(results)} control results was evaluated ({unjudged} not evaluated, "
                f"{len(results) - unjudged} skipped): nothing is known about compliance (--fail-on {fail_on})")
    under = f"; {_counted(below)} below the gate" if below else ""
    under += f"; {unjudged} control result{'s' if unjudged > 1 else ''} not evaluated" if unjudged else ""
    if any(r["outcome"] == "failed" for r in gating):
        return "not-compliant", f"NOT COMPLIANT {at}", f"{_counted(gating)}: the run fails (--fail-on {fail_on}){under}"
    if gating:
        return ("not-evaluated", f"NOT EVALUATED {at}",
                f"{_counted(gating)}: not evaluated, the run fails (--fail-on {fail_on}){under}")
    if not report["complete"]:
        return "not-evaluated", "NOT EVALUATED", f"the run did not complete (--fail-on {fail_on}){under}"
    warned = f"; {summary['warned']} warning(s)" if summary["warned"] else ""
    below_text = f" ({_counted(below)} below the gate)" if below else ""
    code = report["run"].get("exit_code")
    outcome = "the run passes" if not code else f"exit code {code} for a cause outside the controls (see the run's output)"
    return ("compliant" if not below else "compliant-below"), f"COMPLIANT {at}{below_text}", \
        f"every evaluated control at {fail_on} and above holds: {outcome} (--fail-on {fail_on}){warned}" + \
        (f"; {unjudged} control result{'s' if unjudged > 1 else ''} not evaluated" if unjudged else "")


def _failures(results: list[dict[str, Any]], trend: Trend | None,
              outcomes: tuple[str, ...] = FAILING) -> list[dict[str, Any]]:
    """Results of these outcomes (failed and unevaluated, or warned) by incident level, each
    marked new or failing since."""
    shown = [r for r in results if r["outcome"] in outcomes]  # one pass: a stored result unpacks at each read
    groups = []
    for level in SEVERITIES:
        group = [r for r in shown if r["severity"] == level]
        cards = []
        for r in sorted(group, key=lambda r: (r["control"], r["target"])):
            key = (r["control"], r["target"])
            new = trend is not None and key in trend.new
            still = trend is not None and not new and key in trend.still
            cards.append({"result": r, "new": new, "still": still, "since": trend.still[key] if still else None})
        if cards:
            groups.append({"level": level, "info": INCIDENT_LEVELS[level], "cards": cards})
    return groups


def _margin_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every measured value, closest to its limit first, with its bar."""
    rows = []
    for r in results:
        for name, m in (r.get("margins") or {}).items():
            brief = {"control": r["control"], "target": r["target"], "outcome": r["outcome"]}  # not the whole result
            rows.append((m.get("margin_ratio") if m.get("margin_ratio") is not None else NO_RATIO, brief, name, m))
    rows.sort(key=lambda row: row[0])
    shown = []
    for ratio, r, name, m in rows:
        width = max(2, min(100, int(abs(ratio) * 100))) if ratio < NO_RATIO else 100
        shown.append({"result": r, "name": name, "margin": m, "percent": "" if ratio >= NO_RATIO else f"{ratio:.0%}",
                      "bar": "over" if ratio < 0 else "near" if ratio < 0.1 else "", "width": f"{width / 2:.0f}"})
    return shown


def _sparkline(values: list[float]) -> str:
    """The points of a polyline 80x16 drawing the values; none for fewer than two."""
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return " ".join(f"{i * 80 / (len(values) - 1):.1f},{18 - (v - low) / span * 16:.1f}" for i, v in enumerate(values))


def _trend(trend: Trend | None) -> dict[str, Any] | None:
    if trend is None:
        return None
    series = [{"control": c, "target": t, "name": name, "points": _sparkline(values), "latest": values[-1],
               "runs": len(values)} for (c, t, name), values in sorted(trend.series.items())]
    return {"previous_name": trend.previous_name, "previous_started": trend.previous_started,
            "new": sorted(trend.new), "resolved": sorted(trend.resolved), "still": sorted(trend.still),
            "since": trend.still, "series": series}


def _waivers(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each waiver with its state; one whose every covered result passes should be removed."""
    outcomes = {(r["control"], r["target"]): r["outcome"] for r in report["results"]}
    rows = []
    for w in report.get("waivers") or []:
        covered = [o for (c, t), o in outcomes.items() if c == w["control"] and w.get("target") in (None, t)]
        state = w["state"]
        if state != "expired" and covered and all(o == "passed" for o in covered):
            state = "remove"
        rows.append({"waiver": w, "state": state, "label": WAIVER_LABELS[state]})
    return rows


def _frameworks(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """A row per framework of the summary, its requirements in order, and how many are not met."""
    rows = []
    for name, view in (summary.get("frameworks") or {}).items():
        requirements = [{"id": req, "outcome": entry["outcome"], "controls": entry["controls"]}
                        for req, entry in view["requirements"].items()]
        rows.append({"name": name, "view": view, "requirements": requirements,
                     "short": sum(r["outcome"] in FAILING for r in requirements)})
    return rows


def render(report: dict[str, Any], *, trend: Trend | None = None, ledger: list[LedgerRow] | None = None,
           name: str = "") -> str:
    """The whole page for one report. A field the page needs and the report lacks is a KeyError."""
    return "".join(render_parts(report, trend=trend, ledger=ledger, name=name))


def render_parts(report: dict[str, Any], *, trend: Trend | None = None, ledger: list[LedgerRow] | None = None,
                 name: str = "") -> Iterator[str]:
    """The page in the parts the template makes them, to be written as they come: a fleet's page
    is tens of megabytes, and need not be held whole."""
    order = {o: i for i, o in enumerate(WORST_FIRST)}
    results = ordered(report["results"], lambda r: (order.get(r["outcome"], 9), r["severity"], r["control"],
                                                    r["target"]))
    css, headline, why = verdict(report)
    try:
        yield from _template().generate(
            report=report, run=report["run"], summary=report["summary"], name=name,
            verdict={"css": css, "headline": headline, "why": why},
            outcomes=WORST_FIRST, severities=SEVERITIES, incident_levels=INCIDENT_LEVELS,
            failing=any(r["outcome"] in FAILING for r in results), failures=_failures(results, trend),
            warnings=_failures(results, None, ("warned",)), fail_on=gate(report),
            selected_cadences=run_cadences(report["run"]),
            margin_rows=_margin_rows(results), trend=_trend(trend), waivers=_waivers(report),
            frameworks=_frameworks(report["summary"]),
            attestations=report.get("attestations") or [], ledger=ledger or [], results=results,
            thresholds=report.get("thresholds") or [],
            results_json=_json_array_for_script(results),
            categories=sorted({c for r in results for c in r.get("categories") or []}),
            targets=sorted({r["target"] for r in results}),
            css=_static("report.css"), script=_static("report.js"))
    except jinja2.UndefinedError as exc:  # as a dict lookup of the missing field would fail
        raise KeyError(exc.message) from exc
