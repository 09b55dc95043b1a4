"""The controls that read the AWS APIs, proven both ways: a compliant site passes every one, and
a site that breaks exactly one control fails it with the right id, severity and offender, while
its other controls pass. Also: the scanners' known false positives, the account-wide controls,
an AccessDenied per AWS service (moto enforcing IAM), and the markers against the catalog.

One run of these suites checks the whole fleet of sites as targets; the tests read its rows.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import importlib.util
import json
import os
import re
from pathlib import Path

import pytest

from conftest import REPO, Run, assert_passes, run_suite
from edgeaudit.aws import guard
from edgeaudit.demo import motoext
from edgeaudit.demo.builder import OTHER_DISTRIBUTION, PARTNER_ACCOUNT, SiteSpec
from edgeaudit.rules import tomlwrite
from edgeaudit.rules.catalog import known_ids

MODULES = ("test_s3.py", "test_cloudfront.py", "test_acm.py", "test_iam.py", "test_cost.py", "test_invalidations.py")
CONTROLS = {
    "EA-S3-01": "P1", "EA-S3-02": "P1", "EA-S3-03": "P3", "EA-S3-04": "P3", "EA-S3-05": "P2", "EA-S3-06": "P4",
    "EA-S3-07": "P3", "EA-S3-08": "P3", "EA-S3-09": "P2", "EA-S3-10": "P3",
    "EA-CF-01": "P2", "EA-CF-02": "P2", "EA-CF-03": "P1", "EA-CF-04": "P2", "EA-CF-05": "P3", "EA-CF-06": "P3",
    "EA-CF-07": "P3", "EA-CF-08": "P3", "EA-CF-09": "P2", "EA-CF-10": "P4", "EA-CF-11": "P2",
    "EA-CACHE-03": "P4", "EA-CACHE-05": "P4", "EA-DEP-03": "P3", "EA-TLS-06": "P2",
    "EA-COST-01": "P3", "EA-COST-02": "P3", "EA-COST-03": "P4", "EA-COST-04": "P4",
    "EA-IAM-01": "P1", "EA-IAM-02": "P2", "EA-IAM-03": "P2", "EA-IAM-04": "P3", "EA-IAM-05": "P2", "EA-IAM-06": "P3",
}
EVERY_METHOD = ("GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE")
ORIGIN_CACHE_CONTROL_WITH_QUERIES = "4cc15a8a-d715-48a4-82b8-cc0b614638fe"  # managed: cookies and queries all

# target -> (switches, {control: outcome}, what the evidence names); every other control passes.
# EA-S3-01, EA-S3-05 and EA-CF-01 fail on the sites of test_controls.py.
FLEET = {
    "ok": ({}, {}, None),
    # compliant alternatives: other S3 domain forms, a TLS custom origin, SSE-KMS, an allowed partner writer,
    # everyone from one office network, a Deny of plain HTTP for every action (*), versions kept just the window
    "variants": ({"extra_origins": ("s3-global", "s3-dash", "custom-https"), "encryption": "aws:kms",
                  "bucket_policy_extra": ("partner-write", "ip-office"), "insecure_transport_denied": ("*",),
                  "noncurrent_days": 30, "newer_noncurrent_versions": 3,
                  "origin_group": False}, {}, None),  # no replica origin
    "oac-unbound": ({"bucket_policy_extra": ("cloudfront-any",)}, {"EA-S3-02": "failed"}, "AllowAnyCloudFront"),
    "oac-other": ({"bucket_policy_extra": ("cloudfront-other",)}, {"EA-S3-02": "failed"}, OTHER_DISTRIBUTION),
    "ip-halves": ({"bucket_policy_extra": ("ip-halves",)}, {"EA-S3-02": "failed"}, "0.0.0.0/1, 128.0.0.0/1"),
    "open-conditions": ({"bucket_policy_extra": ("open-conditions",)}, {"EA-S3-02": "failed"}, "LooselyBoundRead"),
    # objects uploaded public-read: ACLs on (EA-S3-08) and Block Public Access off (EA-S3-01) let it happen
    "public-objects": ({"public_object_acl": True, "object_ownership": "ObjectWriter", "block_public_access": False},
                       {"EA-S3-01": "failed", "EA-S3-02": "failed", "EA-S3-08": "failed"}, None),
    "http-allowed": ({"deny_insecure_transport": False}, {"EA-S3-03": "failed"}, None),
    "http-partly-denied": ({"insecure_transport_denied": ("s3:GetObject", "s3:PutObject")}, {"EA-S3-03": "failed"},
                           "other than s3:GetObject, s3:PutObject"),
    "kms-closed": ({"encryption": "aws:kms-no-cloudfront"}, {"EA-S3-04": "failed"}, ":key/"),
    "no-lifecycle": ({"lifecycle": False}, {"EA-S3-06": "failed"}, None),
    # keeping the 3 newest noncurrent versions does not make up for expiring the others after a day
    "early-expiry": ({"noncurrent_days": 1, "newer_noncurrent_versions": 3}, {"EA-S3-06": "failed"},
                     "rule 'expire-old-versions' after 1 day"),
    "writes-trail": ({"access_logging": False, "data_events": "WriteOnly"}, {"EA-S3-07": "failed"}, "-objects"),
    "reads-trail": ({"access_logging": False, "data_events": "ReadOnly"}, {"EA-IAM-06": "failed"}, "-objects"),
    "advanced-trail": ({"access_logging": False, "data_events": "AdvancedAll"}, {}, None),
    # an advanced selector limited to GetObject records neither the writes nor every read (HeadObject)
    "get-only-trail": ({"access_logging": False, "data_events": "AdvancedGetObject"},
                       {"EA-IAM-06": "failed", "EA-S3-07": "failed"}, "-objects leaves out"),
    "acls-on": ({"object_ownership": "BucketOwnerPreferred"}, {"EA-S3-08": "failed"}, "BucketOwnerPreferred"),
    "website": ({"website_hosting": True}, {"EA-S3-09": "failed"}, "index.html"),
    "partner-read": ({"bucket_policy_extra": ("partner-read",)}, {"EA-S3-10": "failed"}, PARTNER_ACCOUNT),
    "oai": ({"origin_access": "oai"}, {"EA-CF-02": "failed"}, "origin access identity"),
    "public-origin": ({"origin_access": "public"}, {"EA-CF-02": "failed"}, "no origin access control"),
    # the website endpoint serves plain HTTP only, so it is a custom origin without TLS as well
    "website-origin": ({"origin_access": "website"}, {"EA-CF-02": "failed", "EA-CF-09": "failed"}, "s3-website"),
    "dangling-origin": ({"extra_origins": ("dangling",)}, {"EA-CF-03": "failed"}, "-legacy"),
    "old-tls": ({"minimum_protocol_version": "TLSv1.2_2019"}, {"EA-CF-04": "failed"}, "TLSv1.2_2019"),
    "empty-waf": ({"web_acl": "empty"}, {"EA-CF-05": "failed"}, "-empty-acl"),
    "counting-waf": ({"web_acl": "count"}, {"EA-CF-05": "failed"}, "only count: common, rate-limit"),
    # a group with OverrideAction None blocks only if one of its rules still blocks
    "group-counts-waf": ({"web_acl": "group-count"}, {"EA-CF-05": "failed"}, "only count: own-group"),
    "group-blocks-waf": ({"web_acl": "group-block"}, {}, None),
    "managed-counts-waf": ({"web_acl": "managed-count"}, {"EA-CF-05": "failed"}, "only count: common"),
    "managed-partly-waf": ({"web_acl": "managed-partly"}, {}, None),
    "no-cf-logs": ({"cloudfront_logging": False}, {"EA-CF-06": "failed"}, None),
    "no-root": ({"default_root_object": ""}, {"EA-CF-07": "failed"}, None),
    "assets-no-headers": ({"assets_headers_policy": False}, {"EA-CF-08": "failed"}, "/assets/*"),
    "custom-http": ({"extra_origins": ("custom-http",)}, {"EA-CF-09": "failed"}, "match-viewer"),
    "old-protocols": ({"http_version": "http1.1", "ipv6": False}, {"EA-CF-10": "failed"}, "http1.1"),
    "assets-writable": ({"assets_allowed_methods": EVERY_METHOD}, {"EA-CF-11": "failed"}, "/assets/*"),
    "wide-cache-key": ({"assets_cache_policy": ORIGIN_CACHE_CONTROL_WITH_QUERIES}, {"EA-CACHE-03": "failed"},
                       "/assets/*"),
    "acm-imported": ({"acm_certificate": "imported"}, {"EA-TLS-06": "failed"}, "imported"),
    "acm-renewal": ({"acm_renewal": "FAILED"}, {"EA-TLS-06": "failed"}, "renewal FAILED"),
    "alias-uncovered": ({"aliases": ("www.example.com", "shop.example.com")}, {"EA-TLS-06": "failed"},
                        "shop.example.com"),
    # the offender is named with its age, 40 minutes and whatever the build and run took since
    "stuck-invalidation": ({"stuck_invalidation_minutes": 40}, {"EA-DEP-03": "failed"}, "InProgress for more than"),
    "extra-writer": ({"extra_writer": True}, {"EA-IAM-01": "failed"}, ":user/intern-"),
    "old-key": ({"deploy_user_key_age_days": 120}, {"EA-IAM-02": "failed"}, "(120 days)"),
    "wildcard-deploy": ({"deploy_actions": ("s3:*",)}, {"EA-IAM-04": "failed"}, "every S3 action"),
    "wildcard-invalidation": ({"invalidation_resource": "*"}, {"EA-IAM-04": "failed"}, "any distribution"),
    "near-budget": ({"monthly_budget_usd": 13.5}, {"EA-COST-01": "warned"}, "13.50 USD"),
    "over-budget": ({"monthly_budget_usd": 10.0}, {"EA-COST-01": "failed"}, "10.00 USD"),
    "new-account": ({"cost_forecast": False}, {"EA-COST-01": "warned"}, "no forecast"),
    "spike": ({"cost_spike": True}, {"EA-COST-02": "failed"}, "4.0 times"),
    # spend before, none in the days compared: nothing to judge (EA-COST-01 still sees the month)
    "spend-stopped": ({"cost_stopped_days": 10}, {"EA-COST-02": "error"}, "nothing to compare"),
    "silent-budget": ({"budget": "silent"}, {"EA-COST-03": "failed"}, "notify nobody"),
    "all-edges": ({"price_class": "PriceClass_All"}, {"EA-COST-04": "failed"}, "PriceClass_All"),
}


class SharedRun(Run):
    """A run whose JSON report is read once."""

    @functools.cached_property
    def report(self) -> dict:
        return Run.report.fget(self)


def _once(tmp_path_factory, name: str, compute) -> SharedRun:
    """Each xdist worker would build the same sites and run the same suite; the first one does
    it and the others read its report (the runs need nothing else of the worker's world)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return compute(tmp_path_factory.mktemp(name))
    workdir = tmp_path_factory.getbasetemp().parent / name  # one folder for all workers of the session
    workdir.mkdir(exist_ok=True)
    with open(workdir / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        saved = workdir / "run.json"
        if saved.is_file():
            return SharedRun(**json.loads(saved.read_text()), report_dir=workdir / "reports")
        run = compute(workdir)
        saved.write_text(json.dumps({"returncode": run.returncode, "output": run.output}))
        return run


def _run(world, workdir: Path, sites, *args: str, env: dict[str, str | None] | None = None) -> SharedRun:
    config = workdir / "edgeaudit.toml"
    config.write_text(tomlwrite.dumps({"targets": [site.target_entry() for site in sites]}))
    run = run_suite(*(f"suites/{m}" for m in MODULES), "--edgeaudit-config", str(config), *args,
                    env={**world.aws_env, **(env or {})}, report_dir=workdir / "reports")
    return SharedRun(run.returncode, run.output, run.report_dir)


@pytest.fixture(scope="module")
def fleet(world, tmp_path_factory) -> SharedRun:
    """One run of these controls over every site of FLEET."""

    def build_and_run(workdir: Path) -> SharedRun:
        sites = [world.add(SiteSpec(name=name).but(**switches)) for name, (switches, _, _) in FLEET.items()]
        return _run(world, workdir, sites)

    return _once(tmp_path_factory, "aws-fleet", build_and_run)


def test_fleet_reports_every_control_for_every_target(fleet):
    assert fleet.report["complete"] is True, fleet.output
    assert {(r["control"], r["target"]) for r in fleet.report["results"]} == {(c, t) for c in CONTROLS for t in FLEET}
    assert fleet.returncode == 1, fleet.output


@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_compliant_site_passes(fleet, control):
    result = fleet.result(control, "ok")
    assert_passes(result, CONTROLS[control])


@pytest.mark.parametrize("target", sorted(FLEET))
def test_broken_site_fails_exactly_its_control(fleet, target):
    _, expected, offender = FLEET[target]
    outcomes = fleet.outcomes(target)
    assert {c: o for c, o in outcomes.items() if o != "passed"} == expected, fleet.output
    for control, outcome in expected.items():
        result = fleet.result(control, target)
        assert (result["severity"], result["outcome"]) == (CONTROLS[control], outcome)
        assert result["evidence"] and result["message"], result
        if offender:
            assert offender in result["message"] + json.dumps(result["evidence"]), result


# --- the scanners' false positives, each on a site of its own --------------------------------------

def test_oac_origin_with_empty_oai_is_compliant(fleet):
    origin = fleet.result("EA-CF-02", "ok")["evidence"]["s3_origins"]["s3-origin"]
    assert origin["origin_access_control"] and origin["origin_access_identity"] is None


def test_every_s3_domain_form_is_an_s3_origin(fleet):
    origins = fleet.result("EA-CF-02", "variants")["evidence"]["s3_origins"]
    bucket = origins["s3-origin"]["bucket"]
    assert {o: (v["endpoint"], v["bucket"]) for o, v in origins.items()} == {
        name: ("rest", bucket) for name in ("s3-origin", "s3-global", "s3-dash")}
    assert {v["domain"] for v in origins.values()} == {
        f"{bucket}.s3.eu-west-1.amazonaws.com", f"{bucket}.s3.amazonaws.com", f"{bucket}.s3-eu-west-1.amazonaws.com"}
    assert fleet.result("EA-CF-03", "variants")["evidence"]["origin_buckets"] == {o: bucket for o in origins}
    assert list(fleet.result("EA-CF-09", "variants")["evidence"]["custom_origins"]) == ["custom-https"]


def test_oai_website_and_public_origins_are_not_compliant(fleet):
    reasons = {target: fleet.result("EA-CF-02", target)["message"]
               for target in ("oai", "website-origin", "public-origin")}
    assert "origin-access-identity/cloudfront/" in reasons["oai"]
    assert "website endpoint" in reasons["website-origin"]
    assert "must be public" in reasons["public-origin"]


def test_cloudfront_grant_is_private_only_with_this_distributions_source_arn(fleet):
    ok = fleet.result("EA-S3-02", "ok")  # its policy also has the Deny * of plain HTTP: a Deny never grants
    assert ok["outcome"] == "passed" and ok["evidence"]["offenders"] == []
    [unbound] = fleet.result("EA-S3-02", "oac-unbound")["evidence"]["offenders"]
    assert "AllowAnyCloudFront" in unbound and "no AWS:SourceArn condition" in unbound
    [other] = fleet.result("EA-S3-02", "oac-other")["evidence"]["offenders"]
    assert OTHER_DISTRIBUTION in other and "not only this distribution" in other


def test_conditions_that_name_nobody_make_the_bucket_public(fleet):
    variants = fleet.result("EA-S3-02", "variants")["evidence"]
    assert variants["offenders"] == [] and variants["policy_verdict"] == "not public"  # one office /24
    [halves] = fleet.result("EA-S3-02", "ip-halves")["evidence"]["offenders"]
    assert "HalvesRead" in halves and "4,277,075,968 public IPv4 addresses, more than one /8" in halves
    [loose] = fleet.result("EA-S3-02", "open-conditions")["evidence"]["offenders"]
    assert "arn:aws:cloudfront::*:distribution/*: a wildcard" in loose
    assert "a request without aws:SourceVpce passes" in loose
    assert f"StringNotEquals aws:SourceAccount {PARTNER_ACCOUNT}: lets in every caller but the ones named" in loose


def test_public_object_acls_are_public_access(fleet):
    result = fleet.result("EA-S3-02", "public-objects")
    evidence = result["evidence"]
    read, listed = re.fullmatch(r"(\d+) of (\d+) objects", evidence["object_acls_read"]).groups()
    assert int(read) == min(20, int(listed)) and int(listed) > 0  # public_acl_sample_objects
    assert evidence["offenders"] and all(o.startswith("object ACL grant READ to http://acs.amazonaws.com/groups/"
                                                      "global/AllUsers on ") for o in evidence["offenders"])
    assert evidence["offenders"][0].endswith(" on 404.html") and "object ACL grant" in result["message"]
    assert not any(o.endswith(" on robots.txt") for o in evidence["offenders"])  # written later, private
    assert fleet.result("EA-S3-02", "ok")["evidence"]["object_acls_read"].startswith(read + " of ")


def test_access_analyzer_unavailable_is_recorded_and_the_own_analysis_decides(fleet):
    """moto has no IAM Access Analyzer: its server answers 500, and the control says so."""
    for target, outcome in (("ok", "passed"), ("ip-halves", "failed")):
        result = fleet.result("EA-S3-02", target)
        assert result["outcome"] == outcome
        verdict = result["evidence"]["access_analyzer_verdict"]
        assert verdict.startswith("not asked: accessanalyzer:CheckNoPublicAccess answered 500"), verdict
    assert fleet.result("EA-S3-02", "ip-halves")["evidence"]["policy_verdict"].startswith("bucket policy (HalvesRead)")


def test_plain_http_must_be_refused_for_every_action(fleet):
    ok = fleet.result("EA-S3-03", "ok")["evidence"]
    assert ok["covering_every_action"] == ["bucket policy (DenyInsecureTransport)"] and ok["offenders"] == []
    assert fleet.result("EA-S3-03", "variants")["evidence"]["insecure_transport_denies"] == {
        "bucket policy (DenyInsecureTransport)": ["*"]}
    partly = fleet.result("EA-S3-03", "http-partly-denied")["evidence"]
    assert partly["covering_every_action"] == []
    assert partly["offenders"] == ["the S3 actions other than s3:GetObject, s3:PutObject (deletes, listings, ...)"]


def test_noncurrent_versions_are_kept_for_the_rollback_window(fleet):
    variants = fleet.result("EA-S3-06", "variants")["evidence"]
    assert (variants["noncurrent_days"], variants["rollback_window_days"]) == ({"expire-old-versions": 30}, 30)
    early = fleet.result("EA-S3-06", "early-expiry")
    assert early["evidence"]["noncurrent_days"] == {"expire-old-versions": 1}
    assert "before the rollback window of 30 days" in early["message"]


def test_a_web_acl_that_only_counts_blocks_nothing(fleet):
    ok = fleet.result("EA-CF-05", "ok")["evidence"]
    assert ok["blocking_rules"] == ["common"] and ok["counting_rules"] == []
    counting = fleet.result("EA-CF-05", "counting-waf")
    assert counting["evidence"]["rules"] == {"common": "Count", "rate-limit": "Count"}
    assert counting["evidence"]["counting_rules"] == ["common", "rate-limit"]
    assert counting["evidence"]["default_action"] == "Allow" and "blocks nothing" in counting["message"]


def test_rule_groups_block_only_when_a_rule_still_blocks_after_the_overrides(fleet):
    """A rule group of one's own is read, a managed group with overrides described: every rule made
    to count blocks nothing; one rule left to block is enough."""
    assert fleet.result("EA-CF-05", "group-counts-waf")["evidence"]["rules"] == {"own-group": "Count"}
    assert fleet.result("EA-CF-05", "group-blocks-waf")["evidence"]["blocking_rules"] == ["own-group"]
    assert fleet.result("EA-CF-05", "managed-counts-waf")["evidence"]["counting_rules"] == ["common"]
    assert fleet.result("EA-CF-05", "managed-partly-waf")["evidence"]["blocking_rules"] == ["common"]


def test_allowed_cross_account_writer_is_accepted(fleet):
    s3_10 = fleet.result("EA-S3-10", "variants")["evidence"]
    assert s3_10["other_accounts"] and s3_10["offenders"] == []
    writers = fleet.result("EA-IAM-01", "variants")["evidence"]["writers"]
    assert any(arn.startswith(f"arn:aws:iam::{PARTNER_ACCOUNT}:") for arn in writers)


# --- evidence of the findings -----------------------------------------------------------------------

def test_iam_evidence_names_principal_and_statement(fleet):
    offenders = fleet.result("EA-IAM-01", "extra-writer")["evidence"]["offenders"]
    [(arn, via)] = offenders.items()
    assert ":user/intern-extra-writer-" in arn
    assert via == [next(v for v in via if v.startswith("group/web-extra-writer-") and "managed policy" in v)]
    wildcard = fleet.result("EA-IAM-04", "wildcard-deploy")["message"]
    assert ":role/deploy-wildcard-deploy-" in wildcard and "inline policy deploy" in wildcard


def test_cost_evidence(fleet):
    near = fleet.result("EA-COST-01", "near-budget")["evidence"]
    assert near["budget_usd"] == 13.5 and 0.8 < near["ratio"] <= 1
    assert near["month_usd"] == pytest.approx(near["month_to_date_usd"] + near["forecast_rest_of_month_usd"], abs=0.02)
    spike = fleet.result("EA-COST-02", "spike")["evidence"]
    assert (spike["day_usd"], spike["mean_of_7_days_before_usd"]) == (1.6, 0.4)
    assert spike["requests_on_day"] == 4 * spike["requests_mean_of_7_days_before"]


def test_cost_spike_judges_complete_days_only(fleet):
    """Yesterday's figure is Estimated at a morning run: the day before is the one judged."""
    today = dt.datetime.now(dt.timezone.utc).date()
    for target in ("ok", "spike"):
        evidence = fleet.result("EA-COST-02", target)["evidence"]
        assert evidence["left_out"] == {(today - dt.timedelta(days=1)).isoformat(): "Estimated"}
        assert evidence["day"] == (today - dt.timedelta(days=2)).isoformat()
        assert evidence["days_before"] == [(today - dt.timedelta(days=n)).isoformat() for n in range(3, 10)]
    stopped = fleet.result("EA-COST-02", "spend-stopped")
    assert stopped["outcome"] == "error" and "0 USD for " in stopped["message"], stopped


@pytest.fixture(scope="module")
def many_invalidations(world, tmp_path_factory) -> SharedRun:
    """A run over three sites of one account: two that invalidated 550 paths each this month
    (each within the free 1,000, not together) and a quiet one. Their batches are moved to last
    month right after, so that later runs in the account are not over."""

    def invalidate_and_run(workdir: Path) -> SharedRun:
        sites = [world.add(SiteSpec(name=name).but(invalidation_paths=(300, 250))) for name in ("busy-a", "busy-b")]
        sites.append(world.add(SiteSpec(name="quiet")))
        try:
            return _run(world, workdir, sites)
        finally:
            cloudfront = world.builder.client("cloudfront")
            last_month = dt.datetime.now(dt.timezone.utc).replace(day=1) - dt.timedelta(days=1)
            with guard.local_seeding():
                for site in sites[:2]:
                    for batch in cloudfront.list_invalidations(DistributionId=site.distribution_id)[
                            "InvalidationList"].get("Items") or []:
                        motoext.set_invalidation_status(site.distribution_id, batch["Id"], "Completed",
                                                        create_time=last_month)

    return _once(tmp_path_factory, "aws-invalidations", invalidate_and_run)


def _distribution_id(run: SharedRun, target: str) -> str:
    return run.result("EA-CACHE-05", target)["resource"].rsplit("/", 1)[1]


def test_invalidation_paths_are_counted_over_the_account(many_invalidations):
    busy = {name: many_invalidations.result("EA-CACHE-05", name) for name in ("busy-a", "busy-b", "quiet")}
    assert {name: r["outcome"] for name, r in busy.items()} == dict.fromkeys(busy, "failed")
    evidence = busy["quiet"]["evidence"]
    ids = {_distribution_id(many_invalidations, name) for name in ("busy-a", "busy-b")}
    assert {d: evidence["per_distribution"][d] for d in ids} == dict.fromkeys(ids, {"batches": 2, "paths": 550})
    assert evidence["paths"] >= 1100 and evidence["cost_so_far_usd"] >= 0.5 and evidence["distributions"] >= 3
    assert busy["quiet"]["severity"] == "P4" and all(d + " 550" in busy["quiet"]["message"] for d in ids)


def test_invalidation_evidence(fleet):
    ok = fleet.result("EA-CACHE-05", "ok")["evidence"]
    assert ok["per_distribution"][_distribution_id(fleet, "ok")] == {"batches": 2, "paths": 3}
    assert ok["wildcards"] >= 1 and ok["batches"] >= 2 * len(FLEET)
    none_running = fleet.result("EA-DEP-03", "ok")["margins"]["longest_in_progress_min"]
    assert (none_running["observed"], none_running["limit"], none_running["margin"]) == (0, 15, 15)
    stuck = fleet.result("EA-DEP-03", "stuck-invalidation")["margins"]["longest_in_progress_min"]
    assert stuck["observed"] >= 40 and stuck["margin"] < 0


def test_each_read_goes_to_aws_once_per_target(fleet):
    calls = fleet.report["run"]["api_calls_by_operation"]
    targets = len(FLEET)
    for operation in ("cloudfront:GetDistributionConfig", "s3:GetBucketPolicy", "s3:GetBucketLogging",
                      "acm:DescribeCertificate", "ce:GetCostAndUsage", "ce:GetCostForecast",
                      "cloudwatch:GetMetricData"):
        assert calls[operation] == targets, (operation, calls[operation])
    for account_wide in ("iam:GetAccountAuthorizationDetails", "iam:ListUsers", "s3:ListBuckets",
                         "budgets:DescribeBudgets"):  # one paginated read for all targets
        assert 1 <= calls[account_wide] < targets, (account_wide, calls[account_wide])


# --- account-wide breaks: a console user without MFA, the audit trail stopped -----------------------

@pytest.fixture(scope="module")
def account_breaks(world, tmp_path_factory) -> SharedRun:
    """A run over a compliant site while the account has a console user without MFA and its
    trail stopped; the account is restored right after."""

    def break_and_run(workdir: Path) -> SharedRun:
        site = world.add(SiteSpec(name="account"))
        iam, trail = world.builder.client("iam"), world.builder.client("cloudtrail")
        with guard.local_seeding():
            iam.create_user(UserName="console-without-mfa")
            iam.create_login_profile(UserName="console-without-mfa", Password="Demo-password-1!")
            trail.stop_logging(Name="org-trail")
        try:
            return _run(world, workdir, [site])
        finally:
            with guard.local_seeding():
                trail.start_logging(Name="org-trail")
                iam.delete_login_profile(UserName="console-without-mfa")
                iam.delete_user(UserName="console-without-mfa")

    return _once(tmp_path_factory, "aws-account", break_and_run)


def test_account_wide_breaks_fail_their_controls(account_breaks):
    outcomes = account_breaks.outcomes("account")
    assert {c: o for c, o in outcomes.items() if o != "passed"} == {"EA-IAM-03": "failed", "EA-IAM-05": "failed"}
    mfa = account_breaks.result("EA-IAM-03", "account")
    assert mfa["severity"] == "P2" and mfa["evidence"]["offenders"] == ["console-without-mfa"]
    trail = account_breaks.result("EA-IAM-05", "account")
    assert trail["severity"] == "P2"
    assert trail["evidence"]["multi_region_trails"]["org-trail"] == {
        "log_file_validation": True, "logging": False, "management_events": ["read", "write"]}


@pytest.fixture(scope="module")
def trail_reads_only(world, tmp_path_factory) -> SharedRun:
    """A run over a compliant site while the account's trail records read management events
    only (an advanced selector); its default selector is put back right after."""

    def narrow_and_run(workdir: Path) -> SharedRun:
        site = world.add(SiteSpec(name="trail-reads"))
        trail = world.builder.client("cloudtrail")
        with guard.local_seeding():
            trail.put_event_selectors(TrailName="org-trail", AdvancedEventSelectors=[{"Name": "reads", "FieldSelectors": [
                {"Field": "eventCategory", "Equals": ["Management"]}, {"Field": "readOnly", "Equals": ["true"]}]}])
        try:
            return _run(world, workdir, [site])
        finally:
            with guard.local_seeding():
                trail.put_event_selectors(TrailName="org-trail", EventSelectors=[
                    {"ReadWriteType": "All", "IncludeManagementEvents": True}])

    return _once(tmp_path_factory, "aws-trail-reads", narrow_and_run)


def test_trail_without_write_management_events_fails(trail_reads_only, account_breaks):
    outcomes = trail_reads_only.outcomes("trail-reads")
    assert {c: o for c, o in outcomes.items() if o != "passed"} == {"EA-IAM-05": "failed"}
    result = trail_reads_only.result("EA-IAM-05", "trail-reads")
    assert result["severity"] == "P2" and "org-trail (validation True, logging True, management events read)" \
        in result["message"], result["message"]
    assert result["evidence"]["multi_region_trails"]["org-trail"]["management_events"] == ["read"]
    passed = account_breaks.result("EA-IAM-05", "account")  # the same trail, every management event recorded
    assert passed["evidence"]["multi_region_trails"]["org-trail"]["management_events"] == ["read", "write"]


def test_data_events_judged_by_event_name(fleet):
    writes = fleet.result("EA-IAM-06", "get-only-trail")["message"]
    assert "leaves out " in writes and "PutObject" in writes and "DeleteObject" in writes, writes
    reads = fleet.result("EA-S3-07", "get-only-trail")["message"]
    assert "HeadObject" in reads and "GetObject," not in reads, reads
    recorded = fleet.result("EA-IAM-06", "advanced-trail")["evidence"]["data_event_trails"]
    assert [trail["kinds"] for trail in recorded.values()] == [["read", "write"]]


# --- AccessDenied: one action denied per service, with moto enforcing IAM ---------------------------

# service -> (the IAM action denied, the control that reads it first)
DENIED = {
    "s3": ("s3:GetBucketLogging", "EA-S3-07"),
    "cloudfront": ("cloudfront:ListInvalidations", "EA-DEP-03"),
    "acm": ("acm:DescribeCertificate", "EA-TLS-06"),
    "wafv2": ("wafv2:GetWebACL", "EA-CF-05"),
    "iam": ("iam:GetAccountAuthorizationDetails", "EA-IAM-01"),
    "cloudtrail": ("cloudtrail:GetTrailStatus", "EA-IAM-05"),
    "ce": ("ce:GetCostForecast", "EA-COST-01"),
    "budgets": ("budgets:ViewBudget", "EA-COST-03"),
    "cloudwatch": ("cloudwatch:GetMetricData", "EA-COST-02"),
}


@pytest.fixture(scope="module")
def denied(world, tmp_path_factory) -> SharedRun:
    """The suite run by an auditor allowed everything but one read action of each service."""
    from moto import settings
    from moto.core.responses import ActionAuthenticatorMixin

    def deny_and_run(workdir: Path) -> SharedRun:
        site = world.add(SiteSpec(name="denied"))
        iam = world.builder.client("iam")
        with guard.local_seeding():
            iam.create_user(UserName="auditor-denied")
            iam.put_user_policy(UserName="auditor-denied", PolicyName="audit", PolicyDocument=json.dumps({
                "Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": "*", "Resource": "*"},
                    {"Effect": "Deny", "Action": [action for action, _ in DENIED.values()], "Resource": "*"}]}))
            key = iam.create_access_key(UserName="auditor-denied")["AccessKey"]
        before = settings.INITIAL_NO_AUTH_ACTION_COUNT
        settings.INITIAL_NO_AUTH_ACTION_COUNT = ActionAuthenticatorMixin.request_count  # enforce from now on
        try:
            return _run(world, workdir, [site], env={"AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                                                     "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]})
        finally:
            settings.INITIAL_NO_AUTH_ACTION_COUNT = before

    return _once(tmp_path_factory, "aws-denied", deny_and_run)


