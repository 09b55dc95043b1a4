"""Preflight: each IAM action the selected controls' reads need, tried once with the target's
credentials, so that a missing permission shows up as one list of IAM actions (and the controls
that need each) before it shows up as errors scattered over the report.

Every read a selected control declares (`reads=` on its control marker) has a probe here: one
call that needs the same IAM action, with the controls' own parameters where it can (the read
cache then answers the controls later). Reads that share an action share one call. A probe that
needs a resource the target lacks (no stack, no trail, no KMS key, no hosted zone, no health
check, ...) is reported as not probed, with the reason. Cost Explorer and Access Analyzer's policy checks are not tried:
AWS bills every request to them.

Answers other than AccessDenied (NoSuchBucketPolicy, ReplicationConfigurationNotFoundError, ...)
mean the call was allowed.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Callable

import botocore.exceptions
import botocore.session
from botocore import xform_name

from edgeaudit.aws.clients import Aws, iam_action
from edgeaudit.errors import AccessDeniedError, NotEvaluated
from edgeaudit.rules.catalog import controls as declared_controls
from edgeaudit.rules.catalog import reads_of
from edgeaudit.rules.config import Target

# The call's parameters, or why it cannot be made for this target.
Params = Callable[[Target, Aws], "dict[str, Any] | str"]
RULE_GROUP_ARN = re.compile(r"^arn:aws[a-z-]*:wafv2:[a-z0-9-]+:\d{12}:global/rulegroup/(?P<name>[^/]+)/(?P<id>[^/]+)$")
WEB_ACL_ARN = re.compile(r"^arn:aws[a-z-]*:wafv2:[a-z0-9-]+:\d{12}:global/webacl/(?P<name>[^/]+)/(?P<id>[^/]+)$")
HOME_REGION = {"acm": "us-east-1", "wafv2": "us-east-1", "cloudwatch": "us-east-1", "budgets": "us-east-1"}
UNPROBED = {"ce": "Cost Explorer bills every request (0.01 USD each): not tried; its controls report a refusal",
            "accessanalyzer": "Access Analyzer bills every policy check: not tried; EA-S3-02 asks it once and "
                              "reports a refusal as 'not asked'"}
MANAGED_POLICY = "arn:aws:iam::aws:policy/ReadOnlyAccess"  # in every account
PROBE_USER = "edgeaudit-preflight-probe"


@dataclass(frozen=True)
class Probe:
    read: str                   # "service:Operation", as controls declare it
    params: Params
    call: str | None = None     # another operation of the same IAM action (HeadObject for GetObject)
    paginate: bool = False
    region: Callable[[Target, Aws], str | None] | None = None  # else the service's home or target region

    @property
    def service(self) -> str:
        return self.read.split(":", 1)[0]

    @property
    def operation(self) -> str:
        """The operation called."""
        return self.call or self.read.split(":", 1)[1]

    @property
    def method(self) -> str:
        return xform_name(self.operation)

    @property
    def action(self) -> str:
        """The IAM action this call needs."""
        return iam_action(*self.read.split(":", 1))


def _bucket(target: Target, _: Aws) -> dict[str, Any]:
    return {"Bucket": target.bucket}


def _distribution(target: Target, _: Aws) -> dict[str, Any]:
    return {"Id": target.distribution_id}


def _distribution_config(target: Target, aws: Aws) -> dict[str, Any]:
    return aws.cloudfront.get_distribution_config(Id=target.distribution_id)["DistributionConfig"]


def _certificate(target: Target, aws: Aws) -> dict[str, Any] | str:
    arn = _distribution_config(target, aws).get("ViewerCertificate", {}).get("ACMCertificateArn")
    return {"CertificateArn": arn} if arn else "the distribution has no ACM certificate"


def _function(target: Target, aws: Aws) -> dict[str, Any] | str:
    """The first CloudFront Function a behaviour of the distribution runs."""
    config = _distribution_config(target, aws)
    behaviours = [config["DefaultCacheBehavior"], *(config.get("CacheBehaviors") or {}).get("Items", [])]
    for behaviour in behaviours:
        for association in (behaviour.get("FunctionAssociations") or {}).get("Items", []):
            return {"Name": association["FunctionARN"].rsplit("/", 1)[-1], "Stage": "LIVE"}
    return "the distribution runs no CloudFront Function"


def _web_acl(target: Target, aws: Aws) -> dict[str, Any] | str:
    match = WEB_ACL_ARN.match(_distribution_config(target, aws).get("WebACLId") or "")
    return {"Name": match["name"], "Id": match["id"], "Scope": "CLOUDFRONT"} if match else "no WAF web ACL"


def _rule_group(target: Target, aws: Aws) -> dict[str, Any] | str:
    """The first rule group of the site's own that its web ACL references."""
    acl = _web_acl(target, aws)
    if isinstance(acl, str):
        return acl
    rules = aws.client("wafv2", "us-east-1").get_web_acl(**acl)["WebACL"].get("Rules") or []
    arns = [rule["Statement"]["RuleGroupReferenceStatement"]["ARN"] for rule in rules
            if "RuleGroupReferenceStatement" in (rule.get("Statement") or {})]
    found = [RULE_GROUP_ARN.match(arn) for arn in arns]
    return ({"Name": found[0]["name"], "Id": found[0]["id"], "Scope": "CLOUDFRONT"} if found and found[0]
            else "the web ACL references no rule group of the account's own")


