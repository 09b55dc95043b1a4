"""`--shard auto`: each engine's variables choose the shard `--shard K/N` would (0-based indexes
made 1-based), the variables set on purpose win over an engine's, a missing or bad value is a
usage error naming the variables, and the shards of one run share a run id derived from the
engine (an AWS Batch array job's id), so that they merge."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import botocore.session
import pytest
import yaml
from botocore.validate import validate_parameters
from test_fleet import FLEET, fleet_targets
from test_plugin import Project, site  # noqa: F401  (the module's site fixture)

from conftest import REPO
from edgeaudit.rules.config import load
from edgeaudit.run.options import parse_shard, shared_run_id

# Every variable --shard auto or the run id reads: none leaks in from the machine running the tests.
ENGINE_VARS = ("EDGEAUDIT_SHARD", "EDGEAUDIT_SHARD_INDEX", "EDGEAUDIT_SHARD_COUNT", "EDGEAUDIT_RUN_ID",
               "AWS_BATCH_JOB_ARRAY_INDEX", "AWS_BATCH_JOB_ARRAY_SIZE", "AWS_BATCH_JOB_ID", "JOB_COMPLETION_INDEX",
               "CI_NODE_INDEX", "CI_NODE_TOTAL", "CI_PIPELINE_ID", "GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT",
               "GITHUB_ACTIONS")
CLEAN: dict[str, str | None] = dict.fromkeys(ENGINE_VARS)
BIN = Path(sys.executable).parent

GITHUB = {"EDGEAUDIT_SHARD_INDEX": "2", "EDGEAUDIT_SHARD_COUNT": "4", "GITHUB_RUN_ID": "555", "GITHUB_RUN_ATTEMPT": "1"}
KUBERNETES = {"JOB_COMPLETION_INDEX": "0", "EDGEAUDIT_SHARD_COUNT": "3", "EDGEAUDIT_RUN_ID": "5f0c7e3a-uid"}
AWS_BATCH = {"AWS_BATCH_JOB_ARRAY_INDEX": "1", "AWS_BATCH_JOB_ARRAY_SIZE": "2",
             "AWS_BATCH_JOB_ID": "3f6e1c2a-90b1-4f4e-8a53-0d2f1e7b9c11:1"}
GITLAB = {"CI_NODE_INDEX": "3", "CI_NODE_TOTAL": "3", "CI_PIPELINE_ID": "777"}


# --- the variables, read in-process ----------------------------------------------------------------

@pytest.mark.parametrize("environ, shard", [
    (GITHUB, (3, 4)),                                   # strategy.job-index 2 of job-total 4: shard 3/4
    ({**GITHUB, "EDGEAUDIT_SHARD_INDEX": "0"}, (1, 4)),
    (KUBERNETES, (1, 3)),                               # JOB_COMPLETION_INDEX counts from 0
    ({**KUBERNETES, "JOB_COMPLETION_INDEX": "2"}, (3, 3)),
    (AWS_BATCH, (2, 2)),                                # AWS_BATCH_JOB_ARRAY_INDEX counts from 0
    ({**AWS_BATCH, "EDGEAUDIT_SHARD_COUNT": "2"}, (2, 2)),  # agreeing with the array's size
    (GITLAB, (3, 3)),                                   # CI_NODE_INDEX counts from 1
    ({"JOB_COMPLETION_INDEX": " 0 ", "EDGEAUDIT_SHARD_COUNT": "1"}, (1, 1)),  # one shard needs no shared id
])
def test_each_engines_variables_give_the_shard(environ, shard):
    assert parse_shard("auto", environ) == shard
    assert parse_shard("AUTO", environ) == shard


@pytest.mark.parametrize("environ, shard", [
    ({**GITHUB, **KUBERNETES, **AWS_BATCH, **GITLAB, "EDGEAUDIT_SHARD_COUNT": "4"}, (3, 4)),  # set on purpose wins
    ({**KUBERNETES, **AWS_BATCH, **GITLAB, "EDGEAUDIT_SHARD_COUNT": "2"}, (2, 2)),  # the Batch child, not the pod
    ({**KUBERNETES, **GITLAB}, (1, 3)),                                           # the pod, not the CI runner
])
def test_the_variables_set_on_purpose_win_then_the_job_closest_to_the_process(environ, shard):
    assert parse_shard("auto", environ) == shard


@pytest.mark.parametrize("environ, named", [
    ({}, ["EDGEAUDIT_SHARD_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX", "JOB_COMPLETION_INDEX", "strategy.job-index",
          "--shard K/N"]),
    ({"GITHUB_RUN_ID": "1", "EDGEAUDIT_SHARD_COUNT": "4"}, ["none of EDGEAUDIT_SHARD_INDEX"]),
    ({"JOB_COMPLETION_INDEX": "1", "EDGEAUDIT_RUN_ID": "r"},
     ["JOB_COMPLETION_INDEX is set", "EDGEAUDIT_SHARD_COUNT is not", "completions"]),
    ({**KUBERNETES, "JOB_COMPLETION_INDEX": "3"}, ["JOB_COMPLETION_INDEX=3", "EDGEAUDIT_SHARD_COUNT=3", "runs 0..2"]),
    ({**GITHUB, "EDGEAUDIT_SHARD_INDEX": "4"}, ["EDGEAUDIT_SHARD_INDEX=4", "runs 0..3"]),
    ({**GITLAB, "CI_NODE_INDEX": "0"}, ["CI_NODE_INDEX=0", "runs 1..3"]),
    ({**GITHUB, "EDGEAUDIT_SHARD_INDEX": "two"}, ["EDGEAUDIT_SHARD_INDEX='two' is not a whole number"]),
    ({**GITHUB, "EDGEAUDIT_SHARD_INDEX": "-1"}, ["EDGEAUDIT_SHARD_INDEX='-1' is not a whole number"]),
    ({**GITHUB, "EDGEAUDIT_SHARD_COUNT": "4.0"}, ["EDGEAUDIT_SHARD_COUNT='4.0' is not a whole number"]),
    ({**GITHUB, "EDGEAUDIT_SHARD_COUNT": "\u0664"}, ["EDGEAUDIT_SHARD_COUNT='\u0664' is not a whole number", "0-9"]),
    ({**GITHUB, "EDGEAUDIT_SHARD_INDEX": "\u0662"}, ["EDGEAUDIT_SHARD_INDEX='\u0662' is not a whole number"]),
    ({**GITLAB, "CI_NODE_TOTAL": "\u00b3"}, ["CI_NODE_TOTAL='\u00b3' is not a whole number"]),
    ({**GITHUB, "EDGEAUDIT_SHARD_COUNT": str(10**18)}, [f"EDGEAUDIT_SHARD_COUNT='{10**18}'", "from 0 to 10000"]),
    ({**GITHUB, "EDGEAUDIT_SHARD_COUNT": "10001"}, ["EDGEAUDIT_SHARD_COUNT='10001'", "from 0 to 10000"]),
    ({**GITHUB, "EDGEAUDIT_SHARD_INDEX": "0", "EDGEAUDIT_SHARD_COUNT": "0"}, ["EDGEAUDIT_SHARD_COUNT=0"]),
    ({**AWS_BATCH, "EDGEAUDIT_SHARD_COUNT": "3"},
     ["EDGEAUDIT_SHARD_COUNT=3 disagrees with AWS_BATCH_JOB_ARRAY_SIZE=2"]),
    ({**KUBERNETES, "EDGEAUDIT_RUN_ID": None}, ["JOB_COMPLETION_INDEX", "EDGEAUDIT_RUN_ID",
                                                "batch.kubernetes.io/controller-uid"]),
    ({"EDGEAUDIT_SHARD_INDEX": "0", "EDGEAUDIT_SHARD_COUNT": "2"}, ["no run id that every shard shares"]),
])
def test_no_or_a_bad_value_is_a_usage_error_naming_the_variables(environ, named):
    environ = {key: value for key, value in environ.items() if value is not None}
    with pytest.raises(pytest.UsageError) as caught:
        parse_shard("auto", environ)
    message = str(caught.value)
    assert message.startswith("--shard auto: ") and "Fix: " in message
    for text in named:
        assert text in message, (text, message)


@pytest.mark.parametrize("text", ["\u0661/\u0662", "1/2\u00b2", f"1/{10**18}", "1/10001", "0/2", "3/2", "1", "1/"])
def test_a_shard_given_by_hand_is_k_of_n_in_ascii_digits_within_the_bound(text):
    with pytest.raises(pytest.UsageError, match=r"not of the form K/N with 1 <= K <= N <= 10000 in digits 0-9"):
        parse_shard(text, {})
    assert parse_shard("10000/10000", {}) == (10000, 10000)


@pytest.mark.parametrize("environ, found", [
    ({"AWS_BATCH_JOB_ID": "3f6e1c2a:0"}, ("aws-batch-3f6e1c2a", "AWS_BATCH_JOB_ID")),  # every child of the array
    ({"AWS_BATCH_JOB_ID": "3f6e1c2a:7"}, ("aws-batch-3f6e1c2a", "AWS_BATCH_JOB_ID")),
    ({"AWS_BATCH_JOB_ID": "3f6e1c2a"}, ("aws-batch-3f6e1c2a", "AWS_BATCH_JOB_ID")),    # a job of its own
    ({"GITHUB_RUN_ID": "555", "GITHUB_RUN_ATTEMPT": "2", "AWS_BATCH_JOB_ID": "x:1"},
     ("github-555-2", "GITHUB_RUN_ID / GITHUB_RUN_ATTEMPT")),
    ({"EDGEAUDIT_RUN_ID": "nightly", "AWS_BATCH_JOB_ID": "x:1"}, ("nightly", "EDGEAUDIT_RUN_ID")),
    ({"JOB_COMPLETION_INDEX": "0"}, None),  # a Kubernetes pod sees no id of its Job
])
def test_the_run_id_is_derived_from_the_engine(environ, found):
    assert shared_run_id(environ) == found


# --- the runs: the shard chosen is --shard K/N's ----------------------------------------------------

@pytest.fixture(scope="module")
def fleet(tmp_path_factory, world, site) -> Project:
    project = Project(tmp_path_factory.mktemp("shard-auto"), world, site)
    project.control("fleet", FLEET)
    project.config(targets=fleet_targets(8))  # shop-07 is the one that fails EA-OPS-03
    return project


def collected(project: Project, *args: str, env: dict[str, str | None]) -> set[str]:
    """The targets a `--co` run collects."""
    run = project.run("--co", "-q", *args, env={**CLEAN, **env})
    assert run.returncode == 0, run.output
    return set(re.findall(r"::test_\w+\[([\w-]+)\]", run.output))


def expected(project: Project, index: int, count: int) -> set[str]:
    return {t.name for t in load(project.root / "edgeaudit.toml").shard(index, count).targets}


@pytest.mark.parametrize("environ, shard", [(GITHUB, (3, 4)), (AWS_BATCH, (2, 2)), (GITLAB, (3, 3))])
def test_auto_collects_the_targets_of_k_of_n(fleet, environ, shard):
    chosen = collected(fleet, "--shard", "auto", env=environ)
    assert chosen == collected(fleet, "--shard", "/".join(map(str, shard)), env={}) == expected(fleet, *shard)


def test_the_pods_of_an_indexed_job_cover_the_fleet_once(fleet):
    """JOB_COMPLETION_INDEX 0..2 with EDGEAUDIT_SHARD_COUNT=3 (EDGEAUDIT_SHARD=auto, as a Job's env
    would say it): each pod's shard is --shard K/3, and together they check every target once."""
    shards = [collected(fleet, env={**KUBERNETES, "JOB_COMPLETION_INDEX": str(i), "EDGEAUDIT_SHARD": "auto"})
              for i in range(3)]
    assert shards == [expected(fleet, k, 3) for k in (1, 2, 3)]
    assert sum(map(len, shards)) == 8 and set().union(*shards) == {f"shop-{i:02d}" for i in range(8)}


