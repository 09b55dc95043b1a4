"""The crawl of a target: same-origin, from the critical paths and sitemap.xml, HTML parsed with
the standard library's `html.parser`, each URL fetched once through the site's cache, at most
`concurrency` requests in flight, at most `max_pages` URLs fetched (child sitemaps of a sitemap
index included).

Made once per target per run (`shared_crawl(site, ...)`, kept here beside the site rather than in
it, so that the HTTP layer knows nothing of crawling) and read by every control that needs the
site's pages or assets through the `crawl` fixture: broken links, mixed content, source maps,
compression, caching headers, edge-vs-origin comparison. A crawl cut short by a limit (max_pages,
the bytes read of an answer) says so (`crawl.cut_short`), and `checked_crawl` turns that into a
warning of every control that reads it: what was not fetched was not checked, and is never a
clean pass.
"""

from __future__ import annotations

import io
import re
import threading
import time
import weakref
import xml.etree.ElementTree as ElementTree
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any
from urllib.parse import urldefrag, urljoin, urlsplit, urlunsplit

from edgeaudit.errors import NotEvaluated

if TYPE_CHECKING:
    from edgeaudit.evidence import Evidence
    from edgeaudit.rules.thresholds import Thresholds
    from edgeaudit.web.site import Site

HTML_TYPES = ("text/html", "application/xhtml+xml")
SITEMAP_PATH = "/sitemap.xml"
SITEMAP_MAX_BYTES = 50 * 1024 * 1024  # the sitemaps.org limit, uncompressed
_SKIPPED_SCHEMES = ("mailto:", "tel:", "javascript:", "data:", "blob:", "about:")
# link[rel] values that load something into the page (the rest are navigation: canonical, alternate...)
_LOADING_RELS = {"stylesheet", "icon", "shortcut", "apple-touch-icon", "preload", "modulepreload",
                 "prefetch", "manifest", "mask-icon"}


@dataclass(frozen=True)
class Reference:
    """One URL a page refers to: `kind` is "link" (navigation) or "subresource" (loaded with the page)."""

    tag: str
    attribute: str
    url: str
    kind: str
    integrity: str | None = None