def _behaviour_policy(field: str) -> Params:
    def params(target: Target, aws: Aws) -> dict[str, Any] | str:
        config = _distribution_config(target, aws)
        behaviours = [config.get("DefaultCacheBehavior", {}), *(config.get("CacheBehaviors", {}).get("Items") or [])]
        ids = [b[field] for b in behaviours if b.get(field)]
        return {"Id": ids[0]} if ids else f"no cache behaviour of the distribution has a {field}"
    return params


def _invalidation(target: Target, aws: Aws) -> dict[str, Any] | str:
    pages = aws.cloudfront.paginate("list_invalidations", DistributionId=target.distribution_id)
    ids = [i["Id"] for page in pages for i in page["InvalidationList"].get("Items") or []]
    return {"DistributionId": target.distribution_id, "Id": ids[0]} if ids else "the distribution has no invalidation"


def _trail_region(target: Target, _: Aws) -> str:
    return target.region or "us-east-1"


def _first_trail(target: Target, aws: Aws) -> dict[str, Any] | None:
    found = aws.client("cloudtrail", _trail_region(target, aws)).describe_trails(includeShadowTrails=True)["trailList"]
    return found[0] if found else None


def _trail(key: str) -> Params:
    def params(target: Target, aws: Aws) -> dict[str, Any] | str:
        trail = _first_trail(target, aws)
        return {key: trail["TrailARN"]} if trail else "no CloudTrail trail covers the region"
    return params


def _trail_home(target: Target, aws: Aws) -> str | None:
    trail = _first_trail(target, aws)
    return trail["HomeRegion"] if trail else None


def _user(target: Target, aws: Aws) -> dict[str, Any]:
    """A user name no account holds: IAM authorizes before it looks the user up (NoSuchEntity:
    allowed), so the probe needs neither a user nor iam:ListUsers."""
    return {"UserName": PROBE_USER}


