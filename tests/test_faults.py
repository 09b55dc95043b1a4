"""Faults of the cloud, the network and the operator: each ends in a clear `error` (or an
incomplete report), and the run goes on or ends cleanly."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_plugin import Project, site  # noqa: F401  (the module's site fixture)

from conftest import run_suite
from edgeaudit.reporting.store import LocalHistory
from edgeaudit.rules import tomlwrite
from edgeaudit.rules.config import ConfigError, load, parse

AWS_CONTROLS = '''
@pytest.mark.control("EA-S3-05", severity="P2")
def test_versioning(aws, target, evidence):
    """Versioning."""
    evidence.record("status", aws.s3.get_bucket_versioning(Bucket=target.bucket).get("Status"))

@pytest.mark.control("EA-S3-08", severity="P3")
def test_ownership(aws, target):
    """Ownership."""
    aws.s3.get_bucket_ownership_controls(Bucket=target.bucket)

@pytest.mark.control("EA-CF-07", severity="P3")
def test_root_object(aws, target):
    """Root object."""
    aws.cloudfront.get_distribution_config(Id=target.distribution_id)
'''

# Answers the first THROTTLE_TIMES calls of GetBucketVersioning with 503 SlowDown, as S3 does
# under load: a botocore event handler, installed in the suite's process by its conftest.
THROTTLING_CONFTEST = '''
import os
import botocore.handlers
from botocore.awsrequest import AWSResponse

class _Body:
    def __init__(self, data):
        self.data = data
    def stream(self, **_):
        yield self.data

_left = [int(os.environ.get("THROTTLE_TIMES", "0"))]

def _throttle(request, **_):
    if _left[0] <= 0:
        return None
    _left[0] -= 1
    body = (b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
            b"<Message>Please reduce your request rate.</Message><RequestId>R</RequestId></Error>")
    return AWSResponse(request.url, 503, {"Content-Type": "application/xml"}, _Body(body))

botocore.handlers.BUILTIN_HANDLERS.append(("before-send.s3.GetBucketVersioning", _throttle))
'''


def test_throttling_is_retried_then_passes(tmp_path, world, site):
    project = Project(tmp_path, world, site)
    project.control("aws", AWS_CONTROLS)
    (tmp_path / "suites" / "conftest.py").write_text(THROTTLING_CONFTEST)
    project.config()
    run = project.run("-k", "versioning", env={"THROTTLE_TIMES": "2"})
    result = run.result("EA-S3-05", "site")
    assert result["outcome"] == "passed", result
    assert run.report["run"]["api_calls_by_operation"]["s3:GetBucketVersioning"] == 1  # retries are not calls


def test_throttling_beyond_the_retry_budget_is_an_error(tmp_path, world, site):
    project = Project(tmp_path, world, site)
    project.control("aws", AWS_CONTROLS)
    (tmp_path / "suites" / "conftest.py").write_text(THROTTLING_CONFTEST)
    project.config()
    run = project.run(env={"THROTTLE_TIMES": "1000", "EDGEAUDIT_AWS_MAX_ATTEMPTS": "3"})
    result = run.result("EA-S3-05", "site")
    assert result["outcome"] == "error"
    assert "SlowDown" in result["message"]
    assert run.result("EA-S3-08", "site")["outcome"] == "passed"  # the run went on


def test_missing_credentials_give_one_clear_cause(tmp_path, world, site):
    project = Project(tmp_path, world, site)
    project.control("aws", AWS_CONTROLS)
    project.config()
    run = project.run(env={"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None,
                           "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONTAINER_CREDENTIALS_FULL_URI": None})
    results = run.report["results"]
    assert {r["outcome"] for r in results} == {"error"}
    assert all("no usable AWS credentials" in r["message"] for r in results)
    assert sum("(not asked again)" in r["message"] for r in results) == 2
    assert "Traceback" not in run.output and "not evaluated: no usable AWS credentials" in run.output


def _silent_server() -> tuple[socket.socket, int]:
    """Accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    threading.Thread(target=lambda: [held.append(server.accept()[0]) for _ in range(16)], daemon=True).start()
    return server, server.getsockname()[1]


