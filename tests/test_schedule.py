"""What counts as a run for EA-OPS-02 and the cadence ledger: every window of the look-back
period is judged, a run counts only for the targets and cadences it really covered, and a history
line counts only when it is well formed, not dated in the future, and signed when a key is set."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from moto import mock_aws

from edgeaudit.reporting import history_lines, store
from edgeaudit.reporting.ledger import cadence_controls, complete_cadences, coverage, ledger, line_cadences
from edgeaudit.reporting.store import LocalHistory, S3History
from edgeaudit.rules.schedule import due_windows

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # a Monday
GRACE = dt.timedelta(hours=12)


def _line(started: dt.datetime, cadences: list[str], targets: tuple[str, ...] = ("www",), **extra) -> dict:
    return {"started": started.strftime("%Y-%m-%dT%H:%M:%SZ"), "complete": True, "demo": False,
            "targets": list(targets), "cadences": cadences,
            "coverage": {t: cadences for t in targets}, **extra}


def _business_days(days: int) -> list[dt.date]:
    return [d for d in (NOW.date() - dt.timedelta(days=n) for n in range(days, 0, -1)) if d.weekday() < 5]


def _rows(history: list[dict], target: str | None = "www") -> dict:
    return {r.cadence: r for r in ledger(history, NOW, GRACE, target=target)}


# --- every window of the look-back period ------------------------------------------------------

def test_one_friday_run_does_not_cover_a_month_of_business_days():
    friday = dt.datetime(2026, 12, 4, 6, 0, tzinfo=UTC)
    row = _rows([_line(friday, ["daily"])])["daily"]
    assert row.status == "overdue" and row.last_complete == "2026-12-04T06:00:00Z"
    assert "2026-12-03" in row.missed and "2026-11-02" in row.missed and "2026-12-04" not in row.missed
    assert len(row.missed) == len(due_windows("daily", NOW, GRACE)) - 1
    assert row.window.endswith("(every business day)") and row.window.startswith(f"{len(row.missed) + 1} windows")


def test_a_run_on_every_business_day_keeps_daily_within_and_each_gap_is_named():
    days = _business_days(40)
    history = [_line(dt.datetime.combine(d, dt.time(6), tzinfo=UTC), ["daily"]) for d in days]
    assert _rows(history)["daily"].status == "within"
    gaps = [dt.date(2026, 11, 18), dt.date(2026, 11, 26)]
    holes = [e for e in history if e["started"][:10] not in {g.isoformat() for g in gaps}]
    assert _rows(holes)["daily"].missed == ("2026-11-18", "2026-11-26")


def test_monthly_quarterly_and_dr_judge_their_last_two_windows():
    # today's window (the first Monday of December) has not closed yet
    assert due_windows("monthly", NOW, GRACE) == [(dt.date(2026, 11, 2), dt.date(2026, 11, 2)),
                                                   (dt.date(2026, 10, 5), dt.date(2026, 10, 5))]
    assert due_windows("quarterly", NOW, GRACE)[1] == (dt.date(2026, 7, 1), dt.date(2026, 7, 7))
    october = dt.datetime(2026, 10, 2, 9, 0, tzinfo=UTC)
    row = _rows([_line(october, ["quarterly", "dr"])])["quarterly"]
    assert row.status == "overdue" and row.missed == ("2026-07-01 to 2026-07-07",)


def test_annually_judges_the_last_first_week_of_january_only():
    assert due_windows("annually", NOW, GRACE) == [(dt.date(2026, 1, 1), dt.date(2026, 1, 7))]
    # on 7 January the new year's window has not closed: the year before is still the one judged
    seventh = dt.datetime(2027, 1, 7, 15, 0, tzinfo=UTC)
    assert due_windows("annually", seventh, GRACE) == [(dt.date(2026, 1, 1), dt.date(2026, 1, 7))]
    assert _rows([])["annually"].status == "never"
    january = _line(dt.datetime(2026, 1, 5, 11, 0, tzinfo=UTC), ["annually"])
    assert _rows([january])["annually"].status == "within"
    december = _line(dt.datetime(2025, 12, 29, 11, 0, tzinfo=UTC), ["annually"])  # before the window
    assert _rows([december])["annually"].missed == ("2026-01-01 to 2026-01-07",)


def test_a_run_before_a_window_never_covers_it():
    late = [_line(dt.datetime(2026, 10, 5, 8, 0, tzinfo=UTC), ["monthly"]),
            _line(dt.datetime(2026, 11, 3, 9, 0, tzinfo=UTC), ["monthly"])]  # within the grace
    assert _rows(late)["monthly"].status == "within"
    early = [late[0], _line(dt.datetime(2026, 11, 1, 8, 0, tzinfo=UTC), ["monthly"])]
    assert _rows(early)["monthly"].missed == ("2026-11-02",)


# --- what a run covered ------------------------------------------------------------------------

BY_CADENCE = {"daily": {"EA-A-01", "EA-A-02"}, "weekly": {"EA-A-02", "EA-B-01"}, "monthly": set(),
              "quarterly": set(), "deploy": set(), "dr": set()}


def _report(results: list[tuple[str, str, str]], *, targets=("www", "api"), complete=True, **run) -> dict:
    return {"complete": complete, "run": {"targets": list(targets), "frameworks": [], "selection": "all",
                                          "shard": {"index": 1, "count": 1}, **run},
            "results": [{"control": c, "target": t, "outcome": o} for c, t, o in results]}


def test_a_run_covers_a_cadence_for_a_target_only_when_every_control_of_it_ran_there():
    report = _report([("EA-A-01", "www", "passed"), ("EA-A-02", "www", "failed"), ("EA-B-01", "www", "error"),
                      ("EA-A-01", "api", "passed")])
    cover = coverage(report, BY_CADENCE)
    assert cover == {"www": ["daily", "weekly"]}  # api lacks EA-A-02: -k or --deselect left it out
    assert complete_cadences(cover, ["www", "api"]) == [] and complete_cadences(cover, ["www"]) == ["daily", "weekly"]


def test_the_built_in_catalog_gives_every_cadence_its_controls():
    mine = cadence_controls()
    assert "EA-OPS-02" in mine["monthly"] and "EA-OPS-03" in mine["monthly"] and "EA-OPS-01" in mine["daily"]
    assert mine["dr"] and all(mine[c] for c in ("daily", "weekly", "monthly", "quarterly"))


@pytest.mark.parametrize("why", ["incomplete", "lone shard", "framework", "all error", "all skipped"])
def test_runs_that_cover_no_cadence(why):
    results = [("EA-A-01", "www", "passed"), ("EA-A-02", "www", "passed"), ("EA-B-01", "www", "passed")]
    report = {
        "incomplete": lambda: _report(results, targets=("www",), complete=False),
        "lone shard": lambda: _report(results, targets=("www",), shard={"index": 1, "count": 2}),
        "framework": lambda: _report(results, targets=("www",), frameworks=["FSBP"]),
        "all error": lambda: _report([(c, t, "error") for c, t, _ in results], targets=("www",)),
        "all skipped": lambda: _report([(c, t, "skipped") for c, t, _ in results], targets=("www",)),
    }[why]()
    assert coverage(report, BY_CADENCE) == {}


def test_a_line_counts_only_for_the_targets_it_covered():
    line = _line(NOW, ["daily"], targets=("www",))
    assert line_cadences(line, "www") == ["daily"] and line_cadences(line, "api") == []
    older = {k: v for k, v in line.items() if k != "coverage"}  # a line of an earlier version
    assert line_cadences(older, "www") == ["daily"] and line_cadences(older, "api") == []
    assert line_cadences({**line, "complete": False}, "www") == []


# --- lines that count --------------------------------------------------------------------------

def _key(tmp_path: Path) -> tuple[Ed25519PrivateKey, Path]:
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "signing.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return key, path


def test_signed_lines_verify_and_forged_or_altered_ones_are_ignored(tmp_path):
    key, path = _key(tmp_path)
    good = history_lines.sign(_line(NOW - dt.timedelta(days=1), ["daily"]), history_lines.signer(path))
    altered = {**good, "cadences": ["daily", "weekly", "monthly", "quarterly", "dr"]}
    forged = _line(NOW - dt.timedelta(hours=2), ["daily", "weekly"])
    other = history_lines.sign(forged, Ed25519PrivateKey.generate())
    vetted = history_lines.vet([("s3://b/h/1.json", good), ("s3://b/h/2.json", altered),
                                ("s3://b/h/3.json", forged), ("s3://b/h/4.json", other)], NOW, key)
    assert vetted.entries == [good] and vetted.verified == [good["started"]]
    assert len(vetted.ignored) == 3 and all("is not signed by the run's signing key" in w for w in vetted.ignored)
    assert "s3://b/h/3.json" in vetted.ignored[1]
    assert vetted.evidence()["signing_key"].startswith("sha256:")


def test_future_and_malformed_lines_are_ignored_with_a_warning_naming_their_object():
    future = _line(dt.datetime(2099, 1, 1, tzinfo=UTC), ["daily", "weekly", "monthly", "quarterly", "dr"])
    bad_date = {**_line(NOW, ["daily"]), "started": "yesterday"}
    bad_cover = {**_line(NOW, ["daily"]), "coverage": {"www": [{"a": 1}]}}
    bad_measures = {**_line(NOW, ["daily"]), "measures": {"nokey": 1}}
    fine = _line(NOW - dt.timedelta(hours=1), ["daily"])
    vetted = history_lines.vet([("h.jsonl", e) for e in (future, bad_date, bad_cover, bad_measures, fine)], NOW)
    assert vetted.entries == [fine] and vetted.verified == []
    assert "dated in the future" in vetted.ignored[0] and "in h.jsonl" in vetted.ignored[0]
    assert "is not a UTC time" in vetted.ignored[1] and "coverage" in vetted.ignored[2]
    assert "measures" in vetted.ignored[3]
    assert vetted.evidence()["verified"] == "no signing key configured: lines are not verified"


def test_a_line_nested_too_deep_is_passed_over(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text('{"started": "2026-12-01T06:00:00Z", "x": ' + "[" * 100000 + "]" * 100000 + "}\n"
                    + json.dumps(_line(NOW, ["daily"])) + "\n")
    assert [e["started"] for e in LocalHistory(path).read()] == [_line(NOW, [])["started"]]


def test_a_large_local_history_is_read_newest_part_first(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "MAX_HISTORY_BYTES", 2000)
    path = tmp_path / "history.jsonl"
    lines = [_line(NOW - dt.timedelta(days=n), ["daily"], padding="x" * 100) for n in range(100, 0, -1)]
    path.write_text("".join(json.dumps(e) + "\n" for e in lines))
    warnings: list[str] = []
    read = LocalHistory(path).read(warnings)
    assert 0 < len(read) < 20 and read[-1] == lines[-1] and read == lines[-len(read):]
    assert warnings and "only its newest 2000 were read" in warnings[0]


@mock_aws
def test_an_s3_history_reads_bounded_objects_newest_first(monkeypatch):
    monkeypatch.setattr(store, "MAX_OBJECT_BYTES", 1500)
    monkeypatch.setattr(store, "MAX_HISTORY_BYTES", 3000)
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="hist")
    history = S3History("hist", "ci/history.jsonl")
    huge = json.dumps(_line(NOW, ["daily"], padding="x" * 5000)) + "\n"
    s3.put_object(Bucket="hist", Key="ci/history.d/20261207T090000Z-huge.json", Body=huge.encode())
    for n in range(10):
        line = _line(NOW - dt.timedelta(days=n + 1), ["daily"], padding="y" * 400)
        s3.put_object(Bucket="hist", Key=f"ci/history.d/2026110{n}T060000Z-{n}.json",
                      Body=(json.dumps(line) + "\n").encode())
    older = "".join(json.dumps(_line(NOW - dt.timedelta(days=200 + n), ["daily"])) + "\n" for n in range(200))
    s3.put_object(Bucket="hist", Key="ci/history.jsonl", Body=older.encode())
    warnings: list[str] = []
    read = history.read(warnings)
    assert "5000" not in json.dumps(read) and all(len(e.get("padding", "")) <= 400 for e in read)
    assert len(read) < 10 and any("huge.json is passed over" in w for w in warnings)
    assert any("the history read stopped at" in w for w in warnings)


@mock_aws
def test_an_s3_history_lists_the_runs_of_its_window_only(monkeypatch):
    """With the run's time, the listing starts LISTED_DAYS back and stops at tomorrow: older run
    objects are not listed, future-dated ones not read (and said so)."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="hist-window")
    history = S3History("hist-window", "ci/history.jsonl")
    for days, name in ((-5, "future"), (3, "recent"), (store.LISTED_DAYS + 3, "ancient")):
        started = NOW - dt.timedelta(days=days)
        s3.put_object(Bucket="hist-window", Key=f"ci/history.d/{started:%Y%m%dT%H%M%SZ}-{name}.json",
                      Body=(json.dumps(_line(started, ["daily"], name=name)) + "\n").encode())
    warnings: list[str] = []
    read = [entry for _, entry in history.read_sourced(warnings, now=NOW)]
    assert [entry["name"] for entry in read] == ["recent"]
    assert any("are not read (dated in the future)" in w for w in warnings)
    assert sorted(entry["name"] for entry in history.read()) == ["ancient", "future", "recent"]  # no window


