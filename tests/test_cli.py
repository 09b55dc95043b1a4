"""The `edgeaudit` command."""

from __future__ import annotations

import json
import subprocess
import sys

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
