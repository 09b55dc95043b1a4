"""Preflight: each read API the selected controls use, tried once with the target's credentials,
so that a missing permission shows up as one list of IAM actions before it shows up as errors
scattered over the report.

Answers other than AccessDenied (NoSuchBucketPolicy, ReplicationConfigurationNotFoundError, ...)
mean the call was allowed. The calls are the controls' own (same parameters), so the read cache
answers the controls later. Cost Explorer is not tried: AWS bills every request to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

import botocore.exceptions

from .aws import Aws, iam_action
from .errors import AccessDeniedError
from .config import Target

Params = Callable[[Target, Aws], "dict[str, Any] | None"]  # None: the resource is not there to try
WEB_ACL_ARN = re.compile(r"^arn:aws[a-z-]*:wafv2:[a-z0-9-]+:\d{12}:global/webacl/(?P<name>[^/]+)/(?P<id>[^/]+)$")


@dataclass(frozen=True)
class Probe:
    families: tuple[str, ...]   # control families (EA-<family>-NN) that make this call
    service: str
    method: str
    params: Params
    regional: bool = True       # a client in the target's region (else the service's home region)


def _bucket(target: Target, _: Aws) -> dict[str, Any]:
    return {"Bucket": target.bucket}


def _distribution(target: Target, _: Aws) -> dict[str, Any]:
    return {"Id": target.distribution_id}


def _distribution_config(target: Target, aws: Aws) -> dict[str, Any]:
    return aws.cloudfront.get_distribution_config(Id=target.distribution_id)["DistributionConfig"]


def _certificate(target: Target, aws: Aws) -> dict[str, Any] | None:
    arn = _distribution_config(target, aws).get("ViewerCertificate", {}).get("ACMCertificateArn")
    return {"CertificateArn": arn} if arn else None


def _web_acl(target: Target, aws: Aws) -> dict[str, Any] | None:
    match = WEB_ACL_ARN.match(_distribution_config(target, aws).get("WebACLId") or "")
    return {"Name": match["name"], "Id": match["id"], "Scope": "CLOUDFRONT"} if match else None


S3_FAMILIES = ("S3", "DR", "DEP", "IAM", "CF", "PEN")
PROBES: tuple[Probe, ...] = (
    Probe(S3_FAMILIES, "s3", "get_bucket_policy", _bucket),
    Probe(("S3", "IAM"), "s3", "get_bucket_acl", _bucket),
    Probe(("S3", "DR"), "s3", "get_bucket_versioning", _bucket),
    Probe(("S3", "DR"), "s3", "get_bucket_encryption", _bucket),
    Probe(("S3", "DR"), "s3", "get_public_access_block", _bucket),
    Probe(("S3", "DR"), "s3", "get_bucket_lifecycle_configuration", _bucket),
    Probe(("S3", "DR"), "s3", "get_bucket_ownership_controls", _bucket),
    Probe(("S3",), "s3", "get_bucket_logging", _bucket),
    Probe(("S3",), "s3", "get_bucket_website", _bucket),
    Probe(("DR", "DEP"), "s3", "list_objects_v2", lambda t, _: {"Bucket": t.bucket, "MaxKeys": 1}),
    Probe(("DR",), "s3", "list_object_versions", lambda t, _: {"Bucket": t.bucket, "MaxKeys": 1}),
    Probe(("DR",), "s3", "get_bucket_replication", _bucket),
    Probe(("DR",), "cloudformation", "list_stack_resources",
          lambda t, _: {"StackName": t.stack_name} if t.stack_name else None),
    Probe(("DR", "DEP"), "s3", "head_object", lambda t, a: {"Bucket": t.bucket, "Key": "index.html"}),
    Probe(("CF", "DEP", "CACHE", "TLS", "DR", "COST"), "cloudfront", "get_distribution_config", _distribution),
    Probe(("DEP", "CACHE"), "cloudfront", "list_invalidations", lambda t, _: {"DistributionId": t.distribution_id}),
    Probe(("TLS",), "acm", "describe_certificate", lambda t, a: _certificate(t, a), regional=False),
    Probe(("CF",), "wafv2", "get_web_acl", lambda t, a: _web_acl(t, a), regional=False),
    Probe(("IAM",), "iam", "get_account_authorization_details", lambda t, _: {"MaxItems": 1}),
    Probe(("IAM", "S3"), "cloudtrail", "describe_trails", lambda t, _: {}),
    Probe(("COST",), "budgets", "describe_budgets", lambda t, a: {"AccountId": a.account_id, "MaxResults": 1}),
)
HOME_REGION = {"acm": "us-east-1", "wafv2": "us-east-1"}  # CloudFront's certificates and web ACLs


def families_of(control_ids: list[str]) -> set[str]:
    return {c.split("-")[1] for c in control_ids if c.count("-") == 2}


def probes_for(control_ids: list[str]) -> list[Probe]:
    wanted = families_of(control_ids)
    return [p for p in PROBES if wanted & set(p.families)]


def try_all(aws: Aws, target: Target, probes: list[Probe]) -> tuple[list[str], list[str]]:
    """(allowed actions, missing actions): each probe's call made once."""
    allowed, missing = [], []
    for probe in probes:
        client = aws.client(probe.service, None if probe.regional else HOME_REGION.get(probe.service))
        operation = client.raw.meta.method_to_api_mapping[probe.method]
        action = iam_action(probe.service, operation)
        try:
            params = probe.params(target, aws)
            if params is None:
                continue
            getattr(client, probe.method)(**params)
        except AccessDeniedError as exc:
            missing.append(exc.action)
            continue
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403:  # HEAD: no error code
                missing.append(action)
                continue
            # any other answer: the action is allowed (the resource may simply not exist)
        allowed.append(action)
    return sorted(set(allowed)), sorted(set(missing))
