"""The exports for other systems: OCSF Detection Findings (`.ocsf.json`), CSV, the Markdown
summary for $GITHUB_STEP_SUMMARY, and JUnit test case names carrying the control id. A run of
controls with every outcome (in one process and under xdist) writes them; `edgeaudit merge`
of its shards writes the same findings; planted secrets reach none of them."""

from __future__ import annotations

import copy
import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import ocsf_models
import pytest
from test_plugin import Project

from edgeaudit.demo.builder import ACCOUNT_ALIAS, SiteSpec
from edgeaudit.reporting.findings_csv import COLUMNS, csv_text, safe_cell
from edgeaudit.reporting.ocsf import findings
from edgeaudit.reporting.step_summary import append_step_summary, escape, markdown

SECRET = "plantedexportsecret42"

# One control per outcome; the failure's message is hostile to CSV and Markdown alike.
EVERY_OUTCOME = f'''
from edgeaudit.errors import NotEvaluated

@pytest.mark.control("EA-OPS-01", severity="P1", frameworks={{"FSBP": "S3.8, S3.1", "CIS": "2.1.5"}})
@pytest.mark.daily
def test_fails(target, evidence):
    """Fails at P1.

    Remediation: block public access.
    """
    evidence.resource = f"s3://{{target.bucket}}"
    evidence.record("seen", "https://x.example/?token={SECRET}&page=2")
    evidence.measure("days_left", 10, 14, better="higher", unit="days")
    assert False, "=HYPERLINK(\\"https://evil.example\\") | `rm` <b>x</b> at https://x.example/?api_key={SECRET}"

@pytest.mark.control("EA-OPS-02", severity="P2")
@pytest.mark.daily
def test_passes(target, evidence):
    """Passes at P2."""
    evidence.resource = target.url

@pytest.mark.control("EA-OPS-03", severity="P3")
@pytest.mark.daily
def test_warns(target, evidence):
    """Warns at P3."""
    evidence.warn("close to its limit")

@pytest.mark.control("EA-OPS-04", severity="P2")
@pytest.mark.daily
def test_errors(target):
    """Cannot be evaluated."""
    raise NotEvaluated("AccessDenied: the credentials lack s3:GetBucketPolicy")

@pytest.mark.control("ACME-WEB-05", severity="P4")
@pytest.mark.daily
def test_waived(target):
    """Fails, waived."""
    assert False, "accepted risk"

@pytest.mark.control("ACME-WEB-06", severity="P3")
@pytest.mark.daily
def test_skipped(target):
    """Not applicable."""
    pytest.skip("no CloudFormation stack configured")
'''
OUTCOMES = {"EA-OPS-01": "failed", "EA-OPS-02": "passed", "EA-OPS-03": "warned", "EA-OPS-04": "error",
            "ACME-WEB-05": "waived", "ACME-WEB-06": "skipped"}
WAIVER = {"control": "ACME-WEB-05", "reason": "legacy site", "approved_by": "Risk owner", "expires": "2099-01-01"}


@pytest.fixture(scope="module")
def export_site(world):
    return world.add(SiteSpec(name="exports"))


@pytest.fixture(scope="module", params=["one process", "xdist"])
def exported(request, tmp_path_factory, world, export_site):
    """A run of every outcome with $GITHUB_STEP_SUMMARY set: (project, run, summary file)."""
    project = Project(tmp_path_factory.mktemp("exports"), world, export_site)
    project.control("every", EVERY_OUTCOME)
    project.config(waivers=[WAIVER])
    summary = project.root / "step-summary.md"
    summary.write_text("earlier step\n")
    run = project.run("-m", "daily", *(["-n", "2"] if request.param == "xdist" else []),
                      env={"GITHUB_STEP_SUMMARY": str(summary), "EDGEAUDIT_RUN_ID": "exports-run-1",
                           "EDGEAUDIT_BUILTIN_CONTROLS": "false"})  # this project's controls only
    assert run.returncode == 1, run.output
    assert {r["control"]: r["outcome"] for r in run.report["results"]} == OUTCOMES, run.output
    return project, run, summary


def _written(run, suffix: str) -> Path:
    """<stem><suffix> of the report set the run names in its summary (`json:   <stem>.json`)."""
    stem = run._written(".json").with_suffix("")
    return stem.with_name(stem.name + suffix)


# --- OCSF -----------------------------------------------------------------------------------------

