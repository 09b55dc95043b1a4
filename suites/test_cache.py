"""Caching at the edge (seed: caching-cdn-optimizer)."""

import re
from urllib.parse import urlsplit

import pytest

from edgeaudit.checks import edgettl

# What CloudFront compresses: text and a few structured types, from 1,000 to 10,000,000 bytes.
COMPRESSIBLE = re.compile(r"^(text/|application/(javascript|x-javascript|json|xml|ld\+json|manifest\+json)"
                          r"|image/svg\+xml|font/(ttf|otf))")
COMPRESS_MIN_BYTES, COMPRESS_MAX_BYTES = 1_000, 10_000_000
# A content hash in the file name: app.8c2e4d.js, main-3b1f9e0c.css, chunk.5f2a1b9c7d3e.mjs
FINGERPRINT = re.compile(r"[.\-_]((?=[0-9a-f]*\d)[0-9a-f]{6,}|(?=[0-9A-Za-z]*\d)(?=[0-9A-Za-z]*[A-Za-z])"
                         r"[0-9A-Za-z]{8,})\.[A-Za-z0-9]+$")


def _behaviours(config):
    yield "(default)", config["DefaultCacheBehavior"]
    for behaviour in config.get("CacheBehaviors", {}).get("Items", []) or []:
        yield behaviour["PathPattern"], behaviour


def _cache_control(value):
    """Cache-Control directives: {name: value or True}."""
    found = {}
    for part in (value or "").split(","):
        name, _, argument = part.strip().partition("=")
        if name:
            found[name.lower()] = argument.strip('"') if argument else True
    return found


def _max_age(directives):
    try:
        return int(directives.get("max-age"))
    except (TypeError, ValueError):
        return None


@pytest.mark.control("EA-CACHE-01", severity="P4", reads=("cloudfront:GetDistributionConfig",))
@pytest.mark.weekly
@pytest.mark.performance
def test_compression(aws, site, target, crawl, evidence):
    """Compression is on for every cache behaviour, and text assets come back compressed when asked.

    Remediation: set Compress to true on every cache behaviour and use a cache policy that
    includes Accept-Encoding gzip and br (e.g. Managed-CachingOptimized).
    """
    config = aws.cloudfront.get_distribution_config(Id=target.distribution_id)["DistributionConfig"]
    behaviours = {pattern: bool(b.get("Compress")) for pattern, b in _behaviours(config)}
    crawled = crawl()
    checked, uncompressed = {}, []
    for url, found in crawled.fetched.items():
        if found.status != 200 or not COMPRESSIBLE.match(found.content_type.lower()):
            continue
        response = site.get(url)  # asked with Accept-Encoding: gzip, deflate
        size = len(response.content)
        if not COMPRESS_MIN_BYTES <= size <= COMPRESS_MAX_BYTES:
            continue
        encoding = response.headers.get("Content-Encoding", "")
        checked[url] = {"bytes": size, "content_encoding": encoding or None}
        if encoding.lower() not in ("gzip", "br"):
            uncompressed.append(url)
    off = [pattern for pattern, on in behaviours.items() if not on]
    evidence.record("behaviours_compress", behaviours)
    evidence.record("assets", checked)
    evidence.record("offenders", {"behaviours": off, "uncompressed": uncompressed})
    problems = []
    if off:
        problems.append("Compress is off on cache behaviour(s) " + ", ".join(off))
    if uncompressed:
        problems.append(f"{len(uncompressed)} text asset(s) served uncompressed to a client asking for gzip: "
                        + ", ".join(uncompressed[:5]))
    assert not problems, "; ".join(problems)


@pytest.mark.control("EA-CACHE-02", severity="P4",
                     reads=("cloudfront:GetDistributionConfig", "cloudfront:GetCachePolicy"))