@pytest.mark.parametrize("service", sorted(DENIED))
def test_access_denied_is_an_error_naming_the_action(denied, service):
    action, control = DENIED[service]
    result = denied.result(control, "denied")
    assert result["outcome"] == "error", result
    assert "AccessDenied" in result["message"] and action in result["message"], result["message"]


def test_a_missing_permission_never_fails_a_control(denied):
    outcomes = denied.outcomes("denied")
    assert "failed" not in outcomes.values(), outcomes
    assert outcomes["EA-S3-05"] == "passed"  # what may be read is still checked


# --- markers against the catalog ----------------------------------------------------------------------

CATALOG = Path(__file__).resolve().parents[2] / "shared" / "CONTROLS.md"
CADENCES = ("daily", "weekly", "monthly", "quarterly")
CATEGORIES = ("security", "dr", "performance", "cost", "availability", "infrastructure")


def _ids(text: str) -> set[str]:
    """Ids named in catalog prose: EA-X-01, EA-X-02/06, EA-X-01..03."""
    found = set()
    for family, first, rest in re.findall(r"(EA-[A-Z0-9]+)-(\d{2})((?:(?:/|\.\.)\d{2})*)", text):
        numbers = [int(first)] + [int(n) for n in re.findall(r"\d{2}", rest)]
        if ".." in rest:
            numbers = list(range(numbers[0], numbers[-1] + 1))
        found |= {f"{family}-{n:02d}" for n in numbers}
    return found


