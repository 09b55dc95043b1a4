"""Disaster recovery (seed: test-backup-restoration, validate-disaster-recovery).

The drills write only inside the scratch context (`_edgeaudit/<run id>/` of `scratch_bucket`)
and leave it empty when they finish, whatever happens.
"""

import datetime as dt
import json
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from edgeaudit.checks import declared, drift, drill, replication, rollback
from edgeaudit.errors import NotEvaluated

NO_SCRATCH = ("no scratch_bucket is configured, so the DR drill cannot run. Fix: create a private, "
              "versioning-free bucket for drills and set scratch_bucket in the target")


def _require_scratch(aws, target):
    """A DR plan that cannot be drilled is a finding: no scratch bucket, or one that does not exist."""
    assert target.scratch_bucket, NO_SCRATCH
    try:
        aws.client("s3", target.region).head_bucket(Bucket=target.scratch_bucket)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchBucket"):
            raise
        raise AssertionError(
            f"the scratch bucket {target.scratch_bucket} does not exist, so the DR drill cannot run. Fix: create "
            f"{target.scratch_bucket} (private, versioning off) in {target.region or 'the target region'}, or set "
            "scratch_bucket to the drills' existing bucket") from None


def _require_replica(target, evidence) -> None:
    """A replica, or the config's declaration that the site has none (a skip with its reason);
    a replica_bucket simply left out is a finding."""
    declared.require(target, evidence, "replica_bucket")


def _drill(aws, target, thresholds, evidence):
    _require_scratch(aws, target)
    result = drill.restore_sample(aws, target, int(thresholds.dr_sample_objects))
    evidence.record("scratch", f"s3://{target.scratch_bucket}/_edgeaudit/{result.run_id}/")
    evidence.record("sample_seed", result.seed)
    if result.leftovers_removed:
        evidence.record("leftovers_of_earlier_runs_removed", result.leftovers_removed)
    return result


def _replica_comparison(aws, target):
    """Current objects of origin and replica, compared (both listings cached for the run)."""
    replica_region = aws.s3.get_bucket_location(Bucket=target.replica_bucket).get("LocationConstraint")
    origin = aws.s3.paginate("list_objects_v2", Bucket=target.bucket)
    replica = aws.client("s3", replica_region or "us-east-1").paginate("list_objects_v2", Bucket=target.replica_bucket)
    return replication.compare(origin, replica)


@pytest.mark.control("EA-DR-01", severity="P2",
                     reads=("cloudfront:GetDistributionConfig", "s3:ListObjectsV2",
                            "s3:ListObjectVersions", "s3:GetObject"))
@pytest.mark.quarterly
@pytest.mark.dr
def test_backup_restoration(aws, target, thresholds, evidence):
    """A sample of objects restores from its previous version, byte for byte.

    Remediation: keep versioning on the origin bucket with noncurrent versions retained long
    enough to roll back, and configure a scratch_bucket where the drill may restore.
    """
    evidence.resource = f"s3://{target.bucket}"
    result = _drill(aws, target, thresholds, evidence)
    evidence.record("sampled", result.sampled)
    evidence.record("restored", result.restored)
    evidence.record("bytes", result.bytes)
    evidence.record("seconds", round(result.seconds, 3))
    evidence.record("scratch_left_after_drill", result.scratch_left)
    assert not result.scratch_left, f"the drill left {len(result.scratch_left)} objects in scratch"
    assert not result.offenders, ("expected every sampled object to restore from its previous version; "
                                  + "; ".join(f"{k}: {why}" for k, why in sorted(result.offenders.items())))


