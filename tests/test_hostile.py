"""Hostile sites: answers too big, too many links, loops, huge headers, broken encodings,
resets mid-body, answers trickled a byte at a time and sitemap indexes without end. Each is
bounded, or ends as a clear `error`; nothing hangs or crashes; a control whose crawl a limit cut
short says so."""

from __future__ import annotations

import gc
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import types
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest

from conftest import REPO, run_suite
from edgeaudit.demo.builder import CREDENTIALS, SiteSpec
from edgeaudit.demo.pki import CertificateAuthority
from edgeaudit.errors import NotEvaluated, SiteUnreachable
from edgeaudit.reporting.merge import MergeError, merge
from edgeaudit.rules.config import GitHubSource, Target
from edgeaudit.web.crawl import crawl
from edgeaudit.web.github import ACTIONS, GitHub
from edgeaudit.web.site import Site

BIG = 50 * 2**20


class Hostile(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str = "text/html", extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/big":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(BIG))
            self.end_headers()
            block = b"<p>" + b"x" * 65530 + b"</p>"
            try:
                for _ in range(BIG // len(block)):
                    self.wfile.write(block)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading: that is the point
        elif self.path == "/links":
            links = "".join(f'<a href="/page/{i}">{i}</a>' for i in range(10_000))
            self._send(200, f"<html><body>{links}</body></html>".encode())
        elif self.path.startswith("/page/"):
            self._send(200, b"<html><body>a page</body></html>")
        elif self.path == "/loop":
            self._send(302, b"", extra={"Location": "/loop"})
        elif self.path == "/huge-header":
            self._send(200, b"ok", extra={"X-Huge": "h" * 70_000})
        elif self.path == "/latin1":
            self._send(200, "<html><body>caf\xe9 \xff\xfe</body></html>".encode("latin-1"), "text/html")
        elif self.path == "/reset":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"partial")
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()  # RST: the body stops mid-way
        else:
            self._send(404, b"missing")


@pytest.fixture(scope="module")
def hostile():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def site_for(base: str) -> Site:
    target = Target(name="hostile", url=base + "/", bucket="b", distribution_id="E1", paths=("/links",))
    return Site(target, timeout=(2.0, 5.0))


def test_a_50_mb_page_is_read_up_to_the_bound(hostile, monkeypatch):
    monkeypatch.setenv("EDGEAUDIT_HTTP_MAX_BYTES", str(2 * 2**20))
    response = site_for(hostile).get("/big")
    assert response.status_code == 200
    assert len(response.content) == 2 * 2**20 and response.truncated is True


def test_ten_thousand_links_are_crawled_within_the_bound(hostile):
    result = crawl(site_for(hostile), max_pages=40, concurrency=4)
    assert len(result.fetched) <= 40
    assert result.truncated is True


def test_a_redirect_loop_is_not_followed(hostile):
    response = site_for(hostile).get("/loop")
    assert response.status_code == 302 and response.headers["Location"] == "/loop"


def test_a_64_kb_header_is_an_error_naming_it(hostile):
    with pytest.raises(SiteUnreachable, match="header"):
        site_for(hostile).get("/huge-header")


def test_a_body_that_is_not_utf8_is_read(hostile):
    response = site_for(hostile).get("/latin1")
    assert "caf" in response.text and response.content.endswith(b"</body></html>")


def test_a_reset_mid_body_is_an_error(hostile):
    with pytest.raises(SiteUnreachable) as raised:
        site_for(hostile).get("/reset")
    assert "unreachable" in str(raised.value)


# --- answers trickled a byte at a time ----------------------------------------------------------

TRICKLE_PAUSE_S = 0.05  # far below any read timeout: only a deadline for the whole answer ends it
TRICKLE_BYTES = 2400    # two minutes of trickle, should nothing end it


class Trickle(BaseHTTPRequestHandler):
    """Sends its answer one byte at a time: the headers (/slow-headers) or the body (any other path)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        try:
            if self.path == "/slow-headers":
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Slow: ")
                self._trickle(b"a")
            else:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(TRICKLE_BYTES))
                self.end_headers()
                self._trickle(b"x")
        except OSError:
            pass  # the client hung up (reset, broken pipe, TLS closed): that is the point

    def _trickle(self, byte: bytes) -> None:
        for _ in range(TRICKLE_BYTES):
            self.wfile.write(byte)
            self.wfile.flush()
            time.sleep(TRICKLE_PAUSE_S)


def _serve(handler: type, context: ssl.SSLContext | None = None) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    scheme = "https" if context else "http"
    return server, f"{scheme}://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def trickle():
    server, base = _serve(Trickle)
    yield base
    server.shutdown()


@pytest.fixture(scope="module")
def trickle_tls(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("trickle-tls")
    ca = CertificateAuthority.create("trickle test CA")
    cert_file, key_file = ca.issue(["127.0.0.1"]).write(workdir, "trickle")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server, base = _serve(Trickle, context)
    yield base, str(ca.write_ca(workdir / "ca.pem"))
    server.shutdown()


@pytest.mark.parametrize("path", ["/slow-body", "/slow-headers"])
def test_an_answer_trickled_byte_by_byte_ends_at_the_deadline(trickle, path):
    site = Site(Target(name="slow", url=trickle + "/", bucket="b", distribution_id="E1"), timeout=(2.0, 5.0),
                deadline_s=1)
    with pytest.raises(SiteUnreachable, match=r"exceeded the 1 s deadline for one answer"):
        site.get(path)
    with pytest.raises(SiteUnreachable, match="failed earlier in this run: .*deadline"):
        site.get("/other")  # the origin is not asked again: one deadline per run, not one per URL


def test_a_trickling_github_api_ends_at_the_deadline_not_evaluated(trickle):
    """The GitHub client holds its answers to the same deadline as the site's (an API or a proxy
    in front of it that trickles bytes cannot hold a records control)."""
    github = GitHub(GitHubSource(repository="example/www", token_env="GH", api_url=trickle), "ghp_x", deadline_s=1)
    with pytest.raises(NotEvaluated, match=r"exceeded the 1 s deadline for one answer \(GET /slow-body\)"):
        github.get("/slow-body", ACTIONS)


def test_the_deadline_holds_over_tls(trickle_tls):
    base, ca_file = trickle_tls
    site = Site(Target(name="slow", url=base + "/", bucket="b", distribution_id="E1", ca_bundle=ca_file),
                timeout=(2.0, 5.0), deadline_s=1)
    with pytest.raises(SiteUnreachable, match=r"exceeded the 1 s deadline for one answer"):
        site.get("/slow-body")


def test_a_trickling_site_makes_its_critical_pages_not_evaluated(trickle, world, tmp_path):
    config = tmp_path / "edgeaudit.toml"
    config.write_text(f"""[thresholds]
