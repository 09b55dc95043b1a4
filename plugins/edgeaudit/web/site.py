"""The HTTP layer: a requests session bound to one target, with timeouts, our User-Agent, the
target's extra trust (`ca_bundle`), proxies from the environment, and a per-run cache of answers.

Every control of a target shares one `Site`, so a URL is asked once per run per method and
headers: `site.get(url)` (plain GETs) and `site.fetch(method, url, headers=...)` (probes, and
any other URL a control asks, such as a bucket's own endpoint) are cached, concurrent askers of
one URL wait for the first answer, and the crawl (crawl.py) goes through the same cache. A
network failure (refused, reset, timed out, TLS, an answer slower than the deadline) is
remembered for the origin: later requests to it fail at once with the same cause, so a dead site
costs one timeout per run, not one per URL.

Every answer is bounded: connect and read timeouts per wait, a deadline for the whole answer
(`http_deadline_s`, EDGEAUDIT_HTTP_DEADLINE_S: a site that trickles bytes cannot hold a control
for minutes), and at most EDGEAUDIT_HTTP_MAX_BYTES of its body (limits.py reads them).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import certifi
import requests
from urllib3.response import HTTPResponse

from edgeaudit import __version__
from edgeaudit.errors import SiteUnreachable
from edgeaudit.rules import limits
from edgeaudit.rules.config import Target
from edgeaudit.web.deadline import Deadline, DeadlineAdapter

PROBE_ORIGIN = "https://edgeaudit-probe.example"  # a foreign Origin for CORS probes


def default_timeout() -> tuple[float, float]:
    """(connect, read) seconds: 5/20, or EDGEAUDIT_HTTP_TIMEOUT_S="connect,read"."""
    return limits.http_timeout()


def origin_of(url: str) -> str:
    """scheme://host:port of a URL, default ports made explicit."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


class Site:
    """What the `site` fixture gives a control: `site.get("/")`, `site.url("/about/")`."""

    def __init__(self, target: Target, timeout: tuple[float, float] | None = None,
                 deadline_s: float | None = None) -> None:
        self.target = target
        self.timeout = timeout or default_timeout()
        self.deadline_s = deadline_s or limits.http_deadline()
        self.session = requests.Session()
        self.mount_adapter(10)
        self.session.headers["User-Agent"] = f"edgeaudit/{__version__} (+compliance check)"
        self.verify = trust_store(target.ca_bundle)  # proxies: requests reads HTTPS_PROXY/NO_PROXY
        self._cache: dict[tuple[Any, ...], requests.Response | SiteUnreachable] = {}
        self._key_locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._dead: dict[str, str] = {}
        self._lock = threading.Lock()
        self.not_found_url = self.url(f"/edgeaudit-{secrets.token_hex(6)}/not-found.html")

    def __repr__(self) -> str:
        return f"<Site {self.target.name} {self.target.url}>"

    def url(self, path_or_url: str, base: str | None = None) -> str:
        return urljoin(base or self.target.url, path_or_url)

    def check_name(self) -> None:
        """Look the target's host name up once, at the start: a name that does not resolve
        ends every request to it with that one reason, none of them trying again. Skipped when
        a proxy resolves names for us."""
        for url in {self.target.url, getattr(self.target, "http_url", None) or self.target.url}:
            host = urlsplit(url).hostname
            if not host or requests.utils.get_environ_proxies(url):
                continue
            try:
                socket.getaddrinfo(host, None)
            except (socket.gaierror, UnicodeError) as exc:
                with self._lock:
                    self._dead.setdefault(origin_of(url), f"its host name {host} does not resolve ({exc})")

    def request(self, method: str, path_or_url: str, *, base: str | None = None, **kwargs: Any) -> requests.Response:
        """One request, never following redirects unless asked; network failures become SiteUnreachable.
        `as_sent=True` keeps the body as it crossed the wire (still compressed), to count its bytes."""
        url = self.url(path_or_url, base)
        origin = origin_of(url)
        with self._lock:
            cause = self._dead.get(origin)
        if cause:
            raise SiteUnreachable(f"{url} not asked: {origin} failed earlier in this run: {cause}")
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("verify", self.verify)  # per request, so REQUESTS_CA_BUNDLE cannot override it
        kwargs.setdefault("stream", True)
        as_sent = kwargs.pop("as_sent", False)
        deadline = Deadline(self.deadline_s)
        try:
            with deadline:
                response = read_bounded(self.session.request(method, url, **kwargs), as_sent=as_sent)
            if not deadline.expired:
                return response
            message = ""  # cut at the deadline after the last byte: named below
        except requests.exceptions.SSLError as exc:
            message = f"TLS handshake with {url} failed: {_reason(exc)}"
        except requests.exceptions.Timeout as exc:
            message = (f"{url} did not answer within {self.timeout[0]:g}s/{self.timeout[1]:g}s "
                       f"(connect/read): {_reason(exc)}")
        except requests.exceptions.RequestException as exc:
            message = f"{url} unreachable: {_reason(exc)}"
        if deadline.expired:  # the failure above is the deadline's doing
            message = (f"{url} exceeded the {self.deadline_s:g} s deadline for one answer (connection, headers "
                       "and body): the site sends too slowly (http_deadline_s, EDGEAUDIT_HTTP_DEADLINE_S)")
        with self._lock:
            self._dead.setdefault(origin, message)
        raise SiteUnreachable(message)

    def fetch(self, method: str, path_or_url: str, *, headers: dict[str, str] | None = None,
              data: bytes | None = None, base: str | None = None) -> requests.Response:
        """A request asked once per run: the same method, URL, headers and body share one answer
        (or one failure) between every control of the target."""
        url = self.url(path_or_url, base)
        key = (method.upper(), url, tuple(sorted((headers or {}).items())), data)
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            if key not in self._cache:
                try:
                    self._cache[key] = _detached(self.request(method.upper(), url, headers=headers, data=data))
                except SiteUnreachable as exc:
                    self._cache[key] = exc
            answer = self._cache[key]
        if isinstance(answer, SiteUnreachable):
            raise SiteUnreachable(str(answer))
        return answer

    def get(self, path_or_url: str, *, base: str | None = None, **kwargs: Any) -> requests.Response:
        """A GET; plain GETs (no extra arguments) are fetched once per run and shared."""
        if kwargs:
            return self.request("GET", path_or_url, base=base, **kwargs)
        return self.fetch("GET", path_or_url, base=base)

    def head(self, path_or_url: str, **kwargs: Any) -> requests.Response:
        return self.request("HEAD", path_or_url, **kwargs)

    def cross_origin(self, path_or_url: str) -> requests.Response:
        """The answer to a HEAD of the URL from a foreign Origin (PROBE_ORIGIN), asked once per run.
        HEAD carries the same CORS headers as GET and leaves each URL's GET to the crawl."""
        return self.fetch("HEAD", path_or_url, headers={"Origin": PROBE_ORIGIN})

    def mount_adapter(self, pool_size: int) -> None:
        """Connections that obey the deadline, pool_size of them kept per origin."""
        adapter = DeadlineAdapter(pool_connections=4, pool_maxsize=pool_size)
        for scheme in ("https://", "http://"):
            self.session.mount(scheme, adapter)


