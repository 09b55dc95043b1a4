"""Time to first byte, benchmarked: `REQUESTS_PER_PATH` GETs of each critical path, twice.

Full: each GET on a connection of its own, so that its time holds DNS, TCP and TLS as a new
visitor's does (TTFB as web.dev defines it); this is the one judged. Warm: the same GETs on
kept-alive connections opened before the benchmark (as many as a browser opens to one host),
what a visitor's later pages see. Both run round by round, the paths interleaved. The time of
one request is the session's own timing: from sending it (connecting included) until its headers
are parsed, before the body is read. Every status is kept: a fast error is no fast page."""

from __future__ import annotations

import math
import queue
import ssl
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from edgeaudit import __version__
from edgeaudit.web.deadline import DeadlineAdapter
from edgeaudit.web.site import Site

REQUESTS_PER_PATH = 20
BROWSER_CONNECTIONS = 6   # what Chromium opens at most to one host over HTTP/1.1
AGENT = {"User-Agent": f"edgeaudit/{__version__} (ttfb benchmark)"}  # logs can tell the benchmark apart


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (p95 of 20 values is the 19th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def benchmark(site: Site, paths: tuple[str, ...] | list[str], requests_per_path: int = REQUESTS_PER_PATH,
              connections: int = BROWSER_CONNECTIONS) -> dict[str, dict[str, Any]]:
    """path -> {p50_ms, p95_ms, max_ms, requests (full: new connections), warm: {the same}, statuses};
    SiteUnreachable if a request fails."""
    schedule = [path for _ in range(requests_per_path) for path in paths]
    clients: queue.SimpleQueue[Site] = queue.SimpleQueue()  # a session per worker: closing it drops only its connection
    trust = ssl.create_default_context(cafile=site.verify if isinstance(site.verify, str) else None)
    for _ in range(max(1, connections)):
        clients.put(_fresh_client(site, trust))

    def timed(client: Site, path: str) -> tuple[str, float, int]:
        response = client.request("GET", path, headers=AGENT)  # the body is read: the connection can be reused
        return path, response.elapsed.total_seconds() * 1000, response.status_code

    def fresh(path: str) -> tuple[str, float, int]:
        client = clients.get()
        try:
            return timed(client, path)
        finally:
            client.session.close()  # no connection kept: the next request opens its own
            clients.put(client)

    with ThreadPoolExecutor(max_workers=max(1, connections)) as pool:
        full = list(pool.map(fresh, schedule))
        list(pool.map(lambda _: site.request("HEAD", paths[0], headers=AGENT).close(), range(connections)))
        warm = list(pool.map(lambda path: timed(site, path), schedule))
    results: dict[str, dict[str, Any]] = {}
    for path in paths:
        results[path] = {**_summary(full, path), "warm": _summary(warm, path),
                         "statuses": sorted({status for p, _, status in full + warm if p == path})}
    return results


class _TrustLoaded(DeadlineAdapter):
    """Connections verified with one SSLContext, its roots read once: a browser does not read its
    trust store for each connection, and reading a CA file (~80 ms) would count as the site's time."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        super().__init__(pool_connections=1, pool_maxsize=1)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **{**kwargs, "ssl_context": self.context})

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)
        conn.ca_certs = conn.ca_cert_dir = None  # requests names a CA file; the context holds the roots


def _fresh_client(site: Site, trust: ssl.SSLContext) -> Site:
    """A client of the target of its own, whose requests are verified with `trust`."""
    client = Site(site.target, site.timeout, site.deadline_s)
    client.verify = True  # the target's roots are in `trust`; a CA file here would be read per connection
    adapter = _TrustLoaded(trust)
    for scheme in ("https://", "http://"):
        client.session.mount(scheme, adapter)
    return client


def _summary(answers: list[tuple[str, float, int]], path: str) -> dict[str, float]:
    times = [ms for p, ms, _ in answers if p == path]
    return {"p50_ms": round(percentile(times, 0.5), 1), "p95_ms": round(percentile(times, 0.95), 1),
            "max_ms": round(max(times), 1), "requests": len(times)}


def failed_statuses(result: dict[str, Any]) -> list[int]:
    """The statuses of a path's benchmark that are not an answer (2xx or 3xx)."""
    return [status for status in result["statuses"] if not 200 <= status < 400]
