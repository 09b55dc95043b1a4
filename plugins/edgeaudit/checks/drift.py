"""Rebuild readiness without CloudFormation: the live configuration of a site as one document,
written by `edgeaudit snapshot` to `baselines/<target>.json`, and the fields where the live
configuration has drifted from it.

The document holds what a rebuild needs: the distribution's configuration (behaviours, origins
and origin groups, aliases, viewer certificate, WAF association, logging), the contents of the
response headers, cache and origin request policies and origin access controls it references,
its ACM certificate and WAF web ACL, the code of its CloudFront Functions (by SHA-256), and the
bucket's policy, versioning, encryption, lifecycle, replication, logging, public access block
and ownership. Keys are sorted, and only the fields of VOLATILE are left out, so that a
baseline changes only when the configuration does.

A CloudFormation stack that holds the bucket and the distribution detects drift of their own
properties only: the parts of OUTSIDE_STACK are separate resources, and unless the stack holds
them too they are compared with the baseline.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

from botocore.exceptions import ClientError

from edgeaudit.aws.clients import Aws
from edgeaudit.aws.preflight import WEB_ACL_ARN
from edgeaudit.rules.config import Target

# The only fields the comparison ignores: each changes without a configuration change.
VOLATILE = frozenset({
    "ETag", "LockToken",                          # version tags of a read
    "ResponseMetadata",                           # request ids and HTTP headers of a read
    "CallerReference",                            # a create request's idempotency token
    "LastModifiedTime",                           # timestamps of the last change
    "CreatedAt", "IssuedAt", "ImportedAt", "NotBefore", "NotAfter", "Serial",  # a certificate's renewal
    "RenewalSummary",                             # the in-progress state of a certificate's renewal
    "InProgressInvalidationBatches",              # in-progress invalidations
})
# The parts of the document that are resources of their own (a stack holding the bucket and the
# distribution does not hold them), by path, with the CloudFormation type that would hold them.
OUTSIDE_STACK = {
    ("bucket", "policy"): "AWS::S3::BucketPolicy",
    ("policies", "response_headers"): "AWS::CloudFront::ResponseHeadersPolicy",
    ("policies", "cache"): "AWS::CloudFront::CachePolicy",
    ("policies", "origin_request"): "AWS::CloudFront::OriginRequestPolicy",
    ("policies", "origin_access_controls"): "AWS::CloudFront::OriginAccessControl",
    ("functions",): "AWS::CloudFront::Function",
    ("web_acl",): "AWS::WAFv2::WebACL",
    ("certificate",): "AWS::CertificateManager::Certificate",
}
# answers that mean "not configured", recorded as null
ABSENT = frozenset({"NoSuchBucketPolicy", "ServerSideEncryptionConfigurationNotFoundError",
                    "NoSuchLifecycleConfiguration", "ReplicationConfigurationNotFoundError",
                    "NoSuchPublicAccessBlockConfiguration", "OwnershipControlsNotFoundError"})


def _read(call: Callable[[], dict[str, Any]], key: str) -> Any:
    try:
        return call().get(key)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ABSENT:
            return None
        raise


def normalise(value: Any) -> Any:
    """Sorted keys, volatile fields dropped, JSON policy text parsed, dates as text."""
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in sorted(value.items()) if k not in VOLATILE}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, str) and value.startswith("{"):
        try:
            return normalise(json.loads(value))
        except json.JSONDecodeError:
            return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def live_config(aws: Aws, target: Target) -> dict[str, Any]:
    """The site's declared-by-hand configuration, as `edgeaudit snapshot` records it."""
    s3, bucket = aws.s3, target.bucket
    distribution = aws.cloudfront.get_distribution_config(Id=target.distribution_id)["DistributionConfig"]
    return normalise({
        "distribution": distribution,
        "policies": _policies(aws, distribution),
        "certificate": _certificate(aws, distribution),
        "web_acl": _web_acl(aws, distribution),
        **({"functions": functions} if (functions := _functions(aws, distribution)) else {}),
        "bucket": {
            "policy": _read(lambda: s3.get_bucket_policy(Bucket=bucket), "Policy"),
            "versioning": {k: v for k, v in s3.get_bucket_versioning(Bucket=bucket).items() if k != "ResponseMetadata"},
            "encryption": _read(lambda: s3.get_bucket_encryption(Bucket=bucket), "ServerSideEncryptionConfiguration"),
            "lifecycle": _read(lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket), "Rules"),
            "replication": _read(lambda: s3.get_bucket_replication(Bucket=bucket), "ReplicationConfiguration"),
            "logging": s3.get_bucket_logging(Bucket=bucket).get("LoggingEnabled"),
            "public_access_block": _read(lambda: s3.get_public_access_block(Bucket=bucket),
                                         "PublicAccessBlockConfiguration"),
            "ownership": _read(lambda: s3.get_bucket_ownership_controls(Bucket=bucket), "OwnershipControls"),
        },
    })


