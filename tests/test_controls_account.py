"""EA-IAM-07 and EA-IAM-08, the account's own credentials, both ways. They read account-level
facts of the world's one account, so each broken case is set up and undone inside its test.
EA-MET-02, the account's availability metrics: from CloudFront's, or from a Route 53 health check."""

from __future__ import annotations

import datetime as dt
import uuid
from urllib.parse import urlsplit

import pytest

from conftest import assert_finding, assert_passes, run_suite
from edgeaudit.aws import guard
from edgeaudit.checks.metrics import AVAILABILITY_DAYS
from edgeaudit.errors import ConfigError
from edgeaudit.demo import motoext
from edgeaudit.demo.builder import SiteSpec
from edgeaudit.rules import tomlwrite
from edgeaudit.rules.config import parse


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
    assert "the distribution's 5xx answers" in result["evidence"]["source"]
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


# --- EA-MET-02 from a Route 53 health check (health_check_id) ---------------------------------------

def _health_check(world, host: str, port: int, **config) -> str:
    """A health check in the world's Route 53: HTTPS of `host`:`port` unless `config` says otherwise."""
    settings = {"Type": "HTTPS", "FullyQualifiedDomainName": host, "Port": port, "ResourcePath": "/",
                "RequestInterval": 30, "FailureThreshold": 3, **config}
    with guard.local_seeding():
        return world.builder.client("route53").create_health_check(
            CallerReference=str(uuid.uuid4()), HealthCheckConfig=settings)["HealthCheck"]["Id"]


def _status(world, check_id: str, hours: int, unhealthy: dict[int, int] | None = None) -> None:
    """HealthCheckStatus as Route 53 publishes it, a sample a minute, written as each whole hour's
    statistics for the last `hours` hours; `unhealthy` maps hours ago to that hour's unhealthy minutes."""
    end = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    data = []
    for ago in range(1, hours + 1):
        down = (unhealthy or {}).get(ago, 0)
        data.append({"MetricName": "HealthCheckStatus", "Dimensions": [{"Name": "HealthCheckId", "Value": check_id}],
                     "Timestamp": end - dt.timedelta(hours=ago), "Unit": "None", "StatisticValues": {
                         "SampleCount": 60, "Sum": 60 - down, "Minimum": 0 if down else 1, "Maximum": 0 if down == 60 else 1}})
    cloudwatch = world.builder.client("cloudwatch")
    with guard.local_seeding():
        for first in range(0, len(data), 500):
            cloudwatch.put_metric_data(Namespace="AWS/Route53", MetricData=data[first:first + 500])


MONTH = AVAILABILITY_DAYS * 24
# 864 unhealthy minutes of the month's 43200: 2 %, twelve hours down and four at 36 minutes
TWO_PERCENT = {**{ago: 60 for ago in range(2, 14)}, **{ago: 36 for ago in range(14, 18)}}


@pytest.fixture(scope="module")
def checked(world, site, tmp_path_factory):
    """One run of EA-MET-02 and the preflight over targets that each name a health check (and one
    that names none): the health checks and their metrics in the world's Route 53 and CloudWatch."""
    host = "localhost"  # the host of the demo edge's url
    port = urlsplit(site.target_entry()["url"]).port
    checks = {
        "hc-healthy": (_health_check(world, host, port), MONTH, None),
        "hc-flaky": (_health_check(world, host, port, Type="HTTPS_STR_MATCH", SearchString="<html"), MONTH, TWO_PERCENT),
        "hc-disabled": (_health_check(world, host, port, Disabled=True), MONTH, None),
        "hc-inverted": (_health_check(world, host, port, Inverted=True), MONTH, None),
        "hc-other-host": (_health_check(world, "www.example.org", port), MONTH, None),
        "hc-ip": (_health_check(world, host, port, IPAddress="192.0.2.10"), MONTH, None),
        "hc-tcp": (_health_check(world, host, port, Type="TCP"), MONTH, None),
        "hc-http": (_health_check(world, host, port, Type="HTTP"), MONTH, None),
        "hc-other-port": (_health_check(world, host, 443), MONTH, None),
        "hc-unknown": (str(uuid.uuid4()), 0, None),
        "hc-nodata": (_health_check(world, host, port), 0, None),
        "hc-short": (_health_check(world, host, port), 10 * 24, None),
        "hc-short-down": (_health_check(world, host, port), 10 * 24, {ago: 60 for ago in range(2, 14)}),
    }
    checks["hc-calculated"] = (_health_check(world, host, port, Type="CALCULATED", HealthThreshold=1,
                                             ChildHealthChecks=[checks["hc-healthy"][0]]), MONTH, None)
    for check_id, hours, unhealthy in checks.values():
        if hours:
            _status(world, check_id, hours, unhealthy)
    entries = [{**site.target_entry(), "name": name, "health_check_id": check_id}
               for name, (check_id, _, _) in checks.items()]
    entries.append({**site.target_entry(), "name": "hc-none"})
    workdir = tmp_path_factory.mktemp("health-checks")
    config = workdir / "edgeaudit.toml"
    config.write_text(tomlwrite.dumps({"targets": entries}))
    done = run_suite("suites/test_metrics.py", "suites/test_ops.py", "-k", "availability or preflight",
                     "--edgeaudit-config", str(config), "-p", "no:randomly",
                     env=world.aws_env, report_dir=workdir / "reports")
    done.ids = {name: check_id for name, (check_id, _, _) in checks.items()}
    done.url = site.target_entry()["url"]
    return done


