"""Improvement metrics (seed: Continuous Improvement, "Improvement Metrics": system availability)."""

import pytest

from edgeaudit.checks import healthcheck
from edgeaudit.checks.metrics import AVAILABILITY_DAYS, NAMESPACE, REGION, availability
from edgeaudit.errors import NotEvaluated


@pytest.mark.control("EA-MET-02", severity="P2",
                     reads=("cloudwatch:GetMetricStatistics", "route53:GetHealthCheck"))
@pytest.mark.monthly
def test_availability_over_30_days(aws, target, thresholds, evidence):
    """The site was available at least availability_min of the last 30 days: from the distribution's 5xx answers in CloudWatch, or from its Route 53 health check when the target names one.

    Remediation: read the worst periods in the evidence against the incident log and the
    distribution's access logs; 5xx answers come from the origin (bucket policy, OAC, a missing
    object behind a custom error page) or from the distribution's config. A health check's
    unhealthy hours name when its checkers could not get the page.
    """
    if target.health_check_id:
        _from_health_check(aws, target, thresholds, evidence)
        return
    evidence.resource = f"CloudWatch {NAMESPACE} {target.distribution_id}"
    evidence.record("source", f"the distribution's 5xx answers (CloudWatch {NAMESPACE} Requests and 5xxErrorRate)")
    measured = _recorded(availability(aws, target.distribution_id, AVAILABILITY_DAYS), evidence,
                         f"CloudWatch has no Requests with a 5xxErrorRate for distribution {target.distribution_id} "
                         f"({NAMESPACE}, {REGION}, Region=Global) in the last {AVAILABILITY_DAYS} days: "
                         "check the distribution id and that it served requests")
    evidence.measure("availability", measured["availability"], thresholds.availability_min, better="higher")
    assert measured["availability"] >= thresholds.availability_min, (
        f"availability {measured['availability']:.4%} over {AVAILABILITY_DAYS} days is under "
        f"{thresholds.availability_min:.2%} ({measured['failed_requests']:.0f} of {measured['requests']:.0f} "
        "requests answered 5xx)")


def _from_health_check(aws, target, thresholds, evidence):
    """The share of minutes the target's Route 53 health check found the site healthy. A pass
    needs the check to probe this site and most of the period measured; unhealthy minutes that
    were measured fail however few hours were."""
    check_id = target.health_check_id
    evidence.resource = f"Route 53 health check {check_id}"
    evidence.record("source", f"the Route 53 health check {check_id} (CloudWatch {healthcheck.NAMESPACE} "
                              f"{healthcheck.METRIC})")
    check = healthcheck.described(aws, target)
    evidence.record("health_check", check)
    why = healthcheck.why_not_proof(check, target)
    if why:
        raise NotEvaluated(why)
    measured = _recorded(healthcheck.availability(aws, check_id, AVAILABILITY_DAYS), evidence,
                         f"CloudWatch has no {healthcheck.METRIC} datapoints for health check {check_id} "
                         f"({healthcheck.NAMESPACE}, {REGION}) in the last {AVAILABILITY_DAYS} days: "
                         "check that the health check has run for the period")
    evidence.measure("availability", measured["availability"], thresholds.availability_min, better="higher")
    assert measured["availability"] >= thresholds.availability_min, (
        f"availability {measured['availability']:.4%} over {AVAILABILITY_DAYS} days is under "
        f"{thresholds.availability_min:.2%} (health check {check_id} found the site unhealthy "
        f"{measured['unhealthy_minutes']:.0f} of {measured['measured_minutes']:.0f} measured minutes)")
    coverage = measured["hours_measured"] / measured["hours_in_period"]
    if coverage < healthcheck.MIN_COVERAGE:
        raise NotEvaluated(f"health check {check_id} has {healthcheck.METRIC} datapoints for {measured['hours_measured']} "
                           f"of the {measured['hours_in_period']} hours of the last {AVAILABILITY_DAYS} days "
                           f"({coverage:.0%}; a pass needs {healthcheck.MIN_COVERAGE:.0%}): the hours without data "
                           "are not measured. Run it again once the check has a month of data, or remove "
                           "health_check_id to measure the distribution's 5xx answers")


def _recorded(measured, evidence, unmeasured):
    """`measured` with all but its availability in the evidence; no availability (no datapoint)
    is not evaluated, saying `unmeasured`."""
    for key, value in measured.items():
        if key != "availability":
            evidence.record(key, value)
    if measured["availability"] is None:
        raise NotEvaluated(unmeasured)
    return measured
