"""The restore drills, all into the scratch context (server side copies, by VersionId).

The backup-restoration drill (EA-DR-01): previous versions of a sample of objects are copied,
read back and compared with the version read directly. The release restore (EA-DR-04, and
EA-DR-05 when the release is small enough): every object of the previous release is copied and
checked, timed. The stratified restore (EA-DR-05 for a large release): one object of each size
stratum, each timed, from which the whole release's restore time is estimated.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from edgeaudit.aws.clients import Aws
from edgeaudit.aws.scratch import Scratch
from edgeaudit.checks import manifest, rollback
from edgeaudit.checks.manifest import Manifest
from edgeaudit.errors import NotEvaluated
from edgeaudit.rules.config import Target


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


def backup_version(aws: Aws, bucket: str, key: str, changed: str = "") -> tuple[str | None, str]:
    """The version a restore of `key` would use, and which one it is: the version live before
    the current one; for an object never changed, its current version, which a versioned bucket
    keeps through an overwrite or delete; none when the bucket does not keep versions ("null"),
    or when `changed` (the evidence that the object changed) says an earlier version existed
    and the bucket no longer keeps it."""
    versions = [v for page in aws.s3.paginate("list_object_versions", Bucket=bucket, Prefix=key)
                for v in page.get("Versions", []) if v["Key"] == key]
    versions.sort(key=lambda v: v["LastModified"], reverse=True)
    kept = [v for v in versions if v.get("VersionId") not in (None, "null")]
    if len(kept) > 1 and kept[0] is versions[0]:
        return kept[1]["VersionId"], "previous"
    if kept and kept[0] is versions[0] and changed:
        return None, f"it changed ({changed}) but the bucket keeps no earlier version: its previous versions were deleted"
    if kept and kept[0] is versions[0]:
        return kept[0]["VersionId"], "current (no earlier version, nothing says it changed)"
    return None, "the bucket keeps no version of it (versioning off), so there is no backup to restore"


def load_manifest(aws: Aws, target: Target, history: rollback.History) -> Manifest | None:
    """The target's release manifest, checked against the live versions: a manifest the latest
    deployment did not write describes another release, so the drills cannot rely on it."""
    if not target.release_manifest:
        return None
    found = manifest.load(aws, target.release_manifest)
    in_bucket = f"s3://{target.bucket}/"  # a manifest kept in the site's bucket does not list itself
    own = target.release_manifest[len(in_bucket):] if target.release_manifest.startswith(in_bucket) else ""
    live = {v["Key"]: v for v in history.versions if v.get("IsLatest")}
    stale = manifest.stale_keys(found, live, ignore=own)
    if stale:
        raise NotEvaluated(f"release manifest {found.location} does not describe the live objects of {target.bucket}: "
                           f"release {found.live.id} names other versions of {', '.join(stale[:5])}"
                           f"{' and more' if len(stale) > 5 else ''}. Fix: write the manifest at the end of every "
                           "deployment, naming the VersionId of each object it published")
    return found


def history(aws: Aws, bucket: str) -> rollback.History:
    """Every version and delete marker of the bucket (one cached listing for the run)."""
    return rollback.History.from_pages(aws.s3.paginate("list_object_versions", Bucket=bucket))


def change_evidence(key: str, current: dict[str, Any], known: Manifest | None, index: str,
                    versions: list[dict[str, Any]], window_s: float) -> str:
    """Why we know `key` changed, "" when nothing says so. With a release manifest: an earlier
    release published another version. Without one, S3 keeps no trace of deleted versions, but
    the index page is in every release: if the bucket keeps versions written before this index
    page's deployment, an earlier index page existed."""
    if known is not None:
        earlier = known.earlier_version(key, current.get("VersionId", ""))
        return f"release {earlier[0]} of the release manifest names version {earlier[1]}" if earlier else ""
    if key != index:
        return ""
    before = current["LastModified"] - dt.timedelta(seconds=window_s)
    older = [v for v in versions if v["LastModified"] < before]
    if older:
        oldest = min(older, key=lambda v: v["LastModified"])
        return (f"the index page is in every release, and the bucket keeps {oldest['Key']} from "
                f"{oldest['LastModified']:%Y-%m-%d %H:%M} UTC, before this index page was written")
    return ""


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
    versions = history(aws, target.bucket)
    known = load_manifest(aws, target, versions)
    live = {v["Key"]: v for v in versions.versions if v.get("IsLatest")}
    window = target.deploy_window_s or rollback.DEPLOY_WINDOW_S
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
            changed = change_evidence(key, live[key], known, index, versions.versions, window) if key in live else ""
            version, which = backup_version(aws, target.bucket, key, changed)
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


