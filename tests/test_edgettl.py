"""How long the edge keeps an answer: CloudFront's rules for s-maxage, max-age, Expires,
no-cache and a missing Cache-Control, within a behaviour's TTLs."""

from __future__ import annotations

from edgeaudit.checks.edgettl import Ttls, behaviour_for, edge_lifetime

OPTIMIZED = Ttls("cache policy Managed-CachingOptimized", 1, 86400, 31536000)
ORIGIN_HEADERS = Ttls("cache policy UseOriginCacheControlHeaders", 0, 0, 31536000)


def test_s_maxage_wins_over_max_age_and_is_held_within_the_ttls():
    assert edge_lifetime({"max-age": "300", "s-maxage": "86400"}, {}, OPTIMIZED)[0] == 86400
    assert edge_lifetime({"max-age": "300"}, {}, OPTIMIZED)[0] == 300
    assert edge_lifetime({"max-age": "300"}, {}, Ttls("legacy", 3600, 86400, 31536000))[0] == 3600
    assert edge_lifetime({"max-age": "99999999"}, {}, OPTIMIZED)[0] == 31536000


def test_no_cache_is_held_to_min_ttl_and_silence_gets_default_ttl():
    assert edge_lifetime({"no-cache": True}, {}, ORIGIN_HEADERS) == (0, "no-cache held to MinTTL (cache policy "
                                                                        "UseOriginCacheControlHeaders: MinTTL 0, "
                                                                        "DefaultTTL 0, MaxTTL 31536000)")
    assert edge_lifetime({"private": True}, {}, Ttls("p", 600, 600, 600))[0] == 600
    seconds, why = edge_lifetime({"public": True}, {}, OPTIMIZED)
    assert seconds == 86400 and why.startswith("no Cache-Control lifetime: DefaultTTL")


def test_expires_counts_from_the_answers_date():
    headers = {"Date": "Mon, 07 Dec 2026 10:00:00 GMT", "Expires": "Tue, 08 Dec 2026 10:00:00 GMT"}
    assert edge_lifetime({}, headers, OPTIMIZED)[0] == 86400
    assert edge_lifetime({}, {**headers, "Expires": "0"}, OPTIMIZED)[0] == 1  # unreadable: expired, MinTTL


def test_the_first_matching_behaviour_serves_a_path():
    config = {"DefaultCacheBehavior": {"Id": "default"},
              "CacheBehaviors": {"Items": [{"PathPattern": "/assets/*", "Id": "assets"},
                                           {"PathPattern": "*.html", "Id": "html"}]}}
    assert behaviour_for(config, "/assets/a.html")[1]["Id"] == "assets"
    assert behaviour_for(config, "/about.html") == ("*.html", {"PathPattern": "*.html", "Id": "html"})
    assert behaviour_for(config, "/")[0] == "(default)"
