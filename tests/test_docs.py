"""The documentation: the site builds with --strict (a broken link, a missing anchor or a page
left out of the nav fails), its Controls page is what `edgeaudit controls --format md` prints
today, and the README stays a front page whose commands are the project's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from test_demo import DOCUMENTED

from conftest import REPO

DOCS = REPO / "docs"
README = REPO / "README.md"
REGENERATE = "edgeaudit controls --format md > docs/controls.md"


def test_the_site_builds_strictly(tmp_path: Path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "controls" / "index.html").is_file()
    assert (tmp_path / "site" / "report.png").is_file()


def test_the_controls_page_is_what_the_command_prints():
    done = subprocess.run([sys.executable, "-m", "edgeaudit.cli", "controls", "--format", "md"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (DOCS / "controls.md").read_text(encoding="utf-8") == done.stdout, (
        f"docs/controls.md is stale; regenerate it: {REGENERATE}")


def test_the_controls_page_says_it_is_generated_and_lists_thresholds_and_reads():
    page = (DOCS / "controls.md").read_text(encoding="utf-8")
    assert "Generated from the controls themselves by `edgeaudit controls --format md`" in page.split("\n## ", 1)[0]
    rows = {line.split(" | ", 1)[0].strip("| "): line for line in page.splitlines() if line.startswith("| EA-")}
    assert "`cert_warn_days = 30`" in rows["EA-TLS-01"] and "`cert_fail_days = 14`" in rows["EA-TLS-01"]
    assert "`s3:GetBucketVersioning`" in rows["EA-S3-05"] and "| P2 |" in rows["EA-S3-05"]


def _demo_findings(text: str) -> dict[str, str]:
    """The rows of a page's table of the demo's findings: control -> outcome."""
    return dict(re.findall(r"^\| (EA-[A-Z0-9]+-\d{2}) \| \*\*(\w+)\*\* \(P\d\) \|", text, re.M))


def test_the_documented_demo_findings_are_the_ones_the_demo_tests_hold():
    assert _demo_findings((DOCS / "getting-started.md").read_text(encoding="utf-8")) == DOCUMENTED
    assert _demo_findings(README.read_text(encoding="utf-8")) == DOCUMENTED


def _code_lines(text: str) -> list[str]:
    """Every line inside a fenced code block."""
    return [line.strip() for block in re.findall(r"^```[^\n]*\n(.*?)^```", text, re.S | re.M)
            for line in block.splitlines()]


def test_the_readme_is_a_front_page_with_the_projects_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250, "the README is the front page: move detail into docs/"
    lines = _code_lines(text)
    assert "pytest tests -n 2" in lines, "CI's .ci/run runs this command: keep it in the README"
    assert {"pip install -e '.[dev]'", "pytest -m daily --demo"} <= set(lines)
    assert "docs/report.png" in text


def _anchors(page: Path) -> set[str]:
    """The heading ids MkDocs gives a page (its toc extension's default slugs)."""
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    headings = re.findall(r"^#+ (.+)$", text, re.M)
    return {re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", h).strip().lower()) for h in headings}


def test_the_readmes_links_into_the_docs_resolve():
    """MkDocs checks the site's own links; the README is outside it."""
    links = re.findall(r"\]\((docs/[^)#]+)(?:#([^)]+))?\)", README.read_text(encoding="utf-8"))
    assert links
    for path, anchor in links:
        target = REPO / path
        assert target.is_file(), path
        if anchor:
            assert anchor in _anchors(target), f"{path}#{anchor}"
