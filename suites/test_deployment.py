"""Deployment status (seed: deployment-status-dashboard, comprehensive-deployment-test)."""

import datetime as dt

import pytest

from edgeaudit.checks.origin import Origin
from edgeaudit.web.crawl import same_origin


@pytest.mark.control("EA-DEP-01", severity="P1", reads=("cloudfront:GetDistribution",))
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
    in_progress = round(minutes, 1) if status == "InProgress" else 0  # a deployed change is in progress no longer
    evidence.measure("minutes_in_progress", in_progress, thresholds.deploy_stuck_min, unit="min")
    if status == "InProgress":
        assert minutes <= thresholds.deploy_stuck_min, (
            f"deployment InProgress for {minutes:.0f} min, over the {thresholds.deploy_stuck_min} min limit")
        evidence.warn(f"deployment InProgress for {minutes:.0f} min")
    else:
        assert status == "Deployed", f"distribution status is {status}, not Deployed"


def _compare(site, origin, urls, evidence):
    """{url: comparison} of the edge's answer (decoded body) with the bucket's object; an answer
    larger than the bytes read of one answer is not compared, and the control says so."""
    found, partial = {}, []
    for url in urls:
        response = site.get(url)
        if getattr(response, "truncated", False):
            partial.append(url)
            continue
        found[url] = origin.compare(url, response.status_code, response.content)
    if partial:
        evidence.record("not_compared_too_large", partial)
        evidence.warn(f"{len(partial)} answer(s) larger than the bytes read of one answer (EDGEAUDIT_HTTP_MAX_BYTES) "
                      f"were not compared with their object, e.g. {partial[0]}")
    return found


@pytest.mark.control("EA-DEP-02", severity="P2",
                     reads=("cloudfront:GetDistributionConfig", "s3:ListObjectsV2", "s3:GetObject"))
@pytest.mark.daily
@pytest.mark.deploy
@pytest.mark.availability
def test_edge_serves_current_release(aws, site, target, evidence):
    """For every critical path, the edge serves the bytes of the object now in the bucket.

    Remediation: invalidate the paths listed (aws cloudfront create-invalidation), and check the
    last deployment finished its upload; a lasting difference means the edge reads another origin.
    """
    origin = Origin(aws, target)
    compared = _compare(site, origin, [site.url(path) for path in target.paths], evidence)
    stale = [url for url, c in compared.items() if not c.same]
    evidence.record("pages", {url: c.as_dict() for url, c in compared.items()})
    evidence.require_none(stale, "the edge does not serve the current release of: " + "; ".join(
        f"{url} ({compared[url].how})" for url in stale))


@pytest.mark.control("EA-DEP-04", severity="P2",
                     reads=("cloudfront:GetDistributionConfig", "s3:ListObjectsV2", "s3:GetObject"))
@pytest.mark.monthly
@pytest.mark.availability
def test_every_url_matches_its_object(aws, site, target, crawl, evidence):
    """Every URL of the sitemap and of the crawl answers 200 at the edge with its object's bytes.

    The URLs are the crawl's, within crawl_max_pages (the sitemap's URLs over it are not asked,
    and the crawl cut short is a warning); a URL the crawl found that does not answer 200 is a
    finding.

    Remediation: invalidate the URLs listed, remove sitemap entries for pages that no longer
    exist, and re-run the deployment if objects are missing from the bucket.
    """
    crawled = crawl()
    listed = [url for url in crawled.sitemap.urls if same_origin(url, target.url)]
    offenders = {url: f"the edge answered {found.status}" for url, found in crawled.fetched.items()
                 if found.status != 200}
    origin = Origin(aws, target)
    compared = _compare(site, origin, [url for url, found in crawled.fetched.items() if found.status == 200], evidence)
    offenders.update({url: c.how for url, c in compared.items() if not c.same})
    evidence.record("sitemap_urls", len(listed))
    evidence.record("urls_compared", len(compared))
    evidence.require_none(offenders, f"{len(offenders)} URL(s) differ from the bucket: " + "; ".join(
        f"{url} ({how})" for url, how in offenders.items()))
