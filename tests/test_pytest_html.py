"""pytest-html's report of an audit, read in a real headless Chromium: the Control, Severity and
Outcome columns (warned and waived shown as such, in its Result column too), each control's
details and evidence and the link to edgeaudit's own report as extras, the targets and the account in its environment table;
in one process and under xdist. Without --html nothing of it is registered, edgeaudit runs
without pytest-html at all, and secrets planted in evidence never reach the page."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import pytest
from test_plugin import Project
from test_secrets import (  # noqa: F401 (a fixture)
    ALL_PLANTED,
    CRUX_KEY,
    CRUX_VARIABLE,
    EXTERNAL_ID,
    LEAKY,
    PLANTED,
    USERINFO,
    leaky_site,
)

from chromium import chromium, needs_chromium
from conftest import REPO, Run, run_suite
from edgeaudit.run.html_view import report_link

pytest.importorskip("playwright.sync_api", reason="playwright is part of the lab extras")
pytest.importorskip("pytest_html", reason="pytest-html is part of the dev extras")
pytestmark = needs_chromium

# a warned (EA-TLS-01), a failed (EA-HDR-06), a skipped (EA-OPS-04) and a passed (EA-HDR-03) control
SELECTION = "certificate_not_expiring or permissions_policy or dependency_review or content_type_options"
OUTCOMES = {"EA-TLS-01": "warned", "EA-HDR-06": "failed", "EA-OPS-04": "skipped", "EA-HDR-03": "passed"}
DATA_URI = re.compile(r"data:[\w/+.-]+;charset=utf-8;base64,([A-Za-z0-9+/=]+)")


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


class HtmlPage:
    """pytest-html's page, rendered: its results table by test id, its extras and environment."""

    def __init__(self, browser, path: Path) -> None:
        self.path = path
        self.errors: list[str] = []
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(path.as_uri())
        self.page.wait_for_selector("#results-table tbody tr.collapsible")

    def header(self) -> list[str]:
        return self.page.eval_on_selector_all("#results-table thead th", "cells => cells.map(c => c.textContent)")

    def rows(self) -> dict[str, dict[str, str]]:
        """Each row's cells by column header, keyed by its Test cell."""
        header = self.header()
        rows = self.page.eval_on_selector_all(
            "#results-table tbody tr.collapsible", "rows => rows.map(r => Array.from(r.cells, c => c.textContent))")
        return {row[header.index("Test")]: dict(zip(header, row)) for row in rows}

    def extras(self, test_id: str) -> dict[str, object]:
        """The details shown below a row, and its links by name."""
        body = self.page.locator(f'#results-table tbody[id="{test_id}"]')
        links = body.locator("a.col-links__extra").evaluate_all("a => a.map(x => [x.textContent, x.getAttribute('href')])")
        return {"details": body.locator(".extraHTML").text_content(), "links": dict(links)}

    def environment(self) -> dict[str, str]:
        rows = self.page.eval_on_selector_all(
            "#environment tr", "rows => rows.map(r => [r.cells[0].textContent, r.cells[1].innerText.trim()])")
        return dict(rows)


def _data(uri: str) -> object:
    match = DATA_URI.fullmatch(uri)
    assert match, uri
    return json.loads(base64.b64decode(match.group(1)))


@pytest.fixture(scope="module", params=["one process", "xdist"])
def demo_page(request, tmp_path_factory) -> tuple[Run, Path]:
    """The demo's selection with --html, the page in a folder of its own (the link is relative)."""
    root = tmp_path_factory.mktemp("pytest-html")
    page = root / "page" / "r.html"
    run = run_suite("--demo", "-k", SELECTION, "--html", str(page), "--self-contained-html", "--trace-config",
                    *(["-n", "2"] if request.param == "xdist" else []), report_dir=root / "reports")
    assert page.is_file(), run.output
    return run, page


def test_columns_show_control_severity_and_edgeaudit_outcome(browser, demo_page):
    run, path = demo_page
    page = HtmlPage(browser, path)
    assert page.errors == []
    assert page.header() == ["Result", "Outcome", "Control", "Severity", "Test", "Duration", "Links"]
    rows = page.rows()
    assert run.outcomes("www") == OUTCOMES and len(rows) == 4, rows
    for result in run.report["results"]:
        row = rows[result["nodeid"]]
        assert (row["Control"], row["Severity"], row["Outcome"]) == (
            result["control"], result["severity"], result["outcome"]), row
    warned_id = "suites/test_tls.py::test_certificate_not_expiring[www]"
    warned = rows[warned_id]
    # shown as warned, though a pass to pytest: its "Passed" filter still shows and hides the row
    assert (warned["Result"], warned["Outcome"], warned["Control"], warned["Severity"]) == (
        "Warned", "warned", "EA-TLS-01", "P2")
    page.page.click('input[data-test-result="passed"]')
    assert warned_id not in page.rows() and len(page.rows()) == 2
    page.page.click('input[data-test-result="passed"]')
    assert page.rows()[warned_id]["Result"] == "Warned"
    failed = rows["suites/test_headers.py::test_permissions_policy[www]"]
    assert (failed["Result"], failed["Outcome"], failed["Control"], failed["Severity"]) == (
        "Failed", "failed", "EA-HDR-06", "P4")
    summary = page.page.inner_text(".additional-summary.prefix")
    assert "edgeaudit: 1 passed, 1 warned, 1 failed, 0 error, 1 skipped, 0 waived" in summary
    assert "PytestHtmlView" in run.output  # registered (on the controller: workers write no page)


