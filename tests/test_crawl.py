"""The crawler: HTML references, URL normalisation, sitemaps, and a crawl of a real server on
loopback that counts what it was asked and how many requests were in flight at once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from edgeaudit.rules.config import Target
from edgeaudit.web.crawl import normalize, parse_page, parse_sitemap, same_origin, shared_crawl, srcset_urls
from edgeaudit.web.site import Site

PAGE = """<!doctype html><html><head>
<base href="/docs/">
<link rel="stylesheet" href="style.css"><link rel="canonical" href="https://www.example.com/docs/">
<script src="app.js" integrity="sha384-x"></script></head><body>
<a href="guide.html#intro">Guide</a> <a href="?page=2">Next</a> <a href="mailto:a@example.com">Mail</a>
<a href="javascript:void(0)">JS</a> <a href="#top">Top</a> <a href="//cdn.example.net/x">CDN</a>
<img src="logo.png" srcset="logo-2x.png 2x, /img/logo-3x.png 3x"> <img src="http://insecure.example/a.png">
<iframe src="https://video.example/embed"></iframe></body></html>"""


def test_parse_page_finds_every_reference_resolved_against_base():
    found = {(r.tag, r.attribute, r.url, r.kind) for r in parse_page(PAGE, "https://www.example.com/index.html")}
    assert found == {
        ("link", "href", "https://www.example.com/docs/style.css", "subresource"),
        ("link", "href", "https://www.example.com/docs/", "link"),
        ("script", "src", "https://www.example.com/docs/app.js", "subresource"),
        ("a", "href", "https://www.example.com/docs/guide.html", "link"),
        ("a", "href", "https://www.example.com/docs/?page=2", "link"),
        ("a", "href", "https://cdn.example.net/x", "link"),
        ("img", "src", "https://www.example.com/docs/logo.png", "subresource"),
        ("img", "srcset", "https://www.example.com/docs/logo-2x.png", "subresource"),
        ("img", "srcset", "https://www.example.com/img/logo-3x.png", "subresource"),
        ("img", "src", "http://insecure.example/a.png", "subresource"),
        ("iframe", "src", "https://video.example/embed", "subresource"),
    }
    script = next(r for r in parse_page(PAGE, "https://www.example.com/") if r.tag == "script")
    assert script.integrity == "sha384-x"


@pytest.mark.parametrize(("url", "expected"), [
    ("HTTPS://WWW.Example.com:443/a#frag", "https://www.example.com/a"),
    ("https://www.example.com", "https://www.example.com/"),
    ("http://www.example.com:8080/a?b=1#c", "http://www.example.com:8080/a?b=1"),
    ("https://www.example.com:99999/", ""),
])
def test_normalize(url, expected):
    assert normalize(url) == expected


def test_same_origin_compares_scheme_host_and_port():
    assert same_origin("https://a.example/x", "https://A.example:443/")
    assert not same_origin("http://a.example/x", "https://a.example/")
    assert not same_origin("https://a.example:8443/", "https://a.example/")
    assert not same_origin("https://b.example/", "https://a.example/")


def test_srcset():
    assert srcset_urls("a.png 1x, b.png 2x,c.png") == ["a.png", "b.png", "c.png"]


def test_sitemaps_parse_and_bad_ones_are_refused():
    urlset = (b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
              b"<url><loc> https://a.example/ </loc></url><url><loc>https://a.example/b</loc></url></urlset>")
    assert parse_sitemap(urlset) == ("urlset", ["https://a.example/", "https://a.example/b"])
    index = (b'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             b"<sitemap><loc>https://a.example/s1.xml</loc></sitemap></sitemapindex>")
    assert parse_sitemap(index) == ("sitemapindex", ["https://a.example/s1.xml"])
    for bad, reason in [(b"<html><body>not found</body></html>", "root element"), (b"<urlset>", "well-formed"),
                        (b'<!DOCTYPE x [<!ENTITY a "b">]><urlset/>', "DTD")]:
        with pytest.raises(ValueError, match=reason):
            parse_sitemap(bad)


class _Site(BaseHTTPRequestHandler):
    """Page n links to pages 2n+1 and 2n+2 (up to 40), a shared asset and a missing page."""

    protocol_version = "HTTP/1.1"
    seen: Counter
    lock = threading.Lock()
    in_flight = 0
    most_in_flight = 0

    def do_GET(self) -> None:  # noqa: N802
        cls = type(self)
        with cls.lock:
            cls.seen[(self.command, self.path)] += 1
            cls.in_flight += 1
            cls.most_in_flight = max(cls.most_in_flight, cls.in_flight)
        time.sleep(0.02)  # long enough for requests to overlap
        with cls.lock:
            cls.in_flight -= 1
        if self.path == "/sitemap.xml":
            body = (b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>http://'
                    + self.headers["Host"].encode() + b'/p/39.html</loc></url></urlset>')
            self._answer(200, "application/xml", body)
        elif self.path.startswith("/p/") or self.path == "/":
            n = 0 if self.path == "/" else int(self.path[3:].split(".")[0])
            links = "".join(f'<a href="/p/{k}.html">{k}</a>' for k in (2 * n + 1, 2 * n + 2) if k < 40)
            self._answer(200, "text/html", f'<html>{links}<img src="/shared.png"><a href="/gone.html">x</a>'
                                           f'<a href="https://elsewhere.example/">out</a></html>'.encode())
        elif self.path == "/shared.png":
            self._answer(200, "image/png", b"\x89PNG")
        else:
            self._answer(404, "text/html", b"<h1>not found</h1>")

    def _answer(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_site():
    handler = type("Handler", (_Site,), {"seen": Counter(), "in_flight": 0, "most_in_flight": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    yield Site(Target(name="local", url=url, bucket="b", distribution_id="d")), handler
    server.shutdown()
    server.server_close()


def test_crawl_fetches_each_url_once_and_stays_polite(local_site):
    site, handler = local_site
    crawl = shared_crawl(site, max_pages=200, concurrency=3)
    assert shared_crawl(site, max_pages=1, concurrency=1) is crawl  # made once per run, shared
    pages = {f"/p/{k}.html" for k in range(1, 40)} | {"/"}
    assert {path for _, path in handler.seen} == pages | {"/shared.png", "/gone.html", "/sitemap.xml"}
    assert all(count == 1 for count in handler.seen.values()), handler.seen
    assert 1 < handler.most_in_flight <= 3
    assert len(crawl.pages) == 40 and not crawl.truncated and crawl.errors() == {}
    assert crawl.fetched[site.url("/gone.html")].status == 404
    assert len(crawl.fetched[site.url("/shared.png")].referrers) == 40
    assert "https://elsewhere.example/" not in crawl.fetched
    summary = crawl.summary()
    assert summary["urls_fetched"] == 42 and summary["html_pages"] == 40 and summary["elapsed_s"] > 0
    # the crawl's answers are the run's: asking again goes to the cache, not the server
    site.get("/p/7.html")
    assert handler.seen[("GET", "/p/7.html")] == 1


def test_crawl_stops_at_max_pages(local_site):
    site, handler = local_site
    crawl = shared_crawl(site, max_pages=5, concurrency=2)
    assert len(crawl.fetched) == 5 and crawl.truncated and crawl.skipped
    assert sum(1 for method, path in handler.seen if path != "/sitemap.xml") == 5
    assert crawl.summary()["truncated"] is True


def test_sitemap_urls_start_the_crawl(local_site):
    site, _ = local_site
    crawl = shared_crawl(site, max_pages=3, concurrency=1)
    assert crawl.start == [site.url("/"), site.url("/p/39.html")]
    assert crawl.sitemap.ok and crawl.sitemap.urls == [site.url("/p/39.html")]