@pytest.mark.weekly
@pytest.mark.performance
def test_cache_lifetimes(aws, site, target, thresholds, crawl, evidence):
    """Fingerprinted assets are cached for a year and immutable; HTML briefly (at the edge too) or revalidated.

    Remediation: upload hashed assets with Cache-Control "public, max-age=31536000, immutable"
    and HTML with "max-age" of at most html_max_age_s (or "no-cache"), e.g. in the deploy's s3 sync;
    keep s-maxage, and the HTML behaviour's cache policy MinTTL (and DefaultTTL, for HTML sent
    without Cache-Control), at most html_max_age_s too, so that the edge does not keep a page longer.
    """
    config = aws.cloudfront.get_distribution_config(Id=target.distribution_id)["DistributionConfig"]
    limits = {}  # path pattern -> its behaviour's TTLs, read once
    crawled = crawl()
    assets, pages, at_edge, offenders = {}, {}, {}, {}
    for url, found in crawled.fetched.items():
        if found.status != 200:
            continue
        response = site.get(url)
        value = response.headers.get("Cache-Control")
        directives = _cache_control(value)
        max_age = _max_age(directives)
        if found.is_html:
            pages[url] = value
            pattern, behaviour = edgettl.behaviour_for(config, urlsplit(url).path)
            if pattern not in limits:
                limits[pattern] = edgettl.ttls(aws, behaviour)
            seconds, why = edgettl.edge_lifetime(directives, response.headers, limits[pattern])
            at_edge[url] = {"seconds": seconds, "behaviour": pattern, "how": why}
            problems = []
            if not ("no-cache" in directives or "no-store" in directives
                    or (max_age is not None and max_age <= thresholds.html_max_age_s)):
                problems.append(f"HTML with Cache-Control {value or 'absent'} "
                                f"(max-age <= {thresholds.html_max_age_s} or no-cache)")
            if seconds > thresholds.html_max_age_s:
                problems.append(f"kept {seconds} s at the edge by behaviour {pattern}, {why} "
                                f"(edge lifetime <= {thresholds.html_max_age_s})")
            if problems:
                offenders[url] = "; ".join(problems)
        elif FINGERPRINT.search(urlsplit(url).path):
            assets[url] = value
            if max_age is None or max_age < thresholds.immutable_min_age_s or "immutable" not in directives:
                offenders[url] = (f"fingerprinted asset with Cache-Control {value or 'absent'} "
                                  f"(max-age >= {thresholds.immutable_min_age_s} and immutable)")
    evidence.record("fingerprinted_assets", assets)
    evidence.record("html_pages", pages)
    evidence.record("html_edge_lifetimes", at_edge)
    if at_edge:
        evidence.measure("longest_html_edge_lifetime_s", max(v["seconds"] for v in at_edge.values()),
                         thresholds.html_max_age_s, unit="s")
    html_ages = [0 if {"no-cache", "no-store"} & set(d) else _max_age(d)
                 for d in map(_cache_control, pages.values())]
    if html_ages and None not in html_ages:  # without a max-age an HTML page has no lifetime to measure
        evidence.measure("longest_html_max_age_s", max(html_ages), thresholds.html_max_age_s, unit="s")
    if assets:
        asset_ages = [_max_age(_cache_control(value)) or 0 for value in assets.values()]
        evidence.measure("shortest_asset_max_age_s", min(asset_ages), thresholds.immutable_min_age_s,
                         better="higher", unit="s")
    evidence.require_none(offenders, f"{len(offenders)} URL(s) with the wrong cache lifetime: " + "; ".join(
        f"{url}: {why}" for url, why in offenders.items()))


@pytest.mark.control("EA-CACHE-04", severity="P3", reads=("cloudwatch:GetMetricStatistics",))
@pytest.mark.weekly
@pytest.mark.performance
def test_cache_hit_ratio(aws, target, thresholds, evidence):
    """The edge answers at least cache_hit_ratio_min of requests from its cache (7 days of CloudWatch).

    Remediation: cache HTML for a short TTL and assets for a year, keep cookies, headers and
    query strings out of the cache key, and turn on Origin Shield; enable the distribution's
    additional metrics so that CacheHitRate is recorded.
    """
    from edgeaudit.checks.metrics import require_rate

    evidence.resource = f"cloudfront:distribution/{target.distribution_id}"
    evidence.record("source", "CloudWatch CacheHitRate, last 7 days")
    ratio = require_rate(aws, target.distribution_id, "CacheHitRate", 7 * 24, fix=(
        "CacheHitRate is one of CloudFront's additional metrics, a paid option that is off by default: "
        "enable it for this distribution (CloudFront console > Telemetry > Monitoring, or "
        "cloudfront:CreateMonitoringSubscription); without it the cache hit ratio is not measured"))
    evidence.measure("cache_hit_ratio", round(ratio, 4), thresholds.cache_hit_ratio_min, better="higher")
    assert ratio >= thresholds.cache_hit_ratio_min, (
        f"expected a cache hit ratio of at least {thresholds.cache_hit_ratio_min:.0%}; seen {ratio:.1%}")
