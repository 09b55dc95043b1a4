"""Silence is not a declaration: a control whose input a target leaves out fails, saying how to
declare it absent; only `absent = { key = "reason" }` in the target earns a skip, and the report
shows the reason."""

from __future__ import annotations

import pytest

from conftest import run_suite
from edgeaudit.demo.builder import SiteSpec
from edgeaudit.errors import ConfigError
from edgeaudit.rules import tomlwrite
from edgeaudit.rules.config import parse

# control -> (severity, the key it needs)
CONTROLS = {"EA-DR-02": ("P2", "replica_bucket"), "EA-DR-03": ("P2", "replica_bucket"),
            "EA-DR-07": ("P3", "replica_bucket"), "EA-COST-01": ("P3", "monthly_budget_usd"),
            "EA-OPS-04": ("P3", "lockfile")}
SELECTION = ("test_replication or test_recovery_point or test_origin_failover or test_month_within_budget "
             "or test_dependency_review")
REASONS = {"replica_bucket": "single-region site, rebuilt from git", "monthly_budget_usd": "paid from the shared budget",
           "lockfile": "no package dependencies"}


def _target(**extra) -> dict:
    return {"name": "www", "url": "https://www.example.com/", "bucket": "origin", "distribution_id": "E1", **extra}


def test_a_declaration_names_the_key_and_its_reason(tmp_path):
    config = parse(tmp_path / "edgeaudit.toml", {"targets": [_target(absent=dict(REASONS))]})
    target = config.targets[0]
    assert target.declared_absent("replica_bucket") == "single-region site, rebuilt from git"
    assert target.declared_absent("scratch_bucket") is None
    assert parse(tmp_path / "edgeaudit.toml", {"targets": [_target()]}).targets[0].declared_absent("lockfile") is None
    assert target.as_dict()["absent"] == REASONS


@pytest.mark.parametrize(("absent", "extra", "where", "problem"), [
    ({"scratch_bucket": "none"}, {}, "absent", "wrong type or value"),            # not a key that may be absent
    ({"replica_bucket": ""}, {}, "absent", "wrong type or value"),                # no reason
    ({"replica_bucket": True}, {}, "absent", "wrong type or value"),
    ("replica_bucket", {}, "absent", "wrong type or value"),
    ({"lockfile": "none"}, {"lockfile": "package-lock.json"}, "absent.lockfile", "lockfile is both set and declared absent"),
])
def test_a_bad_declaration_is_a_config_error(tmp_path, absent, extra, where, problem):
    with pytest.raises(ConfigError, match=r"targets\[0\] \(\"www\"\)\." + where + ": " + problem) as error:
        parse(tmp_path / "edgeaudit.toml", {"targets": [_target(absent=absent, **extra)]})
    assert "Fix:" in str(error.value) and "edgeaudit.toml" in str(error.value)


@pytest.fixture(scope="module")
def runs(world, tmp_path_factory):
    """A site that leaves out a replica, a budget and a lockfile; the same site declaring each absent."""
    silent = world.add(SiteSpec(name="silent", replica="none", declared_absent=()))
    declared = world.add(SiteSpec(name="declared", replica="none", declared_absent=tuple(REASONS)))
    workdir = tmp_path_factory.mktemp("declared-absent")
    entries = [{k: v for k, v in silent.target_entry().items() if k != "monthly_budget_usd"},
               {**declared.target_entry(), "absent": REASONS}]
    config = workdir / "edgeaudit.toml"
    config.write_text(tomlwrite.dumps({"targets": entries}))
    return run_suite("suites/test_dr.py", "suites/test_cost.py", "suites/test_ops.py", "-k", SELECTION,
                     "--edgeaudit-config", str(config), env=world.aws_env, report_dir=workdir / "reports")


@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_a_key_left_out_fails_saying_how_to_declare_it(runs, control):
    severity, key = CONTROLS[control]
    result = runs.result(control, "silent")
    assert result["outcome"] == "failed" and result["severity"] == severity, result
    assert f"target silent sets no {key} and does not declare it absent" in result["message"]
    assert f'absent = {{ {key} = "why this site has none" }}' in result["message"]


@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_a_declared_absence_skips_with_its_reason_in_the_report(runs, control):
    _, key = CONTROLS[control]
    result = runs.result(control, "declared")
    assert result["outcome"] == "skipped", result
    assert result["message"] == f"declared absent in the config: {key} ({REASONS[key]})"
    assert result["evidence"]["declared_absent"] == {key: REASONS[key]}
