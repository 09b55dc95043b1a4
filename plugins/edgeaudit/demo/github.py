"""The demo's GitHub: a small REST API of one repository on 127.0.0.1 (a real HTTP server thread,
like the edge), answering the reads of edgeaudit.web.github in GitHub's shapes: the deploy
workflow's runs (paginated by `Link`), the pull request merged as a commit, its reviews, the
branch protection and the branch's rulesets.

`Repository.demo()` is a team that deploys reviewed pull requests; tests call `deploy()` and
change `protection`, `rate_limited` or the token to build the violating histories.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

OWNER_REPO = "example/www"
WORKFLOW = "deploy.yml"
BRANCH = "main"
TOKEN_ENV = "EDGEAUDIT_DEMO_GITHUB_TOKEN"
REQUIRED_REVIEWS = {"required_approving_review_count": 1, "dismiss_stale_reviews": True}


def _time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Repository:
    """The repository's records, as GitHub would hold them."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    pulls: list[dict[str, Any]] = field(default_factory=list)
    reviews: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    protection: dict[str, Any] | None = field(default_factory=lambda: {
        "required_pull_request_reviews": dict(REQUIRED_REVIEWS), "enforce_admins": {"enabled": True}})
    rulesets: list[dict[str, Any]] = field(default_factory=list)
    protection_status: int = 200  # 403: the token may not read branch protection
    rate_limited: bool = False
    issues: list[dict[str, Any]] = field(default_factory=list)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    events: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    _number: int = 0

    @classmethod
    def demo(cls, now: dt.datetime | None = None) -> "Repository":
        """Twelve reviewed deployments over the last 30 days, every one successful."""
        now = now or dt.datetime.now(dt.timezone.utc)
        repo = cls()
        for days in range(34, 0, -3):
            repo.deploy(now - dt.timedelta(days=days, hours=2))
        repo.incident(now - dt.timedelta(days=12), "P2", ack_after=dt.timedelta(minutes=9),
                      closed_after=dt.timedelta(hours=3), postmortem_after=dt.timedelta(days=2))
        repo.incident(now - dt.timedelta(days=4), "P3", ack_after=dt.timedelta(minutes=35), assign=True,
                      closed_after=dt.timedelta(hours=6))
        return repo

    def incident(self, when: dt.datetime, level: str | None, *, reporter: str = "carol",
                 ack_after: dt.timedelta | None = None, acked_by: str = "dave", assign: bool = False,
                 closed_after: dt.timedelta | None = None, postmortem_after: dt.timedelta | None = None,
                 postmortem_text: str = "Post-mortem: https://wiki.example.com/postmortems/{n}") -> dict[str, Any]:
        """An incident issue opened at `when`, acknowledged (a comment, or an assignment) after
        `ack_after`, closed after `closed_after`, its post-mortem linked `postmortem_after` the close."""
        self._number += 1
        number = self._number
        labels = [{"name": "incident"}] + ([{"name": level}] if level else [])
        closed = when + closed_after if closed_after is not None else None
        issue = {"number": number, "title": f"Incident {number}", "user": {"login": reporter, "type": "User"},
                 "labels": labels, "state": "closed" if closed else "open", "created_at": _time(when),
                 "updated_at": _time(closed or when), "closed_at": _time(closed) if closed else None,
                 "html_url": f"https://github.com/{OWNER_REPO}/issues/{number}"}
        self.issues.append(issue)
        self.comments[number], self.events[number] = [], []
        if ack_after is not None:
            if assign:
                self.events[number].append({"event": "assigned", "actor": {"login": acked_by, "type": "User"},
                                            "assignee": {"login": acked_by}, "created_at": _time(when + ack_after)})
            else:
                self.comments[number].append({"user": {"login": acked_by, "type": "User"}, "body": "On it.",
                                              "created_at": _time(when + ack_after)})
        if closed and postmortem_after is not None:
            self.comments[number].append({"user": {"login": acked_by, "type": "User"},
                                          "body": postmortem_text.format(n=number),
                                          "created_at": _time(closed + postmortem_after)})
        return issue

    def deploy(self, when: dt.datetime, *, conclusion: str | None = "success", status: str = "completed",
               author: str = "alice", approver: str | None = "bob", labels: tuple[str, ...] = (),
               review_after: dt.timedelta = dt.timedelta(hours=-1), pull: bool = True) -> dict[str, Any]:
        """A change merged at `when` (or pushed without a pull request) and its deploy run."""
        self._number += 1
        number = self._number
        sha = hashlib.sha1(f"commit {number}".encode()).hexdigest()
        if pull:
            head = hashlib.sha1(f"head {number}".encode()).hexdigest()
            self.pulls.append({
                "number": number, "state": "closed", "title": f"Change {number}", "user": {"login": author},
                "labels": [{"name": label} for label in labels], "merged_at": _time(when),
                "merge_commit_sha": sha, "base": {"ref": BRANCH}, "head": {"ref": f"change-{number}", "sha": head},
                "html_url": f"https://github.com/{OWNER_REPO}/pull/{number}"})
            self.reviews[number] = [] if approver is None else [{
                "id": number, "user": {"login": approver}, "state": "APPROVED", "commit_id": head,
                "submitted_at": _time(when + review_after)}]
        run = {"id": 1000 + number, "run_number": number, "name": "Deploy", "event": "push", "head_branch": BRANCH,
               "head_sha": sha, "status": status, "conclusion": conclusion if status == "completed" else None,
               "created_at": _time(when), "run_started_at": _time(when), "updated_at": _time(when),
               "html_url": f"https://github.com/{OWNER_REPO}/actions/runs/{1000 + number}"}
        self.runs.append(run)
        return run

    def newest_runs(self, created: str | None) -> list[dict[str, Any]]:
        found = sorted(self.runs, key=lambda run: run["created_at"], reverse=True)
        if created and created.startswith(">="):
            found = [run for run in found if run["created_at"][:10] >= created[2:]]
        return found


