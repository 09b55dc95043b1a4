"""Controls whose data is missing end not evaluated, never passed: no CacheHitRate metric, cost
data of 0 USD every day (a cost tag that matches nothing), a distribution without an S3 origin,
a host whose DNS zone is not in Route 53. The same controls pass on a compliant site and fail on
a broken one; a control skips only where the config declares the thing absent, with its reason
in the report's results.

One run of these controls over a few sites: three built with the demo builder's switches, and
targets whose distributions are created here, next to a compliant site's bucket."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest

from conftest import Run, assert_finding, assert_passes, run_suite
from edgeaudit.aws import guard
from edgeaudit.demo.builder import SiteSpec
from edgeaudit.rules import tomlwrite

CONTROLS = {
    "EA-CACHE-04": ("suites/test_cache.py::test_cache_hit_ratio", "P3"),
    "EA-COST-01": ("suites/test_cost.py::test_month_within_budget", "P3"),
    "EA-COST-02": ("suites/test_cost.py::test_no_cost_spike", "P3"),
    "EA-CF-02": ("suites/test_cloudfront.py::test_s3_origins_use_oac", "P2"),
    "EA-TLS-06": ("suites/test_acm.py::test_acm_certificate_renews", "P2"),
    "EA-PEN-09": ("suites/test_probes.py::test_no_dangling_dns", "P2"),
}
SITES = {  # built with the builder's switches
    "ok": {},
    "misses": {"cache_hit_rate": 60.0},
    "no-hit-metric": {"cache_hit_rate": None},     # the distribution's additional metrics are off
    "zero-cost": {"daily_cost_usd": 0.0},          # what Cost Explorer answers for a tag that matches nothing
}


def _distribution(world, config: dict[str, Any]) -> dict[str, Any]:
    """A distribution created from `config`; its Id and DomainName."""
    config = {**config, "CallerReference": f"unproven-{uuid.uuid4().hex[:8]}"}
    with guard.local_seeding():
        return world.builder.client("cloudfront").create_distribution(DistributionConfig=config)["Distribution"]


@pytest.fixture(scope="module")
def run(world, tmp_path_factory) -> Run:
    sites = {name: world.add(SiteSpec(name=name).but(**switches)) for name, switches in SITES.items()}
    ok = sites["ok"].target_entry()
    base = world.builder.client("cloudfront").get_distribution_config(Id=ok["distribution_id"])["DistributionConfig"]
    custom_only = copy.deepcopy(base)
    custom_only["Origins"] = {"Quantity": 1, "Items": [{
        "Id": "app", "DomainName": "app.example.com", "OriginPath": "", "ConnectionAttempts": 3,
        "ConnectionTimeout": 10, "CustomHeaders": {"Quantity": 0},
        "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only",
                               "OriginSslProtocols": {"Quantity": 1, "Items": ["TLSv1.2"]}}}]}
    custom_only["OriginGroups"] = {"Quantity": 0}
    custom_only["CacheBehaviors"] = {"Quantity": 0}
    custom_only["DefaultCacheBehavior"]["TargetOriginId"] = "app"
    iam_certificate = copy.deepcopy(base)
    iam_certificate["ViewerCertificate"] = {"IAMCertificateId": "ASCAEXAMPLECERTIFICATE",
                                            "SSLSupportMethod": "sni-only", "MinimumProtocolVersion": "TLSv1.2_2021"}
    default_certificate = copy.deepcopy(base)
    default_certificate["Aliases"] = {"Quantity": 0}
    default_certificate["ViewerCertificate"] = {"CloudFrontDefaultCertificate": True}
    own_host = _distribution(world, default_certificate)
    targets = [site.target_entry() for site in sites.values()] + [
        {**ok, "name": "no-s3-origin", "distribution_id": _distribution(world, custom_only)["Id"]},
        {**ok, "name": "iam-certificate", "distribution_id": _distribution(world, iam_certificate)["Id"]},
        {**ok, "name": "cloudfront-host", "distribution_id": own_host["Id"],
         "url": f"https://{own_host['DomainName']}/"},
        {**ok, "name": "no-zone", "url": ok["url"].replace("localhost", "127.0.0.1")},
    ]
    workdir = tmp_path_factory.mktemp("unproven")
    config = workdir / "edgeaudit.toml"
    config.write_text(tomlwrite.dumps({"targets": targets}))
    return run_suite(*(node for node, _ in CONTROLS.values()), "--edgeaudit-config", str(config),
                     env=world.aws_env, report_dir=workdir / "reports")


def test_run_is_complete(run):
    assert run.report["complete"] is True, run.output


@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_compliant_site_passes(run, control):
    assert_passes(run.result(control, "ok"), CONTROLS[control][1])


def _error(run: Run, control: str, target: str) -> str:
    result = run.result(control, target)
    assert result["outcome"] == "error" and result["severity"] == CONTROLS[control][1], result
    return result["message"]


# --- EA-CACHE-04: a ratio from CloudWatch's CacheHitRate, or none -----------------------------------

def test_cache_hit_ratio_below_threshold_fails(run):
    result = run.result("EA-CACHE-04", "misses")
    assert result["outcome"] == "failed", result
    assert_finding(result, "P3")
    assert result["evidence"]["cache_hit_ratio"] == 0.6 and "seen 60.0%" in result["message"]
    assert run.result("EA-CACHE-04", "ok")["evidence"]["source"] == "CloudWatch CacheHitRate, last 7 days"


def test_cache_hit_ratio_without_the_metric_is_not_evaluated(run):
    message = _error(run, "EA-CACHE-04", "no-hit-metric")
    distribution = run.result("EA-CACHE-04", "no-hit-metric")["resource"].rsplit("/", 1)[-1]
    for named in ("CacheHitRate", distribution, "additional metrics", "paid option", "us-east-1"):
        assert named in message, (named, message)
    assert "cache_hit_ratio" not in run.result("EA-CACHE-04", "no-hit-metric")["evidence"]


# --- EA-COST-01/02: 0 USD every day is a filter that matches nothing --------------------------------

@pytest.mark.parametrize("control", ["EA-COST-01", "EA-COST-02"])
def test_zero_cost_data_is_not_evaluated_naming_the_filter(run, control):
    message = _error(run, control, "zero-cost")
    tag = run.result(control, "zero-cost")["evidence"]["scope"]["tag"]
    for named in ("0 USD for every day", "Amazon Simple Storage Service", "Amazon CloudFront",
                  f"tag {tag['key']}={tag['value']}", "cost_tag"):
        assert named in message, (named, message)


def test_real_cost_data_is_judged(run):
    month = run.result("EA-COST-01", "ok")["evidence"]
    assert month["month_usd"] > 0 and month["budget_usd"] == 40.0
    spike = run.result("EA-COST-02", "ok")["evidence"]
    assert (spike["day_usd"], spike["mean_of_7_days_before_usd"]) == (0.4, 0.4)


# --- skips: only where the config declares the thing absent -----------------------------------------

def test_distribution_without_s3_origin_is_not_evaluated(run):
    message = _error(run, "EA-CF-02", "no-s3-origin")
    assert "no origin recognised as an S3 bucket (origins: app.example.com)" in message
    assert run.result("EA-CF-02", "ok")["evidence"]["s3_origins"]


def test_iam_server_certificate_fails_renewal(run):
    result = run.result("EA-TLS-06", "iam-certificate")
    assert result["outcome"] == "failed", result
    assert_finding(result, "P2")
    assert "IAM server certificate (ASCAEXAMPLECERTIFICATE)" in result["message"]
    assert "nothing renews it" in result["message"]


def test_cloudfront_host_skips_certificate_renewal_with_its_reason_in_the_results(run):
    """The config's url names the distribution's cloudfront.net host: no ACM certificate is
    declared absent, and the report's row says why."""
    result = run.result("EA-TLS-06", "cloudfront-host")
    assert result["outcome"] == "skipped", result
    assert ".cloudfront.net: CloudFront's default certificate covers it" in result["message"], result
    assert result["evidence"]["viewer_certificate"]["CloudFrontDefaultCertificate"] is True


def test_host_without_route53_zone_is_not_evaluated(run):
    message = _error(run, "EA-PEN-09", "no-zone")
    assert "no public Route 53 hosted zone of this account covers 127.0.0.1" in message
