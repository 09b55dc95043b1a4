"""Rebuild readiness without CloudFormation: the live configuration of a site (distribution and
bucket settings) as one document, written by `edgeaudit snapshot` to `baselines/<target>.json`,
and the fields where the live configuration has drifted from it.

Volatile fields (ETags, timestamps, statuses, caller references) are left out and keys sorted,
so that a baseline changes only when the configuration does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from botocore.exceptions import ClientError

from .aws import Aws
from .config import Target

VOLATILE = frozenset({"ETag", "LastModifiedTime", "Status", "CallerReference", "ResponseMetadata",
                      "InProgressInvalidationBatches", "ActiveTrustedSigners", "ActiveTrustedKeyGroups"})
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
    return normalise({
        "distribution": aws.cloudfront.get_distribution_config(Id=target.distribution_id)["DistributionConfig"],
        "bucket": {
            "policy": _read(lambda: s3.get_bucket_policy(Bucket=bucket), "Policy"),
            "versioning": s3.get_bucket_versioning(Bucket=bucket).get("Status", "Disabled"),
            "encryption": _read(lambda: s3.get_bucket_encryption(Bucket=bucket), "ServerSideEncryptionConfiguration"),
            "lifecycle": _read(lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket), "Rules"),
            "replication": _read(lambda: s3.get_bucket_replication(Bucket=bucket), "ReplicationConfiguration"),
            "public_access_block": _read(lambda: s3.get_public_access_block(Bucket=bucket),
                                         "PublicAccessBlockConfiguration"),
            "ownership": _read(lambda: s3.get_bucket_ownership_controls(Bucket=bucket), "OwnershipControls"),
        },
    })


def baseline_path(base: Path, target: Target) -> Path:
    return base / "baselines" / f"{target.name}.json"


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
