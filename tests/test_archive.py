"""The archive of the report set (`[report] archive`, `edgeaudit merge --archive`): the set lands
under the declared folder of a bucket on the demo's moto server, with the bucket's Object Lock
retention read back; nothing is overwritten; a bucket that refuses (IAM denies, or no such
bucket) is a named error with the local reports written and exit code 1; the guard refuses a
write outside the folder; a bad value is one config error (exit 4)."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest
from test_plugin import PASSING, Project

from edgeaudit.aws import guard
from edgeaudit.reporting.archive import PAGE_SLOT, ArchivePlace, archive_set, mark_page, summary_line
from edgeaudit.reporting.step_summary import markdown
from edgeaudit.rules.config import ConfigError, parse

DAYS = 30


def _bucket(world, *, locked: bool = True) -> str:
    """A new bucket on the moto server: with Object Lock (COMPLIANCE, DAYS days by default), or plain."""
    name = f"evidence-{uuid.uuid4().hex[:12]}"
    s3 = world.builder.client("s3")
    with guard.local_seeding():
        s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=locked)
        if locked:
            s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": DAYS}}})
    return name


def _client(world, key_id: str = "testing", secret: str = "testing"):
    return boto3.Session(aws_access_key_id=key_id, aws_secret_access_key=secret).client(
        "s3", region_name="us-east-1", endpoint_url=world.endpoint_url)


@pytest.fixture
def guarded():
    guard.install()
    try:
        yield
    finally:
        guard.uninstall()


def _files(folder: Path) -> list[Path]:
    names = {"daily-20261201T060000Z.json": b'{"schema": "edgeaudit.report/1"}\n',
             "daily-20261201T060000Z.html": b"<!doctype html><title>report</title>\n",
             "daily-20261201T060000Z.ocsf.json": b"[]\n", "daily-20261201T060000Z.csv": b"control,target\n"}
    for name, body in names.items():
        (folder / name).write_bytes(body)
    return [folder / name for name in names]


def _keys(s3, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


# --- the archive module, against the moto server ------------------------------------------------

def test_the_set_lands_under_the_folder_under_the_buckets_default_retention(world, tmp_path, guarded):
    bucket = _bucket(world)
    door = guard.evidence_door([(bucket, "audit/edgeaudit/")])
    s3, files = _client(world), _files(tmp_path)
    before = dt.datetime.now(dt.timezone.utc)
    entry = archive_set(files, ArchivePlace(bucket, "audit/edgeaudit/"), "daily-20261201T060000Z", s3, door=door)
    assert entry["status"] == "archived", entry.get("error")
    folder = "audit/edgeaudit/daily-20261201T060000Z/"
    assert entry["location"] == f"s3://{bucket}/{folder}"
    assert _keys(s3, bucket) == sorted(folder + f.name for f in files)
    assert entry["object_lock"] is True and entry["default_retention"] == {"mode": "COMPLIANCE", "days": DAYS}
    for path, stored in zip(files, entry["objects"]):
        held = s3.get_object_retention(Bucket=bucket, Key=stored["key"])["Retention"]
        assert held["Mode"] == "COMPLIANCE"
        until = held["RetainUntilDate"]
        assert dt.timedelta(days=DAYS - 1) < until - before < dt.timedelta(days=DAYS + 1)
        assert stored["retention"] == {"mode": "COMPLIANCE", "until": until.strftime("%Y-%m-%dT%H:%M:%SZ")}
        got = s3.get_object(Bucket=bucket, Key=stored["key"], ChecksumMode="ENABLED")
        assert got["Body"].read() == path.read_bytes()
        assert stored["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert got["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()
    assert entry["retention"]["mode"] == "COMPLIANCE" and entry["retention"]["until"] > before.isoformat()


def test_an_archived_object_is_never_overwritten(world, tmp_path, guarded):
    bucket = _bucket(world)
    door = guard.evidence_door([(bucket, "ci/")])
    s3, files = _client(world), _files(tmp_path)
    assert archive_set(files, ArchivePlace(bucket, "ci/"), "run-1", s3, door=door)["status"] == "archived"
    first = s3.get_object(Bucket=bucket, Key=f"ci/run-1/{files[0].name}")["Body"].read()
    files[0].write_bytes(b'{"tampered": true}\n')
    again = archive_set(files, ArchivePlace(bucket, "ci/"), "run-1", s3, door=door)
    where = f"s3://{bucket}/ci/run-1/{files[0].name}"
    assert again["status"] == "failed" and again["tampering"] == where, again
    assert again["error"].startswith(f"TAMPERING: {where} was already there"), again["error"]
    assert summary_line(again).startswith(f"archive FAILED, TAMPERING: {where}")
    assert s3.get_object(Bucket=bucket, Key=f"ci/run-1/{files[0].name}")["Body"].read() == first
    assert len(s3.list_object_versions(Bucket=bucket, Prefix=f"ci/run-1/{files[0].name}")["Versions"]) == 1


def test_a_bucket_without_object_lock_is_archived_and_said_to_be_unlocked(world, tmp_path, guarded):
    bucket = _bucket(world, locked=False)
    door = guard.evidence_door([(bucket, "ci/")])
    entry = archive_set(_files(tmp_path), ArchivePlace(bucket, "ci/"), "run", _client(world), door=door)
    assert entry["status"] == "archived" and entry["object_lock"] is False and entry["retention"] is None, entry


def test_a_missing_bucket_is_a_named_error(world, tmp_path, guarded):
    door = guard.evidence_door([("no-such-evidence-bucket", "ci/")])
    entry = archive_set(_files(tmp_path), ArchivePlace("no-such-evidence-bucket", "ci/"), "run", _client(world),
                        door=door)
    assert entry["status"] == "failed" and entry["objects"] == []
    assert entry["error"].startswith("s3:PutObject on s3://no-such-evidence-bucket/ci/run/"), entry["error"]
    assert "NoSuchBucket (the bucket does not exist)" in entry["error"]


@contextlib.contextmanager
def _denied_credentials(world):
    """An IAM user with no policy on the moto server (every action denied), while IAM is enforced."""
    from moto import settings
    from moto.core.responses import ActionAuthenticatorMixin

    iam = world.builder.client("iam")
    with guard.local_seeding():
        iam.create_user(UserName=(name := f"archiver-{uuid.uuid4().hex[:8]}"))
        key = iam.create_access_key(UserName=name)["AccessKey"]
    before = settings.INITIAL_NO_AUTH_ACTION_COUNT
    settings.INITIAL_NO_AUTH_ACTION_COUNT = ActionAuthenticatorMixin.request_count  # enforce from now on
    try:
        yield key["AccessKeyId"], key["SecretAccessKey"]
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = before


def test_a_bucket_that_refuses_the_write_is_a_named_error(world, tmp_path, guarded):
    bucket = _bucket(world)
    door = guard.evidence_door([(bucket, "ci/")])
    with _denied_credentials(world) as credentials:
        entry = archive_set(_files(tmp_path), ArchivePlace(bucket, "ci/"), "run", _client(world, *credentials),
                            door=door)
    assert entry["status"] == "failed", entry
    assert entry["error"].startswith(f"s3:PutObject on s3://{bucket}/ci/run/"), entry["error"]
    assert "AccessDenied" in entry["error"]
    assert _keys(_client(world), bucket) == []


def test_the_guard_refuses_a_write_outside_the_declared_folder(world, tmp_path, guarded):
    bucket = _bucket(world)
    door = guard.evidence_door([(bucket, "ci/")])
    s3 = _client(world)
    with door.writes(bucket, "ci/run/"):
        for other in ("elsewhere/x.json", "ci/other/x.json", "ci/run/../x.json"):
            with pytest.raises(guard.ReadOnlyViolation):
                s3.put_object(Bucket=bucket, Key=other, Body=b"x")
        with pytest.raises(guard.ReadOnlyViolation):
            s3.delete_object(Bucket=bucket, Key="ci/run/x.json")
    entry = archive_set(_files(tmp_path), ArchivePlace(bucket, "undeclared/"), "run", s3, door=door)
    assert entry["status"] == "failed" and "not a place the config declared" in entry["error"], entry
    assert _keys(s3, bucket) == []


@pytest.mark.parametrize("value", ["s3://evidence/", "s3://evidence/ci", "https://evidence/ci/", "s3://Evidence/ci/",
                                   "s3://evidence/../ci/", "s3://evidence//", 7])
def test_a_bad_archive_value_is_one_config_error(value):
    target = {"name": "www", "url": "https://www.example.com/", "bucket": "b", "distribution_id": "E1"}
    with pytest.raises(ConfigError) as error:
        parse(Path("edgeaudit.toml"), {"targets": [target], "report": {"archive": value}}, frozenset())
    assert error.value.key == "report.archive" and "edgeaudit.toml" in str(error.value)
    assert "Fix: write" in str(error.value)


# --- a run, and a merge ----------------------------------------------------------------------------

TARGET = {"name": "shop", "url": "https://shop.example.invalid/", "bucket": "b", "distribution_id": "E1"}


def test_a_run_archives_its_set_and_says_where_and_under_which_retention(tmp_path, world):
    bucket = _bucket(world)
    project = Project(tmp_path, world, None)
    project.control("archived", PASSING)
    project.config(targets=[TARGET], report={"archive": f"s3://{bucket}/edgeaudit/", "bundle": True})
    run = project.run()
    assert run.returncode == 0, run.output
    archive = run.report["run"]["archive"]
    stem = run._written(".json").with_suffix("")
    # the folder ends in the archived JSON report's digest: no one could name it before the run ended
    archived = _client(world).get_object(Bucket=bucket, Key=next(k for k in _keys(_client(world), bucket)
                                                                   if k.endswith(f"/{stem.name}.json")))
    folder = f"{stem.name}-{hashlib.sha256(archived['Body'].read()).hexdigest()[:16]}"
    assert archive["status"] == "archived" and archive["location"] == f"s3://{bucket}/edgeaudit/{folder}/"
    names = {f"{stem.name}{suffix}" for suffix in (".json", ".html", ".ocsf.json", ".csv", ".bundle.zip")}
    assert set(_keys(_client(world), bucket)) == {f"edgeaudit/{folder}/{n}" for n in names}
    assert archive["retention"]["mode"] == "COMPLIANCE"
    assert f"archive: s3://{bucket}/edgeaudit/{folder}/ (5 files; Object Lock COMPLIANCE until " in run.output
    page = markdown(run.report)  # the CI page's summary says it too
    assert f"archive: s3://{bucket}/edgeaudit/{folder}/ (5 files; Object Lock COMPLIANCE until " in page
    # and the local HTML report, in its header (the archived page is the one before the upload)
    local = stem.with_suffix(".html").read_text(encoding="utf-8")
    assert f'<p class="meta" id="archive">archive: s3://{bucket}/edgeaudit/{folder}/ (5 files; Object Lock ' \
        "COMPLIANCE until " in local and "<!--edgeaudit:archive-->" not in local


def test_a_run_whose_archive_bucket_is_missing_keeps_its_local_reports_and_exits_1(tmp_path, world):
    project = Project(tmp_path, world, None)
    project.control("archived", PASSING)
    project.config(targets=[TARGET], report={"archive": "s3://no-such-evidence-bucket/edgeaudit/"})
    run = project.run()
    assert run.returncode == 1, run.output
    report = run.report
    assert report["summary"]["passed"] == 1 and report["run"]["exit_code"] == 1
    archive = report["run"]["archive"]
    assert archive["status"] == "failed"
    assert archive["error"].startswith("s3:PutObject on s3://no-such-evidence-bucket/edgeaudit/"), archive
    assert "archive FAILED: s3:PutObject on s3://no-such-evidence-bucket/" in run.output
    stem = run._written(".json").with_suffix("")
    for suffix in (".html", ".csv"):
        assert stem.with_suffix(suffix).is_file()
    page = stem.with_suffix(".html").read_text(encoding="utf-8")  # the auditor's page says it loudly
    assert '<p class="meta archive-failed" id="archive">archive FAILED: s3:PutObject on s3://no-such-evidence' in page


def test_a_run_whose_credentials_the_archive_bucket_refuses_names_the_action_and_exits_1(tmp_path, world):
    bucket = _bucket(world)
    project = Project(tmp_path, world, None)
    project.control("archived", PASSING)
    project.config(targets=[TARGET], report={"archive": f"s3://{bucket}/edgeaudit/"})
    with _denied_credentials(world) as (key_id, secret):
        run = project.run(env={"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret})
    assert run.returncode == 1, run.output
    archive = run.report["run"]["archive"]
    assert archive["status"] == "failed" and archive["objects"] == []
    assert archive["error"].startswith(f"s3:PutObject on s3://{bucket}/edgeaudit/"), archive
    assert "AccessDenied" in archive["error"] and f"archive FAILED: s3:PutObject on s3://{bucket}/" in run.output
    assert run.report["summary"]["passed"] == 1 and _keys(_client(world), bucket) == []


def test_a_bad_archive_value_stops_the_run_with_exit_4(tmp_path, world):
    project = Project(tmp_path, world, None)
    project.control("archived", PASSING)
    project.config(targets=[TARGET], report={"archive": "s3://evidence"})
    run = project.run()
    assert run.returncode == 4 and "report.archive" in run.output and "Fix:" in run.output, run.output
    assert not (tmp_path / "reports").exists()


def test_merge_archives_the_merged_set(tmp_path, world):
    bucket = _bucket(world)
    project = Project(tmp_path, world, None)
    project.control("archived", PASSING)
    project.config(targets=[TARGET])
    shard = project.run("--shard", "1/1").report
    (tmp_path / "shard.json").write_text(json.dumps(shard))
    env = {**_environ(), **{k: v for k, v in world.aws_env.items() if v is not None}}
    merged = subprocess.run([sys.executable, "-m", "edgeaudit.cli", "merge", str(tmp_path / "shard.json"),
                             "--output", str(tmp_path / "merged"), "--archive", f"s3://{bucket}/merged/"],
                            capture_output=True, text=True, env=env)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    report = json.loads(next((tmp_path / "merged").glob("*-merged.json")).read_text())
    archive = report["run"]["archive"]
    assert archive["status"] == "archived" and archive["location"].startswith(f"s3://{bucket}/merged/")
    assert re.search(r"-merged-[0-9a-f]{16}/$", archive["location"]), archive["location"]
    assert len(_keys(_client(world), bucket)) == 4
    assert f"archive: s3://{bucket}/merged/" in merged.stdout
    bad = subprocess.run([sys.executable, "-m", "edgeaudit.cli", "merge", str(tmp_path / "shard.json"),
                          "--output", str(tmp_path / "merged"), "--archive", "s3://x"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "--archive" in bad.stderr


def _environ() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}


# --- the evidence door is the run's own -----------------------------------------------------------

FORGER = '''
import boto3
from edgeaudit.aws import guard
from edgeaudit.run.run import RUN


@pytest.mark.control("EA-OPS-04", severity="P3")
@pytest.mark.monthly
def test_forger(request, target, evidence):
    """A control that plants a COMPLIANT report where the run archives its own.

    Remediation: none; the guard stops it.
    """
    stem = request.config.stash[RUN].stem
    folder = f"edgeaudit/{stem.name}/"
    opener = getattr(guard, "evidence_writes", None) or (
        lambda bucket, prefix: guard.evidence_door([(bucket, "edgeaudit/")]).writes(bucket, prefix))
    with opener("BUCKET", folder):
        boto3.client("s3", region_name="us-east-1").put_object(
            Bucket="BUCKET", Key=f"{folder}{stem.name}.json", IfNoneMatch="*",
            Body=b'{"summary": {"failed": 0}, "verdict": "COMPLIANT"}')
'''


def test_a_control_cannot_open_the_evidence_door_nor_plant_a_report_in_the_archive(tmp_path, world):
    bucket = _bucket(world)
    project = Project(tmp_path, world, None)
    project.control("archived", PASSING)
    project.control("forger", FORGER.replace("BUCKET", bucket))
    project.config(targets=[TARGET], report={"archive": f"s3://{bucket}/edgeaudit/"})
    run = project.run()
    forger = run.result("EA-OPS-04", "shop")
    assert forger["outcome"] == "error" and "refused an evidence door" in forger["message"], forger
    archive = run.report["run"]["archive"]
    assert archive["status"] == "archived" and "tampering" not in archive, archive
    keys = _keys(_client(world), bucket)
    assert keys and all(k.startswith(archive["location"].removeprefix(f"s3://{bucket}/")) for k in keys), keys


def test_a_door_opened_before_the_run_stops_it(tmp_path, world):
    project = Project(tmp_path, world, None)
    project.control("archived", PASSING)
    project.config(targets=[TARGET], report={"archive": "s3://evidence-bucket/edgeaudit/"})
    (tmp_path / "conftest.py").write_text("from edgeaudit.aws import guard\n\n"
                                          "DOOR = guard.evidence_door([('evidence-bucket', 'edgeaudit/')])\n")
    run = project.run()
    assert run.returncode == 4, run.output
    assert "read-only guard: refused an evidence door" in run.output
    assert not (tmp_path / "reports").exists() or not list((tmp_path / "reports").glob("*.json"))


def test_an_object_already_in_the_archive_is_reported_as_tampering(world, tmp_path, guarded):
    """Whoever got a write in first: the run's copy is not uploaded, and the report says why."""
    bucket = _bucket(world)
    door = guard.evidence_door([(bucket, "ci/")])
    files = _files(tmp_path)
    with guard.local_seeding():
        world.builder.client("s3").put_object(Bucket=bucket, Key=f"ci/run/{files[0].name}", Body=b'{"forged": 1}')
    entry = archive_set(files, ArchivePlace(bucket, "ci/"), "run", _client(world), door=door)
    assert entry["status"] == "failed" and entry["tampering"] == f"s3://{bucket}/ci/run/{files[0].name}", entry
    assert "someone else wrote into the archive" in entry["error"]
    assert summary_line(entry).startswith("archive FAILED, TAMPERING: ")


def test_the_pages_archive_line_is_escaped_and_written_once(tmp_path):
    """What the archive says comes partly from S3 (an error, a key someone planted): the page's
    line escapes it, and only the header's slot takes it."""
    page = tmp_path / "daily.html"
    page.write_text(f"<html><body><p>head</p>\n{PAGE_SLOT}\n<pre>{PAGE_SLOT}</pre></body></html>\n",
                    encoding="utf-8")
    evil = "<script>alert(1)</script>"
    mark_page(page, {"status": "failed", "location": f"s3://b/{evil}/", "error": f"s3:PutObject refused: {evil}",
                     "objects": [], "tampering": f"s3://b/{evil}"})
    text = page.read_text(encoding="utf-8")
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert text.count('class="meta archive-failed" id="archive"') == 1 and text.count(PAGE_SLOT) == 1
    assert not (tmp_path / "daily.html.marking").exists()

