"""The Observatory score: header sets whose scores are derived by hand from the published modifier
table (mdn/mdn-http-observatory, src/grader/charts.js). Each case's comment is the arithmetic."""

from __future__ import annotations

import pytest

from edgeaudit.checks import observatory
from edgeaudit.checks.observatory import Observation, grade_for, parse_csp, score

URL = "https://www.example.com/"
PAGE = '<!doctype html><html><head><script src="/app.js"></script></head><body></body></html>'
REDIRECTED = ("http://www.example.com/", "https://www.example.com/")
HTML = ("Content-Type", "text/html")

# CloudFront's Managed-SecurityHeadersPolicy (X-XSS-Protection is not scored by the MDN version).
CLOUDFRONT_MANAGED = (("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "SAMEORIGIN"),
                      ("Referrer-Policy", "strict-origin-when-cross-origin"),
                      ("Strict-Transport-Security", "max-age=31536000"), ("X-XSS-Protection", "1; mode=block"))
STRICT_CSP = ("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                                         "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
DEMO = (("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
                                    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"),
        ("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "strict-origin-when-cross-origin"),
        ("Strict-Transport-Security", "max-age=63072000; includeSubDomains; preload"))


def observe(*headers, body=PAGE, route=REDIRECTED, cors=(), content_type=HTML) -> Observation:
    return Observation(URL, tuple(headers) + (content_type,), body=body, http_route=route,
                       cors_origin="https://probe.example", cors_headers=tuple(cors))


def with_(base, **changes):
    """`base` with headers replaced (name=value) or removed (name=None); names use _ for -."""
    names = {k.replace("_", "-").lower(): v for k, v in changes.items()}
    kept = tuple((k, v) for k, v in base if k.lower() not in names)
    return kept + tuple((k.replace("_", "-"), v) for k, v in changes.items() if v is not None)


CASES = [
    # 100 - 25 (no CSP) = 75 < 90, so the Referrer-Policy bonus (+5) does not count: 75, B
    ("cloudfront managed policy alone", observe(*CLOUDFRONT_MANAGED), 75, "B"),
    # 100 + 10 (default-src 'none') + 5 (frame-ancestors) + 5 (referrer) + 10 (CORP same-origin) = 130, A+
    ("strict CSP and every other header",
     observe(*with_(CLOUDFRONT_MANAGED, X_Frame_Options=None), STRICT_CSP,
             ("Cross-Origin-Resource-Policy", "same-origin")), 130, "A+"),
    # 100 - 25 (CSP) - 20 (XFO) - 20 (HSTS) - 5 (XCTO) - 20 (HTTP does not redirect) = 10, F
    ("no headers at all", observe(route=("http://www.example.com/",)), 10, "F"),
    # the same with an HTTP redirect to HTTPS: 100 - 70 = 30, D
    ("no headers, HTTP redirects", observe(), 30, "D"),
    # 100, then bonuses: CSP +5, frame-ancestors +5, referrer +5 = 115, A+
    ("the demo site's policy", observe(*DEMO), 115, "A+"),
    # 100 - 20 (unsafe-inline in script-src) = 80; no bonus: 80, B+
    ("unsafe-inline", observe(*with_(DEMO, Content_Security_Policy="default-src 'self'; script-src 'self' "
                                                                   "'unsafe-inline'; frame-ancestors 'none'")),
     80, "B+"),
    # 100 - 10 (unsafe-eval) = 90, bonuses apply: + 5 (frame-ancestors) + 5 (referrer) = 100, A+
    ("unsafe-eval", observe(*with_(DEMO, Content_Security_Policy="default-src 'self'; script-src 'self' "
                                                                 "'unsafe-eval'; frame-ancestors 'none'")), 100, "A+"),
    # CSP without script-src or default-src counts as unsafe-inline: 100 - 20 = 80, B+
    ("CSP that only restricts framing", observe(*with_(DEMO, Content_Security_Policy="frame-ancestors 'none'")),
     80, "B+"),
    # report-only CSP is not implemented: 100 - 25 = 75; XFO DENY 0; no bonus: 75, B
    ("report-only CSP", observe(*with_(DEMO, Content_Security_Policy=None,
                                        Content_Security_Policy_Report_Only="default-src 'self'")), 75, "B"),
    # duplicate directive: header invalid (-25), and frame-ancestors is not read from it: 75, B
    ("duplicate CSP directive", observe(*with_(DEMO, Content_Security_Policy="default-src 'self'; default-src 'none'")),
     75, "B"),
    # http: in img-src only: -10 = 90, bonuses: frame-ancestors +5, referrer +5 = 100, A+
    ("http images", observe(*with_(DEMO, Content_Security_Policy="default-src 'self'; img-src 'self' http:; "
                                                                 "frame-ancestors 'none'")), 100, "A+"),
    # no X-Frame-Options and no frame-ancestors: -20 = 80, B+
    ("no clickjacking protection", observe(*with_(DEMO, X_Frame_Options=None,
                                                  Content_Security_Policy="default-src 'self'")), 80, "B+"),
    # HSTS of one day: -10 = 90, bonuses 15: 105, A+
    ("short HSTS", observe(*with_(DEMO, Strict_Transport_Security="max-age=86400")), 105, "A+"),
    # HSTS without max-age is invalid: -20 = 80, B+
    ("invalid HSTS", observe(*with_(DEMO, Strict_Transport_Security="includeSubDomains")), 80, "B+"),
    # Referrer-Policy unsafe-url: -5 = 95, bonuses CSP +5, frame-ancestors +5: 105, A+
    ("unsafe referrer", observe(*with_(DEMO, Referrer_Policy="unsafe-url")), 105, "A+"),
    # X-Content-Type-Options missing: -5 = 95 + 15 = 110, A+
    ("no nosniff", observe(*with_(DEMO, X_Content_Type_Options=None)), 110, "A+"),
    # CORS reflecting the Origin with credentials: -50 = 50, C
    ("CORS universal access", observe(*DEMO, cors=(("Access-Control-Allow-Origin", "https://probe.example"),
                                                   ("Access-Control-Allow-Credentials", "true"))), 50, "C"),
    # CORS "*": public access, 0: 115, A+
    ("CORS public", observe(*DEMO, cors=(("Access-Control-Allow-Origin", "*"),)), 115, "A+"),
    # session cookie without Secure and HttpOnly, HSTS on: worst is session-without-httponly -30 = 70, B
    ("session cookie without flags", observe(*DEMO, ("Set-Cookie", "sessionid=abc; Path=/")), 70, "B"),
    # Secure cookie without SameSite: 0, and no SameSite bonus: 115, A+
    ("secure cookie without SameSite", observe(*DEMO, ("Set-Cookie", "theme=dark; Secure")), 115, "A+"),
    # every cookie Secure, sessions HttpOnly, SameSite: +5 = 120, A+
    ("good cookies", observe(*DEMO, ("Set-Cookie", "sessionid=abc; Secure; HttpOnly; SameSite=Lax")), 120, "A+"),
    # SameSite=None without Secure: samesite invalid -20 beats without-secure-but-hsts -5: 80, B+
    ("SameSite=None without Secure", observe(*DEMO, ("Set-Cookie", "theme=dark; SameSite=None")), 80, "B+"),
    # external script over https without SRI: -5 = 95 + 15 = 110, A+
    ("external script without SRI",
     observe(*DEMO, body='<script src="https://cdn.other.net/lib.js"></script>'), 110, "A+"),
    # external script over http without SRI: -50 = 50, C
    ("external script over http", observe(*DEMO, body='<script src="http://cdn.other.net/lib.js"></script>'), 50, "C"),
    # every script with SRI, same origin: +5 = 120, A+
    ("same-origin script with SRI",
     observe(*DEMO, body='<script src="/app.js" integrity="sha384-abc" crossorigin="anonymous"></script>'), 120, "A+"),
    # HTTP redirects to another host on HTTPS: -5 = 95 + 15 = 110, A+
    ("redirect off host", observe(*DEMO, route=("http://example.com/", "https://www.example.com/")), 110, "A+"),
    # HTTP redirects to HTTP first: -10 = 90 + 15 = 105, A+
    ("redirect via http", observe(*DEMO, route=("http://www.example.com/", "http://example.com/",
                                                "https://www.example.com/")), 105, "A+"),
    # nothing answers over HTTP: no redirection needed, 0: 115, A+
    ("no HTTP at all", observe(*DEMO, route=None), 115, "A+"),
    # CORP with an unknown value: -5 = 95 + 15 = 110, A+
    ("invalid CORP", observe(*DEMO, ("Cross-Origin-Resource-Policy", "everyone")), 110, "A+"),
    # everything wrong at once: 100 -25 -20 -20 -5 -20 -50 -40 -50 -5 -5 < 0, floored: 0, F
    ("floor at zero", observe(("Set-Cookie", "session=1"), ("Referrer-Policy", "unsafe-url"),
                              ("Cross-Origin-Resource-Policy", "x"), body='<script src="http://a.net/x.js"></script>',
                              route=("http://www.example.com/",),
                              cors=(("Access-Control-Allow-Origin", "https://probe.example"),
                                    ("Access-Control-Allow-Credentials", "true"))), 0, "F"),
]


@pytest.mark.parametrize(("observation", "expected_score", "expected_grade"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_score_matches_the_hand_derived_value(observation, expected_score, expected_grade):
    result = score(observation)
    assert (result.score, result.grade) == (expected_score, expected_grade), result.tests


def test_results_name_each_test_and_modifier():
    result = score(observe(*CLOUDFRONT_MANAGED))
    assert result.tests["content-security-policy"] == {"result": "csp-not-implemented", "modifier": -25}
    assert result.tests["referrer-policy"] == {"result": "referrer-policy-private", "modifier": 5}
    assert result.penalties == {"csp-not-implemented": -25}
    assert set(result.tests) == {"content-security-policy", "cookies", "cross-origin-resource-sharing", "redirection",
                                 "referrer-policy", "strict-transport-security", "subresource-integrity",
                                 "x-content-type-options", "x-frame-options", "cross-origin-resource-policy"}


@pytest.mark.parametrize(("raw", "grade"), [(140, "A+"), (100, "A+"), (99, "A"), (90, "A"), (89, "A-"), (85, "A-"),
                                            (84, "B+"), (75, "B"), (70, "B"), (69, "B-"), (64, "C+"), (50, "C"),
                                            (49, "C-"), (44, "D+"), (30, "D"), (29, "D-"), (25, "D-"), (24, "F"),
                                            (0, "F"), (-10, "F")])
def test_grade_uses_the_score_rounded_down_to_five(raw, grade):
    assert grade_for(raw) == grade


def test_csp_parsing_follows_the_observatory():
    assert parse_csp(["default-src 'self'; script-src"]) == {"default-src": {"'self'"}, "script-src": {"'none'"}}
    assert parse_csp(["script-src 'self' https://a.example", "script-src 'self'"]) == {"script-src": {"'self'"}}
    with pytest.raises(observatory.CspInvalid):
        parse_csp(["a"])
    assert parse_csp(["report-uri /a; report-uri /b; default-src 'none'"])["default-src"] == {"'none'"}


def test_meta_csp_counts_but_not_its_frame_ancestors():
    body = ('<meta http-equiv="Content-Security-Policy" content="default-src \'self\'; frame-ancestors \'none\'">'
            '<script src="/app.js"></script>')
    result = score(observe(*with_(DEMO, Content_Security_Policy=None, X_Frame_Options=None), body=body))
    assert result.tests["content-security-policy"]["result"] == "csp-implemented-with-no-unsafe"
    assert result.tests["x-frame-options"]["result"] == "x-frame-options-not-implemented"


def test_non_html_answers_need_no_sri():
    result = score(observe(*DEMO, body="{}", content_type=("Content-Type", "application/json")))
    assert result.tests["subresource-integrity"]["result"] == "sri-not-implemented-response-not-html"
