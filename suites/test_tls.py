"""Certificates and TLS (seed: ssl-certificate-validator, comprehensive-tls-validator)."""

import pytest


@pytest.mark.control("EA-TLS-01", severity="P2", frameworks={"FSBP": "ACM.1"})
@pytest.mark.daily
@pytest.mark.monthly
@pytest.mark.security
def test_certificate_not_expiring(tls_probe, target, thresholds, evidence):
    """The served certificate is valid for at least cert_warn_days more days.

    Remediation: renew the certificate (ACM renews DNS-validated certificates by itself when the
    validation CNAME is still in place) and check the distribution serves the renewed one.
    """
    leaf = tls_probe.leaf()
    days = leaf.days_left()
    evidence.record("subject", leaf.subject)
    evidence.record("not_after", leaf.not_after)
    evidence.record("days_left", days)
    evidence.record("warn_days", thresholds.cert_warn_days)
    evidence.record("fail_days", thresholds.cert_fail_days)
    assert days >= thresholds.cert_fail_days, (
        f"certificate expires in {days} days (fail below {thresholds.cert_fail_days})" if days >= 0
        else f"certificate expired {-days} days ago")
    if days < thresholds.cert_warn_days:
        evidence.warn(f"certificate expires in {days} days")
