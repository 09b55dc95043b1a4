"""The run history kept off the runner: `[report] history` in S3 or a local path, appends that
lose no line when runs finish together, older history still read, writes only under the declared
prefix, and EA-OPS-02 reading the S3 history."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import empty_bucket, run_suite
from edgeaudit.aws import guard
from edgeaudit.demo.builder import HISTORY_BUCKET, SiteSpec
from edgeaudit.demo.history import past_runs, write_history
from edgeaudit.reporting.store import HistoryUnavailable, LocalHistory, S3History, open_store
from edgeaudit.rules import tomlwrite
from edgeaudit.rules.config import ConfigError, parse
from edgeaudit.rules.location import evidence_place

BUCKET = "ci-evidence-bucket"
LOCATION = f"s3://{BUCKET}/edgeaudit/history.jsonl"
# a line as versions before the store wrote it (no measures, no cadences of frameworks)
OLD_LINE = {"started": "2026-10-01T06:00:00Z", "finished": "2026-10-01T06:10:00Z", "selection": "daily",
            "complete": True, "demo": False, "targets": ["www"], "cadences": ["daily"],
            "summary": {"passed": 3, "failed": 0}, "report": "daily-20261001T060000Z.json"}


def _line(started: str, **extra) -> dict:
    return {**OLD_LINE, "started": started, "finished": started, **extra}


@pytest.fixture
def s3(world, world_aws_env):
    """The session's moto server with an empty evidence bucket, and the guard installed with the
    history's place declared. (Not mock_aws: leaving it resets the moto state that the session's
    demo world, in this same process, keeps for the other tests.)"""
    client = empty_bucket(BUCKET)
    guard.install()
    try:
        DOOR[0] = guard.evidence_door([evidence_place(LOCATION)])
        yield client
    finally:
        guard.uninstall()


DOOR: list[guard.EvidenceDoor | None] = [None]  # the door the `s3` fixture minted, as the run holds its own


def _reinstall(places: list[tuple[str, str]]) -> None:
    """A new installation of the guard, whose door opens on `places`."""
    guard.uninstall()
    guard.install()
    DOOR[0] = guard.evidence_door(places)


def _store() -> S3History:
    store = open_store(LOCATION, Path("unused"), DOOR[0])
    assert isinstance(store, S3History)
    return store


# --- no lost update ---------------------------------------------------------------------------

def test_two_appenders_that_both_read_before_either_writes_lose_no_line(s3):
    """The worst moment of a read-modify-write: both runs have read the history, then both write."""
    _store().append([_line("2026-11-01T06:00:00Z")])
    read_both = threading.Barrier(2)
    seen: dict[str, int] = {}

    def finish(name: str) -> None:
        store = _store()
        seen[name] = len(store.read())
        read_both.wait()  # neither writes before both have read
        store.append([_line("2026-12-01T06:00:00Z", report=f"{name}.json")])

    shards = [threading.Thread(target=finish, args=(name,)) for name in ("shard-1", "shard-2")]
    for shard in shards:
        shard.start()
    for shard in shards:
        shard.join()
    assert seen == {"shard-1": 1, "shard-2": 1}
    reports = [e["report"] for e in _store().read()]
    assert sorted(reports[1:]) == ["shard-1.json", "shard-2.json"] and len(reports) == 3
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="edgeaudit/history.d/")["Contents"]]
    assert len(keys) == 3 and all(k.endswith(".json") for k in keys)  # one object per append, none rewritten


def test_two_local_appenders_lose_no_line(tmp_path):
    store = LocalHistory(tmp_path / "history.jsonl")
    first, second = store.read(), store.read()
    assert first == second == []
    store.append([_line("2026-12-01T06:00:00Z", report="a.json")])
    LocalHistory(tmp_path / "history.jsonl").append([_line("2026-12-01T06:00:00Z", report="b.json")])
    assert [e["report"] for e in store.read()] == ["a.json", "b.json"]


# --- older history --------------------------------------------------------------------------

def test_a_history_file_of_an_older_version_is_read_locally(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text(json.dumps(OLD_LINE) + "\n" + "not json\n")
    store = open_store(None, tmp_path)
    assert store == LocalHistory(path)
    assert store.read() == [OLD_LINE]
    store.append([_line("2026-12-01T06:00:00Z", measures={})])
    assert [e["started"] for e in store.read()] == [OLD_LINE["started"], "2026-12-01T06:00:00Z"]


def test_a_history_file_of_an_older_version_in_s3_is_read_before_the_new_lines(s3):
    """A history.jsonl uploaded at the configured key (from a cache or an older version) counts,
    merged with the per-run objects by start time."""
    _store().append([_line("2026-12-01T06:00:00Z")])
    with guard.local_seeding():  # the upload is the test's own, not the run's
        s3.put_object(Bucket=BUCKET, Key="edgeaudit/history.jsonl", Body=(json.dumps(OLD_LINE) + "\n{broken\n").encode())
    assert [e["started"] for e in _store().read()] == [OLD_LINE["started"], "2026-12-01T06:00:00Z"]
    assert _store().read()[0] == OLD_LINE


def test_an_unreachable_history_is_named_not_a_crash(s3):
    store = S3History("no-such-bucket-here", "edgeaudit/history.jsonl")
    with pytest.raises(HistoryUnavailable, match=r"s3://no-such-bucket-here/edgeaudit/history.jsonl.*NoSuchBucket"):
        store.read()


# --- the guard ----------------------------------------------------------------------------------

def test_the_guard_lets_the_history_add_objects_only_under_the_declared_prefix(s3):
    with DOOR[0].writes(BUCKET, "edgeaudit/history.d/"):
        s3.put_object(Bucket=BUCKET, Key="edgeaudit/history.d/one.json", Body=b"{}", IfNoneMatch="*")
        with pytest.raises(guard.ReadOnlyViolation, match="PUT .*/edgeaudit/history.d/two.json"):
            s3.put_object(Bucket=BUCKET, Key="edgeaudit/history.d/two.json", Body=b"{}")  # could replace one
        for key in ("edgeaudit/history.jsonl", "edgeaudit/other/x.json", "edgeaudit/history.d/../history.jsonl"):
            with pytest.raises(guard.ReadOnlyViolation, match="s3:PutObject"):
                s3.put_object(Bucket=BUCKET, Key=key, Body=b"{}")
        with pytest.raises(guard.ReadOnlyViolation, match="s3:DeleteObject"):
            s3.delete_object(Bucket=BUCKET, Key="edgeaudit/history.d/one.json")
        with pytest.raises(guard.ReadOnlyViolation, match="s3:DeleteObjects"):
            s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "edgeaudit/history.d/one.json"}]})
        with pytest.raises(guard.ReadOnlyViolation, match="s3:CopyObject"):
            s3.copy_object(Bucket=BUCKET, Key="edgeaudit/history.d/two.json",
                           CopySource={"Bucket": BUCKET, "Key": "edgeaudit/history.d/one.json"})
        other: list[Exception] = []
        thread = threading.Thread(target=lambda: _capture(other, lambda: s3.put_object(
            Bucket=BUCKET, Key="edgeaudit/history.d/three.json", Body=b"{}", IfNoneMatch="*")))
        thread.start()
        thread.join()
        assert isinstance(other[0], guard.ReadOnlyViolation)  # the grant is the opening thread's only
    with pytest.raises(guard.ReadOnlyViolation, match="s3:PutObject"):  # the context closed
        s3.put_object(Bucket=BUCKET, Key="edgeaudit/history.d/four.json", Body=b"{}")
    with pytest.raises(guard.ReadOnlyViolation, match="not a place the config declared"):
        with DOOR[0].writes(BUCKET, "elsewhere/"):
            pass
    with pytest.raises(guard.ReadOnlyViolation, match="not a place the config declared"):
        with DOOR[0].writes("another-bucket", "edgeaudit/history.d/"):
            pass
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]] == ["edgeaudit/history.d/one.json"]


def _capture(errors: list[Exception], call) -> None:
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        errors.append(exc)


def test_an_undeclared_history_location_cannot_be_written(s3):
    _reinstall([])
    with pytest.raises(guard.ReadOnlyViolation, match="not a place the config declared"):
        _store().append([_line("2026-12-01T06:00:00Z")])


# --- config -------------------------------------------------------------------------------------

TARGET = {"name": "www", "url": "https://www.example.com/", "bucket": "origin-bucket", "distribution_id": "E123"}


def _config(tmp_path: Path, history):
    return parse(tmp_path / "edgeaudit.toml", {"targets": [TARGET], "report": {"history": history}})


@pytest.mark.parametrize("value", [
    "s3://Bad_Bucket/history.jsonl", "s3://ci-evidence-bucket/history.txt", "s3://ci-evidence-bucket",
    "gs://ci-evidence-bucket/history.jsonl", "reports/history.txt", "s3://ci-evidence-bucket/a/../history.jsonl",
    "", 7, "reports/history.jsonl\n",
])
def test_a_bad_history_location_is_one_message_with_file_key_and_fix(tmp_path, value):
    with pytest.raises(ConfigError) as error:
        _config(tmp_path, value)
    assert error.value.key == "report.history" and error.value.path == str(tmp_path / "edgeaudit.toml")
    assert error.value.fix.startswith("write ") and any(word in error.value.fix for word in (".jsonl", "string", "line"))


def test_the_history_location_is_read_from_the_config(tmp_path):
    assert _config(tmp_path, LOCATION).history == LOCATION
    assert _config(tmp_path, f"s3://{BUCKET}/ci/").history == f"s3://{BUCKET}/ci/history.jsonl"
    assert _config(tmp_path, "shared/history.jsonl").history == str(tmp_path / "shared" / "history.jsonl")
    config = _config(tmp_path, LOCATION)
    assert (BUCKET, "edgeaudit/history.d/") in config.evidence_places()
    assert parse(tmp_path / "edgeaudit.toml", {"targets": [TARGET]}).evidence_places() == []


def test_a_bad_history_location_stops_the_run_with_exit_code_4(tmp_path):
    config = tmp_path / "edgeaudit.toml"
    config.write_text(tomlwrite.dumps({"targets": [TARGET], "report": {"history": "ftp://somewhere/history.jsonl"}}))
    run = run_suite("suites", "--edgeaudit-config", str(config), "-m", "daily", report_dir=tmp_path / "reports")
    assert run.returncode == 4, run.output
    assert "report.history" in run.output and "Fix: write" in run.output


def test_merge_takes_the_same_history_values(tmp_path, capsys):
    from edgeaudit.cli import main

    with pytest.raises(SystemExit) as done:
        main(["merge", str(tmp_path / "shard.json"), "--history", "gs://ci-evidence-bucket/history.jsonl"])
    assert done.value.code == 2 and "s3://bucket/prefix/history.jsonl" in capsys.readouterr().err


# --- the demo's history ---------------------------------------------------------------------

def test_the_demo_adds_only_the_scheduled_runs_its_history_lacks(s3):
    now = dt.datetime(2026, 12, 1, 12, tzinfo=dt.timezone.utc)
    added = write_history(_store(), ["www"], now=now)
    assert added > 50 and len(_store().read()) == added
    assert write_history(_store(), ["www"], now=now) == 0
    past = _store().read()
    assert all(line["demo"] and line["complete"] and "demo environment" in line["note"] for line in past)
    assert {line["selection"] for line in past} == {"daily", "weekly", "monthly", "quarterly", "annually", "dr"}
    assert all(dt.datetime.fromisoformat(line["started"][:-1]).weekday() < 5 for line in past
               if line["selection"] == "daily")
    assert write_history(_store(), ["www"], now=now + dt.timedelta(days=1)) > 0  # the next day's runs
    assert len(s3.list_objects_v2(Bucket=BUCKET, Prefix="edgeaudit/history.d/")["Contents"]) == 2


# --- EA-OPS-02 reads the S3 history -----------------------------------------------------------

def test_cadence_evidence_reads_the_history_in_s3_and_the_run_adds_its_line_there(world, tmp_path):
    site = world.add(SiteSpec(name="hist-s3"))
    s3 = world.builder.client("s3")
    with guard.local_seeding():  # an older version's history, uploaded to the configured key
        kept = past_runs(dt.datetime.now(dt.timezone.utc), ["hist-s3"])  # every cadence on schedule
        s3.put_object(Bucket=HISTORY_BUCKET, Key="site-ci/history.jsonl",
                      Body="".join(json.dumps({**line, "demo": False}) + "\n" for line in kept).encode())
    config = tmp_path / "edgeaudit.toml"
    location = f"s3://{HISTORY_BUCKET}/site-ci/history.jsonl"
    config.write_text(tomlwrite.dumps({"report": {"history": location}, "targets": [site.target_entry()]}))
    run = run_suite("suites/test_ops.py", "-k", "cadence", "--edgeaudit-config", str(config), env=world.aws_env,
                    report_dir=tmp_path / "reports")
    result = run.result("EA-OPS-02", "hist-s3")
    assert result["outcome"] == "passed", result
    assert result["resource"] == location
    assert {row["status"] for row in result["evidence"]["ledger"].values()} == {"within"}
    assert not (tmp_path / "reports" / "history.jsonl").exists()
    added = s3.list_objects_v2(Bucket=HISTORY_BUCKET, Prefix="site-ci/history.d/")["Contents"]
    assert len(added) == 1
    line = json.loads(s3.get_object(Bucket=HISTORY_BUCKET, Key=added[0]["Key"])["Body"].read())
    assert line["report"] == run._written(".json").name
    # one control is no whole cadence: the line vouches for no target
    assert line["targets"] == [] and line["coverage"] == {} and line["demo"] is False
    # the merge of a run's shards joins the same history (here the run is its one shard)
    merged = subprocess.run([sys.executable, "-m", "edgeaudit.cli", "merge", str(run._written(".json")),
                             "--output", str(tmp_path / "merged"), "--history", location],
                            env={k: v for k, v in {**os.environ, **world.aws_env}.items() if v is not None},
                            capture_output=True, text=True)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=HISTORY_BUCKET, Prefix="site-ci/history.d/")["Contents"]]
    assert len(keys) == 2 and added[0]["Key"] in keys


def test_cadence_evidence_names_a_history_it_cannot_read(world, tmp_path):
    site = world.add(SiteSpec(name="hist-gone"))
    config = tmp_path / "edgeaudit.toml"
    config.write_text(tomlwrite.dumps({"report": {"history": "s3://no-such-history-bucket/ci/history.jsonl"},
                                       "targets": [site.target_entry()]}))
    run = run_suite("suites/test_ops.py", "-k", "cadence", "--edgeaudit-config", str(config), env=world.aws_env,
                    report_dir=tmp_path / "reports")
    result = run.result("EA-OPS-02", "hist-gone")
    assert result["outcome"] == "error", result
    assert "s3://no-such-history-bucket/ci/history.jsonl" in result["message"] and "NoSuchBucket" in result["message"]
    assert "could not be added" in run.output  # the report is written all the same, without trend or ledger
