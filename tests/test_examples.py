"""examples/github-actions/edgeaudit.yml: valid for GitHub (its published schema, and actionlint
where installed), shaped as docs/ci.md says (OIDC, the schedule, shards merged, evidence kept on
failure, one history), every option it passes exists, and its own shell steps, run as written,
shard a fleet and merge it into one report with one history line."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_fleet import FLEET, fleet_targets
from test_plugin import Project, site  # noqa: F401  (the module's site fixture)

from conftest import REPO

WORKFLOW = REPO / "examples" / "github-actions" / "edgeaudit.yml"
BIN = Path(sys.executable).parent
# `uses: owner/action@<40 hex>  # vN.N.N`: the version each pinned commit stands for, from the comment
PINNED_VERSION = {m["uses"]: int(m["major"]) for m in re.finditer(
    r"uses: (?P<uses>[\w./-]+@[0-9a-f]{40})  # v(?P<major>\d+)\.\d+\.\d+$", WORKFLOW.read_text(), re.M)}


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    document = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    document["on"] = document.pop(True, document.get("on"))  # YAML 1.1 reads the key `on` as true
    return document


def steps(workflow: dict[str, Any], job: str) -> list[dict[str, Any]]:
    return workflow["jobs"][job]["steps"]


def uses(workflow: dict[str, Any], job: str, action: str) -> list[dict[str, Any]]:
    return [s for s in steps(workflow, job) if s.get("uses", "").split("@")[0] == action]


def step(workflow: dict[str, Any], job: str, needle: str) -> dict[str, Any]:
    """The one step of `job` with a line of its run script starting with `needle`."""
    found = [s for s in steps(workflow, job) if re.search(rf"^{re.escape(needle)}", s.get("run", ""), re.M)]
    assert len(found) == 1, f"{job}: {len(found)} steps run {needle!r}"
    return found[0]


def commands(workflow: dict[str, Any], program: str) -> list[list[str]]:
    """Every command line of the run scripts that starts with `program` (`pytest`, `edgeaudit merge`)."""
    found = []
    for job in workflow["jobs"].values():
        for s in job["steps"]:
            for line in s.get("run", "").splitlines():
                line = re.sub(r"\$\{\{.*?\}\}", "EXPR", line.strip())
                if line.startswith(program + " "):
                    found.append(shlex.split(line))
    return found


# --- valid for GitHub ---------------------------------------------------------------------------

def test_the_workflow_is_valid_against_githubs_schema_offline():
    """check-jsonschema's vendored copy of the schema GitHub publishes (no download)."""
    script = BIN / "check-jsonschema"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "check_jsonschema"]
    done = subprocess.run([*command, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_catches_a_malformed_workflow(tmp_path):
    """The check above can fail: a misspelt key is refused."""
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "runs_on:", 1))
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                           "vendor.github-workflows", str(broken)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout


