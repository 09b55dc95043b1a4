"""Framework views: `--framework ID` runs exactly the controls the catalog maps to those
frameworks (with -m as well), the report summarises each framework and requirement from its
results, `edgeaudit merge` recomputes that summary, and the HTML report shows it escaped."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest

from conftest import REPO, run_suite
from edgeaudit.reporting.html_render import render
from edgeaudit.reporting.ledger import run_cadences
from edgeaudit.reporting.merge import MergeError, merge
from edgeaudit.reporting.report import build_report
from edgeaudit.reporting.results import OUTCOMES, WORST_FIRST, summarize
from edgeaudit.rules import catalog
from edgeaudit.rules.frameworks import UnknownFramework, requirements, resolve, summary

SUITES = REPO / "suites"
EVIL = '<img src=x onerror="alert(1)">'


def mapped(frameworks: set[str], cadences: set[str] | None = None) -> set[str]:
    """The catalog's controls mapped to one of these frameworks (and of one of these cadences)."""
    wanted = {f.lower() for f in frameworks}
    return {c.id for c in catalog.controls(SUITES).values()
            if any(name.lower() in wanted for name, _ in c.frameworks)
            and (cadences is None or cadences & set(c.cadences))}


def edgeaudit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgeaudit.cli", *args], cwd=REPO, capture_output=True, text=True)


@pytest.fixture(scope="module")
def daily(tmp_path_factory):
    """One demo run of the daily controls of FSBP and OBS (ids in other cases than the catalog's)."""
    return run_suite("-m", "daily", "--framework", "fsbp", "--framework", "Obs", "--demo",
                     report_dir=tmp_path_factory.mktemp("frameworks"))


# --- selection ------------------------------------------------------------------------------------

def test_a_framework_run_selects_exactly_the_catalogs_controls_of_that_cadence(daily):
    report = daily.report
    assert daily.returncode in (0, 1), daily.output
    expected = mapped({"FSBP", "OBS"}, {"daily"})
    assert expected and "EA-TLS-01" in expected and "EA-HDR-01" in expected
    assert {r["control"] for r in report["results"]} == expected
    assert len(report["results"]) == len(expected) * len(report["run"]["targets"])
    assert report["complete"] is True and report["run"]["selection"] == "daily"
    assert report["run"]["frameworks"] == ["FSBP", "OBS"]  # as the catalog spells them, in the order asked
    assert re.search(r"\d+ deselected", daily.output)


def test_a_framework_run_is_named_for_it_and_covers_no_cadence(daily):
    written = daily._written(".json").name
    assert re.fullmatch(r"daily-fsbp-obs-\d{8}T\d{6}Z\.json", written), written
    # the history line's cadences (the demo keeps its history in its own S3 bucket, gone with the
    # run): not evidence of a whole daily run for EA-OPS-02, which the same run without
    # --framework would be
    run = daily.report["run"]
    assert run_cadences(run) == [] and run_cadences({**run, "frameworks": []}) == ["daily"]


def test_collect_only_with_marks_lists_the_mapped_controls_of_those_cadences(tmp_path):
    listing = json.loads(edgeaudit("controls", "--format", "json").stdout)
    expected = mapped({"ZAP", "FSBP"}, {"weekly", "monthly"})
    done = run_suite("--co", "-q", "-m", "weekly or monthly", "--framework", "zap,Fsbp", report_dir=tmp_path)
    assert done.returncode == 0, done.output
    collected = {line.split("[", 1)[0] for line in done.output.splitlines() if line.startswith("suites/")}
    assert collected == {c["test"] for c in listing if c["id"] in expected}
    assert len(expected) >= 10


def test_controls_listing_filters_by_framework():
    done = edgeaudit("controls", "--format", "json", "--framework", "moz-tls", "--framework", "CIS")
    assert done.returncode == 0, done.stderr
    assert {c["id"] for c in json.loads(done.stdout)} == mapped({"MOZ-TLS", "CIS"})
    unknown = edgeaudit("controls", "--framework", "PCI-DSS")
    assert unknown.returncode == 2 and "'PCI-DSS'" in unknown.stderr and "FSBP" in unknown.stderr


@pytest.mark.parametrize("how", ["option", "env", "ini"])
def test_an_unknown_framework_is_a_usage_error_naming_the_known_ones(tmp_path, how):
    args = {"option": ["--framework", "FSBP", "--framework", "PCI-DSS"], "env": [],
            "ini": ["-o", "edgeaudit_frameworks=PCI-DSS"]}[how]
    env = {"EDGEAUDIT_FRAMEWORK": "fsbp,PCI-DSS"} if how == "env" else None
    done = run_suite("--demo", "-m", "daily", *args, env=env, report_dir=tmp_path)
    assert done.returncode == 4, done.output
    message = next(line for line in done.output.splitlines() if "PCI-DSS" in line)
    assert "edgeaudit_frameworks" in message and "EDGEAUDIT_FRAMEWORK" in message
    known = catalog.known_frameworks(SUITES)
    assert {"FSBP", "MOZ-TLS", "OBS", "ZAP", "CIS"} <= set(known) and all(name in message for name in known)
    assert not list(tmp_path.glob("*.json"))


