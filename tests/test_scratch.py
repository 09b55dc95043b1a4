"""The scratch context: the drill's only door to AWS writes. It writes under its own prefix of
the scratch bucket, refuses everything else through the guard, and leaves the bucket empty
when it closes, also after a failure or Ctrl-C; it removes what runs older than a day left."""

from __future__ import annotations

import datetime as dt
import os
import signal
import textwrap
from pathlib import Path

import boto3
import pytest

from conftest import run_suite
from edgeaudit.aws import guard
from edgeaudit.aws.scratch import ROOT, Scratch
from edgeaudit.demo import motoext
from edgeaudit.demo.builder import SiteSpec
from edgeaudit.rules import tomlwrite
from edgeaudit.rules.config import ConfigError, parse


@pytest.fixture(scope="module")
def drill_site(world):
    return world.add(SiteSpec(name="scratch"))


@pytest.fixture
def s3(world, drill_site):
    guard.install()
    guard.allow_scratch_in([drill_site.extra["scratch_bucket"]])
    try:
        yield boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing").client(
            "s3", region_name="eu-west-1", endpoint_url=world.endpoint_url)
    finally:
        guard.uninstall()


def _keys(s3, bucket: str, prefix: str = ROOT) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


def test_scratch_writes_under_its_prefix_and_leaves_nothing(s3, drill_site):
    bucket = drill_site.extra["scratch_bucket"]
    with Scratch(s3, bucket) as scratch:
        s3.put_object(Bucket=bucket, Key=scratch.key("a.html"), Body=b"a")
        s3.copy_object(Bucket=bucket, Key=scratch.key("copy/index.html"),
                       CopySource={"Bucket": drill_site.bucket, "Key": "index.html"})
        assert sorted(scratch.remaining()) == [scratch.key("a.html"), scratch.key("copy/index.html")]
        assert scratch.key("a.html").startswith(f"{ROOT}{scratch.run_id}/")
    assert _keys(s3, bucket) == []


@pytest.mark.parametrize("failure", [RuntimeError("restore failed half-way"), KeyboardInterrupt()])
def test_a_drill_that_fails_half_way_leaves_scratch_empty(s3, drill_site, failure):
    bucket = drill_site.extra["scratch_bucket"]
    with pytest.raises(type(failure)):
        with Scratch(s3, bucket) as scratch:
            for n in range(3):
                s3.put_object(Bucket=bucket, Key=scratch.key(f"part-{n}"), Body=b"x")
            raise failure
    assert _keys(s3, bucket) == []
    with pytest.raises(guard.ReadOnlyViolation):  # the grant ended with the context
        s3.put_object(Bucket=bucket, Key=scratch.key("late"), Body=b"x")


def test_ctrl_c_pressed_again_during_the_removal_leaves_scratch_empty(s3, drill_site):
    """The first Ctrl-C stops the drill; the second lands while its objects are being removed
    (sent from botocore's own event, just before DeleteObjects goes out): the removal ends first."""
    bucket = drill_site.extra["scratch_bucket"]
    sent: list[str] = []

    def second_ctrl_c(**_: object) -> None:
        if not sent:
            sent.append("again")
            os.kill(os.getpid(), signal.SIGINT)

    s3.meta.events.register("before-call.s3.DeleteObjects", second_ctrl_c)
    try:
        with pytest.raises(KeyboardInterrupt):
            with Scratch(s3, bucket) as scratch:
                for n in range(3):
                    s3.put_object(Bucket=bucket, Key=scratch.key(f"part-{n}"), Body=b"x")
                os.kill(os.getpid(), signal.SIGINT)
                raise AssertionError("the first Ctrl-C did not stop the drill")
    finally:
        s3.meta.events.unregister("before-call.s3.DeleteObjects", second_ctrl_c)
    assert sent == ["again"]
    assert _keys(s3, bucket) == []


def test_writes_outside_the_prefix_or_to_the_origin_are_refused(s3, drill_site):
    bucket = drill_site.extra["scratch_bucket"]
    before = len(guard.violations)
    with Scratch(s3, bucket) as scratch:
        with pytest.raises(guard.ReadOnlyViolation, match=f"refused s3:PutObject on {bucket}"):
            s3.put_object(Bucket=bucket, Key="elsewhere/x", Body=b"x")
        with pytest.raises(guard.ReadOnlyViolation, match=f"on {drill_site.bucket}"):
            s3.put_object(Bucket=drill_site.bucket, Key=scratch.key("x"), Body=b"x")
        with pytest.raises(guard.ReadOnlyViolation):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": scratch.key("x")}, {"Key": "index.html"}]})
        with pytest.raises(guard.ReadOnlyViolation):
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert len(guard.violations) == before + 4
    assert "index.html" in _keys(s3, drill_site.bucket, "index")


