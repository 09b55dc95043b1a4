"""Improvement metrics (seed: Continuous Improvement, "Improvement Metrics": system availability)."""

import pytest

from edgeaudit.checks.metrics import AVAILABILITY_DAYS, NAMESPACE, REGION, availability
from edgeaudit.errors import NotEvaluated



@pytest.mark.control("EA-MET-02", severity="P2", reads=("cloudwatch:GetMetricStatistics",))
@pytest.mark.monthly
def test_availability_over_30_days(aws, target, thresholds, evidence):
    """The edge answered at least availability_min of the last 30 days' requests without a 5xx (CloudWatch).

    Remediation: read the worst periods in the evidence against the incident log and the
    distribution's access logs; 5xx answers come from the origin (bucket policy, OAC, a missing
    object behind a custom error page) or from the distribution's config.
    """
    evidence.resource = f"CloudWatch {NAMESPACE} {target.distribution_id}"
    measured = availability(aws, target.distribution_id, AVAILABILITY_DAYS)
    for key, value in measured.items():
        if key != "availability":
            evidence.record(key, value)
    if measured["availability"] is None:
        raise NotEvaluated(f"CloudWatch has no Requests with a 5xxErrorRate for distribution {target.distribution_id} "
                           f"({NAMESPACE}, {REGION}, Region=Global) in the last {AVAILABILITY_DAYS} days: "
                           "check the distribution id and that it served requests")
    evidence.measure("availability", measured["availability"], thresholds.availability_min, better="higher")
    assert measured["availability"] >= thresholds.availability_min, (
        f"availability {measured['availability']:.4%} over {AVAILABILITY_DAYS} days is under "
        f"{thresholds.availability_min:.2%} ({measured['failed_requests']:.0f} of {measured['requests']:.0f} "
        "requests answered 5xx)")