http_deadline_s = 1

[[targets]]
name = "slow"
url = "{trickle}/"
bucket = "slow-bucket"
distribution_id = "E0SLOW"
paths = ["/slow-body"]
""")
    run = run_suite("suites/test_site.py", "-k", "critical_pages", "--edgeaudit-config", str(config), cwd=REPO,
                    env=world.aws_env, report_dir=tmp_path / "reports")
    result = run.result("EA-SITE-01", "slow")
    assert result["outcome"] == "error", result
    assert "exceeded the 1 s deadline for one answer" in result["message"]


# --- sitemap indexes and crawls cut short ------------------------------------------------------------

SITEMAP_CHILDREN = 500


class EndlessIndex(BaseHTTPRequestHandler):
    """A sitemap index of `children` sitemaps, each listing `urls_per_map` pages; counts what it
    is asked (by the first part of the path)."""

    protocol_version = "HTTP/1.1"
    seen: Counter
    children = SITEMAP_CHILDREN
    urls_per_map = 1

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        type(self).seen[self.path.split("/")[1]] += 1
        host = f"http://{self.headers['Host']}"
        if self.path == "/sitemap.xml":
            body = "".join(f"<sitemap><loc>{host}/maps/{i}.xml</loc></sitemap>" for i in range(self.children))
            self._send(f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{body}</sitemapindex>',
                       "application/xml")
        elif self.path.startswith("/maps/"):
            n = self.path.split("/")[2].split(".")[0]
            body = "".join(f"<url><loc>{host}/p/{n}/{i}.html</loc></url>" for i in range(self.urls_per_map))
            self._send(f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{body}</urlset>',
                       "application/xml")
        else:
            self._send("<html><body>a page</body></html>", "text/html")

    def _send(self, text: str, content_type: str) -> None:
        body = text.encode()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_sitemap_index_children_count_against_max_pages():
    handler = type("Handler", (EndlessIndex,), {"seen": Counter()})
    server, base = _serve(handler)
    try:
        result = crawl(site_for(base), max_pages=20, concurrency=4)
    finally:
        server.shutdown()
    assert handler.seen["maps"] + handler.seen["p"] + handler.seen["links"] <= 20, handler.seen
    assert result.truncated and any("sitemap index lists 500 sitemaps" in r for r in result.cut_short)


def test_a_page_read_in_part_cuts_the_crawl_short(hostile, monkeypatch):
    monkeypatch.setenv("EDGEAUDIT_HTTP_MAX_BYTES", str(2 * 2**20))
    site = Site(Target(name="big", url=hostile + "/", bucket="b", distribution_id="E1", paths=("/big",)),
                timeout=(2.0, 5.0))
    result = crawl(site, max_pages=10, concurrency=2)
    assert not result.skipped
    assert result.truncated and "EDGEAUDIT_HTTP_MAX_BYTES" in " ".join(result.cut_short)


def test_a_crawl_cut_short_is_never_a_clean_pass(world, suite_runner):
    site = world.add(SiteSpec(name="cut"))
    run = suite_runner([site], "-k", "no_broken_links or no_mixed_content",
                       config_extra={"thresholds": {"crawl_max_pages": 2}})
    for control in ("EA-SITE-04", "EA-SITE-06"):
        result = run.result(control, "cut")
        assert result["outcome"] == "warned", result
        assert "crawl_max_pages (2) reached" in result["message"]
        assert result["evidence"]["crawl"]["truncated"] is True


class BrokenHome(EndlessIndex):
    """EndlessIndex whose home page links to a page that does not exist."""

    def do_GET(self) -> None:
        if self.path == "/":
            type(self).seen["home"] += 1
            self._send('<html><body><a href="/gone.html">gone</a></body></html>', "text/html")
        elif self.path == "/gone.html":
            type(self).seen["gone"] += 1
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            super().do_GET()


def test_a_sitemap_index_over_the_budget_leaves_the_critical_paths_and_their_links_first():
    handler = type("Handler", (BrokenHome,), {"seen": Counter()})
    server, base = _serve(handler)
    try:
        target = Target(name="home", url=base + "/", bucket="b", distribution_id="E1", paths=("/",))
        result = crawl(Site(target, timeout=(2.0, 5.0)), max_pages=20, concurrency=4)
    finally:
        server.shutdown()
    assert handler.seen["home"] == 1 and handler.seen["gone"] == 1, handler.seen
    assert result.fetched[base + "/gone.html"].status == 404
    assert len(result.fetched) + result.sitemap.children_read <= 20
    assert any("sitemap index lists 500 sitemaps" in reason for reason in result.cut_short)


def test_a_broken_link_on_the_home_page_fails_whatever_the_sitemap_index_lists(world, tmp_path):
    handler = type("Handler", (BrokenHome,), {"seen": Counter()})
    server, base = _serve(handler)
    config = tmp_path / "edgeaudit.toml"
    config.write_text(f"""[thresholds]
