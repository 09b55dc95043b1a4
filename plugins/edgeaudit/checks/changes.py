"""Change review (EA-CHG-01): a deployed commit traces to a merged pull request that someone
other than its author approved, and the production branch requires reviews.

A pull request counts for a commit only when it was merged into the production branch as that
very commit (`merge_commit_sha`: merge, squash and rebase merges alike). An approval counts when
its reviewer is not the author and it approved the pull request's final head commit; before the
merge, or for a pull request labelled as an emergency, within emergency_review_days after it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from edgeaudit.web.github import ADMINISTRATION, CONTENTS, PULLS, GitHub, Refused, parse_time

NOT_PROTECTED = ("Branch not protected",)


@dataclass
class Protection:
    """What the production branch requires: approving reviews (count), from classic branch
    protection or from a repository ruleset, and where that was read."""

    approvals: int
    source: str
    enforce_admins: bool | None = None


def protection(github: GitHub) -> Protection:
    """The reviews the branch requires; 0 when neither branch protection nor a ruleset asks any.
    A token that may not read branch protection (Actions' own GITHUB_TOKEN never may) still
    proves the rule from a ruleset that requires reviews; without one, the refusal stands."""
    branch = github.source.branch
    try:
        classic = github.get(github.repo(f"/branches/{branch}/protection"), ADMINISTRATION, missing=NOT_PROTECTED)
    except Refused as refusal:
        found = _ruleset(github, branch)
        if found.approvals:
            found.source += f" (branch protection not read: the token lacks {ADMINISTRATION})"
            return found
        raise refusal
    if classic is not None:
        reviews = classic.get("required_pull_request_reviews") or {}
        count = int(reviews.get("required_approving_review_count", 1)) if reviews else 0
        admins = (classic.get("enforce_admins") or {}).get("enabled")
        if count:
            return Protection(count, "branch protection", admins)
    found = _ruleset(github, branch)
    if found.approvals:
        return found
    return Protection(0, "branch protection" if classic is not None else "none")


def _ruleset(github: GitHub, branch: str) -> Protection:
    """The approving reviews the repository's rulesets require on `branch` (0: none)."""
    rules = github.pages(github.repo(f"/rules/branches/{branch}"), CONTENTS).items
    counts = [int((rule.get("parameters") or {}).get("required_approving_review_count", 0))
              for rule in rules if rule.get("type") == "pull_request"]
    return Protection(max(counts, default=0), "repository ruleset")


def merged_pull(github: GitHub, sha: str) -> dict[str, Any] | None:
    """The pull request merged into the production branch as commit `sha`, if any."""
    pulls = github.pages(github.repo(f"/commits/{sha}/pulls"), PULLS).items
    for pull in pulls:
        if (pull.get("merged_at") and pull.get("merge_commit_sha") == sha
                and (pull.get("base") or {}).get("ref") == github.source.branch):
            return pull
    return None


def reviews(github: GitHub, number: int) -> list[dict[str, Any]]:
    return github.pages(github.repo(f"/pulls/{number}/reviews"), PULLS).items


@dataclass
class Verdict:
    """One deployed commit: `problem` is None when it is proven reviewed; `pending` when an
    emergency change is still within its review window."""

    sha: str
    pull: int | None
    problem: str | None = None
    pending: bool = False
    approved_by: tuple[str, ...] = ()
    emergency: bool = False


def judge(pull: dict[str, Any], found: list[dict[str, Any]], sha: str, emergency_label: str,
          review_days: float, now: dt.datetime) -> Verdict:
    """Whether `pull` was approved by someone other than its author, in time."""
    author = (pull.get("user") or {}).get("login")
    head = (pull.get("head") or {}).get("sha")
    merged = parse_time(pull.get("merged_at"))
    assert merged is not None
    emergency = emergency_label in {label.get("name") for label in pull.get("labels") or []}
    deadline = merged + dt.timedelta(days=review_days) if emergency else merged
    approvals = [r for r in found if r.get("state") == "APPROVED" and (r.get("user") or {}).get("login") != author
                 and r.get("commit_id") == head and (parse_time(r.get("submitted_at")) or deadline) <= deadline]
    verdict = Verdict(sha, pull.get("number"), approved_by=tuple(sorted({r["user"]["login"] for r in approvals})),
                      emergency=emergency)
    if approvals:
        return verdict
    if emergency and now <= deadline:
        verdict.pending = True
        return verdict
    own = any(r.get("state") == "APPROVED" and (r.get("user") or {}).get("login") == author for r in found)
    why = "approved only by its author" if own else "no approval by someone other than its author"
    when = (f"within {review_days:g} days after the merge (emergency)" if emergency
            else "of its final commit before the merge")
    verdict.problem = f"PR #{pull.get('number')} by {author}: {why} {when}"
    return verdict