def test_resolve_matches_any_case_once_each():
    assert resolve(["fsbp", "ZAP", "FSBP", " obs "], ["FSBP", "OBS", "ZAP", "nuclei"]) == ("FSBP", "ZAP", "OBS")
    assert resolve(["NUCLEI"], ["nuclei"]) == ("nuclei",)
    assert resolve([], ["FSBP"]) == ()
    with pytest.raises(UnknownFramework, match="'PCI'.*Fix: use one of FSBP, nuclei"):
        resolve(["PCI"], ["nuclei", "FSBP"])


def test_the_catalog_reads_frameworks_written_as_dict_calls(tmp_path):
    (tmp_path / "test_new.py").write_text(
        'import pytest\n\n\n@pytest.mark.control("EA-NEW-01", severity="P3", frameworks=dict(FSBP="S3.14"))\n'
        '@pytest.mark.weekly\ndef test_new(target):\n    """A new control."""\n')
    assert catalog.controls(tmp_path)["EA-NEW-01"].frameworks == (("FSBP", "S3.14"),)
    assert catalog.known_frameworks(tmp_path) == ("FSBP",)


# --- the summary ----------------------------------------------------------------------------------

def test_the_summary_per_framework_counts_the_results(daily):
    report = daily.report
    views = report["summary"]["frameworks"]
    assert set(views) == {"FSBP", "OBS"}  # ZAP, which some selected controls map to too, was not asked for
    worst = {o: i for i, o in enumerate(WORST_FIRST)}
    for name, view in views.items():
        mine = [r for r in report["results"] if name in r["frameworks"]]
        assert view["controls"] == len({r["control"] for r in mine})
        assert {o: view[o] for o in OUTCOMES} == {o: sum(r["outcome"] == o for r in mine) for o in OUTCOMES}
        declared = {req for r in mine for req in requirements(r["frameworks"][name])}
        assert set(view["requirements"]) == declared
        for requirement, entry in view["requirements"].items():
            proving = [r for r in mine if requirement in requirements(r["frameworks"][name])]
            assert entry["controls"] == sorted({r["control"] for r in proving})
            assert entry["outcome"] == min((r["outcome"] for r in proving), key=worst.__getitem__)
    assert views["FSBP"]["requirements"]["ACM.1"]["outcome"] == daily.result("EA-TLS-01", "www")["outcome"]


def _result(control: str, target: str, outcome: str, frameworks: dict[str, str]) -> dict:
    return {"control": control, "target": target, "outcome": outcome, "severity": "P2", "frameworks": frameworks}


def test_a_control_mapped_to_several_requirements_counts_for_each():
    results = [_result("EA-CF-04", "www", "failed", {"FSBP": "CloudFront.7, CloudFront.8"}),
               _result("EA-CF-04", "shop", "passed", {"FSBP": "CloudFront.7, CloudFront.8"}),
               _result("EA-CF-09", "www", "passed", {"FSBP": "CloudFront.10, CloudFront.9"}),
               _result("EA-HDR-01", "www", "error", {"ZAP": "10035", "fsbp": "CloudFront.8"})]
    views = summary(results)
    assert list(views) == ["FSBP", "fsbp", "ZAP"]
    fsbp = views["FSBP"]
    assert (fsbp["controls"], fsbp["failed"], fsbp["passed"], fsbp["error"]) == (2, 1, 2, 0)
    assert list(fsbp["requirements"]) == ["CloudFront.7", "CloudFront.8", "CloudFront.9", "CloudFront.10"]
    assert fsbp["requirements"]["CloudFront.7"] == {"outcome": "failed", "controls": ["EA-CF-04"]}
    assert fsbp["requirements"]["CloudFront.8"]["outcome"] == "failed"
    assert fsbp["requirements"]["CloudFront.10"] == {"outcome": "passed", "controls": ["EA-CF-09"]}
    assert views["ZAP"]["requirements"] == {"10035": {"outcome": "error", "controls": ["EA-HDR-01"]}}
    assert list(summary(results, ["zap"])) == ["ZAP"]


# --- merge ----------------------------------------------------------------------------------------

