"""Unit tests of the plugin's parts: config validation, redaction, the guard, the read cache,
results and report naming."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import boto3
import pytest

from edgeaudit.aws import guard
from edgeaudit.aws.clients import AwsRegistry, iam_action
from edgeaudit.demo.builder import SiteSpec
from edgeaudit.evidence import Evidence
from edgeaudit.redact import REDACTED, redact, redact_headers, redact_text
from edgeaudit.reporting.ledger import covered_cadences
from edgeaudit.reporting.report import report_stem, selection_name
from edgeaudit.reporting.results import failure_message, gates, waiver_for
from edgeaudit.rules import limits, tomlwrite
from edgeaudit.rules.config import ConfigError, Target, Waiver, load
from edgeaudit.rules.thresholds import SPECS, Count
from edgeaudit.run.options import env_flag

TARGET = {"name": "www", "url": "https://www.example.com/", "bucket": "b", "distribution_id": "E1"}


def write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "edgeaudit.toml"
    path.write_text(tomlwrite.dumps(document))
    return path


# --- config -------------------------------------------------------------------------------------

def test_config_defaults_and_overrides(tmp_path):
    config = load(write(tmp_path, {"thresholds": {"lcp_s": 2.0}, "targets": [TARGET]}))
    target = config.targets[0]
    assert target.http_url == "http://www.example.com/"
    assert target.paths == ("/",) and target.region is None
    assert config.thresholds.lcp_s == 2.0 and config.thresholds.cert_warn_days == 30


def test_ca_bundle_is_relative_to_the_config_file(tmp_path):
    (tmp_path / "corp-ca.pem").write_text("pem")
    config = load(write(tmp_path, {"targets": [{**TARGET, "ca_bundle": "corp-ca.pem"}]}))
    assert config.targets[0].ca_bundle == str(tmp_path / "corp-ca.pem")


@pytest.mark.parametrize("document, key, fix", [
    ({"targets": [TARGET], "target": "www"}, "target", 'did you mean "targets"'),
    ({}, "targets", "add at least one [[targets]]"),
    ({"targets": [{**TARGET, "url": "www.example.com"}]}, 'targets[0] ("www").url', "absolute http(s) URL"),
    ({"targets": [{**TARGET, "paths": ["about"]}]}, 'targets[0] ("www").paths', 'start with "/"'),
    ({"targets": [{**TARGET, "name": "w w"}]}, 'targets[0] ("w w").name', "letters, digits"),
    ({"targets": [{k: v for k, v in TARGET.items() if k != "bucket"}]}, 'targets[0] ("www").bucket', "add bucket"),
    ({"targets": [TARGET], "thresholds": {"lcp_s": "fast"}}, "thresholds.lcp_s", "number"),
    ({"targets": [TARGET], "waivers": [{"control": "EA-S3-05", "reason": "r", "approved_by": "a",
                                        "expires": "soon"}]}, "waivers[0].expires", "a date"),
    ({"targets": [TARGET], "waivers": [{"control": "EA-S3-05", "reason": "r", "approved_by": "a",
                                        "expires": dt.date(2030, 1, 1), "target": "api"}]},
     "waivers[0].target", "use one of: www"),
    ({"targets": [TARGET], "attestations": [{"control": "EA-MAN-01", "status": "done", "attested_by": "a",
                                             "date": dt.date(2026, 1, 1), "evidence_url": "https://wiki/x",
                                             "expires": dt.date(2027, 1, 1)}]},
     "attestations[0].status", '"passed" or "failed"'),
])
def test_config_errors_name_the_key_and_the_fix(tmp_path, document, key, fix):
    with pytest.raises(ConfigError) as raised:
        load(write(tmp_path, document))
    assert raised.value.key == key
    assert fix in raised.value.fix
    assert str(tmp_path / "edgeaudit.toml") in str(raised.value)


WAIVER = {"control": "EA-S3-05", "reason": "r", "approved_by": "a", "expires": dt.date(2030, 1, 1)}


@pytest.mark.parametrize(("document", "key"), [
    ({"targets": [{**TARGET, "allowed_writers": ["arn:aws:iam::1:role/ci\x1b[2K"]}]},
     'targets[0] ("www").allowed_writers'),
    ({"targets": [{**TARGET, "allowed_writers": ["arn:aws:iam::1:role/ci\narn:forged"]}]},
     'targets[0] ("www").allowed_writers'),
    ({"targets": [{**TARGET, "url": "https://www.example.com/\u202egnp.exe"}]}, 'targets[0] ("www").url'),
    ({"targets": [{**TARGET, "stack_name": "site\u2028forged line"}]}, 'targets[0] ("www").stack_name'),
    ({"targets": [TARGET], "waivers": [{**WAIVER, "reason": "accepted\r\nEA-S3-06 passed"}]}, "waivers[0].reason"),
    ({"targets": [TARGET], "waivers": [{**WAIVER, "approved_by": "ciso\x07\u202e"}]}, "waivers[0].approved_by"),
])
def test_control_characters_in_text_the_reports_show_are_refused(tmp_path, document, key):
    with pytest.raises(ConfigError) as raised:
        load(write(tmp_path, document))
    assert raised.value.key == key and "control characters" in raised.value.fix
    assert str(tmp_path / "edgeaudit.toml") in str(raised.value)


def test_toml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "edgeaudit.toml"
    path.write_text("[[targets]]\nname = \nurl = 'https://x/'\n")
    with pytest.raises(ConfigError, match="line 2"):
        load(path)


def test_toml_writer_round_trips():
    document = {"thresholds": {"lcp_s": 2.5, "vitals_runs": 3},
                "targets": [{**TARGET, "paths": ["/", "/a \"b\"/"], "monthly_budget_usd": 40.0}],
                "waivers": [{"control": "EA-HDR-02", "reason": "widget", "approved_by": "J. Doe",
                             "expires": dt.date(2027, 2, 1)}]}
    assert tomllib.loads(tomlwrite.dumps(document)) == document


def test_every_threshold_has_a_type_and_a_range_that_holds_its_default():
    for name, spec in SPECS.items():
        assert spec.low <= spec.default <= spec.high, name
        assert spec.check(spec.default) == spec.default, name
        if isinstance(spec, Count):
            assert isinstance(spec.default, int) and not isinstance(spec.default, bool), name


def test_network_limits_come_from_the_environment_within_their_range(monkeypatch):
    for name in limits.LIMITS:
        monkeypatch.delenv(name, raising=False)
    assert limits.http_timeout() == (5.0, 20.0) and limits.aws_timeout() == (5.0, 20.0)
    assert limits.http_deadline() == 60 and limits.http_max_bytes() == 10 * 2**20
    assert limits.aws_max_attempts() == 6 and limits.tls_timeout() == 10
    assert limits.http_deadline(15) == 15  # the config's http_deadline_s
    monkeypatch.setenv("EDGEAUDIT_HTTP_DEADLINE_S", "5")
    assert limits.http_deadline(15) == 5  # the environment wins, as it does for every option
    monkeypatch.setenv("EDGEAUDIT_AWS_TIMEOUT_S", "3")
    assert limits.aws_timeout() == (3.0, 3.0)  # one number is both
    limits.check_environment()
    monkeypatch.setenv("EDGEAUDIT_HTTP_MAX_BYTES", "0")
    with pytest.raises(ConfigError, match="EDGEAUDIT_HTTP_MAX_BYTES='0'.*Fix: set EDGEAUDIT_HTTP_MAX_BYTES to a whole"):
        limits.check_environment()


# --- redaction ----------------------------------------------------------------------------------

def test_redaction_of_known_secret_shapes(monkeypatch):
    monkeypatch.setenv("MY_API_TOKEN", "s3cr3t-value-123")
    text = ("key AKIAABCDEFGHIJKLMNOP token s3cr3t-value-123 "
            "url https://u:p@x.example/a?api_key=zzz&page=2 auth Bearer abcdefghijklmnop")
    redacted = redact_text(text)
    for secret in ("AKIAABCDEFGHIJKLMNOP", "s3cr3t-value-123", "u:p@", "zzz", "abcdefghijklmnop"):
        assert secret not in redacted
    assert "page=2" in redacted


def test_headers_keep_cookie_attributes_but_not_values():
    headers = redact_headers({"Authorization": "Basic dXNlcjpwYXNz", "Set-Cookie": "sid=abc123; Secure; HttpOnly",
                              "Content-Type": "text/html"})
    assert headers["Authorization"] == REDACTED
    assert headers["Set-Cookie"] == f"sid={REDACTED}; Secure; HttpOnly"
    assert headers["Content-Type"] == "text/html"
    assert redact({"cookie": "a=b", "nested": ["AKIAABCDEFGHIJKLMNOP"]}) == {"cookie": REDACTED, "nested": [REDACTED]}


# --- the guard ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def unit_site(world):
    return world.add(SiteSpec(name="unit"))


def unit_target(site) -> Target:
    """The config's Target for a built site, as the config loader makes it."""
    return Target(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in site.target_entry().items()})