REQUIRED = {"class_uid": int, "category_uid": int, "activity_id": int, "type_uid": int, "time": int,
            "severity_id": int, "metadata": dict, "finding_info": dict}


def test_ocsf_has_one_detection_finding_per_evaluated_result(exported):
    _, run, _ = exported
    path = _written(run, ".ocsf.json")
    assert path.name.endswith(".ocsf.json") and path.is_file(), run.output
    assert f"ocsf:   {path}" in run.output and f"csv:    {path.with_name(path.name.replace('.ocsf.json', '.csv'))}" \
        in run.output
    found = json.loads(path.read_text())
    assert isinstance(found, list)
    by_control = {f["metadata"]["event_code"]: f for f in found}
    assert len(found) == len(by_control) == 5  # the skipped result was not evaluated: no finding
    assert set(by_control) == set(OUTCOMES) - {"ACME-WEB-06"}
    for finding in found:
        for key, kind in REQUIRED.items():
            assert isinstance(finding[key], kind), (key, finding)
        assert (finding["class_uid"], finding["category_uid"], finding["activity_id"], finding["type_uid"]) == (
            2004, 2, 1, 200401)
        assert finding["class_name"] == "Detection Finding" and finding["activity_name"] == "Create"
        assert finding["metadata"]["version"] == "1.1.0"
        assert finding["metadata"]["product"]["name"] == "edgeaudit" and finding["metadata"]["product"]["version"]
        assert finding["finding_info"]["uid"] == f"edgeaudit:exports-run-1:{finding['metadata']['event_code']}:exports"
        assert isinstance(finding["finding_info"]["title"], str) and finding["finding_info"]["title"]
        assert finding["severity_id"] in (0, 1, 2, 3, 4, 5, 6, 99)
        assert finding["status_id"] in (0, 1, 2, 3, 4, 99)
        assert finding["cloud"]["provider"] == "AWS"
        assert finding["time"] == finding["finding_info"]["created_time"] > 1_600_000_000_000  # milliseconds
        assert finding["resources"] and all(isinstance(r["uid"], str) and r["type"] for r in finding["resources"])
    expected = {  # control: (status_code, status_id, status, severity_id, severity)
        "EA-OPS-01": ("FAIL", 1, "New", 5, "Critical"),
        "EA-OPS-02": ("PASS", 4, "Resolved", 1, "Informational"),
        "EA-OPS-03": ("WARN", 1, "New", 2, "Low"),
        "EA-OPS-04": ("ERROR", 99, "Not Evaluated", 0, "Unknown"),  # a P2 that found nothing: no High finding
        "ACME-WEB-05": ("FAIL", 3, "Suppressed", 2, "Low"),
    }
    assert {c: (f["status_code"], f["status_id"], f["status"], f["severity_id"], f["severity"])
            for c, f in by_control.items()} == expected
    failed = by_control["EA-OPS-01"]
    assert failed["cloud"]["account"]["uid"] == run.report["run"]["aws_account"]
    assert failed["cloud"]["account"]["name"] == run.report["run"]["aws_account_alias"] == ACCOUNT_ALIAS
    for finding in found:
        ocsf_models.validate(finding)
    assert by_control["EA-OPS-04"]["unmapped"]["control_severity"] == "P2"
    assert failed["resources"][0]["type"] == "AWS::S3::Bucket"
    assert failed["resources"][0]["uid"].startswith("arn:aws:s3:::")
    assert failed["remediation"] == {"desc": "block public access."}
    assert failed["unmapped"]["compliance"] == {"standards": ["CIS", "FSBP"],
                                                "requirements": ["FSBP S3.8", "FSBP S3.1", "CIS 2.1.5"]}
    assert failed["unmapped"]["frameworks"] == {"FSBP": "S3.8, S3.1", "CIS": "2.1.5"}
    assert failed["unmapped"]["evidence"]["days_left"] == 10
    since = dt.datetime.fromisoformat(run.result("EA-OPS-01", "exports")["failing_since"].replace("Z", "+00:00"))
    assert failed["finding_info"]["first_seen_time"] == int(since.timestamp() * 1000)
    assert by_control["EA-OPS-04"]["status_detail"].startswith("not evaluated: AccessDenied")
    assert by_control["ACME-WEB-05"]["status_detail"].startswith("waived until 2099-01-01 (legacy site)")
    assert by_control["EA-OPS-02"]["resources"][0]["type"] == "URL"