def max_body_bytes() -> int:
    """How much of one answer is read: 10 MiB, or EDGEAUDIT_HTTP_MAX_BYTES."""
    return limits.http_max_bytes()


def read_bounded(response: requests.Response, as_sent: bool = False) -> requests.Response:
    """Read at most max_body_bytes() of the body (a 50 MB page must not fill the memory of a
    run); `response.truncated` says whether more was there. `as_sent`: the body as it was sent,
    not decompressed (what a page weighs on the wire)."""
    limit, size, chunks = max_body_bytes(), 0, []
    body = (response.raw.stream(64 * 1024, decode_content=False) if as_sent
            else response.iter_content(64 * 1024))
    try:
        for chunk in body:
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                break
    finally:
        response.close()
    response._content = b"".join(chunks)[:limit]  # requests' own slot for a body read in full
    response._content_consumed = True
    response.truncated = size > limit  # type: ignore[attr-defined]
    return response


def _detached(response: requests.Response) -> requests.Response:
    """An answer kept for the run without its connection: its body is read, and the socket and
    TLS context urllib3 leaves on it (about 0.75 MB each when the site closes its connections) go;
    `response.raw` keeps the status line and the headers as sent (repeated ones apart)."""
    raw = response.raw
    response.raw = HTTPResponse(b"", headers=raw.headers, status=raw.status, version=raw.version,
                                version_string=raw.version_string, reason=raw.reason, preload_content=False,
                                decode_content=False)
    return response


_TRUST_FILES: dict[str, str] = {}  # ca_bundle -> the run's combined trust store
_TRUST_LOCK = threading.Lock()


def trust_store(ca_bundle: str | None) -> str | bool:
    """The system's trusted roots plus the target's extra CA file, as one PEM file for requests:
    a private file (mode 600, a name no other user can predict) made once per run per CA file and
    removed when the run's process ends."""
    if not ca_bundle:
        return True
    with _TRUST_LOCK:
        if ca_bundle not in _TRUST_FILES:
            system = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
            pem = Path(system).read_bytes() if Path(system).is_file() else b""
            pem += b"\n" + Path(ca_bundle).read_bytes()
            handle, name = tempfile.mkstemp(prefix="edgeaudit-trust-", suffix=".pem")  # O_EXCL, mode 600
            with os.fdopen(handle, "wb") as file:
                file.write(pem)
            if not _TRUST_FILES:
                atexit.register(remove_trust_stores)
            _TRUST_FILES[ca_bundle] = name
        return _TRUST_FILES[ca_bundle]


def remove_trust_stores() -> None:
    """Remove the run's trust store files (at the end of the process, or when a run ends early)."""
    with _TRUST_LOCK:
        for name in _TRUST_FILES.values():
            with contextlib.suppress(OSError):
                os.unlink(name)
        _TRUST_FILES.clear()


def _reason(exc: Exception) -> str:
    """The innermost cause, without the noise of urllib3's wrappers."""
    while exc.__context__ is not None and exc.__context__ is not exc:
        exc = exc.__context__  # type: ignore[assignment]
    text = str(exc)
    return text[-300:] if len(text) > 300 else text