def _policies(aws: Aws, distribution: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The contents of every policy and origin access control the distribution references, by id:
    a rebuild recreates them, and a change to one changes what viewers get."""
    cloudfront = aws.cloudfront
    behaviours = [distribution.get("DefaultCacheBehavior") or {},
                  *((distribution.get("CacheBehaviors") or {}).get("Items") or [])]
    ids = {field: sorted({b[field] for b in behaviours if b.get(field)})
           for field in ("ResponseHeadersPolicyId", "CachePolicyId", "OriginRequestPolicyId")}
    controls = sorted({o["OriginAccessControlId"] for o in (distribution.get("Origins") or {}).get("Items") or []
                       if o.get("OriginAccessControlId")})
    return {
        "response_headers": {i: cloudfront.get_response_headers_policy(Id=i)["ResponseHeadersPolicy"]
                             ["ResponseHeadersPolicyConfig"] for i in ids["ResponseHeadersPolicyId"]},
        "cache": {i: cloudfront.get_cache_policy(Id=i)["CachePolicy"]["CachePolicyConfig"]
                  for i in ids["CachePolicyId"]},
        "origin_request": {i: cloudfront.get_origin_request_policy(Id=i)["OriginRequestPolicy"]
                           ["OriginRequestPolicyConfig"] for i in ids["OriginRequestPolicyId"]},
        "origin_access_controls": {i: cloudfront.get_origin_access_control(Id=i)["OriginAccessControl"]
                                   ["OriginAccessControlConfig"] for i in controls},
    }


def _functions(aws: Aws, distribution: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every CloudFront Function the behaviours run, by name: its live code's SHA-256 (the code
    changes what viewers get without a change to the distribution)."""
    behaviours = [distribution.get("DefaultCacheBehavior") or {},
                  *((distribution.get("CacheBehaviors") or {}).get("Items") or [])]
    names = sorted({a["FunctionARN"].rsplit("/", 1)[-1] for b in behaviours
                    for a in (b.get("FunctionAssociations") or {}).get("Items") or [] if a.get("FunctionARN")})
    found = {}
    for name in names:
        code = aws.cloudfront.get_function(Name=name, Stage="LIVE")["FunctionCode"]
        code = code.read() if hasattr(code, "read") else code  # a stream
        found[name] = {"code_sha256": hashlib.sha256(code).hexdigest()}
    return found


def _certificate(aws: Aws, distribution: dict[str, Any]) -> dict[str, Any] | None:
    """The viewer certificate's ACM record (names, type, key, validation); None for CloudFront's own."""
    arn = (distribution.get("ViewerCertificate") or {}).get("ACMCertificateArn")
    return aws.client("acm", "us-east-1").describe_certificate(CertificateArn=arn)["Certificate"] if arn else None


def _web_acl(aws: Aws, distribution: dict[str, Any]) -> dict[str, Any] | None:
    """The associated WAFv2 web ACL's rules and default action; None when none is associated."""
    match = WEB_ACL_ARN.match(distribution.get("WebACLId") or "")
    if not match:
        return None
    waf = aws.client("wafv2", "us-east-1")
    return waf.get_web_acl(Name=match["name"], Id=match["id"], Scope="CLOUDFRONT")["WebACL"]


def baseline_path(base: Path, target: Target) -> Path:
    """The target's `baseline` when it names one, else baselines/<target>.json under `base`."""
    return Path(target.baseline) if target.baseline else base / "baselines" / f"{target.name}.json"


def outside_stack(config: dict[str, Any], held: dict[str, set[str]]) -> dict[str, Any]:
    """The parts of a snapshot that a stack's drift detection does not cover, by dotted path.
    `held` gives the physical ids of the stack's resources by type: an entry of a part kept by
    id (policies, functions) is left out when the stack holds that id, a whole part when the
    stack holds a resource of its type."""
    parts: dict[str, Any] = {}
    for path, kind in OUTSIDE_STACK.items():
        value: Any = config
        for step in path:
            value = value.get(step) if isinstance(value, dict) else None
        ids = held.get(kind, set())
        if path[0] in ("policies", "functions"):
            value = {k: v for k, v in (value or {}).items() if not any(i == k or i.endswith(f"/{k}") for i in ids)}
        elif ids:
            continue
        parts[".".join(path)] = value
    return parts


def write_baseline(path: Path, config: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def differences(baseline: Any, live: Any, path: str = "") -> list[str]:
    """Dotted paths where live differs from baseline: 'distribution.PriceClass: PriceClass_100 -> PriceClass_All'."""
    if isinstance(baseline, dict) and isinstance(live, dict):
        found = []
        for key in sorted(set(baseline) | set(live)):
            where = f"{path}.{key}" if path else key
            if key not in live:
                found.append(f"{where}: removed")
            elif key not in baseline:
                found.append(f"{where}: added")
            else:
                found += differences(baseline[key], live[key], where)
        return found
    if isinstance(baseline, list) and isinstance(live, list) and len(baseline) == len(live):
        return [d for i, (b, v) in enumerate(zip(baseline, live)) for d in differences(b, v, f"{path}[{i}]")]
    if baseline != live:
        return [f"{path}: {json.dumps(baseline)[:80]} -> {json.dumps(live)[:80]}"]
    return []
