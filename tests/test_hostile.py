"""Hostile sites: answers too big, too many links, loops, huge headers, broken encodings and
resets mid-body. Each is bounded, or ends as a clear `error`; nothing hangs or crashes."""

from __future__ import annotations

import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from edgeaudit.config import Target
from edgeaudit.crawl import crawl
from edgeaudit.site import Site, SiteUnreachable

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
