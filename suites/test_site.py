"""Site functionality (seed: validate-site-functionality)."""

from urllib.parse import urlsplit

import pytest


@pytest.mark.control("EA-SITE-01", severity="P1")
@pytest.mark.daily
@pytest.mark.deploy
@pytest.mark.availability
def test_critical_pages_answer(site, target, evidence):
    """Every critical page answers 200 over HTTPS with a non-empty HTML body.

    Remediation: check the last deployment uploaded the page, the distribution's default root
    object and origin, and the bucket policy that lets CloudFront read the objects.
    """
    pages, offenders = {}, []
    for path in target.paths:
        response = site.get(path)
        content_type = response.headers.get("Content-Type", "")
        pages[path] = {"status": response.status_code, "content_type": content_type, "bytes": len(response.content)}
        if response.status_code != 200 or not content_type.startswith("text/html") or not response.content:
            offenders.append(path)
    evidence.record("pages", pages)
    evidence.record("offenders", offenders)
    assert not offenders, "critical pages not served as 200 text/html: " + ", ".join(
        f"{p} ({pages[p]['status']}, {pages[p]['content_type'] or 'no type'}, {pages[p]['bytes']} bytes)"
        for p in offenders)


@pytest.mark.control("EA-SITE-02", severity="P2", frameworks={"OBS": "redirection"})
@pytest.mark.daily
@pytest.mark.deploy
@pytest.mark.availability
@pytest.mark.security
def test_http_redirects_to_https(site, target, evidence):
    """Plain HTTP answers with a permanent redirect straight to HTTPS on the same host.

    Remediation: set the viewer protocol policy of every cache behaviour to redirect-to-https.
    """
    evidence.resource = target.http_url
    response = site.get(target.http_url)
    location = response.headers.get("Location", "")
    evidence.record("status", response.status_code)
    evidence.record("location", location)
    assert response.status_code in (301, 308), (
        f"{target.http_url} answered {response.status_code}, not a 301/308 redirect to HTTPS")
    parts = urlsplit(site.url(location, base=target.http_url))
    assert parts.scheme == "https" and parts.hostname == target.host, (
        f"{target.http_url} redirects to {location}, not to https://{target.host}")
