"""The MDN HTTP Observatory score of one page, for the tests that apply to a static site.

The algorithm of the MDN HTTP Observatory (mdn/mdn-http-observatory, scanner and grader): every
site starts at 100; each test gives one result with a modifier from the published table; the
penalties (negative modifiers) are summed first, and the bonuses are added only when that
uncurved score is at least 90; the score is floored at 0, and the grade is read from the score
rounded down to a multiple of 5 (anything above 100 is A+).

Tests: CSP, cookies, CORS, redirection, Referrer-Policy, HSTS, SRI, X-Content-Type-Options,
X-Frame-Options, CORP. Not modelled: the HSTS preload list (no `hsts-preloaded` bonus, no
`redirection-all-redirects-preloaded`) and the public-suffix list (SRI compares the last two
labels of the host instead of the registrable domain).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Iterable
from urllib.parse import urlsplit

MINIMUM_SCORE_FOR_EXTRA_CREDIT = 90
SIX_MONTHS_S = 15_552_000  # the Observatory's "six months" (it accepts the common 180 days)
GRADES = [(100, "A+"), (90, "A"), (85, "A-"), (80, "B+"), (70, "B"), (65, "B-"), (60, "C+"), (50, "C"),
          (45, "C-"), (40, "D+"), (30, "D"), (25, "D-"), (0, "F")]

MODIFIERS: dict[str, int] = {
    # content-security-policy
    "csp-implemented-with-no-unsafe-default-src-none": 10,
    "csp-implemented-with-no-unsafe": 5,
    "csp-implemented-with-unsafe-inline-in-style-src-only": 0,
    "csp-implemented-but-duplicate-directives": 0,
    "csp-implemented-with-insecure-scheme-in-passive-content-only": -10,
    "csp-implemented-with-unsafe-eval": -10,
    "csp-implemented-with-unsafe-inline": -20,
    "csp-implemented-with-insecure-scheme": -20,
    "csp-header-invalid": -25,
    "csp-not-implemented": -25,
    "csp-not-implemented-but-reporting-enabled": -25,
    # cookies
    "cookies-secure-with-httponly-sessions-and-samesite": 5,
    "cookies-secure-with-httponly-sessions": 0,
    "cookies-not-found": 0,
    "cookies-without-secure-flag-but-protected-by-hsts": -5,
    "cookies-session-without-secure-flag-but-protected-by-hsts": -10,
    "cookies-without-secure-flag": -20,
    "cookies-samesite-flag-invalid": -20,
    "cookies-anticsrf-without-samesite-flag": -20,
    "cookies-session-without-httponly-flag": -30,
    "cookies-session-without-secure-flag": -40,
    # cross-origin-resource-sharing
    "cross-origin-resource-sharing-not-implemented": 0,
    "cross-origin-resource-sharing-implemented-with-public-access": 0,
    "cross-origin-resource-sharing-implemented-with-restricted-access": 0,
    "cross-origin-resource-sharing-implemented-with-universal-access": -50,
    # redirection
    "redirection-to-https": 0,
    "redirection-not-needed-no-http": 0,
    "redirection-off-host-from-http": -5,
    "redirection-not-to-https-on-initial-redirection": -10,
    "redirection-missing": -20,
    "redirection-not-to-https": -20,
    # referrer-policy
    "referrer-policy-private": 5,
    "referrer-policy-not-implemented": 0,
    "referrer-policy-unsafe": -5,
    "referrer-policy-header-invalid": -5,
    # strict-transport-security
    "hsts-implemented-max-age-at-least-six-months": 0,
    "hsts-implemented-max-age-less-than-six-months": -10,
    "hsts-not-implemented": -20,
    "hsts-header-invalid": -20,
    # subresource-integrity
    "sri-implemented-and-all-scripts-loaded-securely": 5,
    "sri-implemented-and-external-scripts-loaded-securely": 5,
    "sri-not-implemented-response-not-html": 0,
    "sri-not-implemented-but-no-scripts-loaded": 0,
    "sri-not-implemented-but-all-scripts-loaded-from-secure-origin": 0,
    "sri-not-implemented-but-external-scripts-loaded-securely": -5,
    "sri-implemented-but-external-scripts-not-loaded-securely": -20,
    "sri-not-implemented-and-external-scripts-not-loaded-securely": -50,
    # x-content-type-options
    "x-content-type-options-nosniff": 0,
    "x-content-type-options-not-implemented": -5,
    "x-content-type-options-header-invalid": -5,
    # x-frame-options
    "x-frame-options-implemented-via-csp": 5,
    "x-frame-options-sameorigin-or-deny": 0,
    "x-frame-options-allow-from-origin": 0,
    "x-frame-options-not-implemented": -20,
    "x-frame-options-header-invalid": -20,
    # cross-origin-resource-policy
    "corp-implemented-with-same-origin": 10,
    "corp-implemented-with-same-site": 10,
    "corp-implemented-with-cross-origin": 0,
    "corp-not-implemented": 0,
    "corp-header-invalid": -5,
}

_BROAD = {"ftp:", "http:", "https:", "*", "http://*", "http://*.*", "https://*", "https://*.*"}
_UNSAFE_INLINE = {"'unsafe-inline'", "data:"}
_NONCE_HASH = ("'sha256-", "'sha384-", "'sha512-", "'nonce-")
_PASSIVE = ("img-src", "media-src")
_REFERRER_PRIVATE = ("no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin")
_REFERRER_UNSAFE = ("origin", "origin-when-cross-origin", "unsafe-url", "no-referrer-when-downgrade")
_COOKIE_ORDER = ["cookies-without-secure-flag-but-protected-by-hsts", "cookies-without-secure-flag",
                 "cookies-session-without-secure-flag-but-protected-by-hsts", "cookies-samesite-flag-invalid",
                 "cookies-anticsrf-without-samesite-flag", "cookies-session-without-httponly-flag",
                 "cookies-session-without-secure-flag"]
_SRI_ORDER = ["sri-implemented-and-all-scripts-loaded-securely",
              "sri-implemented-and-external-scripts-loaded-securely",
              "sri-implemented-but-external-scripts-not-loaded-securely",
              "sri-not-implemented-but-external-scripts-loaded-securely",
              "sri-not-implemented-and-external-scripts-not-loaded-securely",
              "sri-not-implemented-response-not-html"]


class CspInvalid(ValueError):
    """A Content-Security-Policy the Observatory cannot parse (too short, a duplicate directive)."""


@dataclass(frozen=True)
class Observation:
    """What the score is computed from.

    `headers` are the page's response headers as sent (a name may repeat, e.g. Set-Cookie);
    `http_route` is the chain of URLs from the plain-HTTP URL (first entry) through its redirects,
    or None when nothing answers over HTTP; `cors_*` is the answer to a request of the page that
    carried a foreign `Origin`.
    """

    url: str
    headers: tuple[tuple[str, str], ...]
    body: str = ""
    http_route: tuple[str, ...] | None = None
    cors_origin: str = ""
    cors_headers: tuple[tuple[str, str], ...] = ()

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def first(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None


@dataclass
class Score:
    score: int
    grade: str
    tests: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def penalties(self) -> dict[str, int]:
        return {t["result"]: t["modifier"] for t in self.tests.values() if t["modifier"] < 0}  # type: ignore[misc]


def grade_for(score: int) -> str:
    rounded = min(max(score, 0) - max(score, 0) % 5, 100)
    return next(grade for floor, grade in GRADES if rounded >= floor)


def score(observation: Observation) -> Score:
    """Run every test on the observation and grade it as the Observatory does."""
    page = _PageMeta.of(observation.body if _is_html(observation) else "")
    results = {
        "content-security-policy": csp_test(observation, page),
        "cookies": cookies_test(observation),
        "cross-origin-resource-sharing": cors_test(observation),
        "redirection": redirection_test(observation),
        "referrer-policy": referrer_policy_test(observation, page),
        "strict-transport-security": hsts_test(observation),
        "subresource-integrity": sri_test(observation, page),
        "x-content-type-options": x_content_type_options_test(observation),
        "x-frame-options": x_frame_options_test(observation),
        "cross-origin-resource-policy": corp_test(observation),
    }
    with_credit = uncurved = 100
    for result in results.values():
        modifier = MODIFIERS[result]
        with_credit += modifier
        if modifier < 0:
            uncurved += modifier
    total = max(with_credit if uncurved >= MINIMUM_SCORE_FOR_EXTRA_CREDIT else uncurved, 0)
    tests = {name: {"result": result, "modifier": MODIFIERS[result]} for name, result in results.items()}
    return Score(total, grade_for(total), tests)


# --- the tests --------------------------------------------------------------------------------------

def parse_csp(policies: Iterable[str]) -> dict[str, set[str]]:
    """Directive -> sources (lower-case). Several policies: a directive keeps the sources all of
    its policies allow (an empty list is 'none'). CspInvalid for a policy the Observatory refuses."""
    merged: dict[str, set[str]] = {}
    for policy in (p.replace("\r", "").replace("\n", "").strip() for p in policies):
        if len(policy) < len("img-src") - 1:
            raise CspInvalid(f"policy too short: {policy!r}")
        seen: set[str] = set()
        for entry in policy.split(";"):
            words = entry.split()
            if not words:
                continue
            directive, sources = words[0].lower(), {w.lower() for w in words[1:]}
            if directive in seen and directive not in ("report-uri", "report-to"):
                raise CspInvalid(f"duplicate directive {directive}")
            seen.add(directive)
            if not sources and directive.endswith("-src"):
                sources = {"'none'"}
            merged[directive] = (merged[directive] & sources or {"'none'"}) if directive in merged else sources
    return merged


def csp_test(observation: Observation, page: _PageMeta) -> str:
    headers = [p.strip() for value in observation.all("Content-Security-Policy") for p in value.split(",")]
    metas = [p.strip() for value in page.http_equiv.get("content-security-policy", []) for p in value.split(",")]
    try:
        csp = parse_csp(headers + metas)
        header_only = parse_csp(headers)
    except CspInvalid:
        return "csp-header-invalid"
    meta_only = {k: v for k, v in parse_csp(metas).items() if k not in ("frame-ancestors", "report-uri", "sandbox")}
    if not header_only and not meta_only:
        if observation.first("Content-Security-Policy-Report-Only"):
            return "csp-not-implemented-but-reporting-enabled"
        return "csp-not-implemented"
    default = csp.get("default-src")
    object_src = set(csp.get("object-src") or default or {"*"})
    script_src = set(csp.get("script-src") or default or {"*"})
    style_src = set(csp.get("style-src") or default or {"*"})
    for sources in (script_src, style_src):
        if any(s.startswith(_NONCE_HASH) for s in sources):
            sources.discard("'unsafe-inline'")
    if "'strict-dynamic'" in script_src:
        if not any(s.startswith(_NONCE_HASH) for s in script_src):
            return "csp-header-invalid"
        script_src = {s for s in script_src if s not in ("'self'", "'unsafe-inline'")
                      and not any(s.startswith(b) for b in _BROAD)}
    active = [s for d, sources in csp.items() if d not in (*_PASSIVE, "script-src") for s in sources] + list(script_src)
    passive = [s for d in _PASSIVE for s in (csp.get(d) or default or set())]
    https = urlsplit(observation.url).scheme == "https"
    insecure = ("http:", "ftp:")
    if script_src & (_BROAD | _UNSAFE_INLINE) or object_src & _BROAD:
        return "csp-implemented-with-unsafe-inline"
    if https and any(s.startswith(insecure) for s in active):
        return "csp-implemented-with-insecure-scheme"
    if "'unsafe-eval'" in script_src | style_src:
        return "csp-implemented-with-unsafe-eval"
    if https and any(s.startswith(insecure) for s in passive):
        return "csp-implemented-with-insecure-scheme-in-passive-content-only"
    if style_src & (_BROAD | _UNSAFE_INLINE):
        return "csp-implemented-with-unsafe-inline-in-style-src-only"
    if default == {"'none'"}:
        return "csp-implemented-with-no-unsafe-default-src-none"
    return "csp-implemented-with-no-unsafe"


@dataclass(frozen=True)
class Cookie:
    name: str
    secure: bool
    http_only: bool
    same_site: str | None  # the raw value, "" when the attribute has none
    persistent: bool

    @property
    def session_like(self) -> bool:
        """The Observatory's session cookie: a name with "login" or "sess" in it."""
        return any(word in self.name.lower() for word in ("login", "sess"))