def catalog_markers(text: str) -> dict[str, set[str]]:
    """Control id -> the cadence and category markers CONTROLS.md gives it."""
    deploy = _ids(re.search(r"post-deployment checklist \(.*?\): (.*?)\. The `dr`", text, re.S)[1])
    markers: dict[str, set[str]] = {}
    for heading, body in re.findall(r"^## (EA-[A-Z0-9]+: .*?)\n(.*?)(?=^## |\Z)", text, re.S | re.M):
        parts = [p.strip() for p in heading[heading.index("(") + 1:heading.rindex(")")].split(";")][1:]
        rows = [[cell.strip() for cell in line.strip("|").split("|")]
                for line in body.splitlines() if line.startswith("| EA-")]
        header = next(line for line in body.splitlines() if line.startswith("| id"))
        has_cadence = "cadence" in header
        section_cadence = "" if has_cadence else (parts[0] if parts else "")
        section_categories = parts[-1] if parts and (has_cadence or len(parts) > 1) else ""
        for row in rows:
            control = row[0]
            found = set(re.findall(r"\b(daily|weekly|monthly|quarterly)\b", row[2] if has_cadence else section_cadence))
            for clause in section_categories.split(","):
                named = _ids(clause)
                if not named or control in named:
                    found |= {c for c in CATEGORIES if re.search(rf"\b{c}\b", clause)}
            for aside in re.findall(r"\((?:also )?([a-z, ]+)\)", " ".join(row[2:])):
                if all(word in CATEGORIES for word in re.split(r"[, ]+", aside.strip())):
                    found |= set(re.split(r"[, ]+", aside.strip()))
            markers[control] = found | ({"deploy"} if control in deploy else set())
    return markers