# --- the previous release, restored whole or by a sample stratified by size ----------------------

@dataclass
class ReleaseRestore:
    """What a restore of (part of) the previous release into scratch did."""

    run_id: str
    method: str                                                # "full" or "stratified sample"
    restored: dict[str, int] = field(default_factory=dict)      # key -> bytes
    problems: dict[str, str] = field(default_factory=dict)      # key -> why it did not restore
    seconds: float = 0.0
    strata: list[dict[str, Any]] = field(default_factory=list)  # the stratified sample, one per stratum
    seed: int | None = None
    leftovers_removed: list[str] = field(default_factory=list)
    scratch_left: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(self.restored.values())


def restore_version(raw: Any, scratch: Scratch, bucket: str, key: str, version: dict[str, Any]) -> tuple[int, str]:
    """Copy one version into scratch and check the copy; returns (bytes, problem or "")."""
    try:
        raw.copy_object(Bucket=scratch.bucket, Key=scratch.key(key),
                        CopySource={"Bucket": bucket, "Key": key, "VersionId": version["VersionId"]})
        copy = raw.head_object(Bucket=scratch.bucket, Key=scratch.key(key))
    except ClientError as exc:
        return 0, f"{exc.response['Error']['Code']} restoring version {version['VersionId']}"
    size, etag = int(copy["ContentLength"]), copy.get("ETag", "").strip('"')
    expected = str(version.get("ETag", "")).strip('"')
    if size != version.get("Size") or ("-" not in expected and etag != expected):
        return size, f"restored copy has {size} bytes, ETag {etag}; the version has {version.get('Size')}, {expected}"
    return size, ""


_releases: dict[str, ReleaseRestore] = {}


def restore_release(aws: Aws, target: Target, members: dict[str, dict[str, Any]]) -> ReleaseRestore:
    """Restore every member into scratch, timed; once per target and run (EA-DR-04 proves each
    object restorable with it, EA-DR-05 times it)."""
    with _lock:
        if target.name not in _releases:
            raw = aws.client("s3", target.region).raw
            scratch = Scratch(raw, str(target.scratch_bucket))
            result = ReleaseRestore(run_id=scratch.run_id, method="full")
            started = time.monotonic()
            with scratch:
                result.leftovers_removed = scratch.leftovers_removed
                for key, version in sorted(members.items()):
                    size, problem = restore_version(raw, scratch, target.bucket, key, version)
                    if problem:
                        result.problems[key] = problem
                    else:
                        result.restored[key] = size
                result.seconds = time.monotonic() - started
            result.scratch_left = scratch.remaining()
            _releases[target.name] = result
        return _releases[target.name]


def size_strata(members: dict[str, dict[str, Any]], count: int) -> list[list[str]]:
    """The members by size, cut into `count` strata of (nearly) equal object counts."""
    keys = sorted(members, key=lambda k: (int(members[k].get("Size", 0)), k))
    count = max(1, min(count, len(keys)))
    return [keys[len(keys) * n // count:len(keys) * (n + 1) // count] for n in range(count)]


def restore_stratified(aws: Aws, target: Target, members: dict[str, dict[str, Any]], count: int) -> ReleaseRestore:
    """Restore one object drawn at random from each size stratum, each timed on its own."""
    raw = aws.client("s3", target.region).raw
    scratch = Scratch(raw, str(target.scratch_bucket))
    seed = secrets.randbelow(2**32)
    draw = random.Random(seed)
    result = ReleaseRestore(run_id=scratch.run_id, method="stratified sample", seed=seed)
    with scratch:
        result.leftovers_removed = scratch.leftovers_removed
        for stratum in size_strata(members, count):
            key = draw.choice(stratum)
            started = time.monotonic()
            size, problem = restore_version(raw, scratch, target.bucket, key, members[key])
            seconds = time.monotonic() - started
            if problem:
                result.problems[key] = problem
            else:
                result.restored[key] = size
            result.seconds += seconds
            # a stratum whose sample failed stays in the estimate (and fails the control): dropping
            # it would make the release look smaller and faster to restore than it is
            result.strata.append({"objects": len(stratum), "bytes": sum(int(members[k].get("Size", 0)) for k in stratum),
                                  "smallest": int(members[stratum[0]].get("Size", 0)),
                                  "largest": int(members[stratum[-1]].get("Size", 0)),
                                  "sampled": key, "sampled_bytes": size, "seconds": round(seconds, 4),
                                  "problem": problem or None})
    result.scratch_left = scratch.remaining()
    return result