@pytest.mark.parametrize("environ, named", [
    ({}, "none of EDGEAUDIT_SHARD_INDEX"),
    ({**KUBERNETES, "JOB_COMPLETION_INDEX": "5"}, "JOB_COMPLETION_INDEX=5"),
])
def test_a_run_that_finds_no_shard_stops_with_exit_4(fleet, environ, named):
    run = fleet.run("-m", "monthly", "--shard", "auto", env={**CLEAN, **environ})
    assert run.returncode == 4, run.output
    assert named in run.output and "Fix: " in run.output
    assert "passed" not in run.output and "failed" not in run.output


def test_the_children_of_an_aws_batch_array_share_a_run_id_and_merge(fleet, tmp_path):
    """Both children of one array job: the run id comes from the part of AWS_BATCH_JOB_ID before
    ':', the same in each, so `edgeaudit merge` takes them as one run."""
    array = "3f6e1c2a-90b1-4f4e-8a53-0d2f1e7b9c11"
    reports = []
    for index in range(2):
        env = {**CLEAN, "AWS_BATCH_JOB_ARRAY_INDEX": str(index), "AWS_BATCH_JOB_ARRAY_SIZE": "2",
               "AWS_BATCH_JOB_ID": f"{array}:{index}"}
        run = fleet.run("-m", "monthly", "--shard", "auto", env=env)
        assert run.returncode in (0, 1), run.output
        reports.append(run.report)
    assert [r["run"]["run_id"] for r in reports] == [f"aws-batch-{array}"] * 2
    assert [r["run"]["shard"] for r in reports] == [{"index": 1, "count": 2}, {"index": 2, "count": 2}]
    assert [set(r["run"]["targets"]) for r in reports] == [expected(fleet, 1, 2), expected(fleet, 2, 2)]
    paths = []
    for index, report in enumerate(reports):
        paths.append(tmp_path / f"shard-{index}.json")
        paths[-1].write_text(json.dumps(report))
    done = subprocess.run([sys.executable, "-m", "edgeaudit.cli", "merge", *map(str, paths), "--output",
                           str(tmp_path / "merged")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr  # shop-07's finding, judged once for the fleet
    merged = json.loads(next((tmp_path / "merged").glob("*-merged.json")).read_text())
    assert merged["complete"] is True and merged["run"]["shards"] == {"count": 2, "missing": []}
    assert {(r["target"], r["outcome"]) for r in merged["results"] if r["control"] == "EA-OPS-03"} == {
        (f"shop-{i:02d}", "failed" if i == 7 else "passed") for i in range(8)}
    assert sorted(merged["run"]["targets"]) == [f"shop-{i:02d}" for i in range(8)]


# --- the examples: a Kubernetes Indexed Job and an AWS Batch array job ---------------------------------

EXAMPLES = REPO / "examples"


def _yaml(name: str) -> dict:
    return yaml.safe_load((EXAMPLES / "kubernetes" / name).read_text(encoding="utf-8"))


def _env(container: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_the_kubernetes_example_is_an_indexed_job_whose_count_is_its_completions():
    job = _yaml("edgeaudit-shards.yaml")
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and 1 <= spec["parallelism"] <= spec["completions"]
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    [container] = pod["containers"]
    env = _env(container)
    assert int(env["EDGEAUDIT_SHARD_COUNT"]) == spec["completions"], "--shard auto's N is the Job's completions"
    uid = "metadata.labels['batch.kubernetes.io/controller-uid']"
    assert env["EDGEAUDIT_RUN_ID"] == {"fieldRef": {"fieldPath": uid}}, "the Job's uid, the same in every pod"
    assert container["command"] == ["sh", "-c"] and "--shard auto" in container["args"][0]
    assert "JOB_COMPLETION_INDEX" not in env, "Kubernetes sets it"
    merge = _yaml("edgeaudit-merge.yaml")
    [merger] = merge["spec"]["template"]["spec"]["containers"]
    assert merge["kind"] == "Job" and merge["spec"]["backoffLimit"] == 0
    assert re.search(r"^edgeaudit merge ", merger["args"][0], re.M)
    claims = [[v["persistentVolumeClaim"]["claimName"] for v in d["spec"]["template"]["spec"]["volumes"]
               if "persistentVolumeClaim" in v] for d in (job, merge)]
    assert claims[0] == claims[1] == ["edgeaudit-reports"], "the shards write where the merge reads"
    placeholder = _env(merger)["RUN_ID"]
    commands = (EXAMPLES / "kubernetes" / "edgeaudit-shards.yaml").read_text()
    assert f'sed "s/{placeholder}/$RUN_ID/" edgeaudit-merge.yaml' in commands


def test_the_kubernetes_pods_and_merge_check_a_fleet_as_one_run(fleet, world, tmp_path):
    """The Indexed Job's pod command for each index as Kubernetes would start it (its env, the
    index, the uid from the downward API), then the merge Job's command on the shared volume."""
    job, merge = _yaml("edgeaudit-shards.yaml"), _yaml("edgeaudit-merge.yaml")
    [container] = job["spec"]["template"]["spec"]["containers"]
    [merger] = merge["spec"]["template"]["spec"]["containers"]
    uid = "0b6f1d2e-7c41-4a8e-9d0e-2f5b8c3a6e71"
    volume = tmp_path / "reports"
    base = {**os.environ, **world.aws_env, **CLEAN, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "GITHUB_STEP_SUMMARY": None}
    pod_env = {**base, **{k: v for k, v in _env(container).items() if isinstance(v, str)},
               "EDGEAUDIT_RUN_ID": uid, "EDGEAUDIT_CONFIG": str(fleet.root / "edgeaudit.toml"),
               "MARKERS": "monthly", "REPORTS": str(volume)}
    for index in range(job["spec"]["completions"]):
        done = _sh(container["args"][0], fleet.root, {**pod_env, "JOB_COMPLETION_INDEX": str(index)})
        assert done.returncode == 0, done.stdout + done.stderr  # findings alone complete the pod
        [report] = (volume / uid / f"shard-{index}").glob("*Z.json")
        assert json.loads(report.read_text())["run"]["run_id"] == uid
    history = tmp_path / "history" / "history.jsonl"  # in the cluster: the S3 location of [report] history
    done = _sh(merger["args"][0], tmp_path, {**base, **_env(merger), "RUN_ID": uid, "REPORTS": str(volume),
                                             "HISTORY": str(history)})
    assert done.returncode == 1, done.stdout + done.stderr  # shop-07's finding: the Job's verdict
    assert len(history.read_text().splitlines()) == 1, "the merge adds the run's one line to the history"
    merged = json.loads(next((volume / uid / "merged").glob("*-merged.json")).read_text())
    assert merged["complete"] is True and merged["run"]["shards"] == {"count": 4, "missing": []}
    assert sorted(merged["run"]["targets"]) == [f"shop-{i:02d}" for i in range(8)]


def test_the_kubernetes_jobs_run_locked_down_and_bounded():
    for name in ("edgeaudit-shards.yaml", "edgeaudit-merge.yaml"):
        job = _yaml(name)
        spec, pod = job["spec"], job["spec"]["template"]["spec"]
        assert spec["activeDeadlineSeconds"] > 0 and spec["ttlSecondsAfterFinished"] > 0, name
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert container["resources"]["limits"]["memory"], name
            assert re.fullmatch(r"\S+@sha256:[0-9a-f]{64}", container["image"].split()[0]), "the image by digest"
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert "/tmp" in mounts, "a writable /tmp beside the read-only root"
    [merger] = _yaml("edgeaudit-merge.yaml")["spec"]["template"]["spec"]["containers"]
    assert "--history" in merger["args"][0] and _env(merger)["HISTORY"].startswith("s3://"), "history kept between runs"


def test_the_kubernetes_manifests_validate_against_the_kubernetes_schema():
    import kubernetes_validate

    for name in ("edgeaudit-shards.yaml", "edgeaudit-merge.yaml"):
        kubernetes_validate.validate(_yaml(name), "1.30.0", strict=True)


def test_a_kubernetes_manifest_with_a_wrong_field_does_not_validate():
    import kubernetes_validate

    job = _yaml("edgeaudit-merge.yaml")
    job["spec"]["ttlSecondsAfterFinish"] = 60  # misspelt
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, "1.30.0", strict=True)


def test_an_aws_batch_shard_reads_its_config_from_s3_and_a_missing_one_is_not_retried(tmp_path):
    shard = json.loads((EXAMPLES / "aws-batch" / "edgeaudit-shard.json").read_text())
    env = {e["name"]: e["value"] for e in shard["containerProperties"]["environment"]}
    assert env["CONFIG_S3"].startswith("s3://")
    assert shard["retryStrategy"]["evaluateOnExit"][0] == {"onExitCode": "4", "action": "EXIT"}
    # the shard's command as AWS Batch starts it, with an `aws` that finds no such object
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "aws").write_text("#!/bin/sh\necho 'fatal error: An error occurred (404)' >&2\nexit 1\n")
    (fake / "aws").chmod(0o755)
    done = _sh(shard["containerProperties"]["command"][2], tmp_path,
               {**os.environ, **env, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}",
                "AWS_BATCH_JOB_ID": "3f6e1c2a:0", "AWS_BATCH_JOB_ARRAY_INDEX": "0"})
    assert done.returncode == 4 and "no config at s3://" in done.stderr
    assert shard["containerProperties"]["image"].split("@")[1].startswith("sha256:")


