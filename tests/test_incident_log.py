"""The incident log ([incidents] log) both ways for EA-INC-01/02, each run the suite as a user runs
it, over a local file and over an object in the world's moto; and `edgeaudit incident`, which
appends to it: its lines, its refusals, and its conditional writes to S3 that lose no append."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from conftest import assert_finding, assert_passes, empty_bucket, run_suite
from edgeaudit import cli
from edgeaudit.aws import guard
from edgeaudit.aws.clients import Aws, AwsRegistry
from edgeaudit.checks import incident_log
from edgeaudit.errors import AccessDeniedError, NotEvaluated
from edgeaudit.rules import tomlwrite
from edgeaudit.rules.config import ConfigError, Target, parse

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
BUCKET = "edgeaudit-ops-records"
TARGETS = [{"name": "www", "url": "https://www.example.test/", "bucket": "www-origin", "distribution_id": "E1WWW"},
           {"name": "docs", "url": "https://docs.example.test/", "bucket": "docs-origin", "distribution_id": "E1DOCS"}]


def ago(**delta: float) -> str:
    return (NOW - dt.timedelta(**delta)).isoformat().replace("+00:00", "Z")


def after(start: str, **delta: float) -> str:
    return (dt.datetime.fromisoformat(start) + dt.timedelta(**delta)).isoformat().replace("+00:00", "Z")


def opened(id: str, level: str | None, detected: str, **extra: Any) -> dict[str, Any]:
    return {"id": id, **({"level": level} if level else {}), "detected": detected, "reported_by": "monitoring",
            **extra}


def handled(id: str, level: str, detected: str, ack_min: float, resolved_h: float | None = None,
            postmortem_days: float | None = None) -> list[dict[str, Any]]:
    """The lines of an incident opened, acknowledged after ack_min, resolved and given its post-mortem."""
    lines = [opened(id, level, detected, title=f"incident {id}"),
             {"id": id, "acknowledged": after(detected, minutes=ack_min), "acknowledged_by": "on-call"}]
    if resolved_h is not None:
        resolved = after(detected, hours=resolved_h)
        lines.append({"id": id, "resolved": resolved})
        if postmortem_days is not None:
            lines.append({"id": id, "postmortem": f"https://wiki.example.test/pm/{id}",
                          "postmortem_at": after(resolved, days=postmortem_days)})
    return lines


def jsonl(lines: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(line) + "\n" for line in lines)


def incidents_run(world, tmp_path: Path, incidents: dict[str, Any], log: str | None = None):
    """Run the incident controls with `[incidents]` as given (and `log` as the local file's text)."""
    config = tmp_path / "edgeaudit.toml"
    if log is not None:
        (tmp_path / "incidents.jsonl").write_text(log, encoding="utf-8")
    config.write_text(tomlwrite.dumps({"targets": TARGETS, "incidents": incidents}))
    return run_suite("suites/test_records.py", "-k", "incidents", "--edgeaudit-config", str(config),
                     env=world.aws_env, report_dir=tmp_path / "reports")


COMPLIANT = [*handled("INC-1", "P1", ago(days=12), ack_min=3, resolved_h=2, postmortem_days=2),
             *handled("INC-2", "P2", ago(days=6), ack_min=10, resolved_h=5, postmortem_days=4.5),
             *handled("INC-3", "P4", ago(days=3), ack_min=200, resolved_h=30),
             *handled("INC-OLD", "P1", ago(days=80), ack_min=50, resolved_h=1)]  # before the period: not judged


def test_a_compliant_log_passes_both_controls(world, tmp_path):
    run = incidents_run(world, tmp_path, {"log": "incidents.jsonl"}, jsonl(COMPLIANT))
    for target in ("www", "docs"):
        inc1, inc2 = run.result("EA-INC-01", target), run.result("EA-INC-02", target)
        assert_passes(inc1, "P2")
        assert_passes(inc2, "P3")
        assert [(i["incident"], i["level"], i["minutes"]) for i in inc1["evidence"]["incidents"]] == [
            ("INC-1", "P1", 3.0), ("INC-2", "P2", 10.0), ("INC-3", "P4", 200.0)]
        assert inc1["evidence"]["incidents"][0]["by"] == "on-call"
        assert [i["incident"] for i in inc2["evidence"]["closed_incidents"]] == ["INC-1", "INC-2"]
        assert inc1["evidence"]["incident_log"] == str(tmp_path / "incidents.jsonl")


def test_an_incident_of_a_target_the_config_lacks_is_not_evaluated_on_every_target(world, tmp_path):
    """A misspelt target would hide the incident from every target: the log is not judged."""
    lines = [*COMPLIANT, *[{**line, "target": "wwww"} for line in handled("INC-5", "P1", ago(days=2), ack_min=90)]]
    run = incidents_run(world, tmp_path, {"log": "incidents.jsonl"}, jsonl(lines))
    for control in ("EA-INC-01", "EA-INC-02"):
        for target in ("www", "docs"):
            result = run.result(control, target)
            assert result["outcome"] == "error", result
            assert "incident INC-5" in result["message"] and "'wwww'" in result["message"]
            assert "--target NAME" in result["message"]


def test_late_unlevelled_and_pending_incidents_and_a_missing_postmortem_fail(world, tmp_path):
    lines = [*handled("INC-7", "P2", ago(days=4), ack_min=40),                       # late: 40 > 15 min
             opened("INC-8", None, ago(days=3)),                                       # no level
             opened("INC-9", "P4", ago(minutes=30)),                                   # not yet late: pending
             *handled("INC-10", "P1", ago(days=10), ack_min=2, resolved_h=1),         # no post-mortem in 5 days
             *handled("INC-11", "P2", ago(days=15), ack_min=2, resolved_h=1, postmortem_days=8),  # linked late
             *handled("INC-12", "P1", ago(days=1), ack_min=2, resolved_h=1),          # still within 5 days
             *handled("INC-13", "P1", ago(days=2), ack_min=30, resolved_h=1, postmortem_days=1)]
    lines[-4:] = [{**line, "target": "docs"} if line.get("detected") else line for line in lines[-4:]]  # docs only
    run = incidents_run(world, tmp_path, {"log": "incidents.jsonl"}, jsonl(lines))
    www = run.result("EA-INC-01", "www")
    assert www["outcome"] == "failed"
    assert_finding(www, "P2")
    assert "INC-7 (P2) acknowledged after 40 min, over 15 min" in www["message"]
    assert www["evidence"]["offenders"] == ["INC-7 (P2) acknowledged after 40 min, over 15 min",
                                            "INC-8 has no level (P1..P4)"]
    late = next(i for i in www["evidence"]["incidents"] if i["incident"] == "INC-7")
    assert (late["level"], late["minutes"], late["by"]) == ("P2", 40.0, "on-call")
    assert late["detected"].startswith(ago(days=4)[:16]) and late["acknowledged"]
    pending = next(i for i in www["evidence"]["incidents"] if i["incident"] == "INC-9")  # judged, not a finding
    assert pending["acknowledged"] is None and 29 <= pending["minutes"] < 60
    # INC-13 names the docs target only: late there, not on www
    docs = run.result("EA-INC-01", "docs")
    assert "INC-13 (P1) acknowledged after 30 min, over 5 min" in docs["message"]
    assert "INC-13" not in www["message"]

    pm = run.result("EA-INC-02", "www")
    assert pm["outcome"] == "failed"
    assert_finding(pm, "P3")
    assert pm["evidence"]["offenders"] == ["INC-10 (P1)", "INC-11 (P2) linked 8.0 days after resolution"]
    assert "no post-mortem linked within 5 days" in pm["message"]
    assert [i["incident"] for i in pm["evidence"]["closed_incidents"]] == ["INC-10", "INC-11", "INC-12"]
    assert run.result("EA-INC-02", "docs")["evidence"]["offenders"] == ["INC-10 (P1)",
                                                                        "INC-11 (P2) linked 8.0 days after resolution"]
    # INC-12 resolved a day ago: still within postmortem_max_days, judged but not a finding
    assert "INC-12" in [i["incident"] for i in run.result("EA-INC-02", "docs")["evidence"]["closed_incidents"]]


@pytest.mark.parametrize("line, problem", [
    ("{not json", "not JSON"),
    ('{"id": "INC-2", "level": "P2", "detected": "2026-12-01T10:00:00Z", "severity": "high"}', "unknown field 'severity'"),
    ('{"id": "INC-2", "level": "P2", "detected": "2026-12-01T10:00:00"}', "detected: \"2026-12-01T10:00:00\" is not a time with a UTC offset"),
    ('{"id": "INC-2", "level": "P5", "detected": "2026-12-01T10:00:00Z"}', "level \"P5\" is not one of P1, P2, P3, P4"),
    ('{"id": "INC-2", "acknowledged": "2026-12-01T10:00:00Z"}', "the first line of incident 'INC-2' gives no detected"),
])
def test_a_malformed_line_leaves_both_controls_not_evaluated_naming_the_line(line, problem, tmp_path):
    """Parsing alone (the run below proves the controls say it): fail closed, naming file:line."""
    with pytest.raises(NotEvaluated) as raised:
        incident_log.parse("incidents.jsonl", jsonl(COMPLIANT[:2]) + "\n" + line + "\n")
    assert f"incident log incidents.jsonl:4: {problem}" in str(raised.value)
    assert "Fix:" in str(raised.value)


def test_a_malformed_log_is_not_evaluated_in_the_run(world, tmp_path):
    run = incidents_run(world, tmp_path, {"log": "incidents.jsonl"},
                        jsonl(COMPLIANT[:2]) + '{"id": "INC-2", "level": "P2", "detected": "yesterday"}\n')
    where = f"incident log {tmp_path / 'incidents.jsonl'}:3: detected"
    for control in ("EA-INC-01", "EA-INC-02"):
        result = run.result(control, "www")
        assert result["outcome"] == "error" and where in result["message"] and "Fix:" in result["message"]


def test_a_declared_absent_log_skips_with_its_reason_and_a_missing_file_is_not_evaluated(world, tmp_path):
    run = incidents_run(world, tmp_path, {"absent": "incidents live in the vendor's pager, audited there"})
    for control in ("EA-INC-01", "EA-INC-02"):
        result = run.result(control, "www")
        assert result["outcome"] == "skipped" and "incidents live in the vendor's pager" in result["message"]
    other = tmp_path / "missing"
    other.mkdir()
    result = incidents_run(world, other, {"log": "no-such.jsonl"}).result("EA-INC-01", "www")
    assert result["outcome"] == "error" and "no-such.jsonl" in result["message"]
    assert "edgeaudit incident" in result["message"]


def test_a_log_over_the_bound_is_not_read(tmp_path):
    log = tmp_path / "incidents.jsonl"
    with log.open("w") as handle:
        handle.truncate(incident_log.MAX_LOG_BYTES + 1)
    with pytest.raises(NotEvaluated, match="over the 20 MB this read allows"):
        incident_log.load(None, str(log))


@pytest.mark.parametrize("incidents, key, problem", [
    ({"log": "incidents.jsonl", "absent": "none"}, "incidents.absent", "set together with log"),
    ({}, "incidents", "empty"),
    ({"lg": "incidents.jsonl"}, "incidents.lg", "unknown key"),
    ({"log": "s3://Ops_Records/incidents.jsonl"}, "incidents.log", "wrong type or value"),
    ({"log": "s3://ops-records/"}, "incidents.log", "wrong type or value"),
    ({"log": "https://ops.example.test/incidents.jsonl"}, "incidents.log", "wrong type or value"),
    ({"log": 7}, "incidents.log", "wrong type or value"),
])
def test_a_bad_incidents_table_is_a_config_error_naming_the_key(tmp_path, incidents, key, problem):
    with pytest.raises(ConfigError) as raised:
        parse(tmp_path / "edgeaudit.toml", {"targets": TARGETS, "incidents": incidents})
    assert (raised.value.key, problem in raised.value.problem) == (key, True)
    assert str(tmp_path / "edgeaudit.toml") in str(raised.value) and raised.value.fix


def test_a_local_log_is_relative_to_the_config_and_an_s3_log_is_kept_as_written(tmp_path):
    local = parse(tmp_path / "edgeaudit.toml", {"targets": TARGETS, "incidents": {"log": "ops/incidents.jsonl"}})
    assert local.incidents.log == str(tmp_path / "ops" / "incidents.jsonl")
    remote = parse(tmp_path / "edgeaudit.toml", {"targets": TARGETS, "incidents": {"log": f"s3://{BUCKET}/ops/i.jsonl"}})
    assert remote.incidents.log == f"s3://{BUCKET}/ops/i.jsonl"
    assert remote.effective()["incidents"] == {"log": f"s3://{BUCKET}/ops/i.jsonl", "absent": None}


# --- the log in S3 -----------------------------------------------------------------------------------

@pytest.fixture
def s3(world, world_aws_env):
    """The world's moto with an empty bucket for the log (not mock_aws: it would reset the world)."""
    return empty_bucket(BUCKET)


def test_the_log_is_read_from_s3_in_the_run(world, s3, tmp_path):
    lines = [*COMPLIANT, *handled("INC-20", "P3", ago(days=2), ack_min=75)]
    s3.put_object(Bucket=BUCKET, Key="ops/incidents.jsonl", Body=jsonl(lines).encode())
    run = incidents_run(world, tmp_path, {"log": f"s3://{BUCKET}/ops/incidents.jsonl"})
    inc1 = run.result("EA-INC-01", "www")
    assert inc1["outcome"] == "failed" and "INC-20 (P3) acknowledged after 75 min, over 60 min" in inc1["message"]
    assert inc1["evidence"]["incident_log"] == f"s3://{BUCKET}/ops/incidents.jsonl"
    assert_passes(run.result("EA-INC-02", "www"), "P3")


def test_an_s3_log_the_credentials_may_not_read_is_not_evaluated_naming_s3_getobject(world, s3, monkeypatch):
    """An IAM user with no policy while moto enforces IAM: AccessDenied names the action to grant."""
    from moto import settings
    from moto.core.responses import ActionAuthenticatorMixin

    s3.put_object(Bucket=BUCKET, Key="ops/incidents.jsonl", Body=jsonl(COMPLIANT).encode())
    iam = world.builder.client("iam")
    with guard.local_seeding():
        iam.create_user(UserName=(name := f"incident-reader-{uuid.uuid4().hex[:8]}"))
        key = iam.create_access_key(UserName=name)["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    before = settings.INITIAL_NO_AUTH_ACTION_COUNT
    settings.INITIAL_NO_AUTH_ACTION_COUNT = ActionAuthenticatorMixin.request_count  # enforce from now on
    try:
        with pytest.raises(AccessDeniedError) as denied:
            incident_log.load(Aws(AwsRegistry(), Target(**TARGETS[0])), f"s3://{BUCKET}/ops/incidents.jsonl")
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = before
    assert "the credentials lack s3:GetObject on " + BUCKET in str(denied.value)


def test_an_s3_log_that_is_not_there_is_not_evaluated(s3):
    target = Target(**TARGETS[0])
    with pytest.raises(NotEvaluated, match=r"NoSuchKey from GetObject\. Fix: create the object"):
        incident_log.load(Aws(AwsRegistry(), target), f"s3://{BUCKET}/ops/none.jsonl")


# --- edgeaudit incident ------------------------------------------------------------------------------

def _config(tmp_path: Path, log: str | None = "incidents.jsonl", absent: str | None = None) -> Path:
    document: dict[str, Any] = {"targets": TARGETS}
    if log or absent:
        document["incidents"] = {"log": log} if log else {"absent": absent}
    path = tmp_path / "edgeaudit.toml"
    path.write_text(tomlwrite.dumps(document))
    return path


def incident(config: Path, *args: str) -> int:
    return cli.main(["incident", *args, "--config", str(config)])


def test_the_command_opens_acknowledges_resolves_and_links_a_postmortem(tmp_path, capsys):
    config = _config(tmp_path)
    assert incident(config, "INC-1", "--level", "P2", "--detected", "2026-12-01T10:00:00+01:00", "--title",
                    "5xx on /checkout", "--by", "alice", "--target", "www") == 0
    assert incident(config, "INC-1", "--acknowledged", "2026-12-01T09:12:00Z", "--by", "bob") == 0
    assert incident(config, "INC-1", "--resolved") == 0
    assert incident(config, "INC-1", "--postmortem", "https://wiki.example.test/pm/inc-1") == 0
    assert "incident INC-1: post-mortem linked in" in capsys.readouterr().out
    text = (tmp_path / "incidents.jsonl").read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert text.endswith("\n") and len(lines) == 4
    assert lines[0] == {"id": "INC-1", "level": "P2", "detected": "2026-12-01T09:00:00Z", "title": "5xx on /checkout",
                        "target": "www", "reported_by": "alice", "recorded_at": lines[0]["recorded_at"]}
    assert lines[1] == {"id": "INC-1", "acknowledged": "2026-12-01T09:12:00Z", "acknowledged_by": "bob",
                        "recorded_at": lines[1]["recorded_at"]}
    assert set(lines[2]) == {"id", "resolved", "recorded_at"} and set(lines[3]) == {"id", "postmortem", "postmortem_at",
                                                                                   "recorded_at"}
    [merged] = incident_log.parse("x", text)
    assert (merged.level, merged.acknowledged_by, merged.target) == ("P2", "bob", "www")
    assert merged.acknowledged - merged.detected == dt.timedelta(minutes=12)
    assert merged.resolved and merged.postmortem == "https://wiki.example.test/pm/inc-1" and merged.postmortem_at


@pytest.mark.parametrize("args, says", [
    (["INC-9", "--detected", "2026-12-01T10:00:00Z"], "no incident 'INC-9'"),                   # no level
    (["INC-9", "--level", "P2"], "missing: --detected"),                                          # no detected
    (["INC-1", "--level", "P7"], "--level: 'P7' is not a level"),
    (["INC-9", "--level", "P2", "--detected", "2026-12-01T10:00:00"],
     '--detected: "2026-12-01T10:00:00" is not a time with a UTC offset'),
    (["INC-1", "--acknowledged", "2026-12-01T10:05:00", "--by", "bob"], "is not a time with a UTC offset"),
    (["INC-1", "--postmortem", "wiki/pm-1"], "--postmortem: postmortem \"wiki/pm-1\" is not an http(s) URL"),
    (["INC-1", "--postmortem", "javascript:alert(1)"], "is not an http(s) URL"),
    (["INC-404", "--resolved"], "no incident 'INC-404'"),                                        # unknown id
    (["INC-1", "--acknowledged"], "say who acknowledged it with --by NAME"),
    (["INC-1", "--acknowledged", "2026-12-01T09:00:00Z", "--by", "bob"],
     "acknowledged 2026-12-01T09:00:00+00:00 is before detected"),
    (["INC-1", "--target", "shop"], "--target: no target named 'shop'"),
    (["INC-1"], "nothing to record"),
])
def test_the_command_refuses_a_line_that_would_break_the_log(tmp_path, capsys, args, says):
    config = _config(tmp_path)
    assert incident(config, "INC-1", "--level", "P2", "--detected", "2026-12-01T10:00:00Z", "--by", "alice") == 0
    before = (tmp_path / "incidents.jsonl").read_text()
    capsys.readouterr()
    assert incident(config, *args) == 4
    err = capsys.readouterr().err
    assert err.startswith("edgeaudit incident: ") and says in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "incidents.jsonl").read_text() == before


def test_the_command_refuses_without_a_log_in_the_config(tmp_path, capsys):
    assert incident(_config(tmp_path, log=None), "INC-1", "--resolved") == 4
    assert 'add [incidents] with log = "incidents.jsonl"' in capsys.readouterr().err
    assert incident(_config(tmp_path, log=None, absent="none kept"), "INC-1", "--resolved") == 4
    assert "declares absent = 'none kept'" in capsys.readouterr().err
    bad = tmp_path / "edgeaudit.toml"
    bad.write_text(bad.read_text().replace("absent", "absnet"))
    assert incident(bad, "INC-1", "--resolved") == 4
    err = capsys.readouterr().err
    assert "incidents.absnet: unknown key" in err and str(bad) in err and "Fix:" in err


def test_the_command_refuses_to_append_to_a_malformed_log(tmp_path, capsys):
    config = _config(tmp_path)
    (tmp_path / "incidents.jsonl").write_text('{"id": "INC-1", "detected": "yesterday"}\n')
    assert incident(config, "INC-1", "--resolved") == 4
    assert "incidents.jsonl:1: detected" in capsys.readouterr().err


def test_nothing_inside_a_run_appends(tmp_path, capsys):
    """The guard in force (a run, a merge, a snapshot): the command refuses before it writes."""
    config = _config(tmp_path)
    guard.install()
    try:
        assert incident(config, "INC-1", "--level", "P1", "--detected", "2026-12-01T10:00:00Z") == 4
    finally:
        guard.uninstall()
    assert "outside a run" in capsys.readouterr().err and not (tmp_path / "incidents.jsonl").exists()


def test_the_command_appends_to_an_s3_log_with_conditional_writes(s3, tmp_path, capsys):
    location = f"s3://{BUCKET}/ops/incidents.jsonl"
    config = _config(tmp_path, log=location)
    assert incident(config, "INC-1", "--level", "P1", "--detected", ago(hours=1), "--by", "alice") == 0  # creates it
    assert incident(config, "INC-1", "--acknowledged", "--by", "bob") == 0
    body = s3.get_object(Bucket=BUCKET, Key="ops/incidents.jsonl")["Body"].read().decode()
    [merged] = incident_log.parse(location, body)
    assert merged.acknowledged_by == "bob" and len(body.splitlines()) == 2


class Racing:
    """An S3 client whose first put is preceded by another writer's append: the put's condition
    no longer holds, and the append must read again rather than write over the other line."""

    def __init__(self, client: Any, other: dict[str, Any]) -> None:
        self.client, self.other, self.puts = client, other, []

    def get_object(self, **kwargs: Any) -> Any:
        return self.client.get_object(**kwargs)

    def put_object(self, **kwargs: Any) -> Any:
        self.puts.append({k: v for k, v in kwargs.items() if k in ("IfMatch", "IfNoneMatch")})
        if len(self.puts) == 1:
            incident_log.append_s3(self.client, f"s3://{kwargs['Bucket']}/{kwargs['Key']}", self.other)
        return self.client.put_object(**kwargs)


@pytest.mark.parametrize("exists", [False, True])
def test_a_concurrent_s3_append_is_never_lost(s3, exists):
    location = f"s3://{BUCKET}/ops/race.jsonl"
    if exists:
        s3.put_object(Bucket=BUCKET, Key="ops/race.jsonl", Body=jsonl([opened("INC-0", "P3", ago(hours=3))]).encode())
    other = {"id": "INC-B", "level": "P2", "detected": NOW - dt.timedelta(minutes=5)}
    racing = Racing(s3, other)
    incident_log.append_s3(racing, location, {"id": "INC-A", "level": "P1", "detected": NOW - dt.timedelta(minutes=9)})
    assert racing.puts[0] == ({"IfMatch": racing.puts[0].get("IfMatch")} if exists else {"IfNoneMatch": "*"})
    assert len(racing.puts) == 2 and "IfMatch" in racing.puts[1]  # the second try names the other writer's object
    body = s3.get_object(Bucket=BUCKET, Key="ops/race.jsonl")["Body"].read().decode()
    assert [i.id for i in incident_log.parse(location, body)] == [*(["INC-0"] if exists else []), "INC-B", "INC-A"]
