"""Site functionality (seed: validate-site-functionality)."""

from urllib.parse import urlsplit

import pytest

from edgeaudit.web.crawl import read_sitemap

S3_ERROR_MARKERS = ("<Error>", "<Code>", "<RequestId>", "<HostId>")


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
    evidence.require_none(offenders, "critical pages not served as 200 text/html: " + ", ".join(
        f"{p} ({pages[p]['status']}, {pages[p]['content_type'] or 'no type'}, {pages[p]['bytes']} bytes)"
        for p in offenders))


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


@pytest.mark.control("EA-SITE-03", severity="P3", frameworks={"ZAP": "90022"})
@pytest.mark.daily
@pytest.mark.deploy
@pytest.mark.availability
def test_unknown_path_is_a_custom_404(site, evidence):
    """A page that does not exist answers 404 with the site's own error page.

    Remediation: add custom error responses to the distribution that map the origin's 403 and 404
    to /404.html with response code 404 (not 200, which hides missing pages from crawlers and
    monitors, and not S3's XML error, which leaks the bucket's internals).
    """
    url = site.not_found_url
    response = site.get(url)
    content_type = response.headers.get("Content-Type", "")
    s3_error = [marker for marker in S3_ERROR_MARKERS if marker in response.text]
    evidence.resource = url
    evidence.record("status", response.status_code)
    evidence.record("content_type", content_type)
    evidence.record("s3_xml_error", s3_error)
    problems = []
    if response.status_code != 404:
        problems.append(f"answered {response.status_code}, not 404")
    if s3_error:
        problems.append("with S3's XML error (" + ", ".join(s3_error) + ") instead of the custom error page")
    elif not content_type.startswith("text/html") or not response.content:
        problems.append(f"with {content_type or 'no content type'}, not an HTML error page")
    assert not problems, f"unknown path {url} " + " ".join(problems)


@pytest.mark.control("EA-SITE-04", severity="P3")
@pytest.mark.daily
@pytest.mark.deploy
@pytest.mark.availability
def test_no_broken_links(crawl, evidence):
    """No internal link, image, script or stylesheet is broken.

    Remediation: fix or remove the references listed (each with the pages that link to it), or
    upload the missing objects; then invalidate the changed pages.
    """
    crawled = crawl()
    broken = {url: {"status": found.status, "linked_from": sorted(found.referrers)[:5]}
              for url, found in crawled.fetched.items() if found.status is not None and found.status >= 400}
    evidence.record("broken", broken)
    assert not broken, f"{len(broken)} broken internal reference(s): " + "; ".join(
        f"{url} answers {b['status']} (from {', '.join(b['linked_from']) or 'the sitemap or critical paths'})"
        for url, b in broken.items())


@pytest.mark.control("EA-SITE-05", severity="P4")
@pytest.mark.weekly
@pytest.mark.availability
def test_robots_and_sitemap(site, target, thresholds, evidence):
    """robots.txt and sitemap.xml are served, and the sitemap lists only this site's URLs.

    Remediation: publish robots.txt (text/plain) and a sitemap.xml that parses and lists the site's
    pages under its own host name; regenerate the sitemap on each deployment.
    """
    robots = site.get("/robots.txt")
    sitemap = read_sitemap(site, thresholds.crawl_max_pages)
    foreign = [url for url in sitemap.urls if (urlsplit(url).hostname or "").lower() != target.host.lower()]
    evidence.record("robots", {"status": robots.status_code, "content_type": robots.headers.get("Content-Type", "")})
    evidence.record("sitemap", {"status": sitemap.status, "urls": len(sitemap.urls), "error": sitemap.error})
    evidence.record("foreign_urls", foreign[:20])
    problems = []
    if robots.status_code != 200 or not robots.headers.get("Content-Type", "").startswith("text/plain"):
        problems.append(f"/robots.txt answered {robots.status_code} "
                        f"{robots.headers.get('Content-Type', 'without a content type')}, not 200 text/plain")
    if not sitemap.ok:
        problems.append(f"/sitemap.xml is not usable: {sitemap.error}")
    elif not sitemap.urls:
        problems.append("/sitemap.xml lists no URL")
    if foreign:
        problems.append(f"/sitemap.xml lists {len(foreign)} URL(s) of another host, e.g. {foreign[0]}")
    assert not problems, "; ".join(problems)
    if sitemap.cut_short:
        evidence.warn(f"the sitemap was read in part, so not every URL was checked: {sitemap.cut_short}")


