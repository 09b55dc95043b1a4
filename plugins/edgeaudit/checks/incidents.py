"""Incidents as GitHub issues (EA-INC-01, EA-INC-02): an issue labelled [github] incident_label
and one level label P1..P4.

Acknowledgement is the first comment, or the first assignment, by a person other than the
reporter (bots do not acknowledge). A post-mortem is a comment that names one ("post-mortem",
"postmortem") and links it (an http(s) URL), made no later than postmortem_max_days after the
issue was closed. IssueIncidents gives them to the rules both sources share (incident_rules.py).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from edgeaudit.checks.incident_rules import LEVELS, POSTMORTEM_LEVELS, Incident
from edgeaudit.errors import NotEvaluated
from edgeaudit.web.github import ISSUES, MAX_PAGES, GitHub, parse_time

_POSTMORTEM = re.compile(r"post[- ]?mortem", re.I)
_LINK = re.compile(r"https?://\S+")


def issues(github: GitHub, since: dt.date, state: str) -> list[dict[str, Any]]:
    """The incident issues updated since `since` (pull requests left out); more than MAX_PAGES
    pages of them is not evaluated (an incident left unread could be the late one)."""
    found = github.pages(github.repo("/issues"), ISSUES, {"labels": github.source.incident_label, "state": state,
                                                          "since": f"{since.isoformat()}T00:00:00Z"})
    if not found.complete:
        raise NotEvaluated(f"more than {MAX_PAGES} pages of {github.source.incident_label} issues since {since}: "
                           "not all of them could be read")
    return [issue for issue in found.items if "pull_request" not in issue]


def level(issue: dict[str, Any]) -> str | None:
    """The issue's level label (the most severe when several are set)."""
    names = {str(label.get("name", "")).upper() for label in issue.get("labels") or []}
    return next((name for name in LEVELS if name in names), None)


def comments(github: GitHub, number: int) -> list[dict[str, Any]]:
    return github.pages(github.repo(f"/issues/{number}/comments"), ISSUES).items


def events(github: GitHub, number: int) -> list[dict[str, Any]]:
    return github.pages(github.repo(f"/issues/{number}/events"), ISSUES).items


def _person(user: dict[str, Any] | None, reporter: str | None) -> bool:
    user = user or {}
    return user.get("type") != "Bot" and not str(user.get("login", "")).endswith("[bot]") and \
        user.get("login") != reporter


def acknowledged(issue: dict[str, Any], said: list[dict[str, Any]],
                 happened: list[dict[str, Any]]) -> tuple[dt.datetime, str] | None:
    """(when, who) of the first comment or assignment by a person other than the reporter."""
    reporter = (issue.get("user") or {}).get("login")
    found = [(parse_time(c.get("created_at")), c["user"]["login"]) for c in said if _person(c.get("user"), reporter)]
    found += [(parse_time(e.get("created_at")), e["actor"]["login"]) for e in happened
              if e.get("event") == "assigned" and _person(e.get("actor"), reporter)]
    found = [(when, who) for when, who in found if when is not None]
    return min(found) if found else None


@dataclass
class Postmortem:
    url: str | None
    linked_at: dt.datetime | None


def postmortem(said: list[dict[str, Any]], closed: dt.datetime, max_days: float) -> Postmortem:
    """The first comment that names and links a post-mortem, if made by closed + max_days."""
    deadline = closed + dt.timedelta(days=max_days)
    for comment in said:
        body, when = str(comment.get("body") or ""), parse_time(comment.get("created_at"))
        link = _LINK.search(body)
        if when is not None and when <= deadline and link and _POSTMORTEM.search(body):
            return Postmortem(link.group(0), when)
    return Postmortem(None, None)


class IssueIncidents:
    """The incidents of [github]'s repository, as incident_rules.Source: each issue's comments and
    events are read only for the issues a control judges."""

    unlevelled = "has no level label (P1..P4)"

    def __init__(self, github: GitHub) -> None:
        self.github = github
        self.where = f"github:{github.source.repository} issues labelled {github.source.incident_label}"

    def opened(self, since: dt.date) -> list[Incident]:
        now = dt.datetime.now(dt.timezone.utc)
        found = []
        for issue in issues(self.github, since, "all"):
            opened = parse_time(issue.get("created_at")) or now
            if opened.date() < since:
                continue
            number, graded = issue["number"], level(issue)
            ack = (acknowledged(issue, comments(self.github, number), events(self.github, number))
                   if graded else None)
            found.append(Incident(f"#{number}", graded, opened, ack[0] if ack else None, ack[1] if ack else None,
                                  url=issue.get("html_url"), title=issue.get("title")))
        return found

    def closed(self, since: dt.date, max_days: float) -> list[Incident]:
        found = []
        for issue in issues(self.github, since, "closed"):
            graded, at = level(issue), parse_time(issue.get("closed_at"))
            if graded not in POSTMORTEM_LEVELS or at is None or at.date() < since:
                continue
            linked = postmortem(comments(self.github, issue["number"]), at, max_days)
            found.append(Incident(f"#{issue['number']}", graded, parse_time(issue.get("created_at")) or at,
                                  resolved=at, postmortem=linked.url, postmortem_at=linked.linked_at,
                                  url=issue.get("html_url"), title=issue.get("title")))
        return found