def parse_set_cookie(header: str) -> Cookie:
    first, *attributes = header.split(";")
    name = first.split("=", 1)[0].strip()
    flags: dict[str, str | None] = {}
    for attribute in attributes:
        key, sep, value = attribute.partition("=")
        flags[key.strip().lower()] = value.strip() if sep else None
    same_site = (flags["samesite"] or "") if "samesite" in flags else None
    return Cookie(name, "secure" in flags, "httponly" in flags, same_site,
                  "expires" in flags or "max-age" in flags)


def _worse(new: str, current: str | None, order: list[str]) -> str:
    if current is None or order.index(new) > order.index(current):
        return new
    return current


def cookies_test(observation: Observation) -> str:
    cookies = [parse_set_cookie(v) for v in observation.all("Set-Cookie") if v.split("=", 1)[0].strip()]
    if not cookies:
        return "cookies-not-found"
    hsts = hsts_test(observation) == "hsts-implemented-max-age-at-least-six-months"
    result: str | None = None
    missing_same_site = False
    for cookie in cookies:
        same_site = (cookie.same_site or "").lower()
        if cookie.same_site is not None and same_site not in ("lax", "strict", "none"):
            result = _worse("cookies-samesite-flag-invalid", result, _COOKIE_ORDER)
        if not cookie.secure and same_site == "none":
            result = _worse("cookies-samesite-flag-invalid", result, _COOKIE_ORDER)
        if not cookie.secure:
            result = _worse("cookies-without-secure-flag-but-protected-by-hsts" if hsts
                            else "cookies-without-secure-flag", result, _COOKIE_ORDER)
        if "csrf" in cookie.name.lower() and not cookie.same_site:
            result = _worse("cookies-anticsrf-without-samesite-flag", result, _COOKIE_ORDER)
        if cookie.session_like and not cookie.secure:
            result = _worse("cookies-session-without-secure-flag-but-protected-by-hsts" if hsts
                            else "cookies-session-without-secure-flag", result, _COOKIE_ORDER)
        if cookie.session_like and not cookie.http_only:
            result = _worse("cookies-session-without-httponly-flag", result, _COOKIE_ORDER)
        missing_same_site = missing_same_site or not cookie.same_site
    if result:
        return result
    return "cookies-secure-with-httponly-sessions" if missing_same_site else \
        "cookies-secure-with-httponly-sessions-and-samesite"


