"""Cache invalidations (seed: cache-invalidation-manager report, deployment-status-dashboard)."""

import datetime as dt

import pytest


def _invalidations(aws, target, evidence) -> list:
    evidence.resource = f"cloudfront:distribution/{target.distribution_id}"
    pages = aws.cloudfront.paginate("list_invalidations", DistributionId=target.distribution_id)
    return [item for page in pages for item in page["InvalidationList"].get("Items") or []]


@pytest.mark.control("EA-DEP-03", severity="P3", reads=("cloudfront:ListInvalidations",))
@pytest.mark.daily
@pytest.mark.deploy
@pytest.mark.availability
def test_no_stuck_invalidation(aws, target, thresholds, evidence):
    """No invalidation has been in progress for longer than invalidation_stuck_min.

    Remediation: an invalidation normally completes within minutes; check the AWS Health
    dashboard and the deployment's invalidation paths, then invalidate again or open a case.
    """
    now = dt.datetime.now(dt.timezone.utc)
    running = {i["Id"]: round((now - i["CreateTime"]).total_seconds() / 60, 1)
               for i in _invalidations(aws, target, evidence) if i["Status"] == "InProgress"}
    limit = thresholds.invalidation_stuck_min
    stuck = [f"{i} ({minutes:.0f} min)" for i, minutes in running.items() if minutes > limit]
    evidence.record("in_progress_minutes", running)
    evidence.measure("longest_in_progress_min", max(running.values(), default=0), limit, unit="min")
    evidence.record("invalidation_stuck_min", thresholds.invalidation_stuck_min)
    evidence.require_none(stuck, (f"invalidations InProgress for more than {thresholds.invalidation_stuck_min} min: "
                                  + ", ".join(stuck)))


@pytest.mark.control("EA-CACHE-05", severity="P4",
                     reads=("cloudfront:ListInvalidations", "cloudfront:GetInvalidation"))
@pytest.mark.weekly
@pytest.mark.performance
@pytest.mark.cost
def test_invalidation_paths_within_free_tier(aws, target, thresholds, evidence):
    """This month's invalidation paths stay within the free ones.

    Remediation: invalidate less: fingerprint asset names so that new releases need no
    invalidation, and invalidate one wildcard path (e.g. /*) instead of many single files.
    The free paths are counted per AWS account, across its distributions.
    """
    now = dt.datetime.now(dt.timezone.utc)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    batches = [i for i in _invalidations(aws, target, evidence) if i["CreateTime"] >= month_start]
    paths = []
    for batch in batches:
        invalidation = aws.cloudfront.get_invalidation(DistributionId=target.distribution_id, Id=batch["Id"])
        paths += invalidation["Invalidation"]["InvalidationBatch"]["Paths"].get("Items") or []
    free, price = thresholds.invalidation_free_paths, thresholds.invalidation_path_usd
    cost = max(0, len(paths) - free) * price
    evidence.record("month", month_start.strftime("%Y-%m"))
    evidence.record("batches", len(batches))
    evidence.measure("paths", len(paths), free, unit="paths")
    evidence.record("wildcards", sum(p.endswith("*") for p in paths))
    evidence.record("free_paths", free)
    evidence.record("cost_so_far_usd", round(cost, 2))
    assert len(paths) <= free, (f"{len(paths)} invalidation paths this month, over the {free} free ones: "
                                f"{cost:.2f} USD so far")
    if len(paths) > 0.8 * free:
        evidence.warn(f"{len(paths)} invalidation paths this month, {len(paths) / free:.0%} of the {free} free ones")