def _sh(script: str, cwd: Path, env: dict[str, str | None]) -> subprocess.CompletedProcess[str]:
    environ = {key: value for key, value in env.items() if value is not None}
    return subprocess.run(["sh", "-c", script], cwd=cwd, env=environ, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("name", ["edgeaudit-shard.json", "edgeaudit-merge.json"])
def test_the_aws_batch_job_definitions_are_valid_register_job_definition_input(name):
    """botocore's own model of RegisterJobDefinition accepts them as written."""
    document = json.loads((EXAMPLES / "aws-batch" / name).read_text(encoding="utf-8"))
    model = botocore.session.get_session().get_service_model("batch")
    validate_parameters(document, model.operation_model("RegisterJobDefinition").input_shape)
    assert name == f"{document['jobDefinitionName']}.json"


def test_the_aws_batch_example_is_an_array_job_then_a_merge_after_all_of_it():
    shard = json.loads((EXAMPLES / "aws-batch" / "edgeaudit-shard.json").read_text())
    merge = json.loads((EXAMPLES / "aws-batch" / "edgeaudit-merge.json").read_text())
    command = shard["containerProperties"]["command"]
    assert command[:2] == ["sh", "-c"] and "--shard auto" in command[2]
    assert "AWS_BATCH_JOB_ID%%:*" in command[2] and "shard-$AWS_BATCH_JOB_ARRAY_INDEX" in command[2]
    assert "EDGEAUDIT_SHARD_COUNT" not in json.dumps(shard), "AWS Batch passes the array's size"
    assert re.search(r"^edgeaudit merge ", merge["containerProperties"]["command"][2], re.M)
    script = (EXAMPLES / "aws-batch" / "submit.sh").read_text()
    assert subprocess.run(["sh", "-n", "-c", script]).returncode == 0
    assert '--job-definition edgeaudit-shard --array-properties "size=$SHARDS"' in script
    assert '--job-definition edgeaudit-merge --depends-on "jobId=$array"' in script
    assert "type=" not in script, "a plain dependency on the array job waits for all of its children"
    assert "name=ARRAY_JOB_ID" in script and "$ARRAY_JOB_ID" in merge["containerProperties"]["command"][2]


def test_the_docs_document_every_source_and_its_examples_parse():
    from edgeaudit.rules.shards import SOURCES

    section = (REPO / "docs" / "shards.md").read_text().split("\n## `--shard auto`", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| (\d) \| `(\w+)` \|", section, re.M)
    assert rows == [(s.index, str(s.base), s.count or "EDGEAUDIT_SHARD_COUNT") for s in SOURCES], "in precedence order"
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    [job] = [yaml.safe_load(b) for b in blocks]
    example = _yaml("edgeaudit-shards.yaml")
    for key in ("completionMode", "completions", "parallelism"):
        assert job["spec"][key] == example["spec"][key], key
    assert "--shard auto" in job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert "--depends-on \"jobId=$array\"" in section and "--array-properties size=" in section