def test_ocsf_maps_each_outcome_and_leaves_skipped_out():
    run = {"started": "2026-12-01T09:00:00Z", "finished": "2026-12-01T09:01:00Z", "run_id": "r", "aws_account": None,
           "tool_version": "1", "demo": False}
    base = {"control": "EA-X-01", "target": "t", "nodeid": "n", "title": "T", "severity": "P3", "categories": [],
            "resource": "cloudfront:distribution/E2ABC", "message": "m", "evidence": {}, "remediation": "",
            "frameworks": {}, "waiver": None, "margins": {}}
    report = {"run": run, "results": [{**base, "outcome": o, "target": o} for o in
                                      ("passed", "warned", "failed", "error", "skipped", "waived")]}
    found = findings(report)
    assert [f["unmapped"]["outcome"] for f in found] == ["passed", "warned", "failed", "error", "waived"]
    assert [f["severity_id"] for f in found] == [1, 2, 3, 0, 3]
    assert [f["status_id"] for f in found] == [4, 1, 1, 99, 3]
    assert found[3]["status_detail"] == "not evaluated: m"
    for finding in found:
        ocsf_models.validate(finding)
    assert found[0]["time"] == 1796115660000
    assert "account" not in found[0]["cloud"] and "remediation" not in found[0]  # unknown: left out, not empty
    named = findings({**report, "run": {**run, "aws_account": "111122223333", "aws_account_alias": None}})
    assert named[0]["cloud"]["account"]["name"] == "111122223333"  # no alias (none, or IAM refused): the id
    ocsf_models.validate(named[0])
    assert found[0]["resources"][0] == {"uid": "cloudfront:distribution/E2ABC", "type": "AWS::CloudFront::Distribution",
                                        "name": "E2ABC"}
    assert {f["finding_info"]["uid"] for f in found} == {f"edgeaudit:r:EA-X-01:{o}" for o in
                                                        ("passed", "warned", "failed", "error", "waived")}


# --- CSV --------------------------------------------------------------------------------------------

def test_csv_has_one_row_per_result_and_no_formula(exported):
    _, run, _ = exported
    text = _written(run, ".csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == COLUMNS
    assert {r["control"]: r["outcome"] for r in rows} == OUTCOMES and len(rows) == len(OUTCOMES)
    failed = next(r for r in rows if r["control"] == "EA-OPS-01")
    assert failed["message"].startswith("'=HYPERLINK(")  # text, not a formula
    assert failed["severity"] == "P1" and failed["target"] == "exports" and failed["title"] == "Fails at P1."
    assert failed["measured"] == "days_left = 10 days" and failed["threshold"] == "days_left >= 14 days"
    assert failed["frameworks"] == "FSBP S3.8, S3.1; CIS 2.1.5"
    waived = next(r for r in rows if r["control"] == "ACME-WEB-05")
    assert waived["waiver"] == "until 2099-01-01, approved by Risk owner: legacy site"
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.values())


@pytest.mark.parametrize("value, cell", [("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"),
                                         ("\tx", "'\tx"), ("plain = text", "plain = text"), (None, ""), (3, "3")])
def test_a_csv_cell_is_never_a_formula(value, cell):
    assert safe_cell(value) == cell


# --- the step summary ---------------------------------------------------------------------------------

def test_the_step_summary_is_appended_with_an_intact_table(exported):
    _, run, summary = exported
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n")  # appended, as GitHub appends per step
    assert "## edgeaudit: NOT COMPLIANT" in text
    assert "| 1 | 1 | 1 | 1 | 1 | 1 |" in text  # one of each outcome
    table = [line for line in text.splitlines() if line.startswith("| EA-")]
    assert [line.split(" | ")[0] for line in table] == ["| EA-OPS-01", "| EA-OPS-04", "| EA-OPS-03"]  # worst first
    for line in table:  # five cells each: a | or ` in a message does not split one
        assert len([c for c in line.replace("\\|", "").split("|")]) == 7, line
    assert "\\|" in table[0] and "\\`rm\\`" in table[0] and "\\<b\\>" in table[0]
    stem = _written(run, "").name
    assert f"{stem}.html" in text and f"{stem}.ocsf.json" in text and f"{stem}.csv" in text and f"{stem}.xml" in text


