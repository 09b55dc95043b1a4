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


def _paths_this_month(aws, distribution_id: str, month_start: dt.datetime) -> list[str]:
    """The paths of the distribution's invalidation batches created since month_start."""
    paths = []
    for page in aws.cloudfront.paginate("list_invalidations", DistributionId=distribution_id):
        for batch in page["InvalidationList"].get("Items") or []:
            if batch["CreateTime"] >= month_start:
                invalidation = aws.cloudfront.get_invalidation(DistributionId=distribution_id, Id=batch["Id"])
                paths.append(invalidation["Invalidation"]["InvalidationBatch"]["Paths"].get("Items") or [])
    return paths


@pytest.mark.control("EA-CACHE-05", severity="P4",
                     reads=("cloudfront:ListDistributions", "cloudfront:ListInvalidations",
                            "cloudfront:GetInvalidation"))
@pytest.mark.weekly
@pytest.mark.performance
@pytest.mark.cost
def test_invalidation_paths_within_free_tier(aws, target, thresholds, evidence):
    """This month's invalidation paths, over every distribution of the account, stay within the
    free ones.

    Remediation: invalidate less: fingerprint asset names so that new releases need no
    invalidation, and invalidate one wildcard path (e.g. /*) instead of many single files.
    The free paths are counted per AWS account, across its distributions.
    """
    evidence.resource = f"cloudfront:distribution/{target.distribution_id}"
    now = dt.datetime.now(dt.timezone.utc)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    distributions = [d["Id"] for page in aws.cloudfront.paginate("list_distributions")
                     for d in page["DistributionList"].get("Items") or []]
    batches = {d: _paths_this_month(aws, d, month_start) for d in distributions}
    per_distribution = {d: {"batches": len(b), "paths": sum(map(len, b))} for d, b in batches.items() if b}
    paths = [path for b in batches.values() for batch in b for path in batch]
    free, price = thresholds.invalidation_free_paths, thresholds.invalidation_path_usd
    cost = max(0, len(paths) - free) * price
    evidence.record("month", month_start.strftime("%Y-%m"))
    evidence.record("distributions", len(distributions))
    evidence.record("per_distribution", per_distribution)
    evidence.record("batches", sum(len(b) for b in batches.values()))
    evidence.measure("paths", len(paths), free, unit="paths")
    evidence.record("wildcards", sum(p.endswith("*") for p in paths))
    evidence.record("free_paths", free)
    evidence.record("cost_so_far_usd", round(cost, 2))
    largest = sorted(per_distribution.items(), key=lambda item: -item[1]["paths"])
    counts = ", ".join(f"{d} {c['paths']}" for d, c in largest[:10]) + (f", {len(largest) - 10} more"
                                                                         if len(largest) > 10 else "")
    assert len(paths) <= free, (f"{len(paths)} invalidation paths this month over the account's {len(distributions)} "
                                f"distributions, over the {free} free ones: {cost:.2f} USD so far ({counts})")
    if len(paths) > 0.8 * free:
        evidence.warn(f"{len(paths)} invalidation paths this month over the account's distributions, "
                      f"{len(paths) / free:.0%} of the {free} free ones ({counts})")
