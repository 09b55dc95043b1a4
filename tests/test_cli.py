"""The `edgeaudit` command."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from conftest import REPO


def edgeaudit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgeaudit.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_controls_lists_the_catalog_as_markdown():
    done = edgeaudit("controls")
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("| EA-S3-05 "))
    assert "| P2 |" in row and "weekly" in row and "dr" in row
    assert "collected" not in done.stdout  # nothing of pytest's own output


def test_controls_as_json_has_one_entry_per_control():
    done = edgeaudit("controls", "--format", "json")
    controls = json.loads(done.stdout)
    ids = [c["id"] for c in controls]
    assert len(ids) == len(set(ids)) and "EA-TLS-01" in ids
    tls = next(c for c in controls if c["id"] == "EA-TLS-01")
    assert tls["frameworks"] == {"FSBP": "ACM.1"} and tls["remediation"]


def test_unknown_folder_is_a_usage_error():
    done = edgeaudit("controls", "no-such-folder")
    assert done.returncode == 2
    assert "no folder of controls" in done.stderr


CATALOG = REPO.parent / "shared" / "CONTROLS.md"


def catalog_severities() -> dict[str, str]:
    """id -> severity, from the rows of CONTROLS.md's tables."""
    rows = {}
    for line in CATALOG.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) > 2 and re.fullmatch(r"EA-[A-Z0-9]+-\d{2}", cells[0]):
            rows[cells[0]] = cells[1]
    return rows


@pytest.mark.skipif(not CATALOG.is_file(), reason="CONTROLS.md is not beside this checkout")
def test_collected_controls_agree_with_the_catalog():
    catalog = catalog_severities()
    controls = json.loads(edgeaudit("controls", "--format", "json").stdout)
    assert controls
    for control in controls:
        assert control["id"] in catalog, f"{control['id']} is not in CONTROLS.md (ids are fixed)"
        assert control["severity"] == catalog[control["id"]], control["id"]
        assert control["title"] and control["remediation"], control["id"]


def test_catalog_as_html_is_one_escaped_page():
    done = edgeaudit("controls", "--format", "html")
    assert done.returncode == 0
    assert done.stdout.startswith("<!doctype html>") and "EA-S3-05" in done.stdout
    assert "<script" not in done.stdout


def test_version_prints_the_package_version():
    from edgeaudit import __version__

    done = edgeaudit("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"edgeaudit {__version__}"


def test_catalog_page_escapes_what_the_controls_say():
    from edgeaudit.reporting.html_render import catalog_page

    control = {"id": "EA-X-01", "severity": "P1", "title": "<script>alert(1)</script>", "cadence": ["daily"],
               "categories": ["security"], "frameworks": {"FSBP": "S3.1", "CIS": "2.1"}, "thresholds": ["lcp_s"],
               "remediation": "a & b"}
    page = catalog_page([control])
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "a &amp; b" in page
    assert "<td>FSBP S3.1, CIS 2.1</td>" in page and "<p>1 controls</p>" in page
