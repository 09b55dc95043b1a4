"""Dependency review of a site's lockfile with the ecosystem's own audit tool: `npm audit --json`
for package-lock.json, pip-audit for requirements*.txt and poetry.lock.

The tools ask their advisory source (the npm registry's bulk advisory endpoint; PyPI or OSV).
When that source cannot be reached the review is not done, which is an error, never a pass.
The npm registry comes from npm's own configuration (.npmrc, `npm_config_registry`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from edgeaudit.errors import NotEvaluated

TIMEOUT_S = 120


@dataclass
class Review:
    tool: str
    packages: int = 0
    vulnerable: dict[str, str] = field(default_factory=dict)   # "name version" -> what and how bad


def review(lockfile: Path) -> Review:
    if not lockfile.is_file():
        raise NotEvaluated(f"no lockfile at {lockfile}")
    if lockfile.name == "package-lock.json":
        return _npm(lockfile)
    if lockfile.name == "poetry.lock" or (lockfile.name.startswith("requirements") and lockfile.suffix == ".txt"):
        return _pip_audit(lockfile)
    raise NotEvaluated(f"{lockfile.name} is not a lockfile edgeaudit can review "
                       "(package-lock.json, requirements*.txt, poetry.lock)")


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which(command[0]) is None:
        raise NotEvaluated(f"{command[0]} is not installed, so {cwd} cannot be reviewed")
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise NotEvaluated(f"{' '.join(command[:2])} did not finish within {TIMEOUT_S} s") from None


def _npm(lockfile: Path) -> Review:
    done = _run(["npm", "audit", "--json", "--package-lock-only"], lockfile.parent)
    try:
        answer = json.loads(done.stdout or "{}")
    except json.JSONDecodeError:
        answer = {}
    if "vulnerabilities" not in answer:  # npm exits 1 both for findings and for failures
        reason = answer.get("message") or (done.stderr.strip().splitlines() or ["no answer"])[0]
        raise NotEvaluated(f"npm audit could not review {lockfile.name}: {reason}")
    result = Review("npm audit", packages=int(answer.get("metadata", {}).get("dependencies", {}).get("total", 0)))
    for name, finding in answer["vulnerabilities"].items():
        titles = [v["title"] for v in finding.get("via", []) if isinstance(v, dict) and v.get("title")]
        result.vulnerable[f"{name} {finding.get('range', '')}".strip()] = (
            f"{finding.get('severity', '?')}: {'; '.join(titles) or 'via ' + ', '.join(map(str, finding.get('via', [])))}")
    return result


def _pinned_requirements(poetry_lock: Path, into: Path) -> Path:
    packages = tomllib.loads(poetry_lock.read_text(encoding="utf-8")).get("package", [])
    into.write_text("".join(f"{p['name']}=={p['version']}\n" for p in packages), encoding="utf-8")
    return into


def _pip_audit(lockfile: Path) -> Review:
    with tempfile.TemporaryDirectory() as scratch:
        requirements = (_pinned_requirements(lockfile, Path(scratch) / "requirements.txt")
                        if lockfile.name == "poetry.lock" else lockfile)
        done = _run(["pip-audit", "--requirement", str(requirements), "--no-deps", "--disable-pip",
                     "--format", "json", "--progress-spinner", "off"], lockfile.parent)
    try:
        answer = json.loads(done.stdout or "{}")
    except json.JSONDecodeError:
        answer = {}
    if "dependencies" not in answer:
        reason = (done.stderr.strip().splitlines() or ["no answer"])[-1]
        raise NotEvaluated(f"pip-audit could not review {lockfile.name}: {reason}")
    result = Review("pip-audit", packages=len(answer["dependencies"]))
    for dependency in answer["dependencies"]:
        if dependency.get("vulns"):
            ids = ", ".join(v["id"] for v in dependency["vulns"])
            result.vulnerable[f"{dependency['name']} {dependency.get('version', '')}".strip()] = ids
    return result
