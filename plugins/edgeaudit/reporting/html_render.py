"""The HTML compliance report: one self-contained page rendered from the JSON report.

It is built from the same data as the JSON (plus the history and the previous report of the
same selection), so a merged or re-rendered report looks the same as the one a run wrote. It
answers an auditor's questions in order: the verdict, how bad, what failed with its evidence,
how close the passes are to their limits, what changed since last time, which risks were
accepted, whether the checks ran as often as the procedures require, then every result.

Everything that came from a control or the network is escaped; the page loads nothing (its
Content-Security-Policy forbids any request) and works without a server.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from ..catalog import INCIDENT_LEVELS
from .ledger import LedgerRow
from .trend import Trend

OUTCOME_ORDER = ("failed", "error", "warned", "waived", "skipped", "passed")
SEVERITIES = ("P1", "P2", "P3", "P4")

CSS = """
:root { --fail:#a4161a; --err:#9a5b00; --warn:#8a6d00; --ok:#1b6e2a; --muted:#666; --line:#d9d9d9; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:#1d1d1d; margin:0; background:#fafafa; }
main { max-width: 1200px; margin: 0 auto; padding: 1.5em 2em 4em; background:#fff; }
h1 { font-size: 1.6em; margin: .2em 0; } h2 { font-size: 1.25em; border-bottom: 2px solid #eee; padding-bottom:.2em; margin-top:2em; }
h3 { font-size: 1.05em; margin: 1.2em 0 .4em; }
.meta { color: var(--muted); } .muted { color: var(--muted); }
.demo { font-size: 2.4em; font-weight: 800; letter-spacing: .3em; color: #b35c00; border: 3px dashed #b35c00; text-align:center; padding:.2em; margin:.5em 0; }
.verdict { font-size: 1.8em; font-weight: 700; padding: .5em .8em; border-radius: 8px; margin: .6em 0; }
.verdict.compliant { background: #e4f3e6; color: var(--ok); }
.verdict.not-compliant { background: #fbe3e4; color: var(--fail); }
.verdict.not-evaluated { background: #fff3d6; color: var(--err); }
.verdict small { display:block; font-size: .5em; font-weight: 400; color: #333; }
table { border-collapse: collapse; width: 100%; margin: .4em 0 1em; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; font-weight: 600; }
table.compact { width: auto; }
.chips span { display:inline-block; margin: 0 .4em .4em 0; padding: .2em .7em; border-radius: 1em; background:#f0f0f0; }
.o-failed { color: var(--fail); font-weight: 700; } .o-error { color: var(--err); font-weight: 700; }
.o-warned { color: var(--warn); font-weight: 700; } .o-waived { color: #6a4c93; font-weight: 700; }
.o-passed { color: var(--ok); } .o-skipped { color: var(--muted); }
.card { border: 1px solid var(--line); border-left: 5px solid var(--fail); border-radius: 4px; padding: .6em 1em; margin: .6em 0; }
.card.error { border-left-color: var(--err); }
.card h4 { margin: 0 0 .3em; font-size: 1em; }
.tag { display:inline-block; font-size:.8em; padding: 0 .5em; border-radius: 3px; background:#eee; margin-left:.4em; }
.tag.new { background:#fbe3e4; color: var(--fail); } .tag.since { background:#f0f0f0; }
.bar { display:inline-block; height: .7em; background: var(--ok); vertical-align: middle; }
.bar.near { background: var(--warn); } .bar.over { background: var(--fail); }
.state-expired, .state-overdue, .state-never { color: var(--fail); font-weight: 700; }
.state-expiring, .state-remove { color: var(--warn); font-weight: 700; } .state-live, .state-within { color: var(--ok); }
svg.spark { vertical-align: middle; }
.filters { display:flex; flex-wrap: wrap; gap: .5em; align-items: center; margin: .5em 0; position: sticky; top: 0; background:#fff; padding:.4em 0; }
.filters select, .filters input { font: inherit; padding: .2em .4em; }
#results td:nth-child(3), .card h4 { white-space: nowrap; }
#results td.msg { max-width: 40em; overflow-wrap: anywhere; }
#detail { white-space: pre-wrap; font-family: ui-monospace, monospace; font-size: .85em; background:#f7f7f7; padding:.6em; border:1px solid var(--line); display:none; }
#results tbody tr { cursor: pointer; } #results tbody tr:hover { background: #f5f9ff; }
@media print {
  body { background: #fff; } main { max-width: none; padding: 0; }
  .filters, #detail, .noprint { display: none !important; }
  section { break-before: page; } section#counts { break-before: auto; }
  .card, tr { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""

SCRIPT = """
(function () {
  var data = JSON.parse(document.getElementById('results-data').textContent);
  var rows = Array.prototype.slice.call(document.querySelectorAll('#results tbody tr'));
  var keys = rows.map(function (row, i) { var r = data[i];
    return [r.control, r.title, r.target, r.message, r.outcome, r.severity, (r.categories || []).join(' ')].join(' ').toLowerCase(); });
  var f = { outcome: document.getElementById('f-outcome'), severity: document.getElementById('f-severity'),
            category: document.getElementById('f-category'), target: document.getElementById('f-target'),
            text: document.getElementById('f-text') };
  var count = document.getElementById('f-count');
  function apply() {
    var o = f.outcome.value, s = f.severity.value, c = f.category.value, t = f.target.value,
        q = f.text.value.trim().toLowerCase(), shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var r = data[i];
      var ok = (!o || r.outcome === o) && (!s || r.severity === s) && (!t || r.target === t) &&
               (!c || (r.categories || []).indexOf(c) >= 0) && (!q || keys[i].indexOf(q) >= 0);
      rows[i].hidden = !ok; if (ok) shown++;
    }
    count.textContent = 'showing ' + shown + ' of ' + rows.length;
  }
  var timer = null;
  ['outcome', 'severity', 'category', 'target'].forEach(function (k) { f[k].addEventListener('change', apply); });
  f.text.addEventListener('input', function () { clearTimeout(timer); timer = setTimeout(apply, 120); });
  var detail = document.getElementById('detail');
  document.querySelector('#results tbody').addEventListener('click', function (e) {
    var row = e.target.closest('tr'); if (!row) return;
    var r = data[Number(row.dataset.i)];
    detail.textContent = r.control + ' [' + r.target + '] ' + r.outcome + '\\n' + r.title + '\\n\\n' +
      (r.message ? r.message + '\\n\\n' : '') + 'evidence: ' + JSON.stringify(r.evidence, null, 2) +
      (r.remediation ? '\\n\\nremediation: ' + r.remediation : '');
    detail.style.display = 'block';
  });
  apply();
  document.body.dataset.ready = 'true';
})();
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _json_for_script(value: Any) -> str:
    """JSON that cannot close the <script> element it sits in."""
    return json.dumps(value, default=str).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _value(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return _e(json.dumps(value, sort_keys=True, default=str))
    return _e(value)


def verdict(summary: dict[str, Any], complete: bool) -> tuple[str, str, str]:
    """(css class, headline, explanation)."""
    if summary["failed"]:
        return "not-compliant", "NOT COMPLIANT", f"{summary['failed']} control(s) failed"
    if summary["error"]:
        return "not-evaluated", "NOT EVALUATED", f"{summary['error']} control(s) could not be evaluated"
    if not complete:
        return "not-evaluated", "NOT EVALUATED", "the run did not complete"
    warned = f"; {summary['warned']} warning(s)" if summary["warned"] else ""
    return "compliant", "COMPLIANT", f"every evaluated control holds{warned}"


def _evidence_table(result: dict[str, Any]) -> str:
    margins = result.get("margins") or {}
    rows = []
    for name, m in margins.items():
        rows.append(f"<tr><th>{_e(name)}</th><td>{_value(m['observed'])} {_e(m.get('unit'))}</td>"
                    f"<td>{'&le;' if m['better'] == 'lower' else '&ge;'} {_value(m['limit'])}</td>"
                    f"<td>{_value(m['margin'])}</td></tr>")
    for key, value in result["evidence"].items():
        if key not in margins:
            rows.append(f"<tr><th>{_e(key)}</th><td colspan=3>{_value(value)}</td></tr>")
    if not rows:
        return ""
    return ("<table class=compact><tr><th>evidence</th><th>observed</th><th>threshold</th><th>margin</th></tr>"
            + "".join(rows) + "</table>")


def _frameworks(result: dict[str, Any]) -> str:
    return ", ".join(f"{_e(k)} {_e(v)}" for k, v in (result.get("frameworks") or {}).items())


def _failure_cards(results: list[dict[str, Any]], trend: Trend | None) -> str:
    failing = [r for r in results if r["outcome"] in ("failed", "error")]
    if not failing:
        return "<p>No control failed and none was left unevaluated.</p>"
    out = []
    for level in SEVERITIES:
        group = [r for r in failing if r["severity"] == level]
        if not group:
            continue
        info = INCIDENT_LEVELS[level]
        out.append(f"<h3>{level} {_e(info['name'])}: {len(group)} &middot; respond within {_e(info['response'])}, "
                   f"escalate to {_e(info['escalation'])}</h3>")
        for r in sorted(group, key=lambda r: (r["control"], r["target"])):
            tags = ""
            if trend is not None:
                key = (r["control"], r["target"])
                if key in trend.new:
                    tags = '<span class="tag new">new</span>'
                elif key in trend.still:
                    tags = f'<span class="tag since">failing since {_e(trend.still[key])}</span>'
            out.append(
                f'<div class="card {_e(r["outcome"])}"><h4><span class="o-{_e(r["outcome"])}">{_e(r["outcome"]).upper()}'
                f"</span> {_e(r['control'])} &middot; {_e(r['title'])} {tags}</h4>"
                f"<div class=meta>target {_e(r['target'])} &middot; resource {_e(r.get('resource'))}"
                f"{' &middot; ' + _frameworks(r) if r.get('frameworks') else ''}</div>"
                f"<p>{_e(r['message'])}</p>{_evidence_table(r)}"
                + (f"<p><b>Remediation:</b> {_e(r['remediation'])}</p>" if r.get("remediation") else "")
                + "</div>")
    return "".join(out)


def _margins(results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        for name, m in (r.get("margins") or {}).items():
            rows.append((m.get("margin_ratio") if m.get("margin_ratio") is not None else 9e9, r, name, m))
    if not rows:
        return "<p class=muted>No control of this run measured a value against a threshold.</p>"
    rows.sort(key=lambda row: row[0])
    body = []
    for ratio, r, name, m in rows:
        width = max(2, min(100, int(abs(ratio) * 100))) if ratio < 9e9 else 100
        css = "over" if ratio < 0 else "near" if ratio < 0.1 else ""
        body.append(
            f"<tr><td>{_e(r['control'])}</td><td>{_e(r['target'])}</td><td>{_e(name)}</td>"
            f"<td>{_value(m['observed'])} {_e(m.get('unit'))}</td>"
            f"<td>{'&le;' if m['better'] == 'lower' else '&ge;'} {_value(m['limit'])}</td>"
            f"<td>{_value(m['margin'])}</td><td>{'' if ratio >= 9e9 else f'{ratio:.0%}'} "
            f'<span class="bar {css}" style="width:{width / 2:.0f}px"></span></td>'
            f'<td class="o-{_e(r["outcome"])}">{_e(r["outcome"])}</td></tr>')
    return ("<p class=muted>Closest to its limit first; a pass within 10% of its limit is marked.</p>"
            "<table><tr><th>control</th><th>target</th><th>measure</th><th>observed</th><th>limit</th>"
            "<th>margin</th><th>margin %</th><th>outcome</th></tr>" + "".join(body) + "</table>")


def _sparkline(values: list[float]) -> str:
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    points = " ".join(f"{i * 80 / (len(values) - 1):.1f},{18 - (v - low) / span * 16:.1f}" for i, v in enumerate(values))
    return (f'<svg class="spark" width="84" height="20" viewBox="-2 0 84 20" aria-hidden="true">'
            f'<polyline fill="none" stroke="#3366cc" stroke-width="1.5" points="{points}"/></svg>')


def _trend(trend: Trend | None) -> str:
    if trend is None:
        return "<p class=muted>No earlier report of this selection in the report folder: nothing to compare.</p>"

    def listing(title: str, keys: Any, extra: Any = None) -> str:
        items = "".join(f"<li>{_e(c)} [{_e(t)}]{extra(c, t) if extra else ''}</li>" for c, t in sorted(keys))
        return f"<h3>{title}: {len(keys)}</h3>" + (f"<ul>{items}</ul>" if items else "")

    parts = [f"<p>Compared with {_e(trend.previous_name)} (started {_e(trend.previous_started)}).</p>",
             listing("New failures", trend.new),
             listing("Resolved", trend.resolved),
             listing("Still failing", trend.still, lambda c, t: f" since {_e(trend.still[(c, t)])}")]
    if trend.series:
        rows = "".join(
            f"<tr><td>{_e(c)}</td><td>{_e(t)}</td><td>{_e(name)}</td><td>{_sparkline(values)}</td>"
            f"<td>{_value(values[-1])}</td><td>{len(values)} runs</td></tr>"
            for (c, t, name), values in sorted(trend.series.items()))
        parts.append("<h3>History of the measured values</h3><table class=compact><tr><th>control</th><th>target</th>"
                     f"<th>measure</th><th>trend</th><th>latest</th><th></th></tr>{rows}</table>")
    return "".join(parts)


def _waivers(report: dict[str, Any]) -> str:
    waivers = report.get("waivers") or []
    if not waivers:
        return "<p class=muted>No waivers are configured.</p>"
    results = {(r["control"], r["target"]): r["outcome"] for r in report["results"]}
    rows = []
    for w in waivers:
        covered = [o for (c, t), o in results.items() if c == w["control"] and w.get("target") in (None, t)]
        state = w["state"]
        if w["state"] != "expired" and covered and all(o == "passed" for o in covered):
            state = "remove"
        label = {"live": "live", "expiring": "expires soon", "expired": "expired: enforced again",
                 "remove": "the control now passes: remove this waiver"}[state]
        rows.append(f"<tr><td>{_e(w['control'])}</td><td>{_e(w.get('target') or 'all')}</td><td>{_e(w['reason'])}</td>"
                    f"<td>{_e(w['approved_by'])}</td><td>{_e(w['expires'])}</td>"
                    f'<td class="state-{state}">{_e(label)}</td></tr>')
    return ("<table><tr><th>control</th><th>target</th><th>reason</th><th>approved by</th><th>expires</th>"
            "<th>state</th></tr>" + "".join(rows) + "</table>")


def _link(url: str) -> str:
    if url.startswith(("https://", "http://")):
        return f'<a href="{escape(url, quote=True)}" rel="noopener noreferrer">{_e(url)}</a>'
    return _e(url)


def _attestations(report: dict[str, Any]) -> str:
    attestations = report.get("attestations") or []
    if not attestations:
        return "<p class=muted>No attestations are configured.</p>"
    rows = "".join(
        f"<tr><td>{_e(a['control'])}</td><td>{_e(a.get('target') or 'all')}</td><td>{_e(a['status'])}</td>"
        f"<td>{_e(a['attested_by'])}</td><td>{_e(a['date'])}</td><td>{_e(a['expires'])}</td>"
        f"<td>{_link(a['evidence_url'])}</td><td class=\"state-{_e(a['state'])}\">{_e(a['state'])}</td></tr>"
        for a in attestations)
    return ("<table><tr><th>control</th><th>target</th><th>status</th><th>attested by</th><th>date</th>"
            f"<th>expires</th><th>evidence</th><th>state</th></tr>{rows}</table>")


def _ledger(rows: list[LedgerRow]) -> str:
    body = "".join(
        f"<tr><td>{_e(r.cadence)}</td><td>{_e(r.last_complete or 'never')}</td><td>{_e(r.age)}</td>"
        f"<td>{_e(r.window)}</td><td class=\"state-{_e(r.status)}\">{_e(r.status)}</td></tr>" for r in rows)
    return ("<table class=compact><tr><th>cadence</th><th>last complete run</th><th>age</th><th>a run is required</th>"
            f"<th>status</th></tr>{body}</table>")


def _results_table(results: list[dict[str, Any]]) -> str:
    def options(values: Any) -> str:
        return "".join(f"<option>{_e(v)}</option>" for v in values)

    categories = sorted({c for r in results for c in r.get("categories") or []})
    targets = sorted({r["target"] for r in results})
    rows = "".join(
        f'<tr data-i="{i}"><td class="o-{_e(r["outcome"])}">{_e(r["outcome"])}</td><td>{_e(r["severity"])}</td>'
        f"<td>{_e(r['control'])}</td><td>{_e(r['title'])}</td><td>{_e(r['target'])}</td>"
        f"<td>{_e(', '.join(r.get('categories') or []))}</td><td class=msg>{_e(r['message'])}</td></tr>"
        for i, r in enumerate(results))
    return (
        '<div class="filters" role="search">'
        f'<label>outcome <select id="f-outcome"><option value="">all</option>{options(OUTCOME_ORDER)}</select></label>'
        f'<label>severity <select id="f-severity"><option value="">all</option>{options(SEVERITIES)}</select></label>'
        f'<label>category <select id="f-category"><option value="">all</option>{options(categories)}</select></label>'
        f'<label>target <select id="f-target"><option value="">all</option>{options(targets)}</select></label>'
        '<label>search <input id="f-text" type="search" placeholder="control, title, message"></label>'
        '<span id="f-count" class="muted"></span></div>'
        '<pre id="detail" aria-live="polite"></pre>'
        '<table id="results"><thead><tr><th>outcome</th><th>severity</th><th>control</th><th>title</th>'
        f"<th>target</th><th>categories</th><th>message</th></tr></thead><tbody>{rows}</tbody></table>")


def render(report: dict[str, Any], *, trend: Trend | None = None, ledger: list[LedgerRow] | None = None,
           name: str = "") -> str:
    """The whole page for one report."""
    run, summary = report["run"], report["summary"]
    order = {o: i for i, o in enumerate(OUTCOME_ORDER)}
    results = sorted(report["results"], key=lambda r: (order.get(r["outcome"], 9), r["severity"], r["control"],
                                                      r["target"]))
    css, headline, why = verdict(summary, report["complete"])
    counts = "".join(f'<span class="o-{o}">{summary[o]} {o}</span>' for o in OUTCOME_ORDER)
    severity_rows = "".join(
        f"<tr><td><b>{level}</b> {_e(info['name'])}</td><td>{_e(info['description'])}</td>"
        f"<td class=\"{'o-failed' if summary['failed_by_severity'][level] else ''}\">{summary['failed_by_severity'][level]}</td>"
        f"<td>{_e(info['response'])}</td><td>{_e(info['escalation'])}</td></tr>"
        for level, info in INCIDENT_LEVELS.items())
    meta_rows = "".join(f"<tr><th>{_e(k)}</th><td>{_value(v)}</td></tr>" for k, v in run.items())
    incomplete = "" if report["complete"] else "<small>This run did not complete: results are as far as it got.</small>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgeaudit {_e(headline.lower())}: {_e(name or run['selection'])}</title>
<style>{CSS}</style></head>
<body><main>
<h1>edgeaudit compliance report</h1>
{'<div class="demo">DEMO</div><p class=meta>Embedded demo environment: these findings are about a simulated site.</p>' if run.get('demo') else ''}
<div class="verdict {css}" id="verdict">{headline}<small>{_e(why)}</small>{incomplete}</div>
<p class=meta>targets <b>{_e(', '.join(run['targets']))}</b> &middot; selection <b>{_e(run['selection'])}</b> &middot;
started {_e(run['started'])} &middot; finished {_e(run['finished'])} &middot; AWS account {_e(run.get('aws_account') or 'unknown')}
&middot; edgeaudit {_e(run['tool_version'])}</p>
<section id="counts"><h2>Counts</h2>
<div class="chips">{counts}</div>
<table class=compact><tr><th>severity</th><th>meaning</th><th>failed or error</th><th>respond within</th><th>escalation</th></tr>
{severity_rows}</table></section>
<section id="failures"><h2>Failures and errors</h2>
{_failure_cards(results, trend)}</section>
<section id="margins"><h2>Margins</h2>
{_margins(results)}</section>
<section id="trend"><h2>Trend</h2>
{_trend(trend)}</section>
<section id="waivers"><h2>Waivers</h2>
{_waivers(report)}</section>
<section id="attestations"><h2>Attestations</h2>
{_attestations(report)}</section>
<section id="cadence"><h2>Cadence</h2>
{_ledger(ledger or [])}</section>
<section id="all"><h2>All results ({len(results)})</h2>
{_results_table(results)}</section>
<section id="run"><h2>Run</h2>
<table class=compact><tr><th>report</th><td>{_e(name)}</td></tr><tr><th>schema</th><td>{_e(report['schema'])}</td></tr>
<tr><th>complete</th><td>{_e(report['complete'])}</td></tr>{meta_rows}</table></section>
</main>
<script type="application/json" id="results-data">{_json_for_script(results)}</script>
<script>{SCRIPT}</script>
</body></html>
"""