def test_evidence_and_the_link_to_edgeaudits_report_are_extras(browser, demo_page):
    run, path = demo_page
    page = HtmlPage(browser, path)
    tls = run.result("EA-TLS-01", "www")
    extras = page.extras(tls["nodeid"])
    assert "EA-TLS-01 (P2) on www: warned" in extras["details"]
    assert "certificate expires in 20 days" in extras["details"]
    assert _data(extras["links"]["evidence"]) == tls["evidence"] and tls["evidence"]
    link = extras["links"]["edgeaudit report"]
    assert not urlsplit(link).scheme, "relative, so that the two files move together"
    written = run._written(".html")
    assert (path.parent / unquote(link)).resolve() == written.resolve() and written.is_file()
    failed = page.extras(run.result("EA-HDR-06", "www")["nodeid"])
    assert "no Permissions-Policy header" in failed["details"] and "remediation:" in failed["details"]


def test_account_targets_and_title_are_in_the_page(browser, demo_page):
    run, path = demo_page
    page = HtmlPage(browser, path)
    assert page.page.inner_text("h1") == "edgeaudit: all controls (demo)"
    environment = page.environment()
    account, alias = run.report["run"]["aws_account"], run.report["run"]["aws_account_alias"]
    assert account and alias and environment["AWS account"] == f"{account} ({alias})"
    target = run.report["results"][0]["resource"]
    assert environment["edgeaudit targets"] == f"www: {target}"
    assert environment["edgeaudit run id"] == run.report["run"]["run_id"]
    assert environment["edgeaudit report"] == run._written(".html").name
    assert environment["Python"], "pytest-metadata's own rows stay"


def test_without_html_nothing_is_registered(tmp_path):
    run = run_suite("--demo", "-k", SELECTION, "--trace-config", report_dir=tmp_path / "reports")
    assert "PytestHtmlView" not in run.output and "Generated html report" not in run.output
    assert run.outcomes("www") == OUTCOMES, run.output


def test_edgeaudit_runs_without_pytest_html_installed(tmp_path):
    """A pytest_html that cannot be imported: the run must not need it (pytest's own plugins
    from it are turned off, as they would be absent)."""
    shadow = tmp_path / "shadow" / "pytest_html"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("pytest-html is not installed")\n')
    python_path = os.pathsep.join(filter(None, [str(shadow.parent), os.environ.get("PYTHONPATH")]))
    run = run_suite("--demo", "-k", SELECTION, "-p", "no:html", "-p", "no:html_fixtures",
                    env={"PYTHONPATH": python_path}, report_dir=tmp_path / "reports")
    assert run.outcomes("www") == OUTCOMES, run.output


def test_report_link_is_relative_to_the_page():
    assert report_link(Path("/srv/a/reports/all-1.html"), Path("/srv/a/page/r.html")) == "../reports/all-1.html"
    assert report_link(Path("/srv/a/all 1.html"), Path("/srv/a/r.html")) == "all%201.html"


def test_planted_secrets_never_reach_the_page_and_waived_is_shown(browser, tmp_path, world, leaky_site):  # noqa: F811
    project = Project(tmp_path, world, leaky_site)
    project.control("leaky", LEAKY)
    project.control("waived", '''
    @pytest.mark.control("EA-OPS-04", severity="P3")
    def test_waived(target, evidence):
        """A failure under a live waiver."""
        evidence.record("lockfile", "package-lock.json")
        assert False, "two vulnerable packages"
    ''')
    parts = urlsplit(leaky_site.edge.url)
    url = urlunsplit((parts.scheme, f"{':'.join(USERINFO)}@{parts.netloc}", parts.path or "/",
                      f"api_key={PLANTED['api_key']}", ""))
    entry = {**leaky_site.target_entry(), "url": url, "external_id": EXTERNAL_ID,
             "role_arn": "arn:aws:iam::123456789012:role/edgeaudit-audit", "crux_api_key_env": CRUX_VARIABLE}
    project.config(targets=[entry], waivers=[{"control": "EA-OPS-04", "target": "leaky", "reason": "upgrade planned",
                                              "approved_by": "J. Doe",
                                              "expires": dt.date.today() + dt.timedelta(days=30)}])
    path = tmp_path / "r.html"
    run = project.run("--html", str(path), "--self-contained-html", "-rA", env={CRUX_VARIABLE: CRUX_KEY})
    assert run.result("EA-OPS-03", "leaky")["outcome"] == "failed", run.output
    page = HtmlPage(browser, path)
    rows = {row["Control"]: row for row in page.rows().values()}
    assert (rows["EA-OPS-04"]["Result"], rows["EA-OPS-04"]["Outcome"]) == ("Waived", "waived")
    assert "waiver (live): upgrade planned, approved by J. Doe" in page.extras(rows["EA-OPS-04"]["Test"])["details"]
    leaky = page.extras(rows["EA-OPS-03"]["Test"])
    evidence = _data(leaky["links"]["evidence"])
    assert "<redacted>" in json.dumps(evidence) and "links" in evidence  # the secrets reached it, redacted
    # the file, every data URI in it decoded, and the page as Chromium built it
    text = path.read_text(encoding="utf-8")
    decoded = [base64.b64decode(m).decode("utf-8", "replace") for m in DATA_URI.findall(text)]
    assert decoded, "the evidence travels as data URIs"
    rendered = page.page.content()
    leaks = [secret for secret in ALL_PLANTED for where in (text, rendered, *decoded) if secret in where]
    assert not leaks, leaks
