"""Shared set-up for the project's own tests: one moto server per test session (the demo
environment with no sites), sites built into it on demand, and a runner that runs the suite
the way a user does, in a subprocess, against those sites."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edgeaudit.demo.environment import DemoEnvironment

REPO = Path(__file__).resolve().parents[1]
pytest_plugins = ["pytester"]
if hasattr(os, "geteuid") and os.geteuid() == 0:  # root cannot start Chromium's sandbox (CI runs as root)
    os.environ.setdefault("EDGEAUDIT_CHROMIUM_SANDBOX", "off")


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> DemoEnvironment:
    """A moto server on loopback; tests add the sites they need with world.add(SiteSpec(...))."""
    env = DemoEnvironment.start(specs=[], workdir=tmp_path_factory.mktemp("world"))
    yield env
    env.stop()


@pytest.fixture
def world_aws_env(world: DemoEnvironment, monkeypatch: pytest.MonkeyPatch) -> dict[str, str | None]:
    """This process's environment pointed at the world's moto server, as a run's would be."""
    for key, value in world.aws_env.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    return world.aws_env


def empty_bucket(name: str) -> Any:
    """An S3 client of the world's moto (world_aws_env) with bucket `name` there and empty: made
    if missing, emptied if an earlier test left objects in it."""
    import boto3

    from edgeaudit.aws import guard

    client = boto3.client("s3", region_name="us-east-1")
    with guard.local_seeding():
        if name not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
            client.create_bucket(Bucket=name)
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            for entry in page.get("Contents", []):
                client.delete_object(Bucket=name, Key=entry["Key"])
    return client


@dataclass
class Run:
    """One run of the suite: its exit code, output and reports."""

    returncode: int
    output: str
    report_dir: Path

    def _written(self, suffix: str) -> Path:
        """The file this run wrote (its summary names it), else the newest in the folder."""
        for line in self.output.splitlines():
            if line.startswith("json:"):
                return Path(line.split(":", 1)[1].strip()).with_suffix(suffix)
        paths = sorted(self.report_dir.glob(f"*{suffix}"), key=lambda p: p.stat().st_mtime)
        assert paths, f"no {suffix} report in {self.report_dir}:\n{self.output}"
        return paths[-1]

    @property
    def report(self) -> dict[str, Any]:
        return json.loads(self._written(".json").read_text())

    @property
    def html(self) -> str:
        return self._written(".html").read_text()

    def result(self, control: str, target: str) -> dict[str, Any]:
        matches = [r for r in self.report["results"] if r["control"] == control and r["target"] == target]
        assert len(matches) == 1, f"{len(matches)} results for {control}[{target}]:\n{self.output}"
        return matches[0]

    def outcomes(self, target: str) -> dict[str, str]:
        return {r["control"]: r["outcome"] for r in self.report["results"] if r["target"] == target}


def run_suite(*args: str, cwd: Path = REPO, env: dict[str, str | None] | None = None,
              report_dir: Path, timeout: float = 600) -> Run:
    """`python -m pytest <args>` in a subprocess, reports into report_dir."""
    environ = dict(os.environ)
    environ.pop("GITHUB_STEP_SUMMARY", None)  # the suite's own runs add nothing to a CI page's summary
    for key, value in (env or {}).items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    command = [sys.executable, "-m", "pytest", *args, "--report-dir", str(report_dir), "-p", "no:cacheprovider"]
    done = subprocess.run(command, cwd=cwd, env=environ, capture_output=True, text=True, timeout=timeout)
    return Run(done.returncode, done.stdout + done.stderr, report_dir)


@pytest.fixture
def suite_runner(world: DemoEnvironment, tmp_path: Path):
    """Run the project's suites/ against a config written for the given sites."""

    def run(sites: list[Any], *args: str, config_extra: dict[str, Any] | None = None,
            env: dict[str, str | None] | None = None) -> Run:
        config = tmp_path / "edgeaudit.toml"
        document = {**(config_extra or {}), "targets": [site.target_entry() for site in sites]}
        from edgeaudit.rules import tomlwrite

        config.write_text(tomlwrite.dumps(document))
        return run_suite("suites", "--edgeaudit-config", str(config), *args,
                         env={**world.aws_env, **(env or {})}, report_dir=tmp_path / "reports")

    return run


def assert_passes(result: dict[str, Any], severity: str) -> None:
    """A compliant site's control: passed, at its catalog severity, showing what it saw."""
    assert result["outcome"] == "passed", result
    assert result["severity"] == severity
    assert result["evidence"], "a passing control still shows what it saw"


def assert_finding(result: dict[str, Any], severity: str) -> None:
    """A broken site's finding: at its catalog severity, saying why, with its evidence."""
    assert result["severity"] == severity
    assert result["message"] and result["evidence"], result