def _shards(report: dict) -> tuple[dict, dict]:
    """The run's report as shard 1 of 2 (its summary spoiled) and an empty shard 2."""
    first, second = copy.deepcopy(report), copy.deepcopy(report)
    first["run"]["shard"] = {"index": 1, "count": 2}
    first["summary"]["frameworks"] = {}
    second["run"]["shard"] = {"index": 2, "count": 2}
    second["run"]["targets"], second["results"] = [], []
    second["summary"] = summarize([])
    return first, second


def test_merge_recomputes_the_framework_summary_and_keeps_the_selection(daily, tmp_path):
    first, second = _shards(daily.report)
    paths = []
    for i, shard in enumerate((first, second), 1):
        paths.append(tmp_path / f"shard{i}.json")
        paths[-1].write_text(json.dumps(shard))
    done = edgeaudit("merge", *map(str, paths), "--output", str(tmp_path / "m"))
    assert done.returncode in (0, 1), done.stderr
    merged_path = next((tmp_path / "m").glob("*-merged.json"))
    assert merged_path.name.startswith("daily-fsbp-obs-")
    merged = json.loads(merged_path.read_text())
    assert merged["run"]["frameworks"] == ["FSBP", "OBS"]
    assert merged["summary"]["frameworks"] == daily.report["summary"]["frameworks"] != {}
    assert 'id="frameworks"' in merged_path.with_suffix(".html").read_text()


def test_merge_refuses_shards_of_other_framework_selections(daily):
    first, second = _shards(daily.report)
    second["run"]["frameworks"] = ["FSBP"]
    with pytest.raises(MergeError, match="different framework selections"):
        merge([first, second])
    first["run"]["frameworks"] = "FSBP"
    with pytest.raises(MergeError, match="run.frameworks is not a list"):
        merge([first, second])


def test_reports_from_before_framework_selection_still_merge(daily):
    first, second = _shards(daily.report)
    for shard in (first, second):
        del shard["run"]["frameworks"]
        shard["summary"].pop("frameworks", None)
    merged = merge([first, second])
    assert merged["run"]["frameworks"] == []
    assert set(merged["summary"]["frameworks"]) == {"FSBP", "OBS", "ZAP"}  # no selection: every framework


# --- HTML -----------------------------------------------------------------------------------------

class _Section(HTMLParser):
    """The text of one <section id=...> of the page, and the tags in it."""

    def __init__(self, section: str) -> None:
        super().__init__()
        self.section, self.depth, self.text, self.tags = section, 0, [], []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth or (tag == "section" and ("id", self.section) in attrs):
            self.tags.append(tag)
            self.depth += tag == "section"

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag == "section":
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.text.append(data)


def _section(page: str, section: str = "frameworks") -> _Section:
    parser = _Section(section)
    parser.feed(page)
    return parser


def test_the_html_report_shows_each_framework_with_its_requirements_folded(daily):
    page = daily.html
    section = _section(page)
    text = " ".join(" ".join(section.text).split())
    assert text.startswith("Frameworks")
    for name, view in daily.report["summary"]["frameworks"].items():
        counts = " ".join(str(view[o]) for o in WORST_FIRST)
        assert f"{name} {view['controls']} {counts}" in text, text
        assert f"{len(view['requirements'])} requirement(s)" in text
        for requirement, entry in view["requirements"].items():
            assert f"{requirement} {entry['outcome']} {', '.join(entry['controls'])}" in text
    assert section.tags.count("details") == len(daily.report["summary"]["frameworks"])
    assert "frameworks <b>FSBP, OBS</b>" in page  # the run's selection, under the verdict
    shown = text + " ".join(_section(page, "run").text)
    assert "['" not in shown and "{'" not in shown and "('" not in shown  # no Python reprs


def test_framework_names_and_requirements_are_escaped():
    results = [{**_result("EA-CF-04", "www", "failed", {EVIL: f"{EVIL}, S3.1"}), "title": EVIL, "cadence": [],
                "categories": [], "resource": "", "message": "", "evidence": {}, "remediation": "", "nodeid": "n",
                "waiver": None, "duration_s": 0.1}]
    run = {"started": "s", "finished": "f", "selection": "all", "demo": False, "tool_version": "0", "targets": ["www"],
           "aws_account": None, "frameworks": [EVIL]}
    report = build_report(run=run, summary=summarize(results), results=results, complete=True)
    page = render(report)
    section = _section(page)
    assert EVIL in " ".join(section.text) and "img" not in section.tags
    assert "failed or not evaluated" in " ".join(section.text)
    assert EVIL not in page and "&lt;img src=x" in page


def test_a_run_mapped_to_no_framework_says_so():
    run = {"started": "s", "finished": "f", "selection": "all", "demo": False, "tool_version": "0", "targets": [],
           "aws_account": None}
    page = render(build_report(run=run, summary=summarize([]), results=[], complete=True))
    assert "No control of this run maps to a framework." in " ".join(_section(page).text)