def cors_test(observation: Observation) -> str:
    headers = dict((k.lower(), v) for k, v in observation.cors_headers)
    allow_origin = (headers.get("access-control-allow-origin") or "").strip()
    if not allow_origin:
        return "cross-origin-resource-sharing-not-implemented"
    if allow_origin == "*":
        return "cross-origin-resource-sharing-implemented-with-public-access"
    if (observation.cors_origin and allow_origin == observation.cors_origin
            and (headers.get("access-control-allow-credentials") or "").strip().lower() == "true"):
        return "cross-origin-resource-sharing-implemented-with-universal-access"
    return "cross-origin-resource-sharing-implemented-with-restricted-access"


def redirection_test(observation: Observation) -> str:
    route = observation.http_route
    if route is None:
        return "redirection-not-needed-no-http"
    if len(route) == 1:
        return "redirection-missing"
    hops = [urlsplit(url) for url in route]
    if hops[-1].scheme != "https":
        return "redirection-not-to-https"
    if hops[1].scheme == "http":
        return "redirection-not-to-https-on-initial-redirection"
    if hops[0].hostname != hops[1].hostname:
        return "redirection-off-host-from-http"
    return "redirection-to-https"


def referrer_policy_test(observation: Observation, page: _PageMeta) -> str:
    values = observation.all("Referrer-Policy") + page.http_equiv.get("referrer-policy", [])
    if not values:
        return "referrer-policy-not-implemented"
    tokens = [t.strip().lower() for t in ", ".join(values).split(",")]
    valid = [t for t in tokens if t in _REFERRER_PRIVATE + _REFERRER_UNSAFE]
    if not valid:
        return "referrer-policy-header-invalid"
    return "referrer-policy-private" if valid[-1] in _REFERRER_PRIVATE else "referrer-policy-unsafe"