class _PageParser(HTMLParser):
    """Collects every URL-bearing attribute of a page, and its <base href>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.found: list[tuple[str, str, str, str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: (value or "").strip() for name, value in attrs}
        if tag == "base" and a.get("href") and self.base is None:
            self.base = a["href"]
        elif tag == "a" and a.get("href"):
            self._add(tag, "href", a["href"], "link")
        elif tag == "link" and a.get("href"):
            rels = set(a.get("rel", "").lower().split())
            self._add(tag, "href", a["href"], "subresource" if rels & _LOADING_RELS else "link")
        elif tag == "script" and a.get("src"):
            self._add(tag, "src", a["src"], "subresource", a.get("integrity") or None)
        elif tag in ("img", "source", "video", "audio", "iframe", "embed", "track", "input"):
            if a.get("src") and (tag != "input" or a.get("type", "").lower() == "image"):
                self._add(tag, "src", a["src"], "subresource")
            for candidate in srcset_urls(a.get("srcset", "")):
                self._add(tag, "srcset", candidate, "subresource")
            if tag == "video" and a.get("poster"):
                self._add(tag, "poster", a["poster"], "subresource")
        elif tag == "object" and a.get("data"):
            self._add(tag, "data", a["data"], "subresource")

    def _add(self, tag: str, attribute: str, value: str, kind: str, integrity: str | None = None) -> None:
        if value and not value.lower().startswith(_SKIPPED_SCHEMES) and not value.startswith("#"):
            self.found.append((tag, attribute, value, kind, integrity))


def srcset_urls(srcset: str) -> list[str]:
    """The URLs of a srcset attribute ("a.png 1x, b.png 2x")."""
    return [candidate.split()[0] for candidate in srcset.split(",") if candidate.split()]


def parse_page(html: str, page_url: str) -> list[Reference]:
    """Every URL a page refers to, absolute, without fragments (query strings kept)."""
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    base = urljoin(page_url, parser.base) if parser.base else page_url
    references = []
    for tag, attribute, value, kind, integrity in parser.found:
        absolute = normalize(urljoin(base, value))
        if absolute:
            references.append(Reference(tag, attribute, absolute, kind, integrity))
    return references


def normalize(url: str) -> str:
    """A URL without fragment, with lower-case scheme and host, no default port, "/" for an empty path."""
    url, _ = urldefrag(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return url if parts.scheme not in ("http", "https") else ""
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower() + (f":{port}" if port and port != default else "")
    return urlunsplit((parts.scheme, host, parts.path or "/", parts.query, ""))


def same_origin(url: str, origin_url: str) -> bool:
    a, b = urlsplit(url), urlsplit(origin_url)
    default = {"http": 80, "https": 443}
    return (a.scheme == b.scheme and (a.hostname or "").lower() == (b.hostname or "").lower()
            and (a.port or default.get(a.scheme)) == (b.port or default.get(b.scheme)))


@dataclass
class Sitemap:
    """What /sitemap.xml answered: its status, its URLs (sitemap indexes followed one level), or why it failed."""

    url: str
    status: int | None = None
    urls: list[str] = field(default_factory=list)
    error: str | None = None
    children_read: int = 0        # child sitemaps of a sitemap index that were fetched
    cut_short: str | None = None  # why not all of it was read (a limit), if so

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None


def parse_sitemap(body: bytes) -> tuple[str, list[str]]:
    """("urlset" or "sitemapindex", the <loc> values) of a sitemap document; ValueError if it is not one."""
    kind, locs, _ = stream_sitemap(body, None)
    return kind, locs


def stream_sitemap(body: bytes, max_locs: int | None) -> tuple[str, list[str], int]:
    """(kind, the first max_locs <loc> values, how many it lists) of a sitemap document, parsed as
    a stream: what is held grows with max_locs, not with the sitemap (a 20,000-URL sitemap read for
    a 50-page crawl keeps 50 URLs). ValueError if it is not a sitemap."""
    if len(body) > SITEMAP_MAX_BYTES:
        raise ValueError(f"sitemap larger than {SITEMAP_MAX_BYTES} bytes")
    if re.search(rb"<!(DOCTYPE|ENTITY)", body, re.I):
        raise ValueError("sitemap declares a DTD or entities, which a sitemap must not")
    kind, locs, total = "", [], 0
    try:
        for event, element in ElementTree.iterparse(io.BytesIO(body), events=("start", "end")):
            name = element.tag.rsplit("}", 1)[-1]
            if not kind:
                kind = name
                if kind not in ("urlset", "sitemapindex"):
                    raise ValueError(f"root element is <{kind}>, not <urlset> or <sitemapindex>")
                root = element
            elif event == "end" and name == "loc" and (element.text or "").strip():
                total += 1
                if max_locs is None or len(locs) < max_locs:
                    locs.append((element.text or "").strip())
            elif event == "end" and name in ("url", "sitemap"):
                root.clear()  # what was read is let go
    except ElementTree.ParseError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from None
    return kind, locs, total


@dataclass
class Fetched:
    """One crawled URL: its answer (or the network failure) and the pages that refer to it."""

    url: str
    status: int | None
    content_type: str = ""
    error: str | None = None
    referrers: set[str] = field(default_factory=set)
    truncated: bool = False  # only the first EDGEAUDIT_HTTP_MAX_BYTES of the body were read

    @property
    def is_html(self) -> bool:
        return self.status == 200 and self.content_type.split(";")[0].strip().lower() in HTML_TYPES


@dataclass
class Crawl:
    """The crawl's result: every fetched URL, the references of every HTML page, the sitemap."""

    start: list[str]
    fetched: dict[str, Fetched]
    references: dict[str, list[Reference]]
    sitemap: Sitemap
    max_pages: int
    concurrency: int
    elapsed_s: float
    cut_short: list[str] = field(default_factory=list)  # each limit that left something unchecked
    skipped: list[str] = field(default_factory=list)

    @property
    def truncated(self) -> bool:
        """Was anything left unfetched or read in part because of a limit?"""
        return bool(self.cut_short)

    @property
    def pages(self) -> list[str]:
        """The HTML pages crawled (status 200, text/html)."""
        return [url for url, f in self.fetched.items() if f.is_html]

    def errors(self) -> dict[str, str]:
        return {url: f.error for url, f in self.fetched.items() if f.error}

    def require_complete(self) -> None:
        """NotEvaluated when a URL could not be asked: a partial crawl proves nothing."""
        errors = self.errors()
        if errors:
            url, cause = next(iter(errors.items()))
            raise NotEvaluated(f"the crawl could not fetch {len(errors)} URL(s), e.g. {url}: {cause}")

    def summary(self) -> dict[str, Any]:
        """The crawl's size and time, for a control's evidence."""
        return {"start_urls": len(self.start), "urls_fetched": len(self.fetched), "html_pages": len(self.pages),
                "max_pages": self.max_pages, "concurrency": self.concurrency, "truncated": self.truncated,
                "cut_short": self.cut_short,
                "not_fetched_over_limit": len(self.skipped), "elapsed_s": round(self.elapsed_s, 3),
                "sitemap": {"status": self.sitemap.status, "urls": len(self.sitemap.urls), "error": self.sitemap.error}}