def test_no_summary_without_the_variable(tmp_path):
    report = {"summary": {o: 0 for o in ("passed", "warned", "failed", "error", "skipped", "waived")},
              "complete": True, "results": [],
              "run": {"selection": "all", "targets": ["a"], "finished": "2026-12-01T09:00:00Z"}}
    assert append_step_summary(report, environ={}) is None
    path = tmp_path / "s.md"
    assert append_step_summary(report, environ={"GITHUB_STEP_SUMMARY": str(path)}) == path
    append_step_summary(report, environ={"GITHUB_STEP_SUMMARY": str(path)})
    assert path.read_text().count("## edgeaudit: COMPLIANT") == 2
    assert "| control |" not in markdown(report)  # nothing failed: no table


def test_markdown_escaping_and_redaction():
    assert escape("a|b `c` <img src=x> [l](u) *e* _f_\nnext") == (
        "a\\|b \\`c\\` \\<img src=x\\> \\[l\\](u) \\*e\\* \\_f\\_ next")
    assert SECRET not in escape(f"https://x.example/?api_key={SECRET}")


# --- JUnit XML ------------------------------------------------------------------------------------------

def test_junit_testcase_names_carry_the_control_id(exported):
    _, run, _ = exported
    xml = _written(run, ".xml")
    cases = {case.get("name"): case for case in ET.parse(xml).getroot().iter("testcase")}
    assert set(cases) == {"EA-OPS-01 test_fails[exports]", "EA-OPS-02 test_passes[exports]",
                          "EA-OPS-03 test_warns[exports]", "EA-OPS-04 test_errors[exports]",
                          "ACME-WEB-05 test_waived[exports]", "ACME-WEB-06 test_skipped[exports]"}, run.output
    assert {case.get("classname") for case in cases.values()} == {"suites.test_every"}  # as pytest sets it
    assert cases["EA-OPS-01 test_fails[exports]"].find("failure") is not None
    assert "PytestExperimentalApiWarning" not in run.output and "record_xml_attribute" not in run.output


# --- merge -----------------------------------------------------------------------------------------------

