"""EA-IAM-07 and EA-IAM-08, the account's own credentials, both ways. They read account-level
facts of the world's one account, so each broken case is set up and undone inside its test."""

from __future__ import annotations

import datetime as dt

import pytest

from conftest import assert_finding, assert_passes, run_suite
from edgeaudit.aws import guard
from edgeaudit.demo import motoext
from edgeaudit.demo.builder import SiteSpec
from edgeaudit.rules import tomlwrite


@pytest.fixture(scope="module")
def site(world):
    return world.add(SiteSpec(name="account"))


@pytest.fixture
def run(world, site, tmp_path):
    def run_controls():
        config = tmp_path / "edgeaudit.toml"
        config.write_text(tomlwrite.dumps({"targets": [site.target_entry()]}))
        return run_suite("suites/test_account.py", "--edgeaudit-config", str(config), "-p", "no:randomly",
                         env=world.aws_env, report_dir=tmp_path / "reports")
    return run_controls


def test_a_kept_account_passes(run):
    done = run()
    assert_passes(done.result("EA-IAM-07", "account"), "P1")
    result = done.result("EA-IAM-08", "account")
    assert_passes(result, "P2")
    assert result["evidence"]["stale"] == {} and result["evidence"]["max_days"] == 90


@pytest.mark.parametrize(("mfa", "keys", "named"), [
    (False, False, "the root user has no MFA device"),
    (True, True, "the root user has access keys"),
])
def test_a_root_user_without_mfa_or_with_keys_fails(run, mfa, keys, named):
    motoext.set_root_user(mfa=mfa, access_keys=keys)
    try:
        result = run().result("EA-IAM-07", "account")
    finally:
        motoext.set_root_user(mfa=True, access_keys=False)
    assert_finding(result, "P1")
    assert result["outcome"] == "failed", result
    assert named in result["message"]
    assert result["evidence"]["root_mfa_enabled"] is mfa and result["evidence"]["root_access_keys_present"] is keys


def test_an_access_key_unrotated_for_120_days_fails_naming_the_user(world, run):
    iam = world.builder.client("iam")
    with guard.local_seeding():
        iam.create_user(UserName="old-reporter")
        key = iam.create_access_key(UserName="old-reporter")["AccessKey"]["AccessKeyId"]
    motoext.set_access_key_create_date("old-reporter", key, dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=120))
    try:
        result = run().result("EA-IAM-08", "account")
    finally:
        with guard.local_seeding():  # a stale key would fail this control in every later run of the world
            iam.delete_access_key(UserName="old-reporter", AccessKeyId=key)
            iam.delete_user(UserName="old-reporter")
    assert_finding(result, "P2")
    assert result["outcome"] == "failed", result
    assert "old-reporter (access key 1 not rotated for 120 days" in result["message"]
    assert "old-reporter" in result["evidence"]["stale"]


# --- EA-MET-02: availability over 30 days ---------------------------------------------------------

def _availability(world, tmp_path, site):
    config = tmp_path / "edgeaudit.toml"
    config.write_text(tomlwrite.dumps({"targets": [site.target_entry()]}))
    return run_suite("suites/test_metrics.py", "--edgeaudit-config", str(config), "-p", "no:randomly",
                     env=world.aws_env, report_dir=tmp_path / "reports").result("EA-MET-02", site.spec.name)


def test_a_month_of_few_5xx_answers_is_available(world, site, tmp_path):
    result = _availability(world, tmp_path, site)
    assert_passes(result, "P2")
    # a point a day at noon: 30 in the last 30 days before noon, 29 after it
    assert result["evidence"]["periods"] >= 29 and result["evidence"]["requests"] > 0
    assert result["margins"]["availability"]["observed"] == pytest.approx(0.9998)


def test_a_month_at_2_percent_5xx_is_not_available_and_names_its_worst_hours(world, tmp_path):
    flaky = world.add(SiteSpec(name="flaky", error_rate_5xx=2.0))
    result = _availability(world, tmp_path, flaky)
    assert_finding(result, "P2")
    assert result["outcome"] == "failed", result
    assert "availability 98.0000% over 30 days is under 99.90%" in result["message"]
    assert result["evidence"]["worst_periods"][0]["error_rate_5xx"] == 0.02


def test_no_datapoints_is_not_evaluated_naming_the_metric(world, tmp_path, site):
    entry = {**site.target_entry(), "name": "nodata", "distribution_id": "ENODATA000000"}
    config = tmp_path / "edgeaudit.toml"
    config.write_text(tomlwrite.dumps({"targets": [entry]}))
    done = run_suite("suites/test_metrics.py", "--edgeaudit-config", str(config), "-p", "no:randomly",
                     env=world.aws_env, report_dir=tmp_path / "reports")
    result = done.result("EA-MET-02", "nodata")
    assert result["outcome"] == "error" and "no Requests with a 5xxErrorRate" in result["message"], result
