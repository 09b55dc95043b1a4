"""Page weight without a browser: the page and every subresource it names (scripts, styles,
images, media), each fetched once, counted as transferred (compressed when the edge compresses).
The lab's resource timing is the better source (it sees what scripts load too); this is the
fallback when no browser is available."""

from __future__ import annotations

from typing import Any

from edgeaudit.web.crawl import parse_page
from edgeaudit.web.site import Site

ACCEPT_ENCODING = "br, gzip"


def page_weights(site: Site, paths: tuple[str, ...] | list[str]) -> dict[str, dict[str, Any]]:
    """path -> {weight_kb, requests}: the page and its subresources as a browser would ask them."""
    results = {}
    for path in paths:
        total = _transferred(site, path)
        page = site.get(path)
        references = parse_page(page.content.decode(page.encoding or "utf-8", "replace"), page.url)
        urls = list(dict.fromkeys(r.url for r in references if r.kind == "subresource"))
        total += sum(_transferred(site, url) for url in urls)
        results[path] = {"weight_kb": round(total / 1024, 1), "requests": 1 + len(urls)}
    return results


def _transferred(site: Site, url: str) -> int:
    """Bytes on the wire for one GET: the headers plus the body as sent (before decompression).
    A body larger than the run reads of one answer counts as that much at least."""
    response = site.request("GET", url, headers={"Accept-Encoding": ACCEPT_ENCODING}, as_sent=True)
    return len(response.content) + sum(len(k) + len(v) + 4 for k, v in response.headers.items())