def test_merged_shards_keep_the_finding_ids_and_write_every_export(exported, tmp_path):
    """Two shards of the run (its results split between them) merge into the same findings."""
    _, run, _ = exported
    report = run.report
    ours = json.loads(_written(run, ".ocsf.json").read_text())
    shards = []
    for index, part in ((1, ("EA-OPS-01", "EA-OPS-02", "EA-OPS-03")), (2, ("EA-OPS-04", "ACME-WEB-05", "ACME-WEB-06"))):
        shard = copy.deepcopy(report)
        shard["run"]["shard"] = {"index": index, "count": 2}
        shard["results"] = [r for r in shard["results"] if r["control"] in part]
        if index == 2:  # a secret that slipped into a shard's evidence is redacted on the way out
            shard["results"][0]["evidence"]["url"] = f"https://x.example/?token={SECRET}"
        path = tmp_path / f"shard{index}.json"
        path.write_text(json.dumps(shard))
        shards.append(str(path))
    (tmp_path / "shard1.ocsf.json").write_text(json.dumps(ours))  # `merge reports/*.json` names the exports too
    shards.append(str(tmp_path / "shard1.ocsf.json"))
    summary = tmp_path / "summary.md"
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary)}
    done = subprocess.run([sys.executable, "-m", "edgeaudit.cli", "merge", *shards, "--output", str(tmp_path / "m")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 1, done.stderr  # a P1 failure gates
    merged = json.loads(next((tmp_path / "m").glob("*.ocsf.json")).read_text())
    assert sorted(f["finding_info"]["uid"] for f in merged) == sorted(f["finding_info"]["uid"] for f in ours)
    rows = list(csv.DictReader(io.StringIO(next((tmp_path / "m").glob("*.csv")).read_text())))
    assert len(rows) == len(OUTCOMES)
    assert "## edgeaudit: NOT COMPLIANT" in summary.read_text() and ".ocsf.json" in summary.read_text()
    assert ".ocsf.json and .csv" in done.stdout and "merged 2 reports" in done.stdout


# --- secrets ------------------------------------------------------------------------------------------------

def test_no_export_holds_a_planted_secret(exported):
    project, run, summary = exported
    failed = run.result("EA-OPS-01", "exports")
    assert "api_key=<redacted>" in failed["message"]  # the secret reached the result: redacted
    texts = {p.name: p.read_text() for p in (project.root / "reports").iterdir() if p.is_file()}
    texts["summary"] = summary.read_text()
    assert any(name.endswith(".ocsf.json") for name in texts) and any(name.endswith(".csv") for name in texts)
    assert [name for name, text in texts.items() if SECRET in text] == []
    assert "token=<redacted>" in next(t for n, t in texts.items() if n.endswith(".ocsf.json"))


def test_unit_exports_redact_what_they_are_given():
    """A report read back from disk (merge) may carry what a writer never saw: the exports redact it."""
    result = {"control": "EA-X-01", "target": "t", "nodeid": "n", "title": "T", "severity": "P1", "categories": [],
              "resource": f"https://x.example/?api_key={SECRET}", "outcome": "failed",
              "message": f"see https://u:{SECRET}@x.example/", "evidence": {"token": SECRET},
              "remediation": "", "frameworks": {}, "waiver": None, "margins": {}}
    report = {"run": {"started": "2026-12-01T09:00:00Z", "finished": "2026-12-01T09:00:00Z", "run_id": "r",
                      "aws_account": "1", "tool_version": "1", "selection": "all", "targets": ["t"]},
              "summary": {o: 0 for o in ("passed", "warned", "failed", "error", "skipped", "waived")},
              "complete": True, "results": [result]}
    for text in (json.dumps(findings(report)), csv_text(report), markdown(report)):
        assert SECRET not in text


# --- a large report is written a record at a time -------------------------------------------------

@pytest.mark.parametrize("document", [
    {}, {"results": []}, {"a": 1, "results": [1, {"b": [1, 2]}, [], {}], "c": {}, "d": []},
    {"run": {"url": f"https://x.example/?token={SECRET}"},
     "results": [{"token": SECRET, "seen": f"https://x.example/?api_key={SECRET}", "nested": {"k": ["v"]}}]},
])
def test_a_document_made_in_parts_is_the_whole_document_redacted(document):
    """The JSON report and the OCSF findings are written in parts; they read as one json.dumps."""
    from edgeaudit.redact import redact
    from edgeaudit.reporting.jsonparts import array_parts, object_parts

    assert "".join(object_parts(document, "results")) == json.dumps(redact(document), indent=2)
    assert "".join(array_parts(document.get("results", []))) == json.dumps(redact(document.get("results", [])),
                                                                           indent=2)
    assert SECRET not in "".join(object_parts(document, "results"))


def _small_report(message: str = "", seen: str = "") -> dict:
    from edgeaudit.reporting.results import summarize
    from edgeaudit.rules.frameworks import summary as framework_summary

    results = [{"control": "EA-OPS-01", "target": "www", "title": "t", "severity": "P2", "outcome": "failed",
                "nodeid": "suites/x.py::t[www]", "categories": [], "resource": "", "message": message,
                "evidence": {"seen": seen}, "frameworks": {}, "margins": {}}]
    return {"schema": "edgeaudit.report/1", "complete": True, "waivers": [], "attestations": [],
            "summary": {**summarize(results), "frameworks": framework_summary(results)},
            "run": {"started": "2026-12-01T09:00:00Z", "finished": "2026-12-01T09:01:00Z", "selection": "daily",
                    "demo": False, "tool_version": "0", "targets": ["www"], "aws_account": None},
            "results": results}


def test_a_report_set_written_in_parts_still_redacts_every_file(tmp_path):
    """The last redaction pass runs over each part as it is written: a secret that reached the
    report unredacted (in a result's message and evidence) is in none of the files."""
    from edgeaudit.reporting import write

    report = _small_report(f"seen at https://x.example/?api_key={SECRET}", f"token=1&access_token={SECRET}")
    written = write.write_report_set(report, tmp_path / "daily-20261201T090000Z")
    assert {p.name for p in written} == {p.name for p in tmp_path.iterdir()} and len(written) == 4
    for path in written:
        assert SECRET not in path.read_text("utf-8"), path.name


def test_a_report_set_that_fails_midway_leaves_none_of_its_files(tmp_path, monkeypatch):
    """Each file is staged beside its place and all are put there together: a page that cannot
    be rendered costs the whole set, not its HTML alone, and leaves no temp file."""
    from edgeaudit.reporting import write

    report = _small_report()

    def unrenderable(*args, **kwargs):
        raise RuntimeError("the page could not be made")

    monkeypatch.setattr(write, "render_parts", unrenderable)
    with pytest.raises(RuntimeError):
        write.write_report_set(report, tmp_path / "daily-20261201T090000Z")
    assert list(tmp_path.iterdir()) == []