def test_aws_endpoint_that_never_answers_costs_one_timeout(tmp_path, world, site):
    server, port = _silent_server()
    project = Project(tmp_path, world, site)
    project.control("aws", AWS_CONTROLS)
    project.config()
    run = project.run(env={"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "EDGEAUDIT_AWS_TIMEOUT_S": "1,1",
                           "EDGEAUDIT_AWS_MAX_ATTEMPTS": "1"})
    server.close()
    versioning = run.result("EA-S3-05", "site")
    assert versioning["outcome"] == "error" and "AWS endpoint unreachable for s3" in versioning["message"]
    assert "(not asked again)" in run.result("EA-S3-08", "site")["message"]
    assert run.result("EA-CF-07", "site")["outcome"] == "error"  # another service, its own timeout


def test_aws_endpoint_that_refuses_connections(tmp_path, world, site):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    project = Project(tmp_path, world, site)
    project.control("aws", AWS_CONTROLS)
    project.config()
    run = project.run(env={"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "EDGEAUDIT_AWS_MAX_ATTEMPTS": "1"})
    assert {r["outcome"] for r in run.report["results"]} == {"error"}
    assert "Could not connect" in run.result("EA-S3-05", "site")["message"]


# --- the operator ---------------------------------------------------------------------------------

SLOW = '''
import os, pathlib, time

@pytest.mark.control("EA-OPS-02", severity="P3")
def test_first(target):
    """Quick."""

@pytest.mark.control("EA-OPS-03", severity="P3")
def test_second(target):
    """Slow: the operator stops the run here."""
    pathlib.Path(os.environ["STARTED_FILE"]).write_text("started")
    time.sleep(60)
'''


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_a_run_leaves_an_incomplete_report(tmp_path, world, site, signum):
    project = Project(tmp_path, world, site)
    project.control("slow", SLOW)
    project.config()
    started = tmp_path / "started"
    env = {**os.environ, **{k: v for k, v in world.aws_env.items() if v is not None}, "STARTED_FILE": str(started)}
    process = subprocess.Popen([sys.executable, "-m", "pytest", "--report-dir", str(tmp_path / "reports")],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not started.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signum)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 2, output  # pytest's "interrupted"
    report = json.loads(next((tmp_path / "reports").glob("all-*Z.json")).read_text())
    assert report["complete"] is False
    assert [r["control"] for r in report["results"]] == ["EA-OPS-02"]
    history = [json.loads(line) for line in (tmp_path / "reports" / "history.jsonl").read_text().splitlines()]
    assert len(history) == 1 and history[0]["complete"] is False
    assert next((tmp_path / "reports").glob("all-*.html")).read_text().count("NOT EVALUATED") >= 1


DRILL_STOPPED = """
import os, pathlib, signal, time
from edgeaudit.aws.scratch import Scratch

@pytest.mark.control("EA-OPS-02", severity="P3")
def test_first(target):
    \"\"\"Quick.\"\"\"

@pytest.mark.control("EA-DR-01", severity="P2")
def test_drill(aws, target):
    \"\"\"A drill with objects in scratch when the operator presses Ctrl-C.\"\"\"
    raw = aws.client("s3", target.region).raw
    if os.environ.get("SECOND_DURING_REMOVAL"):  # sent from botocore's event, before DeleteObjects goes out
        raw.meta.events.register("before-call.s3.DeleteObjects", lambda **_: os.kill(os.getpid(), signal.SIGINT))
    with Scratch(raw, target.scratch_bucket) as scratch:
        for n in range(int(os.environ.get("OBJECTS", "3"))):
            raw.put_object(Bucket=target.scratch_bucket, Key=scratch.key(f"part-{n}"), Body=b"x")
        pathlib.Path(os.environ["STARTED_FILE"]).write_text("started")
        if os.environ.get("SECOND_DURING_REMOVAL"):
            os.kill(os.getpid(), signal.SIGINT)
        time.sleep(60)
"""

# the third Ctrl-C, as the run winds down (before the report is written), and a record of any
# AWS request sent from then on
WINDING_DOWN = """
import os, pathlib, signal
import botocore.endpoint
import pytest

@pytest.hookimpl(hookwrapper=True)
def pytest_sessionfinish():
    send = botocore.endpoint.Endpoint._send

    def recorded(self, request):
        with open(os.environ["LATE_CALLS"], "a") as late:
            late.write(request.url + "\\n")
        return send(self, request)

    botocore.endpoint.Endpoint._send = recorded
    os.kill(os.getpid(), signal.SIGINT)
    yield
"""


def _scratch_keys(world, site) -> list[str]:
    s3 = world.builder.client("s3", "eu-west-1")
    return [o["Key"] for o in s3.list_objects_v2(Bucket=site.extra["scratch_bucket"], Prefix="_edgeaudit/").get(
        "Contents", [])]


def _assert_stopped_cleanly(tmp_path, world, site, returncode: int, output: str) -> None:
    assert returncode == 2, output  # pytest's "interrupted"
    assert "Traceback" not in output, output
    assert _scratch_keys(world, site) == []
    report = json.loads(next((tmp_path / "reports").glob("all-*Z.json")).read_text())
    assert report["complete"] is False
    assert [r["control"] for r in report["results"]] == ["EA-OPS-02"]
    assert report["run"]["aws_account"]  # asked when the run started
    history = [json.loads(line) for line in (tmp_path / "reports" / "history.jsonl").read_text().splitlines()]
    assert len(history) == 1 and history[0]["complete"] is False


def test_three_ctrl_c_still_clean_scratch_and_write_the_report(tmp_path, world, site):
    """One Ctrl-C stops the drill, a second lands while its objects are removed, a third as the
    run winds down; and no AWS request is made between the end of the run and the report."""
    project = Project(tmp_path, world, site)
    project.control("drill", DRILL_STOPPED)
    (tmp_path / "suites" / "conftest.py").write_text(WINDING_DOWN)
    project.config()
    late = tmp_path / "late-calls"
    run = project.run(env={"STARTED_FILE": str(tmp_path / "started"), "SECOND_DURING_REMOVAL": "1",
                           "LATE_CALLS": str(late)})
    _assert_stopped_cleanly(tmp_path, world, site, run.returncode, run.output)
    assert not late.exists(), late.read_text()


def test_ctrl_c_three_times_5_ms_apart(tmp_path, world, site):
    """The operator's keyboard: three SIGINTs from outside, 5 ms apart, with 200 objects in scratch."""
    project = Project(tmp_path, world, site)
    project.control("drill", DRILL_STOPPED)
    project.config()
    started = tmp_path / "started"
    env = {**os.environ, **{k: v for k, v in world.aws_env.items() if v is not None}, "STARTED_FILE": str(started),
           "OBJECTS": "200"}
    process = subprocess.Popen([sys.executable, "-m", "pytest", "--report-dir", str(tmp_path / "reports"),
                                "-p", "no:cacheprovider"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not started.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    for _ in range(3):
        process.send_signal(signal.SIGINT)
        time.sleep(0.005)
    output, _ = process.communicate(timeout=120)
    _assert_stopped_cleanly(tmp_path, world, site, process.returncode, output)


def _append_many(path: str, writer: int) -> None:
    for i in range(200):
        LocalHistory(Path(path)).append([{"started": "2026-11-27T09:00:00Z", "writer": writer, "i": i,
                                          "padding": "x" * 2000}])


def test_concurrent_runs_do_not_corrupt_history(tmp_path):
    path = tmp_path / "history.jsonl"
    workers = [multiprocessing.Process(target=_append_many, args=(str(path), n)) for n in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    lines = path.read_text().splitlines()
    assert len(lines) == 600
    assert all(json.loads(line)["padding"] == "x" * 2000 for line in lines)


# --- bad config -----------------------------------------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**12), st.floats(allow_nan=True),
                    st.text(max_size=30), st.dates())
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                      max_leaves=12)
KEYS = st.sampled_from(["targets", "thresholds", "waivers", "attestations", "report", "targets_file",
                        "attestations_file", "name", "url", "bucket", "distribution_id", "paths", "expires",
                        "control", "lcp_s", "bundle", "target", "ca_bundle", "region"])
documents = st.dictionaries(st.one_of(KEYS, st.text(max_size=10)),
                            st.one_of(values, st.lists(st.dictionaries(KEYS, values, max_size=6), max_size=3)),
                            max_size=5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_any_malformed_document_is_a_config_error(document):
    try:
        parse(Path("/nowhere/edgeaudit.toml"), document)
    except ConfigError as exc:
        assert exc.key and exc.fix
        assert str(exc).startswith("/nowhere/edgeaudit.toml: ")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_any_text_is_a_config_error_or_a_config(tmp_path, text):
    path = tmp_path / "edgeaudit.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load(path)
    except ConfigError as exc:
        assert exc.key


def test_malformed_config_exits_4_without_a_traceback(tmp_path):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "test_x.py").write_text("")
    for text in ('[[targets]]\nname = "a"\nurl = 5\n', "[[targets]\n", 'targets = "no"\n', "\x00\x01"):
        (tmp_path / "edgeaudit.toml").write_text(text)
        run = run_suite("suites", cwd=tmp_path, report_dir=tmp_path / "reports")
        assert run.returncode == 4, run.output
        assert "Traceback" not in run.output and "edgeaudit.toml" in run.output


TARGET = {"name": "www", "url": "https://www.example.com/", "bucket": "b", "distribution_id": "E1"}


@pytest.mark.parametrize("thresholds", [
    {"crawl_max_pages": math.nan}, {"http_concurrency": 1e300}, {"lcp_s": math.inf}, {"crawl_max_pages": 2.5},
    {"http_concurrency": 0}, {"vitals_runs": 10**9}, {"cache_hit_ratio_min": 1.5}, {"http_deadline_s": 0},
    {"ttfb_p95_ms": -math.inf},
], ids=str)
def test_absurd_thresholds_are_config_errors(thresholds):
    (name, value), = thresholds.items()
    with pytest.raises(ConfigError) as raised:
        parse(Path("/nowhere/edgeaudit.toml"), {"thresholds": thresholds, "targets": [TARGET]})
    assert raised.value.key == f"thresholds.{name}" and "from" in raised.value.fix


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["crawl_max_pages", "http_concurrency", "http_deadline_s", "lcp_s", "cls", "vitals_runs",
                        "error_rate_5xx_max", "dr_sample_objects", "cost_spike_factor"]),
       st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**30, 10**30), st.booleans()))
