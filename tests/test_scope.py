"""The report states its scope: every control of the catalog is either selected (run for at
least one target) or not selected with the reason (-m, -k, --framework, --shard, the node ids
given, the built-in controls switched off); the targets left out say why too; `edgeaudit merge`
recomputes the scope of the shards; the HTML report shows it, folded and escaped."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest
from test_plugin import Project, site  # noqa: F401  (the module's site fixture)

import report_schema
from conftest import REPO, run_suite
from edgeaudit.reporting.html_render import render
from edgeaudit.reporting.merge import MergeError, merge
from edgeaudit.rules import catalog
from edgeaudit.rules.shards import shard_of

BUILTIN = set(catalog.controls(REPO / "suites"))
OFF = "the built-in controls are switched off (edgeaudit_builtin_controls = false)"

USER = '''
@pytest.mark.control("ACME-USR-01", severity="P3", frameworks={"FSBP": "S3.1"})
@pytest.mark.daily
def test_one(target):
    """Daily, mapped to FSBP."""

@pytest.mark.control("ACME-USR-02", severity="P3", frameworks={"FSBP": "S3.2"})
@pytest.mark.weekly
def test_two(target):
    """Weekly, mapped to FSBP."""

@pytest.mark.control("ACME-USR-03", severity="P4")
@pytest.mark.weekly
def test_three(target):
    """Weekly, mapped to no framework."""

@pytest.mark.control("ACME-USR-04", severity="P4", frameworks={"FSBP": "S3.3"})
@pytest.mark.weekly
def test_four(target):
    """Weekly, mapped to FSBP."""
'''
MINE = {"ACME-USR-01", "ACME-USR-02", "ACME-USR-03", "ACME-USR-04"}


def targets(*names: str) -> list[dict]:
    # these controls read nothing of the target: the sites are never contacted
    return [{"name": n, "url": f"https://{n}.example.invalid/", "bucket": f"b-{n}", "distribution_id": "E1"}
            for n in names]


def assert_partition(scope: dict) -> None:
    """Every control once: selected, or not selected with a reason."""
    assert not set(scope["selected"]) & set(scope["not_selected"])
    assert set(scope["reasons"]) == set(scope["not_selected"])
    assert all(isinstance(why, str) and why for why in scope["reasons"].values())


@pytest.fixture
def project(tmp_path, world, site) -> Project:
    project = Project(tmp_path, world, site)
    project.control("user", USER)
    return project


# --- a demo run of the daily controls ------------------------------------------------------------

@pytest.fixture(scope="module")
def daily(tmp_path_factory):
    return run_suite("-m", "daily", "--demo", report_dir=tmp_path_factory.mktemp("scope-daily"))


def test_a_daily_run_selects_the_catalogs_daily_controls_and_says_why_not_the_others(daily):
    assert daily.returncode in (0, 1), daily.output
    scope = daily.report["scope"]
    declared = catalog.controls(REPO / "suites")
    expected = {c.id for c in declared.values() if "daily" in c.cadences}
    assert expected and "EA-TLS-01" in expected
    assert set(scope["selected"]) == expected == {r["control"] for r in daily.report["results"]}
    assert set(scope["not_selected"]) == set(declared) - expected
    assert set(scope["reasons"].values()) == {"not selected by -m daily"}
    assert scope["targets"] == {"selected": daily.report["run"]["targets"], "not_selected": [], "reasons": {}}
    report_schema.validate(daily.report)


class _Sections(HTMLParser):
    """The ids of the page's sections in order, and the text of each <summary>."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.summaries: list[str] = []
        self._in_summary = False

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            self.sections.append(dict(attrs).get("id", ""))
            if self.sections[-1] == "scope":
                self.summaries = []
        self._in_summary = tag == "summary" or self._in_summary

    def handle_endtag(self, tag):
        if tag == "summary":
            self._in_summary = False

    def handle_data(self, data):
        if self._in_summary and self.sections and self.sections[-1] == "scope":
            self.summaries.append(data.strip())


