"""The backup-restoration drill: previous versions of a sample of objects are copied into the
scratch context (server side, by VersionId), read back and compared with the version read
directly. EA-DR-01 checks its result; EA-DR-05 scales its throughput to the whole site, so one
drill per target and run serves both.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .aws import Aws
from .config import Target
from .scratch import Scratch


@dataclass
class DrillResult:
    seed: int
    run_id: str
    sampled: list[str] = field(default_factory=list)
    restored: dict[str, str] = field(default_factory=dict)      # key -> "previous <version id>"
    offenders: dict[str, str] = field(default_factory=dict)     # key -> what went wrong
    bytes: int = 0
    seconds: float = 0.0
    leftovers_removed: list[str] = field(default_factory=list)
    scratch_left: list[str] = field(default_factory=list)


_lock = threading.Lock()
_results: dict[str, DrillResult] = {}


def index_key(aws: Aws, target: Target) -> str:
    """The index page's key: the distribution's default root object, else index.html."""
    config = aws.cloudfront.get_distribution_config(Id=target.distribution_id)["DistributionConfig"]
    return (config.get("DefaultRootObject") or "index.html").lstrip("/")


def backup_version(aws: Aws, bucket: str, key: str) -> tuple[str | None, str]:
    """The version a restore of `key` would use, and which one it is: the version live before
    the current one; for an object never changed, its current version, which a versioned bucket
    keeps through an overwrite or delete; none when the bucket does not keep versions ("null")."""
    versions = [v for page in aws.s3.paginate("list_object_versions", Bucket=bucket, Prefix=key)
                for v in page.get("Versions", []) if v["Key"] == key]
    versions.sort(key=lambda v: v["LastModified"], reverse=True)
    kept = [v for v in versions if v.get("VersionId") not in (None, "null")]
    if len(kept) > 1 and kept[0] is versions[0]:
        return kept[1]["VersionId"], "previous"
    if kept and kept[0] is versions[0]:
        return kept[0]["VersionId"], "current (never changed)"
    return None, "the bucket keeps no version of it (versioning off), so there is no backup to restore"


def _sha256(body: Any) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: body.read(1 << 20), b""):
        digest.update(chunk)
    return digest.hexdigest()


def restore_sample(aws: Aws, target: Target, sample_size: int) -> DrillResult:
    """Run the drill once per target and run (later callers get the same result)."""
    with _lock:
        if target.name in _results:
            return _results[target.name]
        result = _run(aws, target, sample_size)
        _results[target.name] = result
        return result


def _run(aws: Aws, target: Target, sample_size: int) -> DrillResult:
    assert target.scratch_bucket, "no scratch_bucket: checked by the caller"
    keys = sorted(o["Key"] for page in aws.s3.paginate("list_objects_v2", Bucket=target.bucket)
                  for o in page.get("Contents", []))
    index = index_key(aws, target)
    seed = secrets.randbelow(2**32)
    others = [k for k in keys if k != index]
    sample = [index] + random.Random(seed).sample(others, min(len(others), max(sample_size - 1, 0)))
    raw = aws.client("s3", target.region).raw
    scratch = Scratch(raw, target.scratch_bucket)
    result = DrillResult(seed=seed, run_id=scratch.run_id, sampled=sample)
    started = time.monotonic()
    with scratch:
        result.leftovers_removed = scratch.leftovers_removed
        for key in sample:
            if key not in keys:
                result.offenders[key] = "not in the bucket"
                continue
            version, which = backup_version(aws, target.bucket, key)
            if version is None:
                result.offenders[key] = which
                continue
            restored_key = scratch.key(key)
            raw.copy_object(Bucket=target.scratch_bucket, Key=restored_key,
                            CopySource={"Bucket": target.bucket, "Key": key, "VersionId": version})
            restored = raw.get_object(Bucket=target.scratch_bucket, Key=restored_key)
            size = int(restored["ContentLength"])
            restored_hash = _sha256(restored["Body"])
            original_hash = _sha256(raw.get_object(Bucket=target.bucket, Key=key, VersionId=version)["Body"])
            if restored_hash != original_hash:
                result.offenders[key] = f"restored bytes differ (sha256 {restored_hash[:12]} != {original_hash[:12]})"
                continue
            result.restored[key] = f"{which} {version}"
            result.bytes += size
    result.seconds = time.monotonic() - started
    result.scratch_left = scratch.remaining()
    return result
