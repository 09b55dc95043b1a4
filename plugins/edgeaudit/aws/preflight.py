"""Preflight: each read API the selected controls use, tried once with the target's credentials,
so that a missing permission shows up as one list of IAM actions before it shows up as errors
scattered over the report.

The probes tried are those whose IAM action a selected control needs: each control declares
the reads it makes (`reads=` on its control marker) and the probe stands for every read that
needs the same action (HeadObject tries s3:GetObject for the controls that read objects).

Answers other than AccessDenied (NoSuchBucketPolicy, ReplicationConfigurationNotFoundError, ...)
mean the call was allowed. The calls are the controls' own (same parameters), so the read cache
answers the controls later. Cost Explorer is not tried: AWS bills every request to it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Callable

import botocore.exceptions
import botocore.session
from botocore import xform_name

from edgeaudit.aws.clients import Aws, iam_action
from edgeaudit.errors import AccessDeniedError
from edgeaudit.rules.catalog import reads_of
from edgeaudit.rules.config import Target

Params = Callable[[Target, Aws], "dict[str, Any] | None"]  # None: the resource is not there to try
WEB_ACL_ARN = re.compile(r"^arn:aws[a-z-]*:wafv2:[a-z0-9-]+:\d{12}:global/webacl/(?P<name>[^/]+)/(?P<id>[^/]+)$")


@functools.cache
def operation_name(service: str, method: str) -> str:
    """botocore's operation name of a client method: ('wafv2', 'get_web_acl') -> GetWebACL."""
    model = botocore.session.get_session().get_service_model(service)
    return next(name for name in model.operation_names if xform_name(name) == method)


@dataclass(frozen=True)
class Probe:
    service: str
    method: str
    params: Params
    regional: bool = True       # a client in the target's region (else the service's home region)

    @property
    def action(self) -> str:
        """The IAM action this call needs."""
        return iam_action(self.service, operation_name(self.service, self.method))


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


PROBES: tuple[Probe, ...] = (
    Probe("s3", "get_bucket_policy", _bucket),
    Probe("s3", "get_bucket_acl", _bucket),
    Probe("s3", "get_bucket_versioning", _bucket),
    Probe("s3", "get_bucket_encryption", _bucket),
    Probe("s3", "get_public_access_block", _bucket),
    Probe("s3", "get_bucket_lifecycle_configuration", _bucket),
    Probe("s3", "get_bucket_ownership_controls", _bucket),
    Probe("s3", "get_bucket_logging", _bucket),
    Probe("s3", "get_bucket_website", _bucket),
    Probe("s3", "list_objects_v2", lambda t, _: {"Bucket": t.bucket, "MaxKeys": 1}),
    Probe("s3", "list_object_versions", lambda t, _: {"Bucket": t.bucket, "MaxKeys": 1}),
    Probe("s3", "get_bucket_replication", _bucket),
    Probe("cloudformation", "list_stack_resources", lambda t, _: {"StackName": t.stack_name} if t.stack_name else None),
    Probe("s3", "head_object", lambda t, a: {"Bucket": t.bucket, "Key": "index.html"}),
    Probe("cloudfront", "get_distribution_config", _distribution),
    Probe("cloudfront", "list_invalidations", lambda t, _: {"DistributionId": t.distribution_id}),
    Probe("acm", "describe_certificate", lambda t, a: _certificate(t, a), regional=False),
    Probe("wafv2", "get_web_acl", lambda t, a: _web_acl(t, a), regional=False),
    Probe("iam", "get_account_authorization_details", lambda t, _: {"MaxItems": 1}),
    Probe("cloudtrail", "describe_trails", lambda t, _: {}),
    Probe("budgets", "describe_budgets", lambda t, a: {"AccountId": a.account_id, "MaxResults": 1}),
)
HOME_REGION = {"acm": "us-east-1", "wafv2": "us-east-1"}  # CloudFront's certificates and web ACLs


def actions_of(control_ids: list[str]) -> set[str]:
    """The IAM actions of the reads the given controls declare."""
    return {iam_action(*read.split(":", 1)) for read in reads_of(control_ids)}


def probes_for(control_ids: list[str]) -> list[Probe]:
    """One probe per IAM action the controls need that a probe can try."""
    wanted = actions_of(control_ids)
    return [p for p in PROBES if p.action in wanted]


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