@pytest.fixture
def guarded_s3(world, unit_site):
    site = unit_site
    guard.install()
    try:
        client = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing").client(
            "s3", region_name="us-east-1", endpoint_url=world.endpoint_url)
        yield client, site.bucket
    finally:
        guard.uninstall()


def test_guard_allows_reads_and_refuses_writes(guarded_s3):
    s3, bucket = guarded_s3
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    with pytest.raises(guard.ReadOnlyViolation, match="refused s3:PutObject on " + bucket):
        s3.put_object(Bucket=bucket, Key="x", Body=b"x")
    assert guard.violations[-1].startswith("refused s3:PutObject")


def test_scratch_grant_covers_only_its_prefix(guarded_s3):
    s3, bucket = guarded_s3
    guard.allow_scratch_in([bucket])
    prefix = guard.scratch_prefix()
    with guard.scratch(bucket, prefix):
        s3.put_object(Bucket=bucket, Key=f"{prefix}probe", Body=b"x")
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"{prefix}probe"}]})
        with pytest.raises(guard.ReadOnlyViolation):
            s3.put_object(Bucket=bucket, Key="index.html", Body=b"defaced")
        with pytest.raises(guard.ReadOnlyViolation):
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    with pytest.raises(guard.ReadOnlyViolation):
        s3.put_object(Bucket=bucket, Key=f"{prefix}late", Body=b"x")