def suite_markers() -> dict[str, set[str]]:
    """Control id -> the cadence and category markers its test in suites/ carries."""
    found = {}
    for path in sorted((REPO / "suites").glob("test_*.py")):
        spec = importlib.util.spec_from_file_location(f"_catalog_check_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for function in vars(module).values():
            marks = getattr(function, "pytestmark", [])
            ids = [m.args[0] for m in marks if m.name == "control"]
            if ids:
                found[ids[0]] = {m.name for m in marks if m.name in (*CADENCES, "deploy", *CATEGORIES)}
    return found


@pytest.fixture(scope="module")
def catalog() -> dict[str, set[str]]:
    if not CATALOG.is_file():
        pytest.skip(f"no catalog at {CATALOG}")
    return catalog_markers(CATALOG.read_text())


def test_catalog_parser_reads_the_special_rows(catalog):
    assert catalog["EA-S3-05"] == {"weekly", "monthly", "security", "infrastructure", "dr"}
    assert catalog["EA-TLS-01"] == {"daily", "monthly", "security"}
    assert catalog["EA-DEP-03"] == {"daily", "deploy", "availability"}
    assert catalog["EA-SITE-02"] == {"daily", "deploy", "availability", "security"}
    assert catalog["EA-SITE-05"] == {"weekly", "availability"}
    assert catalog["EA-OPS-04"] == {"monthly", "security"}
    assert catalog["EA-MAN-03"] == {"monthly", "cost"} and catalog["EA-MAN-07"] == {"quarterly", "dr"}
    assert set(catalog) == known_ids()


@pytest.mark.parametrize("marker", ["weekly", "quarterly", "security"])
def test_marker_selects_exactly_the_catalogs_controls(catalog, marker):
    """`pytest -m <marker>` selects the controls the catalog gives that cadence or category."""
    present = suite_markers()
    selected = {control for control, marks in present.items() if marker in marks}
    expected = {control for control in present if marker in catalog.get(control, set())}
    assert selected == expected, {"extra": sorted(selected - expected), "missing": sorted(expected - selected)}


def test_these_controls_carry_exactly_the_catalogs_markers(catalog):
    present = suite_markers()
    assert {c: present.get(c) for c in CONTROLS} == {c: catalog[c] for c in CONTROLS}


# --- preflight: every declared read is tried, a refusal names the controls that need it -----------

# IAM action -> a control that needs it (none had a probe before)
PREFLIGHT_DENIED = {
    "cloudwatch:GetMetricData": "EA-COST-02", "cloudwatch:GetMetricStatistics": "EA-CACHE-04",
    "route53:ListHostedZones": "EA-PEN-09", "kms:DescribeKey": "EA-S3-04", "iam:ListUsers": "EA-IAM-03",
    "iam:ListAccessKeys": "EA-IAM-02", "cloudtrail:GetEventSelectors": "EA-IAM-06",
    "cloudfront:GetResponseHeadersPolicy": "EA-CF-08", "cloudfront:GetCachePolicy": "EA-CACHE-03",
}
PREFLIGHT_SELECTION = ("preflight or no_cost_spike or cache_hit_ratio or dangling_dns or default_encryption "
                       "or console_users or writer_keys or object_writes or security_headers_policy "
                       "or minimal_cache_key")


@pytest.fixture(scope="module")
def preflight_denied(world, tmp_path_factory) -> SharedRun:
    """EA-OPS-01 and the controls above, run by an auditor allowed everything but PREFLIGHT_DENIED."""
    from moto import settings
    from moto.core.responses import ActionAuthenticatorMixin

    def deny_and_run(workdir: Path) -> SharedRun:
        site = world.add(SiteSpec(name="preflight"))
        iam = world.builder.client("iam")
        with guard.local_seeding():
            iam.create_user(UserName="auditor-preflight")
            iam.put_user_policy(UserName="auditor-preflight", PolicyName="audit", PolicyDocument=json.dumps({
                "Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": "*", "Resource": "*"},
                    {"Effect": "Deny", "Action": sorted(PREFLIGHT_DENIED), "Resource": "*"}]}))
            key = iam.create_access_key(UserName="auditor-preflight")["AccessKey"]
        before = settings.INITIAL_NO_AUTH_ACTION_COUNT
        settings.INITIAL_NO_AUTH_ACTION_COUNT = ActionAuthenticatorMixin.request_count  # enforce from now on
        try:
            return _run(world, workdir, [site], "suites/test_ops.py", "suites/test_probes.py", "suites/test_cache.py",
                        "-k", PREFLIGHT_SELECTION,
                        env={"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]})
        finally:
            settings.INITIAL_NO_AUTH_ACTION_COUNT = before
            with guard.local_seeding():  # a user who may write every bucket would fail EA-IAM-01 of later runs
                iam.delete_access_key(UserName="auditor-preflight", AccessKeyId=key["AccessKeyId"])
                iam.delete_user_policy(UserName="auditor-preflight", PolicyName="audit")
                iam.delete_user(UserName="auditor-preflight")

    return _once(tmp_path_factory, "aws-preflight", deny_and_run)


def test_preflight_tries_every_declared_read(preflight_denied):
    result = preflight_denied.result("EA-OPS-01", "preflight")
    assert (result["outcome"], result["severity"]) == ("failed", "P2"), result
    evidence = result["evidence"]
    assert evidence["missing"] == sorted(PREFLIGHT_DENIED), evidence
    for action, control in PREFLIGHT_DENIED.items():
        assert control in evidence["missing_for"][action], (action, evidence["missing_for"])
        assert f"{action} (for " in result["message"], result["message"]
    assert {"cloudfront:ListDistributions", "iam:GetLoginProfile"} <= set(evidence["allowed"])
    assert "bucket is not encrypted with a KMS key" in evidence["not_probed"]["kms:GetKeyPolicy"]
    assert "bills every request" in evidence["not_probed"]["ce:GetCostAndUsage"]
    assert "need route53:ListHostedZones, which is denied" in evidence["not_probed"]["route53:ListResourceRecordSets"]


def test_preflight_operations_come_from_the_loaded_clients():
    """No botocore session of its own: the probes name their operations, the clients call them."""
    from edgeaudit.aws import preflight

    assert not hasattr(preflight, "operation_name")
    assert {p.action for p in preflight.probes_for(sorted(known_ids()))} >= set(PREFLIGHT_DENIED)
    assert set(preflight.unprobed(sorted(known_ids()))) == {"ce:GetCostAndUsage", "ce:GetCostForecast",
                                                             "access-analyzer:CheckNoPublicAccess"}