def test_a_threshold_is_finite_and_in_range_or_a_config_error(name, value):
    try:
        config = parse(Path("/nowhere/edgeaudit.toml"), {"thresholds": {name: value}, "targets": [TARGET]})
    except ConfigError as exc:
        assert exc.key.startswith("thresholds.") and "\n" not in str(exc)
        return
    effective = config.thresholds[name]
    assert not isinstance(effective, bool) and math.isfinite(effective)
    assert 0 <= effective <= 10**6
    if name in ("crawl_max_pages", "http_concurrency", "vitals_runs", "dr_sample_objects"):
        assert isinstance(effective, int) and effective >= 1


@pytest.mark.parametrize("field, value", [
    ("name", "www\n"), ("name", "www\nEA-S3-01 PASSED"), ("bucket", "b\nEA-S3-01 PASSED"),
    ("distribution_id", "E1\x1b[2J"), ("region", "eu-west-1\r"), ("url", "https://www.example.com/\n"),
    ("paths", ["/\nforged"]), ("scratch_bucket", "\tscratch"),
], ids=repr)
def test_a_target_value_with_a_newline_or_control_character_is_refused(field, value):
    with pytest.raises(ConfigError) as raised:
        parse(Path("/nowhere/edgeaudit.toml"), {"targets": [{**TARGET, field: value}]})
    assert raised.value.key.endswith(f".{field}")
    assert "\n" not in str(raised.value) and "\x1b" not in str(raised.value)  # one line, nothing to forge