def test_actionlint_where_installed():
    actionlint = shutil.which("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not on PATH")
    done = subprocess.run([actionlint, str(WORKFLOW)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


# --- shaped as docs/ci.md says -------------------------------------------------------------------

def test_credentials_come_from_oidc_and_no_key_is_stored(workflow):
    assert workflow["permissions"] == {}, "nothing granted to every job"
    assert workflow["jobs"]["audit"]["permissions"] == {"id-token": "write", "contents": "read"}
    for job in ("plan", "merge"):
        assert "id-token" not in workflow["jobs"][job].get("permissions", {}), f"{job} assumes no role"
    configured = uses(workflow, "audit", "aws-actions/configure-aws-credentials")
    assert len(configured) == 1
    action = configured[0]
    assert PINNED_VERSION[action["uses"]] >= 4
    assert action["with"]["role-to-assume"] == "${{ vars.EDGEAUDIT_ROLE_ARN }}"
    assert "aws-region" in action["with"]
    text = WORKFLOW.read_text()
    for stored in ("aws-access-key-id", "aws-secret-access-key", "aws-session-token", "AWS_ACCESS_KEY_ID",
                   "AWS_SECRET_ACCESS_KEY", "secrets."):
        assert stored not in text, stored
    assert uses(workflow, "merge", "aws-actions/configure-aws-credentials") == [], "the merge reads no AWS"


def test_it_runs_on_the_procedures_schedule_and_by_hand(workflow):
    crons = [entry["cron"] for entry in workflow["on"]["schedule"]]
    assert "0 9 * * 1-5" in crons, "the morning health check: every business day at 9:00"
    assert "0 10 * * 1" in crons, "the weekly review: Mondays at 10:00"
    assert workflow["on"]["workflow_dispatch"]["inputs"]["markers"]["default"] == "daily"


def test_the_shard_matrix_is_the_n_of_the_commands(workflow):
    audit = workflow["jobs"]["audit"]
    shards = audit["strategy"]["matrix"]["shard"]
    assert shards == list(range(1, len(shards) + 1)) and len(shards) > 1
    assert audit["strategy"]["fail-fast"] is False
    assert audit["env"]["SHARD"] == "${{ matrix.shard }}"
    assert audit["env"]["EDGEAUDIT_SHARD_INDEX"] == "${{ strategy.job-index }}", "K - 1: the job's place, from 0"
    assert audit["env"]["EDGEAUDIT_SHARD_COUNT"] == "${{ strategy.job-total }}", "N is the matrix's length"
    [line] = commands(workflow, "pytest")
    assert line[line.index("--shard") + 1] == "auto"
    assert line[line.index("--report-dir") + 1] == "reports/shard-$SHARD"
    assert line[line.index("-n") + 1] == "2"
    upload = uses(workflow, "audit", "actions/upload-artifact")
    assert [u["with"]["path"] for u in upload] == ["reports/shard-${{ matrix.shard }}"]


def test_evidence_is_uploaded_before_any_job_fails(workflow):
    for job in ("audit", "merge"):
        names = [s.get("name", s.get("uses", "")) for s in steps(workflow, job)]
        [upload] = uses(workflow, job, "actions/upload-artifact")
        assert PINNED_VERSION[upload["uses"]] == 4 and upload["if"] == "always()"
        failing = [s for s in steps(workflow, job) if "exit 1" in s.get("run", "")]
        assert failing and all(names.index(s["name"]) > names.index(upload.get("name", upload["uses"]))
                               for s in failing), f"{job}: a failing step before the upload"
        running = [s for s in steps(workflow, job) if re.search(r"^(pytest|edgeaudit merge) ", s.get("run", ""), re.M)]
        assert all("set +e" in s["run"] for s in running), f"{job}: the run's exit code must not stop the job"


def test_the_merge_job_merges_every_shard_even_after_failures(workflow):
    merge = workflow["jobs"]["merge"]
    assert "audit" in merge["needs"] and merge["if"].startswith("always()")
    [download] = uses(workflow, "merge", "actions/download-artifact")
    assert PINNED_VERSION[download["uses"]] == 4 and download["with"]["pattern"] == "edgeaudit-shard-*"
    [upload_shard] = uses(workflow, "audit", "actions/upload-artifact")
    assert upload_shard["with"]["name"] == "edgeaudit-shard-${{ matrix.shard }}"
    [line] = commands(workflow, "edgeaudit merge")
    assert line[2] == "shards/*/*Z.json" and "--fail-on" in line and "--history" in line


def test_only_the_merge_job_saves_the_history(workflow):
    def cache(job: str, kind: str) -> list[dict[str, Any]]:
        return uses(workflow, job, f"actions/cache/{kind}")

    assert uses(workflow, "audit", "actions/cache") == [] and cache("audit", "save") == []
    for job in ("audit", "merge"):
        [restore] = cache(job, "restore")
        assert restore["with"]["path"] == "reports/history.jsonl"  # one path: a cache restores only where it was saved
        assert restore["with"]["restore-keys"] == "edgeaudit-history-"
    [save] = cache("merge", "save")
    assert save["with"]["path"] == "reports/history.jsonl"
    assert save["with"]["key"].startswith("edgeaudit-history-${{ github.run_id }}")
    [line] = commands(workflow, "edgeaudit merge")
    assert line[line.index("--history") + 1] == save["with"]["path"]


def test_edgeaudit_is_installed_from_a_reviewed_commit_not_by_name(workflow):
    assert re.fullmatch(r"[0-9a-f]{40}", workflow["env"]["EDGEAUDIT_COMMIT"])
    assert workflow["env"]["EDGEAUDIT_SOURCE"] == "${{ vars.EDGEAUDIT_SOURCE }}"
    installs = [s["run"] for job in workflow["jobs"] for s in steps(workflow, job) if "pip install" in s.get("run", "")]
    assert installs == ['python -m pip install "edgeaudit[lab] @ git+$EDGEAUDIT_SOURCE@$EDGEAUDIT_COMMIT"',
                        'python -m pip install "edgeaudit @ git+$EDGEAUDIT_SOURCE@$EDGEAUDIT_COMMIT"']


@pytest.mark.parametrize(("source", "commit", "code"), [
    ("https://git.example/edgeaudit.git", "c4623aa28e4b62f5c054b7cfb803db7688befcca", 0),
    ("", "c4623aa28e4b62f5c054b7cfb803db7688befcca", 1),
    ("https://git.example/edgeaudit.git", "main", 1),
])
def test_the_plan_refuses_an_unset_source_or_a_moving_commit(workflow, tmp_path, source, commit, code):
    [check] = [s for s in steps(workflow, "plan") if s.get("name") == "Check where edgeaudit comes from"]
    done, _ = _run_step(check["run"], tmp_path, {"EDGEAUDIT_SOURCE": source, "EDGEAUDIT_COMMIT": commit})
    assert done == code


def test_every_action_is_pinned_by_commit_with_its_version_beside_it(workflow):
    used = [s["uses"] for job in workflow["jobs"] for s in steps(workflow, job) if "uses" in s]
    assert used and set(used) <= set(PINNED_VERSION), set(used) - set(PINNED_VERSION)
    for checkout in uses(workflow, "audit", "actions/checkout"):
        assert checkout["with"]["persist-credentials"] is False


def test_zizmor_finds_nothing_in_the_examples_workflows():
    """zizmor (the dev extra) with its auditor persona, the strictest: every finding counts. It
    collects a folder's workflows only under .github/workflows/, so the files are named."""
    zizmor = str(BIN / "zizmor") if (BIN / "zizmor").exists() else shutil.which("zizmor")
    workflows = sorted(str(path) for path in (REPO / "examples").rglob("*.yml"))
    assert str(WORKFLOW) in workflows
    done = subprocess.run([zizmor, "--offline", "--persona", "auditor", *workflows], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and "No findings" in done.stdout + done.stderr, done.stdout + done.stderr


# --- every option it passes exists ---------------------------------------------------------------

def _options(line: list[str]) -> set[str]:
    return {token.split("=", 1)[0] for token in line if token.startswith("-")}


def test_every_pytest_option_it_passes_exists(workflow):
    done = subprocess.run([sys.executable, "-m", "pytest", "--help"], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    for line in commands(workflow, "pytest"):
        for option in _options(line):
            assert re.search(rf"(^|[\s,]){re.escape(option)}([\s=,]|$)", done.stdout, re.M), option


def test_every_merge_option_it_passes_exists(workflow):
    done = subprocess.run([sys.executable, "-m", "edgeaudit.cli", "merge", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for line in commands(workflow, "edgeaudit merge"):
        for option in _options(line):
            assert re.search(rf"(^|\s){re.escape(option)}\b", done.stdout, re.M), option


# --- its steps, run as written -------------------------------------------------------------------

def _expressions(text: str, values: dict[str, str]) -> str:
    """The workflow's ${{ ... }} as GitHub would fill them in for this run."""
    def value(match: re.Match[str]) -> str:
        return values[match.group(1).strip()]
    return re.sub(r"\$\{\{(.*?)\}\}", value, text)


def _run_step(script: str, cwd: Path, env: dict[str, str | None]) -> tuple[int, dict[str, str]]:
    """A run step as the runner runs it (bash -e), with its GITHUB_OUTPUT read back (None: unset)."""
    output = cwd / "github-output"
    output.write_text("")
    environ = {**os.environ, **env, "GITHUB_OUTPUT": str(output), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
               "GITHUB_STEP_SUMMARY": None, "EDGEAUDIT_CONFIG": None}
    environ = {key: value for key, value in environ.items() if value is not None}
    done = subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env=environ, capture_output=True, text=True,
                          timeout=600)
    assert "command not found" not in done.stderr, done.stderr
    values = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return done.returncode, values


@pytest.mark.parametrize("event, schedule, day, month, selection", [
    ("schedule", "0 9 * * 1-5", 15, 3, "daily"),
    ("schedule", "0 10 * * 1", 14, 4, "weekly"),
    ("schedule", "0 10 * * 1", 2, 3, "weekly or monthly"),
    ("schedule", "0 10 * * 1", 6, 4, "weekly or monthly or quarterly"),
    ("workflow_dispatch", "", 1, 1, "weekly and security"),
])
def test_the_plan_picks_the_procedures_cadences(workflow, tmp_path, event, schedule, day, month, selection):
    clock = tmp_path / "clock"  # `date` answers the day of month and the month asked for
    clock.mkdir()
    (clock / "date").write_text(f'#!/bin/sh\ncase "$*" in *%-d*) echo {day} ;; *%-m*) echo {month} ;; esac\n')
    (clock / "date").chmod(0o755)
    [select] = [s for s in steps(workflow, "plan") if s.get("id") == "select"]
    env = {"EVENT": event, "SCHEDULE": schedule, "ASKED": "weekly and security" if event != "schedule" else ""}
    script = f'PATH="{clock}:$PATH"\n' + select["run"]
    code, outputs = _run_step(script, tmp_path, env)
    assert code == 0 and outputs["markers"] == selection
    assert [e["cron"] for e in workflow["on"]["schedule"]] == ["0 9 * * 1-5", "0 10 * * 1"], "each one planned above"


def test_the_plan_refuses_a_schedule_it_does_not_know(workflow, tmp_path):
    [select] = [s for s in steps(workflow, "plan") if s.get("id") == "select"]
    code, outputs = _run_step(select["run"], tmp_path, {"EVENT": "schedule", "SCHEDULE": "5 4 * * *", "ASKED": ""})
    assert code == 1 and "markers" not in outputs


def test_its_shards_and_merge_check_a_fleet_as_one_run(workflow, tmp_path, world, site):
    """The audit job's step for each shard of the matrix, then the merge job's step on what the
    shards uploaded: one merged report of the whole fleet with its finding, and one history line
    for the whole run after the restored ones."""
    (tmp_path / "repo").mkdir()
    project = Project(tmp_path / "repo", world, site)
    project.control("fleet", FLEET)
    project.config(targets=fleet_targets(8))  # shop-07 fails EA-OPS-03 (P3)
    earlier = {"started": "2026-11-30T09:00:00Z", "finished": "2026-11-30T09:01:00Z", "selection": "monthly",
               "complete": True, "demo": False, "targets": [], "cadences": ["monthly"], "summary": {},
               "report": "monthly-20261130T090000Z.json", "measures": {}}
    restored = json.dumps(earlier) + "\n"
    (project.root / "reports").mkdir()
    (project.root / "reports" / "history.jsonl").write_text(restored)  # what the cache restored

    audit = workflow["jobs"]["audit"]
    shards = audit["strategy"]["matrix"]["shard"]
    run = step(workflow, "audit", "pytest ")
    fail = next(s for s in steps(workflow, "audit") if s.get("name") == "Fail on a run that did not complete")
    github = {"github.run_id": "4242", "github.run_attempt": "1", "strategy.job-total": str(len(shards)),
              "vars.EDGEAUDIT_SOURCE": "https://git.example/edgeaudit.git"}
    env = {key: _expressions(str(value), github) for key, value in workflow["env"].items()}
    env.update(world.aws_env, MARKERS="monthly", EDGEAUDIT_BUILTIN_CONTROLS="false")
    downloaded = tmp_path / "runner" / "shards"
    for k in shards:
        values = {**github, "matrix.shard": str(k), "strategy.job-index": str(shards.index(k))}
        shard_env = {**env, **{key: _expressions(v, values) for key, v in audit["env"].items() if key != "MARKERS"}}
        code, outputs = _run_step(run["run"], project.root, shard_env)
        assert code == 0 and outputs["exit_code"] in ("0", "1"), outputs
        assert not eval_if(fail["if"], outputs["exit_code"]), "findings alone do not fail a shard"
        report_dir = project.root / "reports" / f"shard-{k}"
        [report] = report_dir.glob("*Z.json")
        assert json.loads(report.read_text())["run"]["run_id"] == "github-4242-1"
        assert (report_dir / "history.jsonl").read_text().startswith(restored), "the shard read the history"
        shutil.copytree(report_dir, downloaded / f"edgeaudit-shard-{k}")  # download-artifact, one folder each
    assert eval_if(fail["if"], "4") and eval_if(fail["if"], "")

    runner = downloaded.parent
    (runner / "reports").mkdir()
    (runner / "reports" / "history.jsonl").write_text(restored)
    merge = step(workflow, "merge", "edgeaudit merge")
    code, outputs = _run_step(merge["run"], runner, {"FAIL_ON": env["FAIL_ON"]})
    assert code == 0 and outputs["exit_code"] == "1", "the fleet's finding fails the run, after the merge"
    [merged_path] = (runner / "reports").glob("*-merged.json")
    merged = json.loads(merged_path.read_text())
    assert merged["complete"] is True and merged["run"]["targets"] == [f"shop-{i:02d}" for i in range(8)]
    assert merged["run"]["shards"] == {"count": len(shards), "missing": []}
    assert {r["control"] for r in merged["results"]} == {"EA-OPS-03", "EA-OPS-04"}, "the fleet's controls only"
    assert {(r["target"], r["outcome"]) for r in merged["results"] if r["control"] == "EA-OPS-03"} == {
        (f"shop-{i:02d}", "failed" if i == 7 else "passed") for i in range(8)}
    lines = (runner / "reports" / "history.jsonl").read_text().splitlines()
    assert lines[0] == restored.strip() and len(lines) == 2, "one line for the whole run"
    line = json.loads(lines[1])
    # the built-in controls are switched off here (EDGEAUDIT_BUILTIN_CONTROLS=false): a whole run, but
    # not a complete monthly run of the catalog, so it keeps no cadence for EA-OPS-02
    assert line["complete"] is True and line["selection"] == "monthly" and line["cadences"] == []
    assert line["targets"] == [] and line["report"] == merged_path.name  # no target covered completely


def eval_if(condition: str, exit_code: str) -> bool:
    """The shard's failing step's `if:` for an exit code (it compares with '0' and '1' only)."""
    assert condition == ("always() && steps.audit.outputs.exit_code != '0' && "
                         "steps.audit.outputs.exit_code != '1'"), condition
    return exit_code not in ("0", "1")


def test_a_missing_shard_fails_the_merge_and_writes_no_history(workflow, tmp_path):
    """No shard uploaded anything: the glob matches nothing and the merge refuses (exit 2)."""
    (tmp_path / "reports").mkdir()
    merge = step(workflow, "merge", "edgeaudit merge")
    code, outputs = _run_step(merge["run"], tmp_path, {"FAIL_ON": "P4"})
    assert code == 0 and outputs["exit_code"] == "2"
    assert not (tmp_path / "reports" / "history.jsonl").exists()