@pytest.mark.control("EA-DR-02", severity="P2", reads=("s3:GetBucketReplication", "s3:ListObjectsV2"))
@pytest.mark.quarterly
@pytest.mark.dr
def test_replication(aws, target, evidence):
    """Every current object is replicated to the replica bucket.

    Remediation: add an enabled replication rule for all objects to the replica bucket, keep
    versioning on the replica, and re-run S3 Batch Replication for objects it lacks.
    """
    _require_replica(target, evidence)
    evidence.resource = f"s3://{target.bucket} -> s3://{target.replica_bucket}"
    try:
        rules = aws.s3.get_bucket_replication(Bucket=target.bucket)["ReplicationConfiguration"]["Rules"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ReplicationConfigurationNotFoundError":
            raise
        rules = []
    replica_arn = f"arn:aws:s3:::{target.replica_bucket}"
    to_replica = [r for r in rules if r.get("Destination", {}).get("Bucket") == replica_arn]
    evidence.record("rules_to_replica", [{"id": r.get("ID"), "status": r.get("Status"),
                                          "filter": r.get("Filter", r.get("Prefix"))} for r in to_replica])
    assert any(r.get("Status") == "Enabled" and replication.covers_all_objects(r) for r in to_replica), (
        f"expected an enabled replication rule for all objects to {target.replica_bucket}; "
        f"found {len(to_replica)} rule(s) to it, none enabled for every object")
    versioning = aws.s3.get_bucket_versioning(Bucket=target.replica_bucket).get("Status", "Disabled")
    evidence.record("replica_versioning", versioning)
    assert versioning == "Enabled", f"replica {target.replica_bucket} versioning is {versioning}, not Enabled"
    comparison = _replica_comparison(aws, target)
    evidence.record("origin_objects", comparison.origin_objects)
    evidence.record("replica_objects", comparison.replica_objects)
    evidence.record("missing_in_replica", sorted(comparison.missing)[:50])
    evidence.record("different_in_replica", sorted(comparison.stale)[:50])
    assert not comparison.behind, (
        f"expected every current object in {target.replica_bucket} with the same size and ETag; "
        f"{len(comparison.missing)} missing, {len(comparison.stale)} different: "
        + ", ".join(sorted(comparison.behind)[:10]))


@pytest.mark.control("EA-DR-03", severity="P2", reads=("s3:ListObjectsV2",))
@pytest.mark.quarterly
@pytest.mark.dr
def test_recovery_point(aws, target, thresholds, evidence):
    """The replica lags the origin by less than the recovery point objective.

    Remediation: find why replication stalls (the replication role's permissions, KMS keys,
    a disabled rule), and enable S3 Replication Time Control for a 15-minute guarantee.
    """
    _require_replica(target, evidence)
    evidence.resource = f"s3://{target.bucket} -> s3://{target.replica_bucket}"
    comparison = _replica_comparison(aws, target)
    oldest = comparison.oldest_change()
    lag_min = 0.0
    if oldest is not None:
        key, moment = oldest
        lag_min = (dt.datetime.now(dt.timezone.utc) - moment).total_seconds() / 60
        evidence.record("oldest_change_not_replicated", {"key": key, "last_modified": moment})
    evidence.record("changes_not_replicated", len(comparison.behind))
    evidence.measure("rpo_minutes", round(lag_min, 1), thresholds.rpo_min, unit="min")
    assert lag_min < thresholds.rpo_min, (
        f"expected the oldest change not in the replica to be younger than {thresholds.rpo_min} min; "
        f"{oldest[0] if oldest else ''} has waited {lag_min:.0f} min")


def _previous_release(aws, target, evidence) -> rollback.PreviousRelease:
    """The release to roll back to (from the release manifest when the target names one), recorded."""
    history = drill.history(aws, target.bucket)
    window = target.deploy_window_s or rollback.DEPLOY_WINDOW_S
    try:
        release = rollback.previous_release(history, window, drill.index_key(aws, target),
                                            drill.load_manifest(aws, target, history))
    except rollback.Undecided as exc:
        raise NotEvaluated(f"bucket {target.bucket}: {exc}. Fix: write a release manifest at each deployment "
                           "and name it in release_manifest") from None
    if release is None:
        raise NotEvaluated(f"bucket {target.bucket} holds no object versions")
    latest = release.latest
    evidence.record("latest_deployment", {"started": latest.started, "finished": latest.finished,
                                          "writes": latest.writes, "window_s": window, "found_by": latest.found_by})
    evidence.record("previous_release", {
        "source": release.source, "live_until": latest.started, "objects": len(release.members) + len(release.lost),
        "bytes": release.bytes,
        "newest_write": max((v["LastModified"] for v in release.members.values()), default=None)})
    assert release.members or release.lost, (
        f"expected a release before the latest deployment ({latest.started:%Y-%m-%d %H:%M} UTC); "
        f"bucket {target.bucket} keeps no earlier version of any object"
        + ("" if not target.release_manifest else f" and {release.source}"))
    return release


def _record_restore(evidence, restore: drill.ReleaseRestore, scratch_bucket: str) -> None:
    evidence.record("scratch", f"s3://{scratch_bucket}/_edgeaudit/{restore.run_id}/")
    evidence.record("scratch_left_after_drill", restore.scratch_left)
    if restore.leftovers_removed:
        evidence.record("leftovers_of_earlier_runs_removed", restore.leftovers_removed)


@pytest.mark.control("EA-DR-04", severity="P2",
                     reads=("cloudfront:GetDistributionConfig", "s3:ListObjectVersions", "s3:GetObject"))
@pytest.mark.quarterly
@pytest.mark.dr
def test_rollback_readiness(aws, target, evidence):
    """Every object of the previous release can be restored into scratch.

    Remediation: keep noncurrent versions at least as long as you may need to roll back (the
    lifecycle's NoncurrentVersionExpiration), never delete versions of live releases by hand,
    write a release manifest at each deployment (release_manifest) so that no lost object goes
    unseen, and configure a scratch_bucket where the drill may restore.
    """
    evidence.resource = f"s3://{target.bucket}"
    _require_scratch(aws, target)
    release = _previous_release(aws, target, evidence)
    restore = drill.restore_release(aws, target, release.members)
    _record_restore(evidence, restore, target.scratch_bucket)
    evidence.record("restored", {"objects": len(restore.restored), "bytes": restore.bytes,
                                 "seconds": round(restore.seconds, 3)})
    assert not restore.scratch_left, f"the drill left {len(restore.scratch_left)} objects in scratch"
    problems = {**release.lost, **restore.problems}
    evidence.require_none(problems, (f"expected every object of the previous release to restore; {len(problems)} of "
                                     f"{len(release.members) + len(release.lost)} cannot: "
                                     + "; ".join(f"{k}: {why}" for k, why in sorted(problems.items())[:10])))


MB = 1 << 20


@pytest.mark.control("EA-DR-05", severity="P3", reads=("s3:ListObjectsV2", "s3:ListObjectVersions", "s3:GetObject"))
@pytest.mark.quarterly
@pytest.mark.dr
def test_recovery_time(aws, target, thresholds, evidence):
    """Restoring the previous release fits the recovery time objective: timed in full up to
    dr_full_restore_max_mb, estimated from a size-stratified sample above it.

    Remediation: restore in parallel (S3 Batch Operations), shrink the site's object count,
    or agree a longer rto_min with the site's owners.
    """
    evidence.resource = f"s3://{target.bucket}"
    _require_scratch(aws, target)
    release = _previous_release(aws, target, evidence)
    limit_mb = thresholds.dr_full_restore_max_mb
    if release.bytes <= limit_mb * MB:
        restore = drill.restore_release(aws, target, release.members)
        minutes = restore.seconds / 60
        how = (f"measured: the whole previous release ({len(release.members)} objects, {release.bytes} bytes, "
               f"at most dr_full_restore_max_mb = {limit_mb} MiB) restored into scratch in {restore.seconds:.3f} s")
    else:
        restore = drill.restore_stratified(aws, target, release.members, int(thresholds.dr_sample_objects))
        minutes = sum(s["objects"] * s["seconds"] for s in restore.strata) / 60  # failed strata too
        evidence.record("sample_seed", restore.seed)
        evidence.record("strata", restore.strata)
        failed = sum(1 for s in restore.strata if s["problem"])
        how = (f"estimate: the previous release ({len(release.members)} objects, {release.bytes / MB:.1f} MiB) "
               f"exceeds dr_full_restore_max_mb = {limit_mb} MiB, so one object drawn from each of "
               f"{len(restore.strata)} size strata was restored and timed; estimate = sum over strata of "
               "(objects in the stratum x the sampled object's restore time)"
               + (f", counting the {failed} strata whose sample failed to restore" if failed else ""))
    _record_restore(evidence, restore, target.scratch_bucket)
    evidence.record("method", restore.method)
    evidence.record("how", how)
    evidence.record("restored", {"objects": len(restore.restored), "bytes": restore.bytes,
                                 "seconds": round(restore.seconds, 3), "problems": len(restore.problems)})
    assert not restore.scratch_left, f"the drill left {len(restore.scratch_left)} objects in scratch"
    unrestored = {**release.lost, **restore.problems}
    evidence.record("not_restored", dict(sorted(unrestored.items())[:50]))
    assert not unrestored, (
        f"expected every object of the previous release restored within {thresholds.rto_min} min; "
        f"{len(unrestored)} did not restore, so the time of the rest is no recovery time: "
        + "; ".join(f"{k}: {why}" for k, why in sorted(unrestored.items())[:10])
        + (f" and {len(unrestored) - 10} more" if len(unrestored) > 10 else ""))
    assert restore.restored, (
        f"expected a restore within {thresholds.rto_min} min; the drill restored nothing of the previous "
        "release, so the site cannot be restored at any pace (see EA-DR-04)")
    evidence.measure("rto_minutes", round(minutes, 4), thresholds.rto_min, unit="min")
    assert minutes <= thresholds.rto_min, (
        f"expected the previous release restored within {thresholds.rto_min} min; it takes {minutes:.1f} min ({how})")


def _stack_resources(aws, target) -> dict[tuple[str, str], str]:
    """(type, physical id) -> logical id of every resource of the stack."""
    pages = aws.client("cloudformation", target.region).paginate("list_stack_resources", StackName=target.stack_name)
    return {(r["ResourceType"], r.get("PhysicalResourceId")): r["LogicalResourceId"]
            for page in pages for r in page.get("StackResourceSummaries", [])}


def _undeclared(aws, target, evidence) -> list[str]:
    """What of the site the stack does not declare. Drift detection speaks only of the stack's
    own resources: a stack without the distribution and the bucket cannot rebuild them, and its
    IN_SYNC says nothing about them."""
    declared = _stack_resources(aws, target)
    site = {("AWS::CloudFront::Distribution", target.distribution_id): f"distribution {target.distribution_id}",
            ("AWS::S3::Bucket", target.bucket): f"bucket {target.bucket}"}
    evidence.record("declared_by_stack", {what: declared.get(key) for key, what in site.items()})
    return [what for key, what in site.items() if key not in declared]


def _stack_drift(aws, target, evidence):
    """CloudFormation's own drift detection of the stack: (status, drifted resources)."""
    cloudformation = aws.client("cloudformation", target.region)
    detection = cloudformation.detect_stack_drift(StackName=target.stack_name)["StackDriftDetectionId"]
    status = cloudformation.describe_stack_drift_detection_status(StackDriftDetectionId=detection)
    for _ in range(60):  # detection takes seconds to minutes; the cached answer above is the first poll
        if status["DetectionStatus"] != "DETECTION_IN_PROGRESS":
            break
        time.sleep(5)
        status = cloudformation.raw.describe_stack_drift_detection_status(StackDriftDetectionId=detection)
    evidence.record("detection", {k: status.get(k) for k in ("DetectionStatus", "StackDriftStatus",
                                                             "DriftedStackResourceCount", "Timestamp")})
    if status["DetectionStatus"] != "DETECTION_COMPLETE":
        raise NotEvaluated(f"drift detection of stack {target.stack_name} ended {status['DetectionStatus']}: "
                           f"{status.get('DetectionStatusReason', 'no reason given')}")
    drifts = cloudformation.describe_stack_resource_drifts(
        StackName=target.stack_name, StackResourceDriftStatusFilters=["MODIFIED", "DELETED"])["StackResourceDrifts"]
    return status["StackDriftStatus"], [
        f"{d['LogicalResourceId']} ({d['ResourceType']}) {d['StackResourceDriftStatus']}"
        + "".join(f"; {p['PropertyPath']}: {p.get('ExpectedValue')} -> {p.get('ActualValue')}"
                  for p in d.get("PropertyDifferences", []))
        for d in drifts]


@pytest.mark.control("EA-DR-06", severity="P3",
                     reads=("cloudformation:ListStackResources", "cloudformation:DetectStackDrift",
                            "cloudformation:DescribeStackDriftDetectionStatus",
                            "cloudformation:DescribeStackResourceDrifts", "acm:DescribeCertificate", "wafv2:GetWebACL",
                            "cloudfront:GetFunction"))
@pytest.mark.quarterly
@pytest.mark.dr
def test_rebuild_source_has_no_drift(aws, target, edgeaudit_config, evidence):
    """The live configuration matches its declared source, so the site can be rebuilt from it:
    a stack that declares the distribution and the bucket and has not drifted, with what it does
    not hold (bucket policy, policies, origin access controls, functions, WAF) matching the
    baseline; or, without a stack, the baseline.

    Remediation: bring the change into the stack (or re-run `edgeaudit snapshot` after a
    reviewed change), or revert the hand-made change; then the source rebuilds what runs.
    """
    if target.stack_name:
        evidence.resource = f"cloudformation:stack/{target.stack_name}"
        not_in_stack = _undeclared(aws, target, evidence)
        assert not not_in_stack, (
            f"expected stack {target.stack_name} to declare the site; it holds no {' and no '.join(not_in_stack)}, "
            "so it cannot rebuild them and its drift status says nothing about them. Fix: import them into "
            "the stack (CloudFormation resource import) or declare them in its template")
        status, drifted = _stack_drift(aws, target, evidence)
        evidence.record("drifted", drifted)
        assert status == "IN_SYNC" and not drifted, (
            f"expected stack {target.stack_name} IN_SYNC; it is {status}: {' | '.join(drifted)}")
        _outside_stack_matches_baseline(aws, target, edgeaudit_config, evidence)
        return
    path = _baseline_path(target, edgeaudit_config)
    evidence.resource = str(path)
    assert path.is_file(), (f"expected a declared source: no stack_name and no baseline at {path}. "
                            f"Fix: run `edgeaudit snapshot --target {target.name}` and keep the file in version control")
    baseline = json.loads(path.read_text(encoding="utf-8"))
    drifted = drift.differences(baseline, drift.live_config(aws, target))
    evidence.record("drifted", drifted)
    assert not drifted, f"expected the live configuration to match {path.name}; {len(drifted)} drifted: " + "; ".join(drifted[:10])


def _baseline_path(target, edgeaudit_config) -> Path:
    base = edgeaudit_config.path.parent if edgeaudit_config.path and edgeaudit_config.path.is_file() else Path.cwd()
    return drift.baseline_path(base, target)


def _outside_stack_matches_baseline(aws, target, edgeaudit_config, evidence) -> None:
    """What the stack does not hold (its drift detection says nothing of it) against the baseline."""
    held: dict[str, set[str]] = {}
    for kind, physical in _stack_resources(aws, target):
        held.setdefault(kind, set()).add(physical or "")
    live = drift.outside_stack(drift.live_config(aws, target), held)
    evidence.record("outside_stack", sorted(live))
    path = _baseline_path(target, edgeaudit_config)
    evidence.record("baseline", str(path))
    assert path.is_file(), (
        f"expected a baseline of what stack {target.stack_name} does not hold ({', '.join(sorted(live))}): its drift "
        f"detection says nothing of them, and there is no baseline at {path}. Fix: run `edgeaudit snapshot "
        f"--target {target.name}` and keep the file in version control, or bring them into the stack")
    baseline = drift.outside_stack(json.loads(path.read_text(encoding="utf-8")), held)
    drifted = drift.differences(baseline, live)
    evidence.record("drifted_outside_stack", drifted)
    assert not drifted, (f"expected what stack {target.stack_name} does not hold to match {path.name}; "
                         f"{len(drifted)} drifted while the stack is IN_SYNC: " + "; ".join(drifted[:10]))


FIVE_XX = {500, 502, 503, 504}


def _behaviours(config: dict) -> dict[str, str]:
    """Every cache behaviour that serves the site, by path pattern ("default" for the default),
    and the origin or origin group it targets."""
    found = {"default": config.get("DefaultCacheBehavior", {}).get("TargetOriginId", "")}
    for behaviour in config.get("CacheBehaviors", {}).get("Items") or []:
        found[behaviour.get("PathPattern", "")] = behaviour.get("TargetOriginId", "")
    return found


@pytest.mark.control("EA-DR-07", severity="P3", frameworks={"FSBP": "CloudFront.4"},
                     reads=("cloudfront:GetDistributionConfig",))
@pytest.mark.quarterly
@pytest.mark.dr
def test_origin_failover(aws, target, evidence):
    """Every cache behaviour targets an origin group that fails over from the origin bucket to
    the replica bucket on 500, 502, 503 and 504.

    Remediation: add the replica bucket as a second S3 origin with Origin Access Control, group
    it behind the origin bucket with failover on 500, 502, 503 and 504, and point the default
    and every path-pattern cache behaviour at the group.
    """
    _require_replica(target, evidence)
    evidence.resource = f"cloudfront:distribution/{target.distribution_id}"
    config = aws.cloudfront.get_distribution_config(Id=target.distribution_id)["DistributionConfig"]
    origins = {o["Id"]: o for o in config["Origins"].get("Items") or []}

    def serves(origin_id, bucket):
        domain = origins.get(origin_id, {}).get("DomainName", "").lower()
        return domain.startswith((f"{bucket}.s3.", f"{bucket}.s3-"))

    behaviours = _behaviours(config)
    groups = {}
    for group in config.get("OriginGroups", {}).get("Items") or []:
        members = [m["OriginId"] for m in group.get("Members", {}).get("Items") or []]
        codes = {int(c) for c in group.get("FailoverCriteria", {}).get("StatusCodes", {}).get("Items") or []}
        problems = []
        if len(members) != 2 or not serves(members[0], target.bucket):
            problems.append(f"its primary is not the origin bucket {target.bucket}")
        if len(members) != 2 or not serves(members[1], target.replica_bucket):
            problems.append(f"its secondary is not the replica bucket {target.replica_bucket}")
        elif not origins[members[1]].get("OriginAccessControlId"):
            problems.append("the replica origin has no origin access control")
        if FIVE_XX - codes:
            problems.append(f"it fails over on {sorted(codes)}, not on {sorted(FIVE_XX - codes)}")
        groups[group["Id"]] = {"members": members, "status_codes": sorted(codes), "problems": problems,
                               "used_by": [name for name, to in behaviours.items() if to == group["Id"]]}
    evidence.record("behaviours", behaviours)
    evidence.record("origin_groups", groups)
    offenders = {}
    for name, to in behaviours.items():
        if to not in groups:
            offenders[name] = f"targets {to} directly, bypassing the origin group(s)" if groups else f"targets {to}"
        elif groups[to]["problems"]:
            offenders[name] = f"targets group {to}, where " + "; ".join(groups[to]["problems"])
    evidence.record("offenders", offenders)
    unused = [g for g, v in groups.items() if not v["used_by"]]
    assert not offenders, (
        f"expected every cache behaviour to target an origin group failing over on 500, 502, 503 and 504 "
        f"from {target.bucket} to {target.replica_bucket}; found {len(groups)} group(s)"
        + (f" ({', '.join(unused)} used by no behaviour)" if unused else "") + ": "
        + "; ".join(f"behaviour {name} {why}" for name, why in offenders.items()))
