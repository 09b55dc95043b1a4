"""The container image's Dockerfile, read as text (no builder here): a base pinned by digest, no
`latest`, Debian's Chromium, the wheel with the lab extra, a non-root user, `edgeaudit run`."""

from __future__ import annotations

import json
import re

from conftest import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")


def instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) of each line, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
            for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_base_is_pinned_by_digest_and_nothing_is_latest():
    [default] = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.M)
    assert re.fullmatch(r"python:3\.\d+-slim-\w+@sha256:[0-9a-f]{64}", default)
    froms = [args.split()[0] for name, args in instructions() if name == "FROM"]
    assert froms and set(froms) == {"${PYTHON_IMAGE}"}
    assert "latest" not in DOCKERFILE


def test_it_runs_as_a_user_that_is_not_root():
    users = [args for name, args in instructions() if name == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert [name for name, _ in instructions()].index("USER") > max(
        i for i, (name, _) in enumerate(instructions()) if name == "RUN"), "nothing runs as root after USER"


def test_it_installs_the_wheel_with_the_lab_extra_and_debians_chromium():
    runs = " ".join(args for name, args in instructions() if name == "RUN")
    assert "python -m build --wheel" in runs and '[lab]"' in runs
    assert re.search(r"apt-get install -y --no-install-recommends [^&]*\bchromium\b", runs)
    assert "playwright install" not in runs, "no browser download"


def test_the_entrypoint_is_edgeaudit_run():
    [entrypoint] = [args for name, args in instructions() if name == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["edgeaudit", "run"]


def test_the_build_context_leaves_out_the_checkouts_state():
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".git", ".venv", "reports"} <= set(ignored)