crawl_max_pages = {SITEMAP_CHILDREN}

[[targets]]
name = "home"
url = "{base}/"
bucket = "home-bucket"
distribution_id = "E0HOME"
paths = ["/"]
""")
    try:
        run = run_suite("suites/test_site.py", "-k", "no_broken_links", "--edgeaudit-config", str(config), cwd=REPO,
                        env=world.aws_env, report_dir=tmp_path / "reports")
    finally:
        server.shutdown()
    result = run.result("EA-SITE-04", "home")
    assert result["outcome"] == "failed", result
    assert result["severity"] == "P3" and "/gone.html answers 404" in result["message"]
    assert result["evidence"]["broken"][base + "/gone.html"]["linked_from"] == [base + "/"]
    assert run.returncode == 1, run.output


# --- merging reports whose shard count is out of all proportion ------------------------------------

def _shard_report(index: int, count: int) -> dict:
    run = {"started": "2026-01-01T00:00:00Z", "finished": "2026-01-01T00:01:00Z", "selection": "daily", "demo": False,
           "tool_version": "1.0.0", "targets": [], "aws_account": None, "api_calls": 0, "api_calls_by_operation": {},
           "run_id": "r1", "shard": {"index": index, "count": count}}
    return {"schema": "edgeaudit.report/1", "complete": True, "run": run, "results": []}


@pytest.mark.parametrize(("count", "said"), [
    (20_000_000, "run.shard is not {index: K, count: N} with 1 <= K <= N <= 10000"),
    (10_000, "shard(s) 2/10000, 3/10000, 4/10000, 5/10000, 6/10000, 7/10000, 8/10000, 9/10000, 10/10000, "
             "11/10000 and 9989 more missing"),
])
def test_merge_checks_the_shard_count_against_the_files_before_building_anything(tmp_path, count, said):
    with pytest.raises(MergeError) as raised:
        merge([_shard_report(1, count)], ["shard-1.json"])
    assert said in str(raised.value) and len(str(raised.value)) < 400
    path = tmp_path / "shard-1.json"
    path.write_text(json.dumps(_shard_report(1, count)))
    done = subprocess.run([sys.executable, "-m", "edgeaudit.cli", "merge", str(path), "--output", str(tmp_path / "m")],
                          capture_output=True, text=True)
    assert done.returncode == 2 and said in done.stderr and len(done.stderr) < 600, done.stderr[:600]


# --- the trust store of a target's extra CA ---------------------------------------------------------

TRUST_PROBE = """
import os, stat, sys
from pathlib import Path
from edgeaudit.rules.config import Target
from edgeaudit.web.site import Site
sites = [Site(Target(name=f"t{i}", url="https://127.0.0.1:1/", bucket="b", distribution_id="E1", ca_bundle=sys.argv[1]))
         for i in range(3)]