def test_the_html_report_shows_the_scope_after_the_waivers_and_before_every_result(daily):
    page = _Sections()
    page.feed(daily.html)
    assert page.sections.index("waivers") < page.sections.index("scope") < page.sections.index("all")
    scope = daily.report["scope"]
    assert page.summaries == [f"Selected controls: {len(scope['selected'])}",
                              f"{len(scope['not_selected'])} not selected: not selected by -m daily"]
    section = daily.html.split('<section id="scope">', 1)[1].split("</section>", 1)[0]
    assert f"{len(scope['selected'])} of the {len(scope['selected']) + len(scope['not_selected'])} controls" in section
    assert ", ".join(scope["not_selected"]) in section  # the ids themselves, not a Python list
    assert not re.search(r"[\[{]'|'[\]}]", section)


def test_the_html_scope_escapes_its_reasons_and_says_when_a_report_has_none(daily):
    report = json.loads(json.dumps(daily.report))
    control = report["scope"]["not_selected"][0]
    report["scope"]["reasons"][control] = 'not selected by -k <script>alert(1)</script>'
    page = render(report)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    del report["scope"]  # a report of an earlier version
    assert "does not record its scope" in render(report)


# --- selection by -k, -m, --framework, --target, node ids; built-in controls off -----------------

def test_target_and_k_leave_out_targets_and_controls_with_their_reasons(project):
    project.config(targets=targets("shop-00", "shop-01"))
    run = project.run("--target", "shop-00", "-k", "one or two")
    assert run.returncode == 0, run.output
    scope = run.report["scope"]
    assert_partition(scope)
    assert scope["selected"] == ["ACME-USR-01", "ACME-USR-02"]
    assert {c: scope["reasons"][c] for c in MINE - {"ACME-USR-01", "ACME-USR-02"}} == {
        "ACME-USR-03": "not selected by -k one or two", "ACME-USR-04": "not selected by -k one or two"}
    assert set(scope["not_selected"]) == (MINE | BUILTIN) - {"ACME-USR-01", "ACME-USR-02"}
    assert scope["reasons"]["EA-TLS-01"] == OFF  # the project switched the built-in controls off
    assert scope["targets"] == {"selected": ["shop-00"], "not_selected": ["shop-01"],
                                "reasons": {"shop-01": "not selected by --target shop-00"}}
    assert "1 target(s) not checked: not selected by --target shop-00" in run.html


def test_a_control_that_m_leaves_out_is_collected_once_and_not_once_per_target(project):
    """A fleet's collection holds the items it runs: a pytest item costs kilobytes, and the catalog
    over a thousand sites is a hundred thousand of them. -m still names the control it left out."""
    names = [f"shop-{n:02d}" for n in range(5)]
    project.config(targets=targets(*names))
    run = project.run("-m", "weekly")
    assert run.returncode == 0, run.output
    assert re.search(r"\b1 deselected", run.output), run.output  # ACME-USR-01 once, not once per target
    assert {(r["control"], r["target"]) for r in run.report["results"]} == {
        (control, name) for control in MINE - {"ACME-USR-01"} for name in names}
    assert run.report["scope"]["reasons"]["ACME-USR-01"] == "not selected by -m weekly"


def test_under_xdist_m_k_and_framework_each_name_the_controls_they_leave_out(project):
    project.config(targets=targets("shop-00", "shop-01"))
    run = project.run("-n", "2", "-m", "weekly", "--framework", "fsbp", "-k", "not four")
    assert run.returncode == 0, run.output
    scope = run.report["scope"]
    assert_partition(scope)
    assert scope["selected"] == ["ACME-USR-02"]
    assert {c: scope["reasons"][c] for c in MINE - {"ACME-USR-02"}} == {
        "ACME-USR-01": "not selected by -m weekly",
        "ACME-USR-03": "not selected by --framework FSBP",
        "ACME-USR-04": "not selected by -k not four"}


def test_node_ids_on_the_command_line_leave_out_the_other_controls(project):
    project.config(targets=targets("shop-00"))
    run = project.run("suites/test_user.py::test_three")
    assert run.returncode == 0, run.output
    scope = run.report["scope"]
    assert scope["selected"] == ["ACME-USR-03"]
    assert {scope["reasons"][c] for c in MINE - {"ACME-USR-03"}} == {
        "not collected: the command line names only suites/test_user.py::test_three"}


# --- shards and their merge --------------------------------------------------------------------

