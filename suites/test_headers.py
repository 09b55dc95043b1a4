"""Security headers (seed: security-headers-validator), on every critical page and the 404 page."""

import re

import pytest


def _header_pages(site, target):
    """(url, response) for each critical path and for a page that does not exist."""
    urls = [site.url(path) for path in target.paths] + [site.not_found_url]
    return [(url, site.get(url)) for url in urls]


@pytest.mark.control("EA-HDR-01", severity="P2", frameworks={"OBS": "strict-transport-security", "ZAP": "10035"})
@pytest.mark.daily
@pytest.mark.quarterly
@pytest.mark.deploy
@pytest.mark.security
def test_strict_transport_security(site, target, thresholds, evidence):
    """Strict-Transport-Security is sent with a max-age of at least a year.

    Remediation: attach a response headers policy whose StrictTransportSecurity has
    AccessControlMaxAgeSec >= hsts_min_age_s and IncludeSubdomains on.
    """
    seen, offenders, without_subdomains = {}, [], []
    for url, response in _header_pages(site, target):
        value = response.headers.get("Strict-Transport-Security", "")
        seen[url] = value or None
        match = re.search(r"max-age\s*=\s*\"?(\d+)", value, re.I)
        if not match or int(match.group(1)) < thresholds.hsts_min_age_s:
            offenders.append(url)
        elif not re.search(r"includesubdomains", value, re.I):
            without_subdomains.append(url)
    evidence.record("headers", seen)
    evidence.record("min_max_age_s", thresholds.hsts_min_age_s)
    evidence.record("offenders", offenders)
    assert not offenders, (f"Strict-Transport-Security missing or max-age < {thresholds.hsts_min_age_s} on: "
                           + ", ".join(f"{u} ({seen[u] or 'absent'})" for u in offenders))
    if without_subdomains:
        evidence.warn("HSTS without includeSubDomains on: " + ", ".join(without_subdomains))