class GitHubServer:
    """The API on http://127.0.0.1:<port>; every request must carry the token."""

    def __init__(self, repository: Repository | None = None) -> None:
        self.repository = repository or Repository.demo()
        self.token = "ghdemo_" + secrets.token_hex(16)
        self.requests_seen: list[tuple[str, str]] = []  # (method, path): never headers (the token)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-github", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def source(self, **extra: Any) -> dict[str, Any]:
        """The [github] table of a config that reads this server."""
        return {"repository": OWNER_REPO, "token_env": TOKEN_ENV, "api_url": self.url, "workflow": WORKFLOW,
                "branch": BRANCH, **extra}

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, method: str, target: str, authorization: str | None) -> tuple[int, Any, dict[str, str]]:
        """(status, body, headers) for one request."""
        self.requests_seen.append((method, target))
        repo = self.repository
        if method != "GET":
            return 405, {"message": "the demo's GitHub is read-only"}, {}
        if authorization != f"Bearer {self.token}":
            return 401, {"message": "Bad credentials"}, {}
        if repo.rate_limited:
            reset = int(dt.datetime.now(dt.timezone.utc).timestamp()) + 1800
            return 403, {"message": "API rate limit exceeded"}, {"X-RateLimit-Remaining": "0",
                                                                   "X-RateLimit-Reset": str(reset)}
        parts = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        base = f"/repos/{OWNER_REPO}"
        path = parts.path
        if path == f"{base}/actions/workflows/{WORKFLOW}/runs":
            branch = query.get("branch", BRANCH)
            runs = [r for r in repo.newest_runs(query.get("created")) if r["head_branch"] == branch]
            return self._page(target, runs, query, "workflow_runs")
        if path == f"{base}/branches/{BRANCH}/protection":
            if repo.protection_status != 200:
                return repo.protection_status, {"message": "Resource not accessible by personal access token"}, {}
            if repo.protection is None:
                return 404, {"message": "Branch not protected"}, {}
            return 200, repo.protection, {}
        if path == f"{base}/issues":
            return self._page(target, self._issues(query), query, None)
        if match := re.fullmatch(rf"{base}/issues/(\d+)/(comments|events)", path):
            kept = repo.comments if match.group(2) == "comments" else repo.events
            return self._page(target, kept.get(int(match.group(1)), []), query, None)
        if path == f"{base}/rules/branches/{BRANCH}":
            return self._page(target, repo.rulesets, query, None)
        if match := re.fullmatch(rf"{base}/commits/([0-9a-f]{{40}})/pulls", path):
            return self._page(target, [p for p in repo.pulls if p["merge_commit_sha"] == match.group(1)], query, None)
        if match := re.fullmatch(rf"{base}/pulls/(\d+)/reviews", path):
            return self._page(target, repo.reviews.get(int(match.group(1)), []), query, None)
        return 404, {"message": "Not Found"}, {}

    def _issues(self, query: dict[str, str]) -> list[dict[str, Any]]:
        """GitHub's issue list filters: every label named, state, updated since."""
        wanted = set(filter(None, query.get("labels", "").split(",")))
        state, since = query.get("state", "open"), query.get("since", "")
        return [issue for issue in sorted(self.repository.issues, key=lambda i: i["created_at"], reverse=True)
                if wanted <= {label["name"] for label in issue["labels"]}
                and state in ("all", issue["state"]) and issue["updated_at"] >= since]

    def _page(self, target: str, items: list[Any], query: dict[str, str],
              key: str | None) -> tuple[int, Any, dict[str, str]]:
        """One page of `items` and its `Link: <...>; rel="next"` when more follow."""
        per_page = int(query.get("per_page", 30))
        page = int(query.get("page", 1))
        chunk = items[(page - 1) * per_page:page * per_page]
        headers = {}
        if page * per_page < len(items):
            parts = urlsplit(target)
            rest = urlencode({**query, "page": str(page + 1)})
            headers["Link"] = f'<{self.url}{parts.path}?{rest}>; rel="next"'
        body = {"total_count": len(items), key: chunk} if key else chunk
        return 200, body, headers


def _handler(server: GitHubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _respond(self) -> None:
            status, body, headers = server.answer(self.command, self.path, self.headers.get("Authorization"))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _respond

        def log_message(self, format: str, *args: Any) -> None:  # the requests are in requests_seen
            pass

    return Handler