@pytest.fixture
def four_shards(project) -> list[dict]:
    """Three targets over four shards: shard 1 draws one, shard 3 two, shards 2 and 4 none."""
    names = ("shop-00", "shop-01", "shop-02")
    assert [shard_of(n, 4) for n in names] == [3, 3, 1]
    project.config(targets=targets(*names))
    runs = [project.run("-m", "weekly", "--shard", f"{k}/4", env={"EDGEAUDIT_RUN_ID": "scope-1"}) for k in range(1, 5)]
    assert all(run.returncode == 0 for run in runs), [run.output for run in runs]
    return [run.report for run in runs]


def test_each_shard_states_what_it_left_to_the_others(four_shards):
    first, second = four_shards[0]["scope"], four_shards[1]["scope"]
    weekly = {"ACME-USR-02", "ACME-USR-03", "ACME-USR-04"}
    assert set(first["selected"]) == weekly and first["reasons"]["ACME-USR-01"] == "not selected by -m weekly"
    assert first["targets"]["reasons"] == {"shop-00": "not selected by --shard 1/4: checked by shard 3/4",
                                           "shop-01": "not selected by --shard 1/4: checked by shard 3/4"}
    assert second["selected"] == [] and second["targets"]["selected"] == []
    assert {second["reasons"][c] for c in weekly} == {"not selected by --shard 2/4 (no target in this shard)"}
    for report in four_shards:
        assert_partition(report["scope"])


def test_merge_recomputes_the_scope_of_the_shards(four_shards, tmp_path):
    paths = []
    for k, report in enumerate(four_shards, 1):
        paths.append(tmp_path / f"shard-{k}.json")
        paths[-1].write_text(json.dumps(report))
    done = subprocess.run([sys.executable, "-m", "edgeaudit.cli", "merge", *map(str, paths), "--output",
                           str(tmp_path / "m")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    scope = json.loads(next((tmp_path / "m").glob("*-merged.json")).read_text())["scope"]
    assert_partition(scope)
    assert set(scope["selected"]) == {"ACME-USR-02", "ACME-USR-03", "ACME-USR-04"}  # no longer left out by --shard
    assert scope["reasons"]["ACME-USR-01"] == "not selected by -m weekly"
    assert not any("--shard" in why for why in scope["reasons"].values())
    assert scope["targets"] == {"selected": ["shop-00", "shop-01", "shop-02"], "not_selected": [], "reasons": {}}


def test_a_partial_merge_names_the_targets_of_the_missing_shard(four_shards):
    scope = merge([four_shards[0], four_shards[1], four_shards[3]], allow_partial=True)["scope"]
    assert scope["targets"]["not_selected"] == ["shop-00", "shop-01"]
    assert scope["targets"]["reasons"]["shop-00"] == ("not selected by --shard 1/4: checked by shard 3/4 "
                                                      "(that report was not merged)")


def test_merge_accepts_reports_without_a_scope_and_refuses_a_malformed_one(four_shards):
    older = [{k: v for k, v in report.items() if k != "scope"} for report in four_shards]
    assert "scope" not in merge(older)
    broken = json.loads(json.dumps(four_shards))
    broken[2]["scope"]["reasons"] = ["ACME-USR-01"]
    with pytest.raises(MergeError, match=r"report 3: scope.reasons is not a table of reasons"):
        merge(broken)


@pytest.mark.parametrize(("selection", "by_deploy"), [("deploy", True), ("deploy and performance", True),
                                                      ("daily", False), ("daily or deploy", False), ("", False)])
def test_a_control_knows_when_the_deploy_marker_selected_it(pytester, selection, by_deploy):
    """`post_deploy`: a control marked daily and deploy is in the post-deployment check only when
    the -m expression keeps it for its deploy marker."""
    pytester.makeini("[pytest]\nmarkers =\n    daily\n    deploy\n    performance\n")
    pytester.makepyfile("""
        import pytest
        from edgeaudit.run.scope import selected_by

        @pytest.mark.daily
        @pytest.mark.deploy
        @pytest.mark.performance
        def test_x(request):
            print("BY-DEPLOY", selected_by(request.config, request.node, "deploy"))
    """)
    result = pytester.runpytest("-s", "-p", "no:edgeaudit", *(["-m", selection] if selection else []))
    result.stdout.fnmatch_lines([f"*BY-DEPLOY {by_deploy}*"])