stores = {site.verify for site in sites}
assert len(stores) == 1, stores
store = Path(stores.pop())
assert store.parent == Path(os.environ["TMPDIR"]) and store.name != f"edgeaudit-trust-{os.getpid()}.pem"
assert stat.S_IMODE(store.stat().st_mode) == 0o600, oct(store.stat().st_mode)
assert Path(sys.argv[1]).read_bytes() in store.read_bytes()
print(store)
"""


def test_the_trust_store_is_a_private_file_removed_when_the_run_ends(tmp_path):
    ca = CertificateAuthority.create("trust store test CA")
    ca_file = ca.write_ca(tmp_path / "ca.pem")
    temp = tmp_path / "tmp"
    temp.mkdir()
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", TRUST_PROBE, str(ca_file)],
                              env={**os.environ, "TMPDIR": str(temp)}, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().startswith(str(temp / "edgeaudit-trust-"))
    assert list(temp.iterdir()) == []


# --- EA-DEP-04 within the crawl's budget ------------------------------------------------------------

def test_every_url_control_obeys_the_crawl_budget_and_counts_urls_that_do_not_answer_200(world, suite_runner):
    """A sitemap of 3,000 URLs with crawl_max_pages = 20: twenty URLs asked, not 3,000; the ones
    asked that answer 404 are findings, and the rest unasked is a crawl cut short."""
    site = world.add(SiteSpec(name="dep-budget"))
    base = site.edge.url.rstrip("/")
    locs = "".join(f"<url><loc>{base}/p/{i}.html</loc></url>" for i in range(3000))
    s3 = boto3.client("s3", endpoint_url=world.endpoint_url, region_name="us-east-1", **CREDENTIALS)
    s3.put_object(Bucket=site.bucket, Key="sitemap.xml", ContentType="application/xml",
                  Body=f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>'.encode())
    run = suite_runner([site], "-m", "monthly", "-k", "every_url_matches_its_object",
                       config_extra={"thresholds": {"crawl_max_pages": 20}})
    result = run.result("EA-DEP-04", "dep-budget")
    assert result["outcome"] == "failed" and result["severity"] == "P2", (result["message"], result["evidence"])
    evidence = result["evidence"]
    assert evidence["crawl"]["urls_fetched"] == 20 and evidence["crawl"]["truncated"] is True
    assert evidence["urls_compared"] + len(evidence["offenders"]) <= 20 and evidence["sitemap_urls"] <= 20
    assert f"{base}/p/0.html (the edge answered 404)" in result["message"]


# --- answers kept for the run, without their connections -------------------------------------------

class Closing(BaseHTTPRequestHandler):
    """Answers every request on a connection of its own (Connection: close)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        body = b"<html><body>a page</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True


