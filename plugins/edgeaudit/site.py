"""The HTTP layer: a requests session bound to one target, with timeouts, our User-Agent, the
target's extra trust (`ca_bundle`), proxies from the environment, and a per-run cache of GETs."""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import certifi
import requests

from . import __version__
from .aws import NotEvaluated
from .config import Target

CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 20


class SiteUnreachable(NotEvaluated):
    """The site could not be asked: refused, reset, timed out, TLS failure."""


class Site:
    """What the `site` fixture gives a control: `site.get("/")`, `site.url("/about/")`."""

    def __init__(self, target: Target, timeout: tuple[float, float] = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)) -> None:
        self.target = target
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = f"edgeaudit/{__version__} (+compliance check)"
        self.verify = trust_store(target.ca_bundle)  # proxies: requests reads HTTPS_PROXY/NO_PROXY
        self._cache: dict[tuple[str, str], requests.Response] = {}
        self._lock = threading.Lock()
        self.not_found_url = self.url(f"/edgeaudit-{secrets.token_hex(6)}/not-found.html")

    def url(self, path_or_url: str, base: str | None = None) -> str:
        return urljoin(base or self.target.url, path_or_url)

    def request(self, method: str, path_or_url: str, *, base: str | None = None, **kwargs: Any) -> requests.Response:
        """One request, never following redirects unless asked; network failures become SiteUnreachable."""
        url = self.url(path_or_url, base)
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("verify", self.verify)  # per request, so REQUESTS_CA_BUNDLE cannot override it
        try:
            return self.session.request(method, url, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise SiteUnreachable(f"TLS handshake with {url} failed: {_reason(exc)}") from None
        except requests.exceptions.Timeout as exc:
            raise SiteUnreachable(f"{url} did not answer within {self.timeout[0]}s/{self.timeout[1]}s: "
                                  f"{_reason(exc)}") from None
        except requests.exceptions.RequestException as exc:
            raise SiteUnreachable(f"{url} unreachable: {_reason(exc)}") from None

    def get(self, path_or_url: str, *, base: str | None = None, **kwargs: Any) -> requests.Response:
        """A GET; plain GETs (no extra arguments) are fetched once per run and shared."""
        if kwargs:
            return self.request("GET", path_or_url, base=base, **kwargs)
        key = ("GET", self.url(path_or_url, base))
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        response = self.request("GET", key[1])
        with self._lock:
            return self._cache.setdefault(key, response)

    def head(self, path_or_url: str, **kwargs: Any) -> requests.Response:
        return self.request("HEAD", path_or_url, **kwargs)


def trust_store(ca_bundle: str | None) -> str | bool:
    """The system's trusted roots plus the target's extra CA file, as one PEM file for requests."""
    if not ca_bundle:
        return True
    system = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
    combined = Path(tempfile.gettempdir()) / f"edgeaudit-trust-{hashlib.sha256(ca_bundle.encode()).hexdigest()[:12]}.pem"
    pem = Path(system).read_bytes() if Path(system).is_file() else b""
    pem += b"\n" + Path(ca_bundle).read_bytes()
    tmp = combined.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(pem)
    os.replace(tmp, combined)
    return str(combined)


def _reason(exc: Exception) -> str:
    """The innermost cause, without the noise of urllib3's wrappers."""
    while exc.__context__ is not None and exc.__context__ is not exc:
        exc = exc.__context__  # type: ignore[assignment]
    text = str(exc)
    return text[-300:] if len(text) > 300 else text
