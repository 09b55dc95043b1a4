"""Deployment status (seed: deployment-status-dashboard, comprehensive-deployment-test)."""

import datetime as dt

import pytest


@pytest.mark.control("EA-DEP-01", severity="P1")
@pytest.mark.daily
@pytest.mark.deploy
@pytest.mark.availability
def test_distribution_is_deployed(aws, target, thresholds, evidence):
    """The distribution is enabled and its last change is deployed.

    Remediation: enable the distribution; if a deployment stays InProgress for longer than
    deploy_stuck_min, check the last config change in the CloudFront console and AWS Health.
    """
    distribution = aws.cloudfront.get_distribution(Id=target.distribution_id)["Distribution"]
    enabled = distribution["DistributionConfig"]["Enabled"]
    status = distribution["Status"]
    modified = distribution["LastModifiedTime"]
    minutes = (dt.datetime.now(dt.timezone.utc) - modified).total_seconds() / 60
    evidence.resource = f"cloudfront:distribution/{target.distribution_id}"
    evidence.record("enabled", enabled)
    evidence.record("status", status)
    evidence.record("last_modified", modified)
    evidence.record("deploy_stuck_min", thresholds.deploy_stuck_min)

    assert enabled, "the distribution is disabled: CloudFront serves nothing for this site"
    if status == "InProgress":
        evidence.record("minutes_in_progress", round(minutes, 1))
        assert minutes <= thresholds.deploy_stuck_min, (
            f"deployment InProgress for {minutes:.0f} min, over the {thresholds.deploy_stuck_min} min limit")
        evidence.warn(f"deployment InProgress for {minutes:.0f} min")
    else:
        assert status == "Deployed", f"distribution status is {status}, not Deployed"
