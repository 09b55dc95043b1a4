"""Security headers (seed: security-headers-validator), on every critical page and the 404 page."""

import re
from urllib.parse import urlsplit

import pytest

from edgeaudit.checks import observatory
from edgeaudit.errors import NotEvaluated
from edgeaudit.web.site import PROBE_ORIGIN

REFERRER_POLICIES = ("no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin")
KNOWN_REFERRER_POLICIES = REFERRER_POLICIES + ("origin", "origin-when-cross-origin", "unsafe-url",
                                               "no-referrer-when-downgrade")
VERSION_HEADERS = ("X-Powered-By", "X-AspNet-Version", "X-AspNetMvc-Version")
VERSION_NUMBER = re.compile(r"\d+\.\d+|/\s*\d")
NONCE_OR_HASH = ("'nonce-", "'sha256-", "'sha384-", "'sha512-")
ANY_SCRIPT_SOURCES = ("*", "https:", "http:", "data:")  # each admits scripts from any host
# Domains where anyone can publish a script under a name of their own: a wildcard over one of them
# (https://*.cloudfront.net) admits anybody's scripts, as a wildcard over a top-level domain does.
SHARED_HOSTING = ("cloudfront.net", "amazonaws.com", "github.io", "githubusercontent.com", "googleusercontent.com",
                  "storage.googleapis.com", "appspot.com", "web.app", "firebaseapp.com", "herokuapp.com",
                  "netlify.app", "vercel.app", "pages.dev", "workers.dev", "azurewebsites.net",
                  "blob.core.windows.net", "azureedge.net", "akamaized.net", "fastly.net", "jsdelivr.net",
                  "unpkg.com")
