"""A hostile site's cost to a run: a sitemap index of 200 sitemaps of 20,000 URLs each, served
over TLS by a site that closes every connection, crawled with crawl_max_pages = 500.

    python benchmarks/hostile.py [--children 200] [--urls 20000] [--max-pages 500]

The site runs in a process of its own, so that the peak RSS measured (getrusage) is the
crawler's alone. Prints one row and records it in benchmarks/results/hostile.json: peak RSS,
requests the site saw (sitemaps and pages), URLs the crawl held, and TLS sockets or contexts the
run's answer cache still holds. The bound: peak RSS under 300 MB.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import resource
import ssl
import sys
import tempfile
import time
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT_MB = 300


def serve(workdir: str, children: int, urls: int, ready: multiprocessing.Queue, seen: multiprocessing.Value) -> None:
    """The hostile site: every answer on a connection of its own."""
    from edgeaudit.demo.pki import CertificateAuthority

    ca = CertificateAuthority.create("hostile benchmark CA")
    cert_file, key_file = ca.issue(["127.0.0.1"]).write(Path(workdir), "hostile")
    ca_file = ca.write_ca(Path(workdir) / "ca.pem")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            with seen.get_lock():
                seen.value += 1
            host = f"https://{self.headers['Host']}"
            if self.path == "/sitemap.xml":
                body = "".join(f"<sitemap><loc>{host}/maps/{i}.xml</loc></sitemap>" for i in range(children))
                text = f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{body}</sitemapindex>'
            elif self.path.startswith("/maps/"):
                n = self.path.split("/")[2].split(".")[0]
                body = "".join(f"<url><loc>{host}/p/{n}/{i}.html</loc></url>" for i in range(urls))
                text = f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{body}</urlset>'
            else:
                text = '<html><body><a href="/">home</a><img src="/logo.png"></body></html>'
            data = text.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html" if not text.startswith("<urlset") else "application/xml")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    ready.put((server.server_address[1], str(ca_file)))
    server.serve_forever(poll_interval=0.05)


def tls_objects(root: object) -> int:
    """TLS sockets and contexts reachable from root."""
    seen, stack, found = set(), [root], 0
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, (type, types.ModuleType)):
            continue
        seen.add(id(item))
        found += isinstance(item, (ssl.SSLSocket, ssl.SSLContext))
        stack.extend(gc.get_referents(item))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=200)
    parser.add_argument("--urls", type=int, default=20_000)
    parser.add_argument("--max-pages", type=int, default=500)
    args = parser.parse_args()

    from edgeaudit.rules.config import Target
    from edgeaudit.web.crawl import crawl
    from edgeaudit.web.site import Site

    with tempfile.TemporaryDirectory() as workdir:
        ready: multiprocessing.Queue = multiprocessing.Queue()
        seen = multiprocessing.Value("i", 0)
        server = multiprocessing.Process(target=serve, args=(workdir, args.children, args.urls, ready, seen),
                                         daemon=True)
        server.start()
        port, ca_file = ready.get(timeout=60)
        try:
            site = Site(Target(name="hostile", url=f"https://127.0.0.1:{port}/", bucket="b", distribution_id="E1",
                               ca_bundle=ca_file))
            started = time.perf_counter()
            result = crawl(site, max_pages=args.max_pages, concurrency=4)
            seconds = time.perf_counter() - started
            gc.collect()
            held = tls_objects(list(site._cache.values()))
        finally:
            server.terminate()
    row = {
        "case": f"sitemap index of {args.children} sitemaps x {args.urls} URLs, connections closed, TLS",
        "crawl_max_pages": args.max_pages, "requests_seen": seen.value,
        "child_sitemaps_read": result.sitemap.children_read, "sitemap_urls_held": len(result.sitemap.urls),
        "urls_fetched": len(result.fetched), "answers_cached": len(site._cache),
        "tls_objects_held_by_cached_answers": held, "cut_short": result.cut_short,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "seconds": round(seconds, 2), "limit_mb": LIMIT_MB, "python": sys.version.split()[0],
    }
    print(json.dumps(row, indent=2))
    out = ROOT / "benchmarks" / "results" / "hostile.json"
    out.write_text(json.dumps(row, indent=2) + "\n")
    return 0 if row["peak_rss_mb"] < LIMIT_MB else 1


if __name__ == "__main__":
    raise SystemExit(main())