def _tls_objects(root: object) -> set[int]:
    """The TLS sockets and contexts that can be reached from root."""
    seen, stack, found = set(), [root], set()
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, (type, types.ModuleType)):
            continue
        seen.add(id(item))
        if isinstance(item, (ssl.SSLSocket, ssl.SSLContext)):
            found.add(id(item))
        stack.extend(gc.get_referents(item))
    return found


def test_answers_kept_for_the_run_hold_no_connection(tmp_path):
    ca = CertificateAuthority.create("closing test CA")
    cert_file, key_file = ca.issue(["127.0.0.1"]).write(tmp_path, "closing")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server, base = _serve(Closing, context)
    try:
        site = Site(Target(name="closing", url=base + "/", bucket="b", distribution_id="E1",
                           ca_bundle=str(ca.write_ca(tmp_path / "ca.pem"))), timeout=(2.0, 5.0))
        answers = [site.get(f"/page/{i}") for i in range(30)]
    finally:
        server.shutdown()
    assert all(answer.status_code == 200 and answer.text.endswith("</html>") for answer in answers)
    assert site.get("/page/0") is answers[0]  # the run's cache
    # what the session's pool keeps (a few connections, whatever the number of answers) aside
    assert _tls_objects(answers) - _tls_objects(site.session) == set()


class HugeIndex(EndlessIndex):
    """A sitemap index of 50 sitemaps of 5,000 URLs each."""

    children, urls_per_map = 50, 5000


def test_a_huge_sitemap_index_is_read_within_the_page_budget():
    """250,000 URLs listed, crawl_max_pages = 30: at most 30 URLs held and 30 asked, and no child
    sitemap kept in the run's answer cache."""
    handler = type("Handler", (HugeIndex,), {"seen": Counter()})
    server, base = _serve(handler)
    try:
        site = Site(Target(name="huge", url=base + "/", bucket="b", distribution_id="E1", paths=("/",)),
                    timeout=(2.0, 5.0))
        result = crawl(site, max_pages=30, concurrency=4)
    finally:
        server.shutdown()
    assert handler.seen["sitemap.xml"] == 1
    assert handler.seen["maps"] + handler.seen["p"] + handler.seen[""] <= 30, handler.seen
    assert result.sitemap.children_read == handler.seen["maps"] == 1
    assert len(result.sitemap.urls) <= 30 and len(result.fetched) + result.sitemap.children_read <= 30
    assert not any("/maps/" in key[1] for key in site._cache), "child sitemaps are not kept"
    assert "lists 5000 URLs" in " ".join(result.cut_short) and "lists 50 sitemaps" in " ".join(result.cut_short)
