"""The distribution (seed: security-validation-suite, cloudfront-security-validator)."""

import pytest

HTTPS_POLICIES = ("redirect-to-https", "https-only")


def behaviours(config):
    """(path pattern, behaviour) for the default behaviour and every other one."""
    yield "(default)", config["DefaultCacheBehavior"]
    for behaviour in config.get("CacheBehaviors", {}).get("Items", []) or []:
        yield behaviour["PathPattern"], behaviour


@pytest.mark.control("EA-CF-01", severity="P2", frameworks={"FSBP": "CloudFront.3"})
@pytest.mark.weekly
@pytest.mark.quarterly
@pytest.mark.security
@pytest.mark.infrastructure
def test_viewers_use_https(aws, target, evidence):
    """Every cache behaviour sends viewers to HTTPS.

    Remediation: set ViewerProtocolPolicy to redirect-to-https (or https-only) on the default
    cache behaviour and on every other cache behaviour of the distribution.
    """
    config = aws.cloudfront.get_distribution_config(Id=target.distribution_id)["DistributionConfig"]
    evidence.resource = f"cloudfront:distribution/{target.distribution_id}"
    policies = {pattern: b["ViewerProtocolPolicy"] for pattern, b in behaviours(config)}
    offenders = [pattern for pattern, policy in policies.items() if policy not in HTTPS_POLICIES]
    evidence.record("behaviours", policies)
    evidence.record("offenders", offenders)
    assert not offenders, "cache behaviours that let viewers use plain HTTP: " + ", ".join(
        f"{p} ({policies[p]})" for p in offenders)
