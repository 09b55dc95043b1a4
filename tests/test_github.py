"""The read-only GitHub client (web/github.py), the [github] config, and the rules of the
GitHub-backed controls (checks/deploys.py, checks/changes.py), against `responses` and the
demo's GitHub server."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import requests
import responses

from edgeaudit.checks import changes, deploys, incidents
from edgeaudit.demo.github import GitHubServer, Repository
from edgeaudit.errors import ConfigError, NotEvaluated
from edgeaudit.redact import REDACTED, redact_text
from edgeaudit.rules.config import GitHubSource, parse
from edgeaudit.web.github import MAX_PAGES, GitHub, WriteRefused

API = "https://api.github.com"
TOKEN = "ghp_plantedtoken0123456789"
SOURCE = GitHubSource(repository="example/www", token_env="GH_DEPLOY_READ")
RUNS = f"{API}/repos/example/www/actions/workflows/deploy.yml/runs"
NOW = dt.datetime.now(dt.timezone.utc)


@pytest.fixture
def gh() -> GitHub:
    return GitHub(SOURCE, TOKEN)


@pytest.fixture
def server():
    running = GitHubServer(Repository.demo())
    yield running
    running.stop()


def _client(server: GitHubServer) -> GitHub:
    return GitHub(GitHubSource(**server.source()), server.token)


# --- the client ---------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
@responses.activate
def test_the_session_refuses_any_method_but_get_before_sending(gh, method):
    responses.add(method, RUNS, json={})
    with pytest.raises(WriteRefused, match=method):
        gh.session.request(method, RUNS)
    with pytest.raises(WriteRefused):
        gh.session.send(requests.Request(method, RUNS).prepare())
    assert len(responses.calls) == 0


@responses.activate
def test_pagination_follows_the_link_header_across_pages(gh):
    for page in (1, 2, 3):
        headers = {"Link": f'<{RUNS}?page={page + 1}>; rel="next"'} if page < 3 else {}
        responses.add(responses.GET, RUNS if page == 1 else f"{RUNS}?page={page}",
                      json={"workflow_runs": [{"id": page * 10 + i} for i in range(2)]}, headers=headers,
                      match=[responses.matchers.query_param_matcher({"page": str(page)} if page > 1 else
                                                                    {"per_page": "100", "branch": "main"})])
    found = deploys.runs(gh)
    assert [run["id"] for run in found.items] == [10, 11, 20, 21, 30, 31]
    assert found.pages == 3 and found.complete
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


@responses.activate
def test_pagination_stops_at_max_pages_and_says_so(gh):
    responses.add(responses.GET, RUNS, json={"workflow_runs": [{"id": 1}]},
                  headers={"Link": f'<{RUNS}?page=2>; rel="next"'})
    found = deploys.runs(gh)
    assert found.pages == MAX_PAGES and not found.complete
    assert len(responses.calls) == MAX_PAGES


@responses.activate
def test_a_next_page_on_another_origin_is_not_followed(gh):
    responses.add(responses.GET, RUNS, json={"workflow_runs": []},
                  headers={"Link": '<https://evil.example/steal?page=2>; rel="next"'})
    with pytest.raises(NotEvaluated, match="another origin"):
        deploys.runs(gh)
    assert len(responses.calls) == 1


@responses.activate
def test_a_rate_limit_is_not_evaluated_naming_the_reset_time_and_not_retried(gh):
    reset = int(dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc).timestamp())
    responses.add(responses.GET, RUNS, status=403, json={"message": "API rate limit exceeded"},
                  headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})
    with pytest.raises(NotEvaluated, match=r"rate limit.*resets at 2030-01-02T03:04:05\+00:00"):
        deploys.runs(gh)
    assert len(responses.calls) == 1


@responses.activate
def test_a_secondary_rate_limit_names_retry_after(gh):
    responses.add(responses.GET, RUNS, status=429, json={"message": "slow down"}, headers={"Retry-After": "60"})
    with pytest.raises(NotEvaluated, match="retry after 60 s"):
        deploys.runs(gh)
    assert len(responses.calls) == 1


@responses.activate
def test_an_answer_larger_than_the_limit_is_not_judged_on_a_part(gh, monkeypatch):
    monkeypatch.setenv("EDGEAUDIT_HTTP_MAX_BYTES", "2048")
    responses.add("GET", RUNS, json={"workflow_runs": [{"id": n, "name": "x" * 40} for n in range(100)]})
    with pytest.raises(NotEvaluated, match="larger than 2048 bytes: not judged on a part of it"):
        gh.get("/repos/example/www/actions/workflows/deploy.yml/runs", "Actions: read")


@pytest.mark.parametrize("status", [401, 404, 403])
@responses.activate
def test_refusals_name_the_token_permission_needed(gh, status):
    responses.add(responses.GET, RUNS, status=status, json={"message": "Not Found"})
    with pytest.raises(NotEvaluated, match="Actions: read") as caught:
        deploys.runs(gh)
    assert "GH_DEPLOY_READ" in str(caught.value) and TOKEN not in str(caught.value)


def test_a_missing_token_is_not_evaluated_naming_the_variable(monkeypatch):
    monkeypatch.delenv("GH_DEPLOY_READ", raising=False)
    with pytest.raises(NotEvaluated, match="GH_DEPLOY_READ.*holds no token"):
        GitHub.from_source(SOURCE)


def test_the_token_is_redacted_once_the_client_read_it(monkeypatch):
    monkeypatch.setenv("GH_DEPLOY_READ", "plain0value0of0a0token")  # a name that does not say "token"
    assert "plain0value0of0a0token" in redact_text("x plain0value0of0a0token")
    GitHub.from_source(SOURCE)
    assert redact_text("x plain0value0of0a0token y") == f"x {REDACTED} y"


def test_branch_protection_404_is_unprotected_and_403_is_not_evaluated(server):
    gh = _client(server)
    assert changes.protection(gh).approvals == 1
    server.repository.protection = None
    assert changes.protection(gh).approvals == 0
    server.repository.protection_status = 403
    with pytest.raises(NotEvaluated, match="Administration: read"):
        changes.protection(gh)


def test_a_token_that_may_not_read_protection_still_proves_a_ruleset(server):
    """Actions' own GITHUB_TOKEN cannot be given Administration: a ruleset that requires reviews
    is proof enough; without one, the refusal stands (not evaluated, never unprotected)."""
    server.repository.protection_status = 403
    server.repository.rulesets = [{"type": "pull_request", "parameters": {"required_approving_review_count": 1}}]
    found = changes.protection(_client(server))
    assert found.approvals == 1 and found.source.startswith("repository ruleset (branch protection not read")
    server.repository.rulesets = [{"type": "pull_request", "parameters": {"required_approving_review_count": 0}}]
    with pytest.raises(NotEvaluated, match="Administration: read"):
        changes.protection(_client(server))


def test_reviews_required_by_a_ruleset_count(server):
    server.repository.protection = None
    server.repository.rulesets = [{"type": "pull_request", "parameters": {"required_approving_review_count": 2}}]
    assert (changes.protection(_client(server)).approvals, changes.protection(_client(server)).source) == (
        2, "repository ruleset")


def test_protection_without_reviews_is_unprotected(server):
    server.repository.protection = {"required_status_checks": {"strict": True}}
    assert changes.protection(_client(server)).approvals == 0


def test_the_demo_server_paginates_many_runs(server):
    for i in range(250):
        server.repository.deploy(NOW - dt.timedelta(minutes=i + 1))
    found = deploys.runs(_client(server))
    assert found.complete and found.pages == 3 and len(found.items) == 262
    assert len({run["id"] for run in found.items}) == 262


def test_the_demo_server_refuses_a_wrong_token(server):
    with pytest.raises(NotEvaluated, match="401"):
        deploys.runs(GitHub(GitHubSource(**server.source()), "ghp_wrongtokenvalue"))


# --- the rules ----------------------------------------------------------------------------------

def test_success_rate_counts_completed_runs_and_leaves_out_running_and_skipped():
    repo = Repository()
    for conclusion in ("success", "success", "failure", "cancelled", "skipped"):
        repo.deploy(NOW, conclusion=conclusion)
    repo.deploy(NOW, status="in_progress")
    rate = deploys.success_rate(repo.runs)
    assert (len(rate.successes), len(rate.failures), len(rate.left_out)) == (2, 2, 2)
    assert rate.rate == 0.5


@pytest.mark.parametrize("served, ok", [("224f844a2a60", True), ("224F844\n", True), ("224f84", False),
                                        ("deadbeef", False), ("", False)])
def test_served_commit_matches_in_full_or_by_7_hex_digits(served, ok):
    assert deploys.same_commit(deploys.served_commit(served), "224f844a2a602eb8bb9fd41f6c611a2d6382835f") is ok


def _verdict(repo: Repository, review_days: float = 2, now: dt.datetime = NOW) -> changes.Verdict:
    pull = repo.pulls[-1]
    return changes.judge(pull, repo.reviews[pull["number"]], pull["merge_commit_sha"], "emergency", review_days, now)


def test_an_approval_by_someone_else_before_the_merge_counts():
    repo = Repository()
    repo.deploy(NOW - dt.timedelta(days=1))
    assert _verdict(repo).problem is None and _verdict(repo).approved_by == ("bob",)


def test_a_self_approved_change_fails():
    repo = Repository()
    repo.deploy(NOW - dt.timedelta(days=1), author="alice", approver="alice")
    assert "approved only by its author" in _verdict(repo).problem


def test_an_approval_after_the_merge_does_not_count_outside_emergencies():
    repo = Repository()
    repo.deploy(NOW - dt.timedelta(days=3), review_after=dt.timedelta(hours=1))
    assert "before the merge" in _verdict(repo).problem


def test_an_approval_of_an_earlier_commit_does_not_count():
    repo = Repository()
    repo.deploy(NOW - dt.timedelta(days=1))
    repo.reviews[1][0]["commit_id"] = "0" * 40
    assert "no approval" in _verdict(repo).problem


def test_emergency_changes_are_reviewed_within_emergency_review_days():
    repo = Repository()
    repo.deploy(NOW - dt.timedelta(days=5), labels=("emergency",), review_after=dt.timedelta(days=1))
    assert _verdict(repo).problem is None and _verdict(repo).emergency
    late = Repository()
    late.deploy(NOW - dt.timedelta(days=5), labels=("emergency",), review_after=dt.timedelta(days=3))
    assert "within 2 days after the merge" in _verdict(late).problem
    pending = Repository()
    pending.deploy(NOW - dt.timedelta(days=1), labels=("emergency",), approver=None)
    assert _verdict(pending).pending and _verdict(pending).problem is None


# --- [github] in the config ---------------------------------------------------------------------

TARGET = {"name": "www", "url": "https://www.example.com/", "bucket": "b", "distribution_id": "E1"}


def _config(github: dict) -> GitHubSource | None:
    return parse(Path("edgeaudit.toml"), {"targets": [TARGET], "github": github}, frozenset()).github


def test_github_config_is_read_with_defaults():
    source = _config({"repository": "example/www", "token_env": "GITHUB_TOKEN"})
    assert (source.api_url, source.workflow, source.branch, source.version_path) == (
        "https://api.github.com", "deploy.yml", "main", None)
    assert parse(Path("x.toml"), {"targets": [TARGET]}, frozenset()).github is None


@pytest.mark.parametrize("github, key, words", [
    ({"repository": "example/www", "token_env": "T", "api_url": "http://github.example.com"}, "github.api_url",
     "https"),
    ({"repository": "example/www", "token_env": "T", "api_url": "http://127.0.0.1:8080"}, None, None),
    ({"repository": "example/www", "token_env": "T", "api_url": "http://127.0.0.1.example.com"}, "github.api_url",
     "loopback"),
    ({"repository": "example/www"}, "github.token_env", "missing"),
    ({"repository": "www", "token_env": "T"}, "github.repository", "owner/name"),
    ({"repository": "example/www", "token_env": "ghp_abc def"}, "github.token_env", "environment variable"),
    ({"repository": "example/www", "token_env": "T", "version_path": "version.txt"}, "github.version_path", "/"),
    ({"repository": "example/www", "token_env": "T", "tokn": "x"}, "github.tokn", "unknown key"),
    ({"absent": "we deploy from GitLab", "repository": "example/www"}, "github.repository", "absent"),
])
def test_github_config_errors_name_the_key_and_the_fix(github, key, words):
    if key is None:
        assert _config(github).api_url == "http://127.0.0.1:8080"
        return
    with pytest.raises(ConfigError) as caught:
        _config(github)
    assert caught.value.key == key and words in str(caught.value) and "Fix:" in str(caught.value)


def test_a_declared_absence_keeps_its_reason():
    assert _config({"absent": "we deploy from GitLab"}).absent == "we deploy from GitLab"


# --- incidents ------------------------------------------------------------------------------------

def _incident(repo: Repository) -> tuple[dict, list, list]:
    issue = repo.issues[-1]
    return issue, repo.comments[issue["number"]], repo.events[issue["number"]]


def test_acknowledgement_is_the_first_comment_or_assignment_by_another_person():
    repo = Repository()
    repo.incident(NOW, "P2", ack_after=dt.timedelta(minutes=20))
    issue, said, happened = _incident(repo)
    happened.append({"event": "assigned", "actor": {"login": "erin", "type": "User"},
                     "created_at": (NOW + dt.timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:%SZ")})
    said.insert(0, {"user": {"login": "carol", "type": "User"}, "created_at": NOW.strftime("%Y-%m-%dT%H:%M:%SZ")})
    said.insert(0, {"user": {"login": "pagerbot", "type": "Bot"}, "created_at": NOW.strftime("%Y-%m-%dT%H:%M:%SZ")})
    when, who = incidents.acknowledged(issue, said, happened)
    assert who == "erin" and round((when - NOW).total_seconds() / 60) == 4


def test_no_acknowledgement_by_the_reporter_or_a_bot():
    repo = Repository()
    repo.incident(NOW, "P1", ack_after=dt.timedelta(minutes=1), acked_by="carol")
    assert incidents.acknowledged(*_incident(repo)) is None
    repo.incident(NOW, "P1", ack_after=dt.timedelta(minutes=1), acked_by="ops-helper[bot]")
    assert incidents.acknowledged(*_incident(repo)) is None


def test_level_is_the_most_severe_level_label():
    assert incidents.level({"labels": [{"name": "incident"}, {"name": "p3"}, {"name": "P2"}]}) == "P2"
    assert incidents.level({"labels": [{"name": "incident"}, {"name": "sev1"}]}) is None


def test_a_postmortem_is_a_named_link_within_postmortem_max_days():
    def found(text: str, after: dt.timedelta) -> str | None:
        comment = {"body": text, "created_at": (NOW + after).strftime("%Y-%m-%dT%H:%M:%SZ")}
        return incidents.postmortem([comment], NOW, 5).url
    assert found("Post-mortem: https://wiki.example.com/pm/1", dt.timedelta(days=4)) == "https://wiki.example.com/pm/1"
    assert found("Postmortem https://wiki.example.com/pm/1", dt.timedelta(days=6)) is None
    assert found("dashboards: https://grafana.example.com/d/1", dt.timedelta(days=1)) is None
    assert found("post-mortem to follow", dt.timedelta(days=1)) is None