def test_leftovers_older_than_a_day_are_removed_and_younger_ones_kept(s3, drill_site):
    bucket = drill_site.extra["scratch_bucket"]
    old, recent = f"{ROOT}20200101T000000Z-dead0001/index.html", f"{ROOT}busy-run/index.html"
    with guard.local_seeding():
        for key in (old, recent):
            s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    motoext.set_object_last_modified(bucket, old, dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2))
    with Scratch(s3, bucket) as scratch:
        assert scratch.leftovers_removed == [old]
    assert _keys(s3, bucket) == [recent]  # another run, still going, keeps its objects
    with guard.local_seeding():
        s3.delete_object(Bucket=bucket, Key=recent)


@pytest.mark.parametrize("same_as", ["bucket", "replica_bucket"])
def test_scratch_bucket_may_not_be_the_origin_or_the_replica(same_as):
    target = {"name": "www", "url": "https://www.example.com/", "bucket": "origin", "distribution_id": "E1",
              "replica_bucket": "replica"}
    target["scratch_bucket"] = target[same_as]
    with pytest.raises(ConfigError, match=f"scratch_bucket: same bucket as {same_as}"):
        parse(Path("edgeaudit.toml"), {"targets": [target]})


def test_scratch_bucket_equal_to_the_origin_is_a_usage_error(tmp_path, drill_site, world):
    entry = {**drill_site.target_entry(), "scratch_bucket": drill_site.bucket}
    config = tmp_path / "edgeaudit.toml"
    config.write_text(tomlwrite.dumps({"targets": [entry]}))
    run = run_suite("suites/test_dr.py", "--edgeaudit-config", str(config), env=world.aws_env,
                    report_dir=tmp_path / "reports")
    assert run.returncode == 4, run.output
    assert "scratch_bucket" in run.output


DRILL_OUTSIDE = '''
from edgeaudit.aws.scratch import Scratch


@pytest.mark.control("EA-DR-01", severity="P2")
@pytest.mark.quarterly
@pytest.mark.dr
def test_drill_writes_to_the_origin(aws, target, evidence):
    """A drill that writes where it must not.

    Remediation: none; the guard stops it.
    """
    raw = aws.client("s3", target.region).raw
    with Scratch(raw, target.scratch_bucket) as scratch:
        raw.put_object(Bucket=target.bucket, Key=scratch.key("index.html"), Body=b"restored")
'''


def test_a_drill_writing_outside_scratch_fails_the_run(tmp_path, drill_site, world):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "test_drill.py").write_text("import pytest\n" + textwrap.dedent(DRILL_OUTSIDE))
    (tmp_path / "pytest.ini").write_text("[pytest]\ntestpaths = suites\nedgeaudit_builtin_controls = false\n")
    (tmp_path / "edgeaudit.toml").write_text(tomlwrite.dumps({"targets": [drill_site.target_entry()]}))
    run = run_suite(cwd=tmp_path, env=world.aws_env, report_dir=tmp_path / "reports")
    assert run.returncode == 1, run.output
    result = run.result("EA-DR-01", "scratch")
    assert result["outcome"] == "error"
    assert f"refused s3:PutObject on {drill_site.bucket}" in result["message"]
    assert run.report["complete"] is False
    s3 = world.builder.client("s3", "eu-west-1")
    assert _keys(s3, drill_site.extra["scratch_bucket"]) == []
    assert not _keys(s3, drill_site.bucket)


@pytest.fixture
def drill_aws(world_aws_env, drill_site):
    """The `aws` a control gets for the drill site, in this process."""
    from edgeaudit.aws.clients import Aws, AwsRegistry

    target = parse(Path("edgeaudit.toml"), {"targets": [drill_site.target_entry()]}).targets[0]
    guard.install()
    try:
        yield Aws(AwsRegistry(), target)
    finally:
        guard.uninstall()


def test_size_strata_cut_the_release_by_size_into_equal_counts():
    from edgeaudit.checks.drill import size_strata

    members = {f"k{size:02d}": {"Size": size} for size in range(10, 0, -1)}
    assert size_strata(members, 3) == [["k01", "k02", "k03"], ["k04", "k05", "k06"], ["k07", "k08", "k09", "k10"]]
    assert size_strata(members, 50) == [[k] for k in sorted(members)]


def test_a_stratified_restore_names_what_failed_and_leaves_scratch_empty(drill_aws, drill_site, s3):
    from edgeaudit.checks import drill

    history = drill.history(drill_aws, drill_site.bucket)
    index = next(v for v in history.versions if v["Key"] == "index.html" and v["IsLatest"])
    members = {"index.html": index, "ghost.html": {**index, "Key": "ghost.html"}}  # one version is not there
    result = drill.restore_stratified(drill_aws, drill_aws.target, members, 2)
    assert result.method == "stratified sample" and list(result.restored) == ["index.html"]
    assert list(result.problems) == ["ghost.html"] and "NoSuchVersion restoring" in result.problems["ghost.html"]
    # the failed sample's stratum stays in the estimate, naming its problem (it fails the control)
    strata = {s["sampled"]: s for s in result.strata}
    assert sorted(strata) == ["ghost.html", "index.html"] and strata["index.html"]["seconds"] > 0
    assert strata["index.html"]["problem"] is None and "NoSuchVersion" in strata["ghost.html"]["problem"]
    assert result.scratch_left == [] and _keys(s3, drill_site.extra["scratch_bucket"]) == []