def test_a_healthy_month_from_a_health_check_passes_and_says_its_source(checked):
    result = checked.result("EA-MET-02", "hc-healthy")
    assert_passes(result, "P2")
    evidence = result["evidence"]
    assert f"Route 53 health check {checked.ids['hc-healthy']}" in evidence["source"]
    assert {key: evidence["health_check"][key] for key in ("type", "host", "path", "port", "failure_threshold")} == {
        "type": "HTTPS", "host": "localhost", "path": "/", "port": urlsplit(checked.url).port, "failure_threshold": 3}
    assert "regions" in evidence["health_check"]
    # 720 whole hours; one less when the hour turned between the seeding and the run
    assert evidence["hours_in_period"] == MONTH and evidence["hours_measured"] >= MONTH - 1
    assert evidence["worst_periods"] == []
    assert result["margins"]["availability"]["observed"] == 1.0


def test_a_month_with_2_percent_unhealthy_minutes_fails_naming_its_worst_hours(checked):
    result = checked.result("EA-MET-02", "hc-flaky")
    assert_finding(result, "P2")
    assert result["outcome"] == "failed" and result["control"] == "EA-MET-02", result
    assert "over 30 days is under 99.90%" in result["message"]
    assert "found the site unhealthy 864 of" in result["message"]
    assert result["margins"]["availability"]["observed"] == pytest.approx(0.98, abs=0.0001)
    worst = result["evidence"]["worst_periods"]
    assert len(worst) == 5 and all(period["unhealthy_minutes"] == 60 and period["minutes"] == 60 for period in worst)
    assert result["evidence"]["unhealthy_minutes"] == 864


@pytest.mark.parametrize(("name", "named"), [
    ("hc-disabled", "is disabled: Route 53 then reports it healthy"),
    ("hc-inverted", "is inverted"),
    ("hc-other-host", "probes www.example.org, not localhost"),
    ("hc-ip", "probes the IP address 192.0.2.10: an address cannot prove it is localhost"),
    ("hc-tcp", "is of type TCP: it does not request the site's pages"),
    ("hc-http", "is of type HTTP: it asks over plain HTTP, while viewers reach"),
    ("hc-other-port", "probes port 443, not port"),
    ("hc-calculated", "is of type CALCULATED"),
    ("hc-unknown", "Route 53 has no health check"),
])
def test_a_health_check_that_cannot_prove_the_sites_availability_is_not_evaluated(checked, name, named):
    result = checked.result("EA-MET-02", name)
    assert result["outcome"] == "error", result
    assert named in result["message"] and checked.ids[name] in result["message"], result["message"]
    if name != "hc-unknown":
        assert "Fix:" in result["message"] and result["evidence"]["health_check"]["id"] == checked.ids[name]


def test_a_health_check_without_datapoints_is_not_evaluated_naming_the_metric(checked):
    result = checked.result("EA-MET-02", "hc-nodata")
    assert result["outcome"] == "error", result
    assert "no HealthCheckStatus datapoints for health check" in result["message"]


def test_a_health_check_with_under_90_percent_of_the_month_measured_does_not_pass_but_may_fail(checked):
    result = checked.result("EA-MET-02", "hc-short")
    assert result["outcome"] == "error", result
    assert "for 240 of the 720 hours" in result["message"] and "a pass needs 90%" in result["message"]
    assert result["evidence"]["hours_measured"] == 240
    # the unhealthy minutes it did measure are a finding all the same
    down = checked.result("EA-MET-02", "hc-short-down")
    assert down["outcome"] == "failed" and "found the site unhealthy 720 of 14400 measured minutes" in down["message"]


def test_the_preflight_probes_the_health_check_only_of_a_target_that_names_one(checked):
    named = checked.result("EA-OPS-01", "hc-healthy")
    assert named["outcome"] == "passed", named
    assert "route53:GetHealthCheck" in named["evidence"]["allowed"]
    none = checked.result("EA-OPS-01", "hc-none")
    assert none["outcome"] == "passed", none
    assert "route53:GetHealthCheck" not in none["evidence"]["allowed"]
    assert "names no health_check_id" in none["evidence"]["not_probed"]["route53:GetHealthCheck"]
    assert checked.result("EA-MET-02", "hc-none")["evidence"]["source"].startswith("the distribution's 5xx answers")


def test_a_health_check_id_is_a_known_key_of_its_own_spelling(tmp_path):
    entry = {"name": "www", "url": "https://www.example.com/", "bucket": "b-www", "distribution_id": "E1"}
    target = parse(tmp_path / "edgeaudit.toml", {"targets": [{**entry, "health_check_id": "abcdef11-2222"}]}).targets[0]
    assert target.health_check_id == "abcdef11-2222"
    with pytest.raises(ConfigError, match='unknown key. Fix: did you mean "health_check_id"'):
        parse(tmp_path / "edgeaudit.toml", {"targets": [{**entry, "healthcheck_id": "abcdef11-2222"}]})
    with pytest.raises(ConfigError, match="health_check_id: wrong type or value '\\*'"):
        parse(tmp_path / "edgeaudit.toml", {"targets": [{**entry, "health_check_id": "*"}]})