def read_sitemap(site: Site, budget: int) -> Sitemap:
    """The target's /sitemap.xml, a sitemap index followed one level (same-origin children only),
    read within `budget` URLs (the crawl's crawl_max_pages less its critical paths): each child
    sitemap read and each URL kept counts one, and no more than that is parsed or held."""
    budget = max(0, int(budget))
    sitemap = Sitemap(site.url(SITEMAP_PATH))
    response = site.get(sitemap.url)
    sitemap.status = response.status_code
    if response.status_code != 200:
        sitemap.error = f"{sitemap.url} answered {response.status_code}"
        return sitemap
    locs: list[str] = []
    try:
        kind, found, total = stream_sitemap(_whole_body(response, sitemap.url), budget)
        if kind == "urlset":
            locs = found
            if total > len(found):
                sitemap.cut_short = (f"the sitemap lists {total} URLs; the {total - len(found)} over "
                                     f"crawl_max_pages ({budget}) were not read")
        else:
            for child in found:
                if not same_origin(child, site.target.url):
                    raise ValueError(f"the sitemap index lists a sitemap on another origin: {child}")
            for child in found:
                room = budget - sitemap.children_read - len(locs)
                if room <= 1:  # a child read to keep nothing is not worth a request
                    break
                answer = site.request("GET", child)  # not kept in the run's cache: only its URLs are
                sitemap.children_read += 1
                if answer.status_code != 200:
                    raise ValueError(f"child sitemap {child} answered {answer.status_code}")
                _, urls, listed = stream_sitemap(_whole_body(answer, child), room - 1)
                locs += urls
                if listed > len(urls):
                    sitemap.cut_short = (f"{child} lists {listed} URLs; the {listed - len(urls)} over what "
                                         f"the crawl's budget ({budget} URLs, crawl_max_pages) leaves were not read")
                    break
            if sitemap.children_read < total:
                sitemap.cut_short = "; ".join(filter(None, (
                    sitemap.cut_short, f"the sitemap index lists {total} sitemaps; the {total - sitemap.children_read} "
                    f"over the crawl's budget ({budget} URLs, crawl_max_pages) were not read")))
    except _TooLarge as exc:
        sitemap.error = sitemap.cut_short = str(exc)
        return sitemap
    except ValueError as exc:
        sitemap.error = str(exc)
        return sitemap
    sitemap.urls = [normalize(loc) or loc for loc in locs]
    return sitemap


class _TooLarge(ValueError):
    """An answer of which only the first EDGEAUDIT_HTTP_MAX_BYTES were read."""


def _whole_body(response: Any, url: str) -> bytes:
    """The body of a sitemap, or _TooLarge when only part of it was read."""
    if getattr(response, "truncated", False):
        raise _TooLarge(f"{url} is larger than the {len(response.content)} bytes read of one answer "
                         "(EDGEAUDIT_HTTP_MAX_BYTES)")
    return response.content


