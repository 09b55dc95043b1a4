"""Fleets: targets in a file of their own, glob selection, roles assumed per target, shards of
a CI matrix merged back into the report one run would have written."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from test_plugin import Project, site  # noqa: F401  (the module's site fixture)

from conftest import run_suite
from edgeaudit.rules import tomlwrite

FLEET = '''
@pytest.mark.control("EA-OPS-03", severity="P3")
@pytest.mark.monthly
def test_named_well(target, evidence):
    """Targets whose name ends in 7 fail (a stand-in finding)."""
    evidence.record("name", target.name)
    assert not target.name.endswith("7"), f"{target.name} ends in 7"

@pytest.mark.control("EA-OPS-04", severity="P4")
@pytest.mark.monthly
def test_always(target):
    """Always holds."""
'''

WHO = '''
@pytest.mark.control("EA-OPS-03", severity="P3")
def test_identity(aws, target, evidence):
    """Records who the suite is for this target."""
    evidence.record("arn", aws.client("sts").get_caller_identity()["Arn"])
'''


def fleet_targets(count: int) -> list[dict]:
    # these controls read only the target's name: the sites are never contacted
    return [{"name": f"shop-{i:02d}", "url": f"https://shop-{i:02d}.example.invalid/", "bucket": f"b{i}",
             "distribution_id": "E1"} for i in range(count)]


def outcomes(report: dict) -> set[tuple[str, str, str]]:
    return {(r["control"], r["target"], r["outcome"]) for r in report["results"]}


def test_targets_file_and_glob_selection(tmp_path, world, site):
    project = Project(tmp_path, world, site)
    project.control("fleet", FLEET)
    (tmp_path / "fleet.toml").write_text(tomlwrite.dumps({"targets": fleet_targets(12)}))
    (tmp_path / "edgeaudit.toml").write_text(tomlwrite.dumps({"targets_file": "fleet.toml",
                                                              "targets": [site.target_entry()]}))
    run = project.run("--target", "shop-0*")
    assert {r["target"] for r in run.report["results"]} == {f"shop-{i:02d}" for i in range(10)}
    assert run.result("EA-OPS-03", "shop-07")["outcome"] == "failed"
    none = project.run("--target", "nothing-*")
    assert none.returncode == 4 and "--target nothing-*" in none.output


def test_four_shards_merge_into_the_single_run(tmp_path, world, site):
    project = Project(tmp_path, world, site)
    project.control("fleet", FLEET)
    project.config(targets=fleet_targets(20))
    whole = project.run("-m", "monthly")
    shards = []
    for k in range(1, 5):  # separately started jobs of one CI run: one run id
        run = project.run("-m", "monthly", "--shard", f"{k}/4", env={"EDGEAUDIT_RUN_ID": "nightly-42"})
        shards.append(run.report)
    assert [(s["run"]["run_id"], s["run"]["shard"]) for s in shards] == [
        ("nightly-42", {"index": k, "count": 4}) for k in range(1, 5)]
    assert sum(len(s["run"]["targets"]) for s in shards) == 20
    assert all(s["run"]["targets"] for s in shards), "each shard has some of the fleet"
    paths = []
    for i, shard in enumerate(shards):
        path = tmp_path / f"shard-{i}.json"
        path.write_text(json.dumps(shard))
        paths.append(str(path))
    merged_dir = tmp_path / "merged"
    done = subprocess.run([sys.executable, "-m", "edgeaudit.cli", "merge", *paths, "--output", str(merged_dir)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr  # the fleet has failures, as the single run has
    merged = json.loads(next(merged_dir.glob("*-merged.json")).read_text())
    assert outcomes(merged) == outcomes(whole.report)
    assert merged["summary"] == whole.report["summary"]
    assert merged["complete"] is True and sorted(merged["run"]["targets"]) == sorted(whole.report["run"]["targets"])
    assert next(merged_dir.glob("*-merged.html")).read_text().count('id="verdict"') == 1


def test_merge_refuses_overlapping_shards(tmp_path, world, site):
    project = Project(tmp_path, world, site)
    project.control("fleet", FLEET)
    project.config(targets=fleet_targets(3))
    path = tmp_path / "one.json"
    path.write_text(json.dumps(project.run("-m", "monthly").report))
    done = subprocess.run([sys.executable, "-m", "edgeaudit.cli", "merge", str(path), str(path),
                           "--output", str(tmp_path / "m")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "shard 1/1 is given twice" in done.stderr


def test_a_shard_that_draws_no_target_still_reports(tmp_path, world, site):
    """Two targets over four shards: the shards without one write an empty, complete report,
    so that the merge sees every shard of the run."""
    project = Project(tmp_path, world, site)
    project.control("fleet", FLEET)
    project.config(targets=fleet_targets(2))
    reports = []
    for k in range(1, 5):
        run = project.run("-m", "monthly", "--shard", f"{k}/4", env={"EDGEAUDIT_RUN_ID": "few-targets"})
        assert run.returncode == 0, run.output
        reports.append(run.report)
    assert [len(r["run"]["targets"]) for r in reports].count(0) >= 2
    assert all(r["complete"] for r in reports)
    done = _merge(*_write(tmp_path, reports), output=tmp_path / "m")
    assert done.returncode == 0, done.stderr
    merged = json.loads(next((tmp_path / "m").glob("*-merged.json")).read_text())
    assert merged["complete"] is True and merged["run"]["targets"] == ["shop-00", "shop-01"]


def _merge(*paths, output) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgeaudit.cli", "merge", *map(str, paths), "--output", str(output)],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def two_shards(tmp_path_factory, world, site) -> list[dict]:
    """Both shards of one GitHub Actions run (each job sees the same run id and attempt)."""
    root = tmp_path_factory.mktemp("two-shards")
    project = Project(root, world, site)
    project.control("fleet", FLEET)
    project.config(targets=fleet_targets(6))
    github = {"GITHUB_RUN_ID": "987654", "GITHUB_RUN_ATTEMPT": "2", "EDGEAUDIT_RUN_ID": None}
    return [project.run("-m", "monthly", "--shard", f"{k}/2", env=github).report for k in (1, 2)]


def _write(directory, reports: list) -> list:
    paths = []
    for i, report in enumerate(reports):
        path = directory / f"shard-{i + 1}.json"
        path.write_text(report if isinstance(report, str) else json.dumps(report))
        paths.append(path)
    return paths


def test_shards_of_one_ci_run_share_its_id_and_merge(two_shards, tmp_path):
    assert [s["run"]["run_id"] for s in two_shards] == ["github-987654-2"] * 2
    assert [s["run"]["shard"] for s in two_shards] == [{"index": 1, "count": 2}, {"index": 2, "count": 2}]
    done = _merge(*_write(tmp_path, two_shards), output=tmp_path / "m")
    assert done.returncode == 0, done.stderr  # no name in this fleet ends in 7: no finding
    merged = json.loads(next((tmp_path / "m").glob("*-merged.json")).read_text())
    assert merged["complete"] is True and merged["run"]["shards"] == {"count": 2, "missing": []}


@pytest.mark.parametrize("field, value, what", [
    ("run_id", "github-111-1", "different runs"),
    ("tool_version", "0.0.9", "different versions of edgeaudit"),
    ("aws_account", "999999999999", "different AWS accounts"),
    ("demo", True, "different demo and real runs"),
])
def test_merge_refuses_shards_that_are_not_one_run(two_shards, tmp_path, field, value, what):
    other = json.loads(json.dumps(two_shards[1]))
    other["run"][field] = value
    done = _merge(*_write(tmp_path, [two_shards[0], other]), output=tmp_path / "m")
    assert done.returncode == 2, done.stdout + done.stderr
    assert what in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()


def test_merge_refuses_a_missing_shard_unless_partial_is_allowed(two_shards, tmp_path):
    path = _write(tmp_path, [two_shards[0]])[0]
    done = _merge(path, output=tmp_path / "m")
    assert done.returncode == 2 and "shard(s) 2/2 missing" in done.stderr and "--allow-partial" in done.stderr
    partial = subprocess.run([sys.executable, "-m", "edgeaudit.cli", "merge", str(path), "--allow-partial",
                              "--output", str(tmp_path / "m")], capture_output=True, text=True, timeout=60)
    assert partial.returncode == 1, partial.stderr  # not everything was evaluated
    merged = json.loads(next((tmp_path / "m").glob("*-merged.json")).read_text())
    assert merged["complete"] is False and merged["run"]["shards"] == {"count": 2, "missing": [2]}
    assert "incomplete: shard(s) 2 of 2 missing" in partial.stdout


def _without(report: dict, *path: str) -> dict:
    copy = json.loads(json.dumps(report))
    holder = copy
    for key in path[:-1]:
        holder = holder[key]
    del holder[path[-1]]
    return copy


@pytest.mark.parametrize("malformed, complaint", [
    ("not json {", "not a readable JSON report"),
    ("[]", "not an edgeaudit.report/1 document"),
    ("[" * 100000 + "]" * 100000, "not a readable JSON report"),
    (lambda r: _without(r, "run", "shard"), "run.shard is missing"),
    (lambda r: _without(r, "run", "run_id"), "run.run_id is missing"),
    (lambda r: {**r, "results": {"a": 1}}, "results is not a list"),
    (lambda r: {**r, "results": [{**r["results"][0], "outcome": "great"}]}, "outcome 'great'"),
    (lambda r: _without(r, "results", 0, "severity"), "results[0].severity is missing"),
    (lambda r: {**r, "run": {**r["run"], "shard": {"index": 3, "count": 2}}}, "run.shard is not"),
    (lambda r: {**r, "complete": "yes"}, "complete is missing or not true/false"),
])
def test_merge_of_a_malformed_shard_is_one_line_and_exit_2(two_shards, tmp_path, malformed, complaint):
    second = malformed(json.loads(json.dumps(two_shards[1]))) if callable(malformed) else malformed
    done = _merge(*_write(tmp_path, [two_shards[0], second]), output=tmp_path / "m")
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert complaint in done.stderr and "shard-2.json" in done.stderr


def test_role_is_assumed_per_target(tmp_path, world, site):
    project = Project(tmp_path, world, site)
    project.control("who", WHO)
    own = dict(site.target_entry())
    other = {**site.target_entry(), "name": "partner", "role_arn": "arn:aws:iam::210987654321:role/edgeaudit-audit",
             "external_id": "shared-secret-id"}
    project.config(targets=[own, other])
    run = project.run()
    assert run.result("EA-OPS-03", "partner")["evidence"]["arn"].startswith(
        "arn:aws:sts::210987654321:assumed-role/edgeaudit-audit/")
    assert ":assumed-role/" not in run.result("EA-OPS-03", "site")["evidence"]["arn"]


def test_a_denied_account_and_a_dead_site_leave_the_rest_of_the_fleet_reported(world, tmp_path):
    """Four targets: two healthy, one whose credentials are denied everything (moto enforcing
    IAM), one whose site is down. The healthy two are reported fully; the other two get `error`
    results naming why wherever their fault stops a control, and their other controls still run."""
    from moto import settings
    from moto.core.responses import ActionAuthenticatorMixin

    from edgeaudit.aws import guard
    from edgeaudit.demo.builder import SiteSpec

    sites = {name: world.add(SiteSpec(name=name)) for name in ("fleet-ok-a", "fleet-ok-b", "fleet-denied", "fleet-down")}
    world.sign_edges_as_iam_user()  # the edges keep reading S3 while IAM is enforced
    sites["fleet-down"].edge.stop()
    iam = world.builder.client("iam")
    profiles = {}
    with guard.local_seeding():
        for profile, policy in (("fleet-auditor", {"Effect": "Allow", "Action": "*", "Resource": "*"}),
                                ("fleet-denied", None)):  # no policy: every action is denied
            iam.create_user(UserName=profile)
            if policy:
                iam.put_user_policy(UserName=profile, PolicyName="audit", PolicyDocument=json.dumps(
                    {"Version": "2012-10-17", "Statement": [policy]}))
            key = iam.create_access_key(UserName=profile)["AccessKey"]
            profiles[profile] = (key["AccessKeyId"], key["SecretAccessKey"])
    credentials = tmp_path / "credentials"
    credentials.write_text("".join(f"[{name}]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"
                                   for name, (key, secret) in profiles.items()))
    config = tmp_path / "edgeaudit.toml"
    config.write_text(tomlwrite.dumps({"github": {"absent": "this fleet deploys from elsewhere"}, "targets": [
        {**site.target_entry(), "profile": "fleet-denied" if name == "fleet-denied" else "fleet-auditor"}
        for name, site in sites.items()]}))
    before = settings.INITIAL_NO_AUTH_ACTION_COUNT
    settings.INITIAL_NO_AUTH_ACTION_COUNT = ActionAuthenticatorMixin.request_count  # enforce from now on
    try:
        run = run_suite("suites", "--edgeaudit-config", str(config), "-m", "(daily or weekly) and not performance",
                        env={**world.aws_env, "AWS_SHARED_CREDENTIALS_FILE": str(credentials)},
                        report_dir=tmp_path / "reports")
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = before
    report = run.report
    assert report["complete"] is True, run.output
    controls = {r["control"] for r in report["results"]}
    by_target = {name: run.outcomes(name) for name in sites}
    assert all(set(outcomes) == controls for outcomes in by_target.values()), "every target has every control"
    declared_absent = {"EA-DEP-05", "EA-MET-01"}  # the GitHub source the config declares absent
    for healthy in ("fleet-ok-a", "fleet-ok-b"):
        assert {c for c, o in by_target[healthy].items() if o == "skipped"} == declared_absent, by_target[healthy]
        assert {o for c, o in by_target[healthy].items() if c not in declared_absent} <= {"passed", "warned"}
    # the one finding: EA-OPS-01 checks the auditor's own permissions, and names what is missing
    preflight = run.result("EA-OPS-01", "fleet-denied")
    assert preflight["outcome"] == "failed" and "fleet-denied lacks " in preflight["message"], preflight
    for name in ("fleet-denied", "fleet-down"):
        differs = {c for c, o in by_target[name].items() if o != by_target["fleet-ok-a"][c]} - {"EA-OPS-01"}
        assert differs and all(by_target[name][c] == "error" for c in differs), by_target[name]
    denied = [run.result(c, "fleet-denied")["message"] for c, o in by_target["fleet-denied"].items() if o == "error"]
    assert len(denied) > 20 and all("AccessDenied: the credentials lack " in m for m in denied), denied
    assert by_target["fleet-denied"]["EA-HDR-01"] == "passed", "its site is still checked"
    down = [run.result(c, "fleet-down")["message"] for c, o in by_target["fleet-down"].items() if o == "error"]
    assert len(down) > 10 and all("Connection refused" in m for m in down), down
    assert by_target["fleet-down"]["EA-S3-01"] == "passed", "its AWS configuration is still checked"