# second-level labels under which country domains let anyone register (co.uk, com.au, ne.jp, ...):
# a wildcard over one of those public suffixes covers everyone's hosts as *.com does
PUBLIC_SECOND_LEVELS = ("co", "com", "net", "org", "ac", "edu", "gov", "ne", "or", "go", "ltd", "plc")
_SOURCE_HOST = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?([^/:'\s]+)")


def _header_pages(site, target):
    """(url, response) for each critical path and for a page that does not exist."""
    urls = [site.url(path) for path in target.paths] + [site.not_found_url]
    return [(url, site.get(url)) for url in urls]


def _values(response, name):
    """Every value of a header as sent (Set-Cookie and CSP may come more than once)."""
    return [value for key in response.raw.headers for value in response.raw.headers.getlist(key)
            if key.lower() == name.lower()]


def _policies(response):
    """The enforced CSP policies of an answer, each as {directive: [sources]} (first occurrence wins)."""
    found = []
    for value in _values(response, "Content-Security-Policy"):
        for policy in value.split(","):
            directives = {}
            for entry in policy.split(";"):
                words = entry.split()
                if words:
                    directives.setdefault(words[0].lower(), [w.lower() for w in words[1:]])
            if directives:
                found.append(directives)
    return found


def _script_problems(policy):
    """What lets a script the site did not write run under this policy."""
    sources = policy.get("script-src", policy.get("default-src"))
    problems = []
    if sources is None:
        problems.append("no script-src or default-src, so any script (inline too) may run")
    else:
        directive = "script-src" if "script-src" in policy else "default-src"
        keyed = any(s.startswith(NONCE_OR_HASH) for s in sources)
        if "'unsafe-inline'" in sources and not keyed:
            problems.append("'unsafe-inline' in script sources")
        if "'unsafe-eval'" in sources:
            problems.append("'unsafe-eval' in script sources")
        problems += _any_script(directive, sources)
    if "script-src-elem" in policy:  # <script> elements follow it instead of script-src
        elements = policy["script-src-elem"]
        if "'unsafe-inline'" in elements and not any(s.startswith(NONCE_OR_HASH) for s in elements):
            problems.append("'unsafe-inline' in script-src-elem")
        problems += _any_script("script-src-elem", elements)
    for directive, values in policy.items():
        if directive in ("report-uri", "report-to"):
            continue
        problems += [f"http: source {value} in {directive}" for value in values if value.startswith("http:")]
    return problems


def _any_script(directive, sources):
    """Sources that admit scripts from anywhere (every host, or any URL of a scheme); a nonce or
    hash with 'strict-dynamic' makes browsers ignore them."""
    if "'strict-dynamic'" in sources and any(s.startswith(NONCE_OR_HASH) for s in sources):
        return []
    return [f"{directive} allows scripts from anywhere: {s}" for s in sources
            if s in ANY_SCRIPT_SOURCES or _wildcard_anywhere(s)]


def _wildcard_anywhere(source):
    """A host wildcard that covers everyone's hosts: any host (https://*), a whole top-level domain
    (*.com) or country's public suffix (*.co.uk), or a domain anyone can publish on (*.cloudfront.net)."""
    found = _SOURCE_HOST.match(source.lower())
    host = found.group(1) if found else ""
    if host == "*":
        return True
    if not host.startswith("*."):
        return False
    rest = host[2:]
    labels = rest.split(".")
    public_suffix = len(labels) == 1 or (len(labels) == 2 and labels[0] in PUBLIC_SECOND_LEVELS
                                         and len(labels[1]) == 2)
    return public_suffix or any(rest == shared or rest.endswith("." + shared) for shared in SHARED_HOSTING)


def _offenders_message(what, offenders, seen):
    return f"{what} on: " + ", ".join(f"{url} ({'absent' if seen[url] is None else seen[url]})" for url in offenders)


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
    ages = [int(m.group(1)) if (m := re.search(r"max-age\s*=\s*\"?(\d+)", v or "", re.I)) else 0 for v in seen.values()]
    evidence.measure("lowest_max_age_s", min(ages), thresholds.hsts_min_age_s, better="higher", unit="s")
    evidence.require_none(offenders, (f"Strict-Transport-Security missing or max-age < {thresholds.hsts_min_age_s} on: "
                                      + ", ".join(f"{u} ({seen[u] or 'absent'})" for u in offenders)))
    if without_subdomains:
        evidence.warn("HSTS without includeSubDomains on: " + ", ".join(without_subdomains))


@pytest.mark.control("EA-HDR-02", severity="P3", frameworks={"OBS": "content-security-policy", "ZAP": "10038"})
@pytest.mark.daily
@pytest.mark.quarterly
@pytest.mark.deploy
@pytest.mark.security
def test_content_security_policy(site, target, evidence):
    """An enforced Content-Security-Policy restricts scripts, without unsafe-inline, unsafe-eval, http: or wildcards.

    Remediation: set ContentSecurityPolicy in the response headers policy (not only
    Content-Security-Policy-Report-Only) with script-src (or default-src), and script-src-elem
    if set, limited to 'self' and named https origins (no *, https:, http: or data:, no wildcard
    over a top-level domain or a domain anyone publishes on, such as https://*.cloudfront.net);
    move inline scripts to files, or allow them by nonce or hash.
    """
    seen, problems = {}, {}
    for url, response in _header_pages(site, target):
        policies = _policies(response)
        report_only = response.headers.get("Content-Security-Policy-Report-Only")
        seen[url] = {"enforced": _values(response, "Content-Security-Policy") or None, "report_only": report_only}
        if not policies:
            problems[url] = ["only Content-Security-Policy-Report-Only, nothing enforced" if report_only
                             else "no Content-Security-Policy"]
            continue
        found = min((_script_problems(policy) for policy in policies), key=len)  # every policy applies
        if found:
            problems[url] = found
    evidence.record("headers", seen)
    evidence.require_none(problems, "Content-Security-Policy does not restrict scripts on: " + "; ".join(
        f"{url}: {', '.join(found)}" for url, found in problems.items()))


@pytest.mark.control("EA-HDR-03", severity="P3", frameworks={"OBS": "x-content-type-options", "ZAP": "10021"})
@pytest.mark.daily
@pytest.mark.quarterly
@pytest.mark.deploy
@pytest.mark.security
def test_content_type_options(site, target, evidence):
    """X-Content-Type-Options: nosniff is sent.

    Remediation: turn on ContentTypeOptions in the response headers policy of every cache behaviour.
    """
    seen = {url: response.headers.get("X-Content-Type-Options") for url, response in _header_pages(site, target)}
    offenders = [url for url, value in seen.items() if (value or "").strip().lower() != "nosniff"]
    evidence.record("headers", seen)
    evidence.require_none(offenders, _offenders_message("X-Content-Type-Options is not nosniff", offenders, seen))


@pytest.mark.control("EA-HDR-04", severity="P3", frameworks={"OBS": "x-frame-options", "ZAP": "10020"})
@pytest.mark.daily
@pytest.mark.quarterly
@pytest.mark.deploy
@pytest.mark.security
def test_clickjacking_protection(site, target, evidence):
    """Pages cannot be framed by other sites: X-Frame-Options DENY/SAMEORIGIN or CSP frame-ancestors.

    Remediation: set FrameOptions (DENY or SAMEORIGIN) in the response headers policy, or a CSP
    frame-ancestors directive ('none' or 'self').
    """
    seen, offenders = {}, []
    for url, response in _header_pages(site, target):
        frame_options = response.headers.get("X-Frame-Options")
        ancestors = [" ".join(p["frame-ancestors"]) for p in _policies(response) if "frame-ancestors" in p]
        seen[url] = {"x_frame_options": frame_options, "frame_ancestors": ancestors or None}
        restricted = any("*" not in value.split() and "https:" not in value.split() for value in ancestors)
        if (frame_options or "").strip().lower() not in ("deny", "sameorigin") and not restricted:
            offenders.append(url)
    evidence.record("headers", seen)
    evidence.require_none(offenders, "no X-Frame-Options DENY/SAMEORIGIN and no CSP frame-ancestors on: " + ", ".join(
        f"{url} (X-Frame-Options {seen[url]['x_frame_options'] or 'absent'})" for url in offenders))


@pytest.mark.control("EA-HDR-05", severity="P4", frameworks={"OBS": "referrer-policy"})
@pytest.mark.daily
@pytest.mark.quarterly
@pytest.mark.deploy
@pytest.mark.security
def test_referrer_policy(site, target, evidence):
    """Referrer-Policy keeps URLs private (no-referrer, same-origin or strict-origin[-when-cross-origin]).

    Remediation: set ReferrerPolicy in the response headers policy to
    strict-origin-when-cross-origin (or stricter).
    """
    seen, offenders = {}, []
    for url, response in _header_pages(site, target):
        value = ", ".join(_values(response, "Referrer-Policy")) or None
        seen[url] = value
        known = [t.strip().lower() for t in (value or "").split(",") if t.strip().lower() in KNOWN_REFERRER_POLICIES]
        if not known or known[-1] not in REFERRER_POLICIES:  # browsers use the last policy they know
            offenders.append(url)
    evidence.record("headers", seen)
    evidence.record("allowed", list(REFERRER_POLICIES))
    evidence.require_none(offenders, _offenders_message("Referrer-Policy missing or leaking URLs", offenders, seen))


@pytest.mark.control("EA-HDR-06", severity="P4", frameworks={"ZAP": "10063"})
@pytest.mark.daily
@pytest.mark.quarterly
@pytest.mark.deploy
@pytest.mark.security
def test_permissions_policy(site, target, evidence):
    """A Permissions-Policy header is sent.

    Remediation: add a custom header Permissions-Policy to the response headers policy that turns
    off the browser features the site does not use, e.g. camera=(), microphone=(), geolocation=().
    """
    seen = {url: response.headers.get("Permissions-Policy") for url, response in _header_pages(site, target)}
    offenders = [url for url, value in seen.items() if not (value or "").strip()]
    evidence.record("headers", seen)
    evidence.require_none(offenders, "no Permissions-Policy header on: " + ", ".join(offenders))


@pytest.mark.control("EA-HDR-07", severity="P4", frameworks={"ZAP": "10036, 10037"})
@pytest.mark.daily
@pytest.mark.quarterly
@pytest.mark.deploy
@pytest.mark.security
def test_no_version_disclosure(site, target, evidence):
    """No header tells which software and version serves the site.

    Remediation: remove X-Powered-By (and X-AspNet-Version) with the RemoveHeadersConfig of the
    response headers policy, and make the origin send no version in Server.
    """
    seen, offenders = {}, {}
    for url, response in _header_pages(site, target):
        found = {name: response.headers[name] for name in VERSION_HEADERS if name in response.headers}
        server = response.headers.get("Server")
        seen[url] = {**found, "Server": server}
        leaks = [f"{name}: {value}" for name, value in found.items()]
        if server and VERSION_NUMBER.search(server):
            leaks.append(f"Server: {server}")
        if leaks:
            offenders[url] = leaks
    evidence.record("headers", seen)
    evidence.require_none(offenders, "software versions disclosed on: " + "; ".join(
        f"{url} ({', '.join(leaks)})" for url, leaks in offenders.items()))


def _http_route(site, target):
    """The plain-HTTP URL and where its redirects lead (HTTP hops followed, at most five), or None
    when nothing answers over HTTP."""
    route = [target.http_url]
    for _ in range(5):
        try:
            response = site.get(route[-1])
        except NotEvaluated:
            return None if len(route) == 1 else tuple(route)
        location = response.headers.get("Location")
        if not response.is_redirect or not location:
            break
        route.append(site.url(location, base=route[-1]))
        if urlsplit(route[-1]).scheme == "https":
            break
    return tuple(route)


def _observation(site, url, response, route):
    raw = response.raw.headers
    cors = site.cross_origin(url)
    return observatory.Observation(
        url=url, headers=tuple((key, value) for key in raw for value in raw.getlist(key)),
        body=response.text if "html" in response.headers.get("Content-Type", "") else "",
        http_route=route, cors_origin=PROBE_ORIGIN,
        cors_headers=tuple((k, v) for k, v in cors.headers.items()))


@pytest.mark.control("EA-HDR-08", severity="P3", frameworks={"OBS": "score"})
@pytest.mark.daily
@pytest.mark.quarterly
@pytest.mark.security
def test_observatory_score(site, target, thresholds, evidence):
    """The MDN HTTP Observatory score is at least observatory_min_score (grade A) on every page.

    Remediation: fix the tests with negative modifiers listed in the evidence, most negative first
    (a missing CSP costs 25, clickjacking protection or HSTS 20); bonuses count only from 90 up.
    """
    route = _http_route(site, target)
    scores, low = {}, []
    for url, response in _header_pages(site, target):
        result = observatory.score(_observation(site, url, response, route))
        scores[url] = {"score": result.score, "grade": result.grade,
                       "tests": {name: f"{t['result']} ({t['modifier']:+d})" for name, t in result.tests.items()}}
        if result.score < thresholds.observatory_min_score:
            low.append((url, result))
    evidence.record("http_route", list(route) if route else None)
    evidence.record("min_score", thresholds.observatory_min_score)
    evidence.measure("lowest_score", min(s["score"] for s in scores.values()), thresholds.observatory_min_score,
                     better="higher", unit="points")
    evidence.record("pages", scores)
    evidence.record("offenders", [url for url, _ in low])
    assert not low, f"Observatory score below {thresholds.observatory_min_score}: " + "; ".join(
        f"{url} scores {r.score} ({r.grade}): " + ", ".join(f"{name} {mod:+d}" for name, mod in
                                                            sorted(r.penalties.items(), key=lambda i: i[1]))
        for url, r in low)


@pytest.mark.control("EA-HDR-09", severity="P3", frameworks={"OBS": "cookies", "ZAP": "10010, 10011, 10054"})
@pytest.mark.daily
@pytest.mark.quarterly
@pytest.mark.security
def test_cookie_flags(site, target, evidence):
    """Cookies, if any, are Secure, SameSite, and HttpOnly when they hold a session.

    Remediation: set Secure and SameSite=Lax (or Strict) on every cookie and HttpOnly on session
    cookies, where they are made (the origin, a function, or a third-party script's server).
    """
    cookies, offenders = {}, {}
    for url, response in _header_pages(site, target):
        for header in _values(response, "Set-Cookie"):
            cookie = observatory.parse_set_cookie(header)
            cookies.setdefault(cookie.name, {"secure": cookie.secure, "http_only": cookie.http_only,
                                             "same_site": cookie.same_site, "session": cookie.session_like,
                                             "set_by": url})
            same_site = (cookie.same_site or "").lower()
            missing = [flag for flag, ok in (
                ("Secure", cookie.secure),
                ("SameSite=Lax or Strict", same_site in ("lax", "strict") or (same_site == "none" and cookie.secure)),
                ("HttpOnly", cookie.http_only or not cookie.session_like)) if not ok]
            if missing:
                offenders[cookie.name] = missing
    evidence.record("cookies", cookies)
    evidence.require_none(offenders, "cookies without the flags they need: " + "; ".join(
        f"{name} lacks {', '.join(flags)}" for name, flags in offenders.items()))
