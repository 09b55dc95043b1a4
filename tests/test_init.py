"""`edgeaudit init`: a commented config for one site, its distribution, bucket and region found
from the URL with read calls; then `pytest -m daily` runs on it as written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import boto3
import pytest

from conftest import REPO, run_suite
from edgeaudit.aws import discover
from edgeaudit.demo.builder import SiteSpec
from edgeaudit.rules.config import parse
from edgeaudit.rules.starter import EXAMPLE, starter_config

SITE = {"name": "www", "url": "https://www.example.test/", "bucket": "example-www-prod", "region": "eu-west-1",
        "distribution_id": "E2EXAMPLE", "paths": ["/", "/about/"]}


def init(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgeaudit.cli", "init", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_starter_config_is_the_example_with_the_sites_values(tmp_path):
    text = starter_config(SITE)
    document = tomllib.loads(text)
    assert document["targets"] == [SITE]
    assert "# allowed_writers = " in text and "allowed_writers" not in document["targets"][0], \
        "the example's invented writers stay a comment"
    example = EXAMPLE.read_text()
    comments = [line for line in example.splitlines() if line.startswith("# ") and " = " not in line]
    assert all(line in text for line in comments), "the example's explanations are kept"
    path = tmp_path / "edgeaudit.toml"
    path.write_text(text)
    assert parse(path, document).targets[0].bucket == "example-www-prod"


def test_a_value_the_example_does_not_name_is_added_to_the_table():
    text = starter_config({**SITE, "ca_bundle": "/etc/ssl/corp.pem", "price_class": "PriceClass_All"})
    [target] = tomllib.loads(text)["targets"]
    assert target["ca_bundle"] == "/etc/ssl/corp.pem" and target["price_class"] == "PriceClass_All"


def test_the_distribution_bucket_and_region_are_found_from_the_host(world, world_aws_env):
    """Against the world's moto server (not mock_aws: leaving it would reset the session's world)."""
    site = world.add(SiteSpec(name="aliased", aliases=("www.init-alias.test",)))
    session = boto3.session.Session(region_name="us-east-1")
    found = discover.discover(session, "www.init-alias.test")
    assert found == discover.Found(site.distribution_id, site.bucket, site.spec.region, site.extra["replica_bucket"])
    with pytest.raises(discover.NotFound, match="no distribution of this account serves shop.init-alias.test: "
                                                "pass --distribution-id"):
        discover.discover(session, "shop.init-alias.test")


def test_init_then_the_daily_run_works_as_written(world, tmp_path):
    site = world.add(SiteSpec(name="initsite"))
    env = {key: value for key, value in {**os.environ, **world.aws_env}.items() if value is not None}
    done = init("--url", site.edge.url, "--name", "initsite", "--distribution-id", site.distribution_id,
                "--ca-bundle", str(site.ca_file), cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    [target] = tomllib.loads((tmp_path / "edgeaudit.toml").read_text())["targets"]
    assert (target["bucket"], target["region"]) == (site.bucket, site.spec.region), "found from the distribution"
    assert target["replica_bucket"] == site.extra["replica_bucket"], "the origin group's failover member"
    run = run_suite("-m", "daily", "-p", "no:randomly", cwd=tmp_path, env=world.aws_env, report_dir=tmp_path / "reports")
    assert run.returncode in (0, 1), run.output
    report = run.report
    assert report["complete"] is True and report["run"]["targets"] == ["initsite"]
    assert {r["control"] for r in report["results"]} >= {"EA-SITE-01", "EA-DEP-01", "EA-TLS-01"}
    assert run.result("EA-SITE-01", "initsite")["outcome"] == "passed"


def test_init_does_not_replace_a_config(tmp_path):
    (tmp_path / "edgeaudit.toml").write_text("# mine\n")
    done = init("--url", "https://www.example.test/", "--distribution-id", "E1", "--bucket", "b-bucket",
                "--region", "eu-west-1", cwd=tmp_path)
    assert done.returncode == 2 and "pass --force" in done.stderr
    assert (tmp_path / "edgeaudit.toml").read_text() == "# mine\n"


def test_the_example_ships_in_the_package_and_the_checkout_links_to_it():
    assert EXAMPLE.is_file() and EXAMPLE.parent.name == "edgeaudit"
    assert (REPO / "edgeaudit.example.toml").resolve() == EXAMPLE.resolve()
    assert json.dumps(tomllib.loads(EXAMPLE.read_text()))  # parses