def test_local_seeding_only_reaches_loopback():
    assert guard._is_loopback("http://127.0.0.1:5000/x") and guard._is_loopback("http://localhost/")
    assert not guard._is_loopback("https://s3.eu-west-1.amazonaws.com/bucket")


# --- the AWS layer ------------------------------------------------------------------------------

def test_read_cache_calls_aws_once(world_aws_env, unit_site):
    target = unit_target(unit_site)
    registry = AwsRegistry()
    s3 = registry.client(target, "s3")
    for _ in range(3):
        assert s3.get_bucket_versioning(Bucket=target.bucket)["Status"] == "Enabled"
    pages = s3.paginate("list_objects_v2", Bucket=target.bucket)
    assert pages[0]["KeyCount"] > 0
    s3.paginate("list_objects_v2", Bucket=target.bucket)
    assert registry.calls.snapshot() == {"s3:GetBucketVersioning": 1, "s3:ListObjectsV2": 1}


def test_anonymous_client_builds_unsigned_urls(world_aws_env, unit_site):
    """EA-PEN-03 asks the bucket's endpoint as anyone would: no signature, path-style on one host."""
    target = unit_target(unit_site)
    registry = AwsRegistry()
    s3 = registry.anonymous(target, "s3")
    assert registry.anonymous(target, "s3") is s3  # one per run
    url = s3.generate_presigned_url("get_object", Params={"Bucket": target.bucket, "Key": "index.html"})
    assert url.startswith(world_aws_env["AWS_ENDPOINT_URL"].rstrip("/") + f"/{target.bucket}/index.html")
    assert "Signature" not in url and "Credential" not in url


