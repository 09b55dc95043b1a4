"""A small, read-only GitHub REST client: the deploy workflow's runs, pull requests and their
reviews, branch protection, incident issues (EA-DEP-05, EA-MET-01, EA-CHG-01, EA-INC-01/02).

Its session sends GET only: any other method raises before a byte leaves. The token is
registered with the redaction when read, so no report, log or terminal line shows it. An answer
that cannot be used (rate limit, bad token, missing permission, network failure) is
NotEvaluated naming the cause and the token permission it needs; a rate limit is never retried.
Pagination follows the `Link` header, at most MAX_PAGES pages, and says when it stopped there.
Each answer is held to the run's limits for any HTTP answer (web/site.py): a deadline for the
whole answer, so that an API (or a proxy) that trickles bytes cannot hold a control, and a
bound on the bytes read of its body; either cut leaves the control not evaluated.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from edgeaudit import __version__
from edgeaudit.errors import NotEvaluated
from edgeaudit.redact import redact_url, register_secret
from edgeaudit.rules import limits
from edgeaudit.rules.config import GitHubSource
from edgeaudit.web.deadline import Deadline, DeadlineAdapter
from edgeaudit.web.site import read_bounded

MAX_PAGES = 10
PER_PAGE = 100
# the fine-grained token permission each read needs (named when GitHub refuses it)
ACTIONS, CONTENTS, PULLS, ISSUES, ADMINISTRATION = ("Actions: read", "Contents: read", "Pull requests: read",
                                                    "Issues: read", "Administration: read")


class WriteRefused(RuntimeError):
    """A request other than GET: the GitHub client reads only."""


class ReadOnlySession(requests.Session):
    """A requests session that sends GET only, checked on the prepared request as well."""

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        _only_get(method)
        return super().request(method, url, *args, **kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        _only_get(request.method or "")
        return super().send(request, **kwargs)


def _only_get(method: str | bytes) -> None:
    name = method.decode() if isinstance(method, bytes) else str(method)
    if name.upper() != "GET":
        raise WriteRefused(f"the GitHub client reads only: {name} refused")


class Refused(NotEvaluated):
    """GitHub refused a read (403 or 404 that is no rate limit): the token lacks a permission,
    or the thing does not exist."""


@dataclass
class Paged:
    """The items of a paginated answer; `complete` is False when MAX_PAGES stopped the reading."""

    items: list[Any] = field(default_factory=list)
    pages: int = 0
    complete: bool = True


class GitHub:
    """`GitHub.from_source(source)`, then `get(path, permission)` and `pages(path, permission)`."""

    def __init__(self, source: GitHubSource, token: str, timeout: tuple[float, float] | None = None,
                 deadline_s: float | None = None) -> None:
        register_secret(token)
        self.source = source
        self.timeout = timeout or limits.http_timeout()
        self.deadline_s = deadline_s or limits.http_deadline()
        self.session = ReadOnlySession()
        self.session.trust_env = True
        for scheme in ("https://", "http://"):
            self.session.mount(scheme, DeadlineAdapter(pool_connections=1, pool_maxsize=4))
        self.session.headers.update({
            "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
            "Authorization": f"Bearer {token}", "User-Agent": f"edgeaudit/{__version__}"})

    @classmethod
    def from_source(cls, source: GitHubSource, deadline_s: float | None = None) -> "GitHub":
        """The client for [github], or NotEvaluated when its token variable is unset or empty."""
        token = os.environ.get(source.token_env, "").strip()
        if not token:
            raise NotEvaluated(f"the environment variable {source.token_env} ([github] token_env) holds no token: "
                               f"set it to a read-only token of {source.repository} (fine-grained: {ACTIONS}, "
                               f"{CONTENTS}, {PULLS}, {ISSUES}, {ADMINISTRATION})")
        return cls(source, token, deadline_s=deadline_s)

    def repo(self, suffix: str) -> str:
        """The API path of something in the configured repository."""
        return f"/repos/{self.source.repository}{suffix}"

    def url(self, path: str) -> str:
        return self.source.api_url.rstrip("/") + path

    def get(self, path: str, permission: str, params: dict[str, Any] | None = None,
            *, missing: tuple[str, ...] = ()) -> Any:
        """The JSON of one answer; a 404 whose message is one of `missing` returns None."""
        return self._answer(self.url(path), permission, params, missing)[0]

    def pages(self, path: str, permission: str, params: dict[str, Any] | None = None,
              *, key: str | None = None) -> Paged:
        """Every page of a list (or of the list under `key`), following `Link: rel="next"` on
        the API's own origin, up to MAX_PAGES."""
        found = Paged()
        url: str | None = self.url(path)
        params = {"per_page": PER_PAGE, **(params or {})}
        while url:
            if found.pages == MAX_PAGES:
                found.complete = False
                break
            body, response = self._answer(url, permission, params, ())
            found.pages += 1
            found.items += body.get(key, []) if key else body
            url, params = response.links.get("next", {}).get("url"), None
            if url and _origin(url) != _origin(self.source.api_url):
                raise NotEvaluated(f"GitHub's next page is on another origin ({redact_url(url)}): not followed, "
                                   "the token is sent to the configured api_url only")
        return found

    def _answer(self, url: str, permission: str, params: dict[str, Any] | None,
                missing: tuple[str, ...]) -> tuple[Any, requests.Response]:
        deadline = Deadline(self.deadline_s)
        try:
            with deadline:
                response = read_bounded(self.session.get(url, params=params, timeout=self.timeout,
                                                         allow_redirects=False, stream=True))
        except requests.RequestException as exc:
            if not deadline.expired:
                raise NotEvaluated(f"GitHub API unreachable at {self.source.api_url}: {type(exc).__name__}") from None
        if deadline.expired:
            raise NotEvaluated(f"GitHub API at {self.source.api_url} exceeded the {self.deadline_s:g} s deadline for "
                               f"one answer (GET {urlsplit(url).path}): it sends too slowly (http_deadline_s, "
                               f"{limits.HTTP_DEADLINE_ENV})")
        where = f"GET {urlsplit(response.url or url).path}"
        if response.truncated:  # type: ignore[attr-defined]
            raise NotEvaluated(f"GitHub's answer to {where} is larger than {limits.http_max_bytes()} bytes: not "
                               f"judged on a part of it ({limits.HTTP_MAX_BYTES_ENV})")
        if response.status_code in (403, 429) and _rate_limited(response):
            raise NotEvaluated(f"GitHub rate limit reached ({where} answered {response.status_code}): "
                               f"{_reset(response)}; not retried, run again then")
        message = _message(response)
        if response.status_code == 404 and message in missing:
            return None, response
        if response.status_code == 401:
            raise NotEvaluated(f"GitHub rejected the token in {self.source.token_env} (401 on {where}): "
                               f"it is expired or revoked; it needs {permission} on {self.source.repository}")
        if response.status_code in (403, 404):
            raise Refused(f"GitHub answered {response.status_code} to {where} ({message}): the token in "
                               f"{self.source.token_env} needs {permission} on {self.source.repository}, "
                               "and the repository, workflow and branch must exist")
        if response.status_code != 200:
            raise NotEvaluated(f"GitHub answered {response.status_code} to {where} ({message})")
        try:
            return response.json(), response
        except ValueError:
            raise NotEvaluated(f"GitHub's answer to {where} is not JSON") from None


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def _rate_limited(response: requests.Response) -> bool:
    return response.headers.get("X-RateLimit-Remaining") == "0" or "Retry-After" in response.headers


def _reset(response: requests.Response) -> str:
    """When GitHub will answer again, as its headers say."""
    if "Retry-After" in response.headers:
        return f"GitHub asks to retry after {response.headers['Retry-After']} s"
    reset = response.headers.get("X-RateLimit-Reset", "")
    if reset.isdigit():
        at = dt.datetime.fromtimestamp(int(reset), dt.timezone.utc)
        return f"the limit resets at {at.isoformat(timespec='seconds')}"
    return "GitHub named no reset time"


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason or ""
    return str(body.get("message", "")) if isinstance(body, dict) else ""


def parse_time(value: str | None) -> dt.datetime | None:
    """GitHub's ISO 8601 UTC timestamps ("2026-12-07T10:00:00Z")."""
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