def _kms_key(target: Target, aws: Aws) -> str | None:
    try:
        rules = aws.s3.get_bucket_encryption(Bucket=target.bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except botocore.exceptions.ClientError:
        return None
    keys = [r["ApplyServerSideEncryptionByDefault"].get("KMSMasterKeyID") for r in rules
            if "ApplyServerSideEncryptionByDefault" in r]
    return keys[0] if keys and keys[0] else None


def _key_region(target: Target, aws: Aws) -> str | None:
    key = _kms_key(target, aws) or ""
    return key.split(":")[3] if key.startswith("arn:") else target.region


def _key_policy(target: Target, aws: Aws) -> dict[str, Any] | str:
    key = _kms_key(target, aws)
    if not key:
        return "the bucket is not encrypted with a KMS key of its own"
    if not key.startswith("arn:") or ":alias/" in key:
        key = aws.client("kms", _key_region(target, aws)).describe_key(KeyId=key)["KeyMetadata"]["Arn"]
    return {"KeyId": key, "PolicyName": "default"}


def _stack(target: Target, _: Aws) -> dict[str, Any] | str:
    return {"StackName": target.stack_name} if target.stack_name else "the target has no stack_name"


def _drift_detection(target: Target, aws: Aws) -> dict[str, Any] | str:
    stack = _stack(target, aws)
    if isinstance(stack, str):
        return stack
    return {"StackDriftDetectionId": aws.cloudformation.detect_stack_drift(**stack)["StackDriftDetectionId"]}


def _hosted_zone(target: Target, aws: Aws) -> dict[str, Any] | str:
    zones = [z["Id"] for page in aws.route53.paginate("list_hosted_zones") for z in page["HostedZones"]]
    return {"HostedZoneId": zones[0], "MaxItems": "1"} if zones else "the account has no hosted zone"


def _health_check(target: Target, _: Aws) -> dict[str, Any] | str:
    """The target's own health check: EA-MET-02 reads it only for a target that names one."""
    return {"HealthCheckId": target.health_check_id} if target.health_check_id else "the target names no health_check_id"


def _requests_metric(target: Target) -> dict[str, Any]:
    return {"Namespace": "AWS/CloudFront", "MetricName": "Requests",
            "Dimensions": [{"Name": "DistributionId", "Value": target.distribution_id},
                           {"Name": "Region", "Value": "Global"}]}


def _metric_data(target: Target, _: Aws) -> dict[str, Any]:
    end = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    return {"MetricDataQueries": [{"Id": "requests", "MetricStat": {
        "Metric": _requests_metric(target), "Period": 3600, "Stat": "Sum"}}],
        "StartTime": end - dt.timedelta(hours=1), "EndTime": end}


def _metric_statistics(target: Target, _: Aws) -> dict[str, Any]:
    end = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    return {**_requests_metric(target), "StartTime": end - dt.timedelta(hours=1), "EndTime": end,
            "Period": 3600, "Statistics": ["Sum"]}


_BUCKET_READS = ("GetBucketPolicy", "GetBucketAcl", "GetBucketVersioning", "GetBucketEncryption",
                 "GetPublicAccessBlock", "GetBucketLifecycleConfiguration", "GetBucketOwnershipControls",
                 "GetBucketLogging", "GetBucketWebsite", "GetBucketReplication", "HeadBucket")
PROBES: tuple[Probe, ...] = (
    Probe("sts:GetCallerIdentity", lambda t, _: {}),
    *(Probe(f"s3:{operation}", _bucket) for operation in _BUCKET_READS),
    Probe("s3:ListObjectsV2", lambda t, _: {"Bucket": t.bucket, "MaxKeys": 1}),
    Probe("s3:ListObjectVersions", lambda t, _: {"Bucket": t.bucket, "MaxKeys": 1}),
    Probe("s3:GetObject", lambda t, _: {"Bucket": t.bucket, "Key": "index.html"}, call="HeadObject"),
    Probe("s3:ListBuckets", lambda t, _: {}, paginate=True),
    Probe("s3control:GetPublicAccessBlock", lambda t, a: {"AccountId": a.account_id}),
    Probe("cloudformation:ListStackResources", _stack),
    Probe("cloudformation:DetectStackDrift", _stack),
    Probe("cloudformation:DescribeStackDriftDetectionStatus", _drift_detection),
    Probe("cloudformation:DescribeStackResourceDrifts", _stack),
    Probe("cloudfront:GetDistributionConfig", _distribution),
    Probe("cloudfront:GetDistribution", _distribution),
    Probe("cloudfront:ListDistributions", lambda t, _: {}, paginate=True),
    Probe("cloudfront:ListInvalidations", lambda t, _: {"DistributionId": t.distribution_id}, paginate=True),
    Probe("cloudfront:GetInvalidation", _invalidation),
    Probe("cloudfront:GetCachePolicy", _behaviour_policy("CachePolicyId")),
    Probe("cloudfront:GetResponseHeadersPolicy", _behaviour_policy("ResponseHeadersPolicyId")),
    Probe("cloudfront:GetFunction", _function),
    Probe("acm:DescribeCertificate", _certificate),
    Probe("wafv2:GetWebACL", _web_acl),
    Probe("wafv2:GetRuleGroup", _rule_group),
    Probe("wafv2:DescribeManagedRuleGroup",  # a group every account may describe
          lambda t, _: {"VendorName": "AWS", "Name": "AWSManagedRulesCommonRuleSet", "Scope": "CLOUDFRONT"}),
    Probe("iam:GetAccountAuthorizationDetails", lambda t, _: {"MaxItems": 1}),
    Probe("iam:GetAccountSummary", lambda t, _: {}),
    Probe("iam:ListAccountAliases", lambda t, _: {}),
    # asks IAM to refresh its credential report (a read by IAM's access level); the report's read
    # answers ReportNotPresent when there is none yet, which is an allowed call too
    Probe("iam:GenerateCredentialReport", lambda t, _: {}),
    Probe("iam:GetCredentialReport", lambda t, _: {}),
    Probe("s3:GetObjectAcl", lambda t, _: {"Bucket": t.bucket, "Key": "index.html"}),
    Probe("iam:ListUsers", lambda t, _: {}, paginate=True),
    Probe("iam:GetLoginProfile", _user),
    Probe("iam:ListAccessKeys", _user, paginate=True),
    Probe("iam:ListMFADevices", _user, paginate=True),
    Probe("iam:GetPolicy", lambda t, _: {"PolicyArn": MANAGED_POLICY}),
    Probe("iam:GetPolicyVersion", lambda t, _: {"PolicyArn": MANAGED_POLICY, "VersionId": "v1"}),
    Probe("kms:DescribeKey", lambda t, a: {"KeyId": _kms_key(t, a) or "alias/aws/s3"}, region=_key_region),
    Probe("kms:GetKeyPolicy", _key_policy, region=_key_region),
    Probe("cloudtrail:DescribeTrails", lambda t, _: {"includeShadowTrails": True}, region=_trail_region),
    Probe("cloudtrail:GetTrailStatus", _trail("Name"), region=_trail_home),
    Probe("cloudtrail:GetEventSelectors", _trail("TrailName"), region=_trail_home),
    Probe("cloudwatch:GetMetricData", _metric_data),
    Probe("cloudwatch:GetMetricStatistics", _metric_statistics),
    Probe("route53:ListHostedZones", lambda t, _: {}, paginate=True),
    Probe("route53:ListResourceRecordSets", _hosted_zone),
    Probe("route53:GetHealthCheck", _health_check),
    Probe("budgets:DescribeBudgets", lambda t, a: {"AccountId": a.account_id, "MaxResults": 1}),
)
_BY_READ = {probe.read: probe for probe in PROBES}


def actions_of(control_ids: list[str]) -> set[str]:
    """The IAM actions of the reads the given controls declare."""
    return {iam_action(*read.split(":", 1)) for read in reads_of(control_ids)}


def needed_by(control_ids: list[str]) -> dict[str, list[str]]:
    """IAM action -> the given controls whose reads need it."""
    declared = declared_controls()
    needs: dict[str, set[str]] = {}
    for control in control_ids:
        for read in declared[control].reads if control in declared else ():
            needs.setdefault(iam_action(*read.split(":", 1)), set()).add(control)
    return {action: sorted(ids) for action, ids in sorted(needs.items())}


def probes_for(control_ids: list[str]) -> list[Probe]:
    """One probe per IAM action the controls' declared reads need (reads of one action share it)."""
    chosen: dict[str, Probe] = {}
    for read in sorted(reads_of(control_ids)):
        probe = _BY_READ.get(read)
        if probe is not None:
            chosen.setdefault(probe.action, probe)
    return list(chosen.values())


def unprobed(control_ids: list[str]) -> dict[str, str]:
    """IAM action -> why no probe tries it (no call can be made without a cost)."""
    tried = {probe.action for probe in probes_for(control_ids)}
    return {iam_action(*read.split(":", 1)): UNPROBED.get(read.split(":", 1)[0], "no probe for " + read)
            for read in sorted(reads_of(control_ids)) if iam_action(*read.split(":", 1)) not in tried}


def _region(probe: Probe, target: Target, aws: Aws) -> str | None:
    return probe.region(target, aws) if probe.region else HOME_REGION.get(probe.service)


def _parameters(probe: Probe, target: Target, aws: Aws) -> tuple[dict[str, Any] | None, str | None]:
    """(the call's parameters, None) or (None, why it cannot be made)."""
    try:
        params = probe.params(target, aws)
    except AccessDeniedError as exc:
        return None, f"its parameters need {exc.action}, which is denied"
    except (NotEvaluated, botocore.exceptions.ClientError) as exc:
        return None, f"its parameters could not be read: {exc}"
    return (None, params) if isinstance(params, str) else (params, None)


def try_all(aws: Aws, target: Target, probes: list[Probe]) -> tuple[list[str], list[str], dict[str, str]]:
    """(allowed actions, missing actions, {action not probed: why}): each probe's call made once.
    Any failure other than a refusal (throttling, timeouts) is NotEvaluated, raised."""
    allowed, missing, not_probed = [], [], {}
    for probe in probes:
        params, why = _parameters(probe, target, aws)
        if params is None:
            not_probed[probe.action] = why or ""
            continue
        client = aws.client(probe.service, _region(probe, target, aws))
        try:
            if probe.paginate:
                client.paginate(probe.method, **params)
            else:
                getattr(client, probe.method)(**params)
        except AccessDeniedError:
            missing.append(probe.action)
            continue
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403:  # HEAD: no error code
                missing.append(probe.action)
                continue
            # any other answer: the action is allowed (the resource may simply not exist)
        allowed.append(probe.action)
    return sorted(set(allowed)), sorted(set(missing)), not_probed


def credentials_problem(targets: tuple[Target, ...] | list[Target]) -> str | None:
    """Why the run has no usable AWS credentials for a target's profile, if it has none: said
    once, before any control runs, rather than as an error in every control that reads AWS.
    Only finds out whether credentials are there; whether they work is EA-OPS-01's question."""
    for profile in sorted({t.profile or "" for t in targets}):
        try:
            found = botocore.session.Session(profile=profile or None).get_credentials()
        except botocore.exceptions.BotoCoreError as exc:
            return f"the AWS credentials{f' of profile {profile}' if profile else ''} cannot be loaded ({exc})"
        if found is None:
            where = f"for the profile {profile!r} the config names" if profile else "in the environment"
            return f"no AWS credentials found {where}"
    return None