@pytest.mark.control("EA-SITE-06", severity="P3", frameworks={"ZAP": "10040"})
@pytest.mark.daily
@pytest.mark.availability
@pytest.mark.security
def test_no_mixed_content(crawl, evidence):
    """HTTPS pages load no subresource over plain HTTP.

    Remediation: load every image, script, stylesheet, frame and media file over https:// (or a
    relative URL); browsers block or flag mixed content, and it can be tampered with in transit.
    """
    crawled = crawl()
    mixed = {}
    for page, references in crawled.references.items():
        if urlsplit(page).scheme != "https":
            continue
        insecure = sorted({f"<{ref.tag} {ref.attribute}> {ref.url}" for ref in references
                           if ref.kind == "subresource" and ref.url.lower().startswith("http://")})
        if insecure:
            mixed[page] = insecure
    evidence.record("pages_checked", len(crawled.pages))
    evidence.record("mixed_content", mixed)
    assert not mixed, f"{len(mixed)} HTTPS page(s) load content over http://: " + "; ".join(
        f"{page}: {', '.join(items[:3])}" for page, items in mixed.items())


@pytest.mark.control("EA-SITE-07", severity="P2", reads=("cloudwatch:GetMetricStatistics",
                                                        "cloudfront:GetDistribution", "s3:ListObjectVersions"))
@pytest.mark.daily
@pytest.mark.deploy
@pytest.mark.availability
def test_edge_error_rates(aws, target, thresholds, evidence, post_deploy):
    """The edge's 5xx and 4xx error rates (last 24 hours; since the deployment, after one) are within their limits.

    Remediation: a 5xx rate points at the origin (bucket policy, OAC, a missing default root
    object) or at the distribution's config; a 4xx rate at broken links, a deployment that
    dropped pages, or scanners: read the distribution's access logs for the failing URLs.
    """
    from edgeaudit.checks.metrics import require_rate, require_rate_since

    evidence.resource = f"CloudWatch AWS/CloudFront {target.distribution_id}"
    if post_deploy:
        since, what = _deployment(aws, target)
        evidence.record("period", {"from": since, "to": "now", "since": what})
        rate_5xx = require_rate_since(aws, target.distribution_id, "5xxErrorRate", since, what)
        rate_4xx = require_rate_since(aws, target.distribution_id, "4xxErrorRate", since, what)
        period = f"since the deployment ({since:%Y-%m-%d %H:%M} UTC)"
    else:
        evidence.record("period", "the last 24 h")
        rate_5xx = require_rate(aws, target.distribution_id, "5xxErrorRate", 24)
        rate_4xx = require_rate(aws, target.distribution_id, "4xxErrorRate", 24)
        period = "of the last 24 h"
    evidence.measure("error_rate_5xx", rate_5xx, thresholds.error_rate_5xx_max)
    evidence.measure("error_rate_4xx", rate_4xx, thresholds.error_rate_4xx_max)
    problems = []
    if rate_5xx > thresholds.error_rate_5xx_max:
        problems.append(f"5xx rate {rate_5xx:.3%} over {thresholds.error_rate_5xx_max:.3%}")
    if rate_4xx > thresholds.error_rate_4xx_max:
        problems.append(f"4xx rate {rate_4xx:.2%} over {thresholds.error_rate_4xx_max:.2%}")
    evidence.require_none(problems, f"error rates {period} too high: " + "; ".join(problems))


def _deployment(aws, target):
    """(when, what) of the latest change to the site: the newest of the distribution's
    LastModifiedTime and the start of the latest release in the bucket's version history."""
    from edgeaudit.checks import drill, rollback

    changed = aws.cloudfront.get_distribution(Id=target.distribution_id)["Distribution"]["LastModifiedTime"]
    window = target.deploy_window_s or rollback.DEPLOY_WINDOW_S
    release = rollback.latest_deployment(drill.history(aws, target.bucket), window)
    if release is not None and release.started > changed:
        return release.started, (f"the latest release in s3://{target.bucket}: {release.writes} writes from "
                                 f"{release.started:%Y-%m-%d %H:%M:%S} UTC")
    return changed, f"the distribution's last change (LastModifiedTime {changed:%Y-%m-%d %H:%M:%S} UTC)"