def test_a_target_number_that_is_not_finite_is_refused():
    for value in (math.nan, math.inf):
        with pytest.raises(ConfigError, match="monthly_budget_usd"):
            parse(Path("/nowhere/edgeaudit.toml"), {"targets": [{**TARGET, "monthly_budget_usd": value}]})


def _project_with_config(tmp_path: Path, text: str) -> None:
    (tmp_path / "suites").mkdir(exist_ok=True)
    (tmp_path / "suites" / "test_x.py").write_text("")
    (tmp_path / "edgeaudit.toml").write_text(text)


def test_deeply_nested_config_exits_4_with_one_line(tmp_path):
    _project_with_config(tmp_path, "[thresholds]\nlcp_s = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load(tmp_path / "edgeaudit.toml")
    run = run_suite("suites", cwd=tmp_path, report_dir=tmp_path / "reports")
    assert run.returncode == 4, run.output
    assert "INTERNALERROR" not in run.output and "Traceback" not in run.output
    lines = [line for line in run.output.splitlines() if "edgeaudit.toml" in line]
    assert len(lines) == 1 and "nested too deeply" in lines[0] and "Fix:" in lines[0], run.output


@pytest.mark.parametrize("name, value", [
    ("EDGEAUDIT_HTTP_MAX_BYTES", "0"),  # read nothing, find nothing broken: a pass of EA-SITE-04
    ("EDGEAUDIT_HTTP_TIMEOUT_S", "soon"), ("EDGEAUDIT_AWS_TIMEOUT_S", "nan,5"), ("EDGEAUDIT_AWS_MAX_ATTEMPTS", "0"),
    ("EDGEAUDIT_TLS_TIMEOUT_S", "-1"), ("EDGEAUDIT_HTTP_DEADLINE_S", "inf"),
])
def test_a_bad_limit_in_the_environment_is_one_usage_error_at_start(tmp_path, name, value):
    _project_with_config(tmp_path, tomlwrite.dumps({"targets": [TARGET]}))
    run = run_suite("suites", cwd=tmp_path, env={name: value}, report_dir=tmp_path / "reports")
    assert run.returncode == 4, run.output
    lines = [line for line in run.output.splitlines() if name in line]
    assert len(lines) == 1 and "Fix:" in lines[0] and "unset it" in lines[0], run.output
    assert "Traceback" not in run.output and not (tmp_path / "reports").exists()


def test_a_usage_error_in_collection_writes_no_report_and_no_history(tmp_path):
    """A control with an id the catalog refuses: exit code 4 and the terminal line, nothing else
    (no report set marked incomplete, no history line, nothing to archive)."""
    _project_with_config(tmp_path, tomlwrite.dumps({"targets": [TARGET]}))
    mine = "@pytest.mark.control('EA-USR-01', severity='P3')\ndef test_{0}(target, evidence):\n    \"\"\"Mine.\"\"\"\n\n"
    (tmp_path / "suites" / "test_x.py").write_text("import pytest\n\n" + mine.format("one") + mine.format("two"))
    run = run_suite("suites", cwd=tmp_path, report_dir=tmp_path / "reports",
                    env={"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "example"})
    assert run.returncode == 4 and "duplicate control id EA-USR-01" in run.output, run.output
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir()), \
        sorted(p.name for p in (tmp_path / "reports").iterdir())