def hsts_max_age(value: str) -> int | None:
    """max-age of a Strict-Transport-Security value; ValueError if the Observatory cannot read it."""
    if "," in value:
        raise ValueError("header set more than once")
    max_age = None
    for parameter in (p.strip().lower() for p in value.split(";")):
        if parameter.startswith("max-age="):
            digits = re.match(r"\d+", parameter[8:].strip('"'))
            if not digits:
                raise ValueError("max-age is not a number")
            max_age = int(digits.group(0))
    if max_age is None:
        raise ValueError("no max-age")
    return max_age


def hsts_test(observation: Observation) -> str:
    value = observation.first("Strict-Transport-Security")
    if value is None:
        return "hsts-not-implemented"
    try:
        max_age = hsts_max_age(value[:1024])
    except ValueError:
        return "hsts-header-invalid"
    if max_age is None or max_age < SIX_MONTHS_S:
        return "hsts-implemented-max-age-less-than-six-months"
    return "hsts-implemented-max-age-at-least-six-months"


def _is_html(observation: Observation) -> bool:
    media = (observation.first("Content-Type") or "").split(";")[0].strip().lower()
    return not media or media in ("text/html", "application/xhtml+xml")


def _site_domain(host: str) -> str:
    labels = host.lower().rstrip(".").split(".")
    return host if re.fullmatch(r"[\d.]+|\[.*\]", host) else ".".join(labels[-2:])


