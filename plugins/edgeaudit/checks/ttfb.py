"""Time to first byte, benchmarked: `REQUESTS_PER_PATH` GETs of each critical path, spread over
the benchmark (round by round, the paths interleaved) on the site's keep-alive session with as
many connections as a browser opens to one host, opened (untimed) before the benchmark as a
browsing session has them open. The time of one request is the session's own timing: from
sending it until its headers are parsed, before the body is read."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from edgeaudit import __version__
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
    """path -> {p50_ms, p95_ms, max_ms, requests, statuses}; SiteUnreachable if a request fails."""
    schedule = [path for _ in range(requests_per_path) for path in paths]

    def timed(path: str) -> tuple[str, float, int]:
        response = site.request("GET", path, headers=AGENT)
        response.content  # read the body so that the connection is reused
        return path, response.elapsed.total_seconds() * 1000, response.status_code

    with ThreadPoolExecutor(max_workers=max(1, connections)) as pool:
        list(pool.map(lambda _: site.request("HEAD", paths[0], headers=AGENT).close(), range(connections)))
        answers = list(pool.map(timed, schedule))
    results: dict[str, dict[str, Any]] = {}
    for path in paths:
        times = [ms for p, ms, _ in answers if p == path]
        statuses = sorted({status for p, _, status in answers if p == path})
        results[path] = {"p50_ms": round(percentile(times, 0.5), 1), "p95_ms": round(percentile(times, 0.95), 1),
                         "max_ms": round(max(times), 1), "requests": len(times), "statuses": statuses}
    return results
