"""The HTTP layer's run cache: one request per URL, method and headers, and a dead origin asked once."""

from __future__ import annotations

import socket
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from edgeaudit.errors import SiteUnreachable
from edgeaudit.rules.config import Target
from edgeaudit.web.site import PROBE_ORIGIN, Site, default_timeout


class _Counting(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: Counter

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).seen[(self.command, self.path, self.headers.get("Origin"))] += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(b"ok")

    do_GET = do_HEAD = do_PUT = _answer  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def counting_site():
    handler = type("Handler", (_Counting,), {"seen": Counter()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield Site(Target(name="t", url=f"http://127.0.0.1:{server.server_address[1]}/", bucket="b",
                      distribution_id="d")), handler.seen
    server.shutdown()
    server.server_close()


def test_each_request_is_asked_once_even_when_asked_at_once(counting_site):
    site, seen = counting_site
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: site.get("/a"), range(16)))
    assert all(answer is answers[0] for answer in answers)
    site.cross_origin("/a")
    site.cross_origin("/a")
    site.fetch("PUT", "/a", data=b"x")
    site.fetch("PUT", "/a", data=b"x")
    assert seen == Counter({("GET", "/a", None): 1, ("HEAD", "/a", PROBE_ORIGIN): 1, ("PUT", "/a", None): 1})
    site.get("/a", headers={"X-Probe": "1"})  # a request with its own arguments is never cached
    assert seen[("GET", "/a", None)] == 2, seen


def test_a_dead_origin_is_asked_once_and_named_after():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    site = Site(Target(name="t", url=f"https://127.0.0.1:{port}/", bucket="b", distribution_id="d"), timeout=(1, 1))
    with pytest.raises(SiteUnreachable, match="refused"):
        site.get("/")
    with pytest.raises(SiteUnreachable, match=f"127.0.0.1:{port} failed earlier in this run: .*refused"):
        site.get("/other.html")


def test_timeouts_come_from_the_environment(monkeypatch):
    monkeypatch.delenv("EDGEAUDIT_HTTP_TIMEOUT_S", raising=False)
    assert default_timeout() == (5.0, 20.0)
    monkeypatch.setenv("EDGEAUDIT_HTTP_TIMEOUT_S", "2,7.5")
    assert default_timeout() == (2.0, 7.5)
    monkeypatch.setenv("EDGEAUDIT_HTTP_TIMEOUT_S", "soon")
    with pytest.raises(ValueError, match="connect,read"):
        default_timeout()