def test_iam_actions_of_s3_operations():
    assert iam_action("s3", "GetPublicAccessBlock") == "s3:GetBucketPublicAccessBlock"
    assert iam_action("s3", "ListObjectsV2") == "s3:ListBucket"
    assert iam_action("cloudfront", "GetDistribution") == "cloudfront:GetDistribution"
    assert iam_action("s3control", "GetPublicAccessBlock") == "s3:GetAccountPublicAccessBlock"


# --- results and reports ------------------------------------------------------------------------

def test_require_none_records_the_offenders_and_fails_on_any():
    evidence = Evidence()
    evidence.require_none({}, "never raised")
    assert evidence.values["offenders"] == {}
    with pytest.raises(AssertionError, match=r"^served: /\.env$"):
        evidence.require_none(["/.env"], "served: /.env")
    assert evidence.values["offenders"] == ["/.env"]


def test_failure_message_drops_pytest_rewrite():
    assert failure_message(AssertionError("versioning is Disabled\nassert 'Disabled' == 'Enabled'")) == \
        "versioning is Disabled"


def test_waiver_choice_prefers_live():
    today = dt.date(2026, 11, 27)
    old = Waiver("EA-S3-05", "r", "a", dt.date(2026, 1, 1))
    live = Waiver("EA-S3-05", "r", "a", dt.date(2027, 1, 1), target="www")
    assert waiver_for((old, live), "EA-S3-05", "www", today) == (live, "live")
    assert waiver_for((old, live), "EA-S3-05", "api", today) == (old, "expired")
    assert waiver_for((old,), "EA-S3-01", "www", today) == (None, "")


def test_fail_on_gates_by_severity():
    p3 = {"outcome": "failed", "severity": "P3"}
    assert gates(p3, "P4") and gates(p3, "P3") and not gates(p3, "P2")
    assert not gates({"outcome": "waived", "severity": "P1"}, "P4")


def test_cadences_a_selection_covers():
    assert covered_cadences("") == ["daily", "weekly", "monthly", "quarterly", "annually", "deploy", "dr"]
    assert covered_cadences("daily") == ["daily"]
    assert covered_cadences("daily or weekly") == ["daily", "weekly"]
    assert covered_cadences("weekly and security") == []


def test_report_names(tmp_path):
    started = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.timezone.utc)
    assert selection_name("weekly and security") == "weekly-and-security"
    assert selection_name("") == "all"
    stem = report_stem(tmp_path, "daily", started)
    assert stem.name == "daily-20261127T090000Z"
    stem.with_suffix(".json").write_text("{}")
    assert report_stem(tmp_path, "daily", started).name == "daily-20261127T090000Z-2"


@pytest.mark.parametrize("raw", ["maybe", "ja", "2", "tru"])
def test_a_yes_or_no_variable_that_is_neither_is_a_usage_error(raw):
    with pytest.raises(pytest.UsageError, match=f"EDGEAUDIT_BUNDLE='{raw}' is not a yes or a no. Fix: "):
        env_flag("EDGEAUDIT_BUNDLE", raw)
    assert env_flag("EDGEAUDIT_BUNDLE", " On ") is True and env_flag("EDGEAUDIT_BUNDLE", "off") is False


def test_edgeaudit_bundle_maybe_stops_the_run_with_exit_code_4(tmp_path):
    config = write(tmp_path, {"targets": [TARGET]})
    done = subprocess.run([sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:randomly", "suites/test_site.py",
                           "--edgeaudit-config", str(config), "--report-dir", str(tmp_path / "reports")],
                          cwd=Path(__file__).parent.parent, env={**os.environ, "EDGEAUDIT_BUNDLE": "maybe"},
                          capture_output=True, text=True)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "EDGEAUDIT_BUNDLE='maybe' is not a yes or a no" in done.stdout + done.stderr