# --- the line a report set adds ------------------------------------------------------------------

def _daily_report(**run) -> dict:
    from test_html_render import _plain, _result

    results = [_result(control, "passed", "P3", nodeid=f"suites/x.py::test_{n}[www]", cadence=["daily"], reads=[])
               for n, control in enumerate(sorted(cadence_controls()["daily"]))]
    return _plain(results, {"started": "2026-12-04T06:00:00Z", "frameworks": [], "fail_on": "P4", "exit_code": 0,
                            "shard": {"index": 1, "count": 1}, **run})


@pytest.mark.parametrize("shard, covered", [({"index": 1, "count": 1}, True), ({"index": 1, "count": 2}, False)])
def test_the_line_records_what_the_run_covered_signed_with_the_runs_key(tmp_path, shard, covered):
    from edgeaudit.reporting.write import History, write_report_set

    key, path = _key(tmp_path)
    history = LocalHistory(tmp_path / "history.jsonl")
    write_report_set(_daily_report(shard=shard), tmp_path / "daily-20261204T060000Z",
                     history=History(history, GRACE, path))
    [line] = history.read()
    assert ("daily" in line["coverage"].get("www", [])) is covered and (line["targets"] == ["www"]) is covered
    assert ("daily" in line["cadences"]) is covered and "weekly" not in line["cadences"]  # a lone shard: none
    assert history_lines.verifies(line, key.public_key()) and line["seal"]["key_id"].startswith("sha256:")
    assert not history_lines.verifies({**line, "cadences": ["daily", "weekly"]}, key.public_key())