def crawl(site: Site, *, max_pages: int, concurrency: int) -> Crawl:
    """Breadth-first over same-origin URLs: the critical paths first, whatever the budget, then
    what they refer to and the sitemap's URLs within max_pages (child sitemaps read count too)."""
    began = time.monotonic()
    concurrency = max(1, int(concurrency))
    site.mount_adapter(max(10, concurrency))
    origin = site.target.url
    paths = list(dict.fromkeys(normalize(site.url(path)) for path in site.target.paths))
    sitemap = read_sitemap(site, max_pages - len(paths))
    budget = max(len(paths), max_pages - sitemap.children_read)  # child sitemaps count as fetched URLs
    later = [url for url in sitemap.urls if same_origin(url, origin)]  # queued once the critical paths are in
    start = list(dict.fromkeys(paths + later))

    fetched: dict[str, Fetched] = {}
    references: dict[str, list[Reference]] = {}
    queue: deque[str] = deque(paths)
    seen: set[str] = set(paths)
    skipped: list[str] = []

    def visit(url: str) -> tuple[Fetched, list[Reference]]:
        try:
            response = site.get(url)
        except NotEvaluated as exc:
            return Fetched(url, None, error=str(exc)), []
        found = Fetched(url, response.status_code, response.headers.get("Content-Type", ""),
                        truncated=bool(getattr(response, "truncated", False)))
        refs: list[Reference] = []
        if found.is_html:
            refs = parse_page(response.text, url)
        elif response.is_redirect and response.headers.get("Location"):
            refs = [Reference("Location", "header", normalize(urljoin(url, response.headers["Location"])), "link")]
        return found, refs

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="edgeaudit-crawl") as pool:
        pending: dict[Future, str] = {}
        while queue or pending or later:
            if later and all(path in fetched for path in paths):
                queue.extend(url for url in later if url not in seen)
                seen.update(later)
                later = []
            while queue and len(pending) < concurrency:
                url = queue.popleft()
                if len(fetched) + len(pending) >= budget:
                    skipped.append(url)
                    continue
                pending[pool.submit(visit, url)] = url
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                url = pending.pop(future)
                found, refs = future.result()
                fetched[url] = found
                if refs:
                    references[url] = refs
                for ref in refs:
                    if not ref.url or not same_origin(ref.url, origin):
                        continue
                    if ref.url not in seen:
                        seen.add(ref.url)
                        queue.append(ref.url)
    for page, refs in references.items():
        for ref in refs:
            if ref.url in fetched:
                fetched[ref.url].referrers.add(page)
    fetched, references = dict(sorted(fetched.items())), dict(sorted(references.items()))  # stable reports
    return Crawl(start=start, fetched=fetched, references=references, sitemap=sitemap, max_pages=max_pages,
                 concurrency=concurrency, elapsed_s=time.monotonic() - began,
                 cut_short=_cut_short(sitemap, fetched, skipped, max_pages), skipped=skipped)


def _cut_short(sitemap: Sitemap, fetched: dict[str, Fetched], skipped: list[str], max_pages: int) -> list[str]:
    """Each limit that left part of the site unchecked, in words."""
    reasons = [sitemap.cut_short] if sitemap.cut_short else []
    if skipped:
        reasons.append(f"crawl_max_pages ({max_pages}) reached: {len(skipped)} URL(s) found and not fetched, "
                       f"e.g. {skipped[0]}")
    partial = [url for url, found in fetched.items() if found.truncated and found.is_html]
    if partial:
        reasons.append(f"{len(partial)} page(s) larger than the bytes read of one answer (EDGEAUDIT_HTTP_MAX_BYTES) "
                       f"were searched for links in part, e.g. {partial[0]}")
    return reasons


# Each Site's crawl, and the lock its first asker holds while crawling; a Site lives for one run.
_CRAWLS: weakref.WeakKeyDictionary[Site, Crawl] = weakref.WeakKeyDictionary()
_CRAWL_LOCKS: weakref.WeakKeyDictionary[Site, threading.Lock] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def shared_crawl(site: Site, max_pages: int, concurrency: int) -> Crawl:
    """The site's crawl, made once per run (the first caller's limits apply) and shared by every
    control of the target."""
    with _LOCK:
        site_lock = _CRAWL_LOCKS.setdefault(site, threading.Lock())
    with site_lock:
        if site not in _CRAWLS:
            _CRAWLS[site] = crawl(site, max_pages=max_pages, concurrency=concurrency)
        return _CRAWLS[site]


def forget(site: Site) -> None:
    """Drop the site's crawl: its target's last control has run."""
    with _LOCK:
        _CRAWLS.pop(site, None)
        _CRAWL_LOCKS.pop(site, None)


def held() -> list[str]:
    """The targets whose crawl is held."""
    with _LOCK:
        return [site.target.name for site in list(_CRAWLS)]


def checked_crawl(site: Site, evidence: Evidence, thresholds: Thresholds) -> Crawl:
    """The run's crawl as a control reads it (the `crawl` fixture): its size in the evidence, not
    evaluated when a URL could not be asked, and a warning for each limit that cut it short (the
    URLs it did not reach were not checked, so the control cannot pass cleanly). The controls that
    use it read thresholds.crawl_max_pages and thresholds.http_concurrency through it."""
    result = shared_crawl(site, thresholds.crawl_max_pages, thresholds.http_concurrency)
    evidence.record("crawl", result.summary())
    result.require_complete()
    for reason in result.cut_short:
        evidence.warn(f"the crawl was cut short, so part of the site was not checked: {reason}")
    return result