def sri_test(observation: Observation, page: _PageMeta) -> str:
    if not _is_html(observation):
        return "sri-not-implemented-response-not-html"
    if not page.scripts:
        return "sri-not-implemented-but-no-scripts-loaded"
    page_host = urlsplit(observation.url).hostname or ""
    https_page = urlsplit(observation.url).scheme == "https"
    result: str | None = None
    foreign = False
    for src, integrity in page.scripts:
        if not src:
            continue
        protocol_relative = re.match(r"^//[^/]", src) is not None
        full = re.match(r"^https?://", src, re.I) is not None
        relative = not protocol_relative and not full
        same_domain = True if (protocol_relative or relative) else \
            _site_domain(urlsplit(src).hostname or "") == _site_domain(page_host)
        secure_origin = relative or (same_domain and not protocol_relative)
        scheme = urlsplit(src).scheme.lower() if full else None
        secure_scheme = scheme == "https" or (relative and https_page)
        if not secure_origin:
            foreign = True
            if integrity and not secure_scheme:
                result = _worse("sri-implemented-but-external-scripts-not-loaded-securely", result, _SRI_ORDER)
            elif not integrity and secure_scheme:
                result = _worse("sri-not-implemented-but-external-scripts-loaded-securely", result, _SRI_ORDER)
            elif not integrity:
                result = _worse("sri-not-implemented-and-external-scripts-not-loaded-securely", result, _SRI_ORDER)
        elif integrity and secure_scheme and result is None:
            result = "sri-implemented-and-all-scripts-loaded-securely"
    if result:
        return result
    return ("sri-implemented-and-external-scripts-loaded-securely" if foreign
            else "sri-not-implemented-but-all-scripts-loaded-from-secure-origin")


def x_content_type_options_test(observation: Observation) -> str:
    value = observation.first("X-Content-Type-Options")
    if value is None:
        return "x-content-type-options-not-implemented"
    return "x-content-type-options-nosniff" if value.strip().lower() == "nosniff" else \
        "x-content-type-options-header-invalid"


def x_frame_options_test(observation: Observation) -> str:
    try:
        header_csp = parse_csp(p.strip() for v in observation.all("Content-Security-Policy") for p in v.split(","))
    except CspInvalid:
        header_csp = {}
    if "frame-ancestors" in header_csp:
        return "x-frame-options-implemented-via-csp"
    value = observation.first("X-Frame-Options")
    if value is None:
        return "x-frame-options-not-implemented"
    value = value[:1024].strip().lower()
    if value in ("deny", "sameorigin"):
        return "x-frame-options-sameorigin-or-deny"
    if value.startswith("allow-from"):
        return "x-frame-options-allow-from-origin"
    return "x-frame-options-header-invalid"


def corp_test(observation: Observation) -> str:
    value = observation.first("Cross-Origin-Resource-Policy")
    if not value:
        return "corp-not-implemented"
    return {"same-site": "corp-implemented-with-same-site", "same-origin": "corp-implemented-with-same-origin",
            "cross-origin": "corp-implemented-with-cross-origin"}.get(value[:256].strip().lower(),
                                                                     "corp-header-invalid")


# --- the page's own markup -------------------------------------------------------------------------

class _MetaParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.http_equiv: dict[str, list[str]] = {}
        self.scripts: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: (value or "") for name, value in attrs}
        if tag == "meta" and a.get("http-equiv"):
            self.http_equiv.setdefault(a["http-equiv"].strip().lower(), []).append(a.get("content", ""))
        elif tag == "script":
            self.scripts.append((a.get("src", "").strip(), a.get("integrity") or None))


@dataclass(frozen=True)
class _PageMeta:
    http_equiv: dict[str, list[str]]
    scripts: list[tuple[str, str | None]]

    @classmethod
    def of(cls, html: str) -> _PageMeta:
        parser = _MetaParser()
        parser.feed(html)
        parser.close()
        return cls(parser.http_equiv, parser.scripts)

