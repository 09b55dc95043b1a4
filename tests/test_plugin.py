"""The plugin as a user meets it: a project with its own suites/ and edgeaudit.toml, run with
pytest in a subprocess against sites on loopback (moto plus a local edge)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import boto3
import pytest
import report_schema

from conftest import Run, run_suite
from edgeaudit.demo.builder import SiteSpec
from edgeaudit.rules import tomlwrite

PLANTED_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYPLANTED0KEY"
PLANTED_TOKEN = "Bearer planted-token-0123456789abcdef"


@pytest.fixture(scope="module")
def site(world):
    return world.add(SiteSpec(name="site", origin_headers=(("X-Note", '<script>alert("edgeaudit")</script>'),)))


class Project:
    """A throwaway project: suites/, an edgeaudit.toml for the site, and a pytest.ini."""

    def __init__(self, root: Path, world: Any, site: Any) -> None:
        self.root, self.world, self.site = root, world, site
        (root / "suites").mkdir()
        # its own controls only: the built-in ones would run beside them
        (root / "pytest.ini").write_text("[pytest]\ntestpaths = suites\nedgeaudit_builtin_controls = false\n")

    def control(self, name: str, source: str) -> None:
        (self.root / "suites" / f"test_{name}.py").write_text(
            "import pytest\n\n" + textwrap.dedent(source))

    def config(self, **extra: Any) -> Path:
        document = {**extra, "targets": extra.pop("targets", None) or [self.site.target_entry()]}
        path = self.root / "edgeaudit.toml"
        path.write_text(tomlwrite.dumps(document))
        return path

    def run(self, *args: str, env: dict[str, str | None] | None = None) -> Run:
        return run_suite(*args, cwd=self.root, env={**self.world.aws_env, **(env or {})},
                         report_dir=self.root / "reports")


@pytest.fixture
def project(tmp_path, world, site) -> Project:
    return Project(tmp_path, world, site)


PASSING = '''
@pytest.mark.control("EA-OPS-03", severity="P3")
@pytest.mark.monthly
def test_passing(target, evidence):
    """A control that passes.

    Remediation: nothing to do.
    """
    evidence.record("seen", target.name)
'''

FAILING_P3 = '''
@pytest.mark.control("EA-OPS-04", severity="P3")
@pytest.mark.monthly
def test_failing(target, evidence):
    """A control that fails at P3."""
    evidence.record("lockfile", "package-lock.json")
    assert False, "two vulnerable packages"
'''


# --- usage errors ---------------------------------------------------------------------------------

def test_no_config_is_a_usage_error_that_says_what_to_do(project):
    project.control("x", PASSING)
    run = project.run()
    assert run.returncode == 4, run.output
    assert "edgeaudit.toml" in run.output and "--demo" in run.output
    assert not (project.root / "reports").exists()


@pytest.mark.parametrize("option, shown", [
    ("--co", "test_acm_certificate_renews[catalog]"),
    ("--markers", "@pytest.mark.control"),
    ("--fixtures", "target -- "),
])
def test_listing_the_checkout_needs_no_config(tmp_path, option, shown):
    """Only running controls needs a config: listing them, their markers or fixtures does not."""
    env = {"EDGEAUDIT_CONFIG": str(tmp_path / "absent.toml"), "EDGEAUDIT_DEMO": None}
    run = run_suite(option, env=env, report_dir=tmp_path / "reports")
    assert run.returncode == 0, run.output
    assert shown in run.output and "no config file" not in run.output
    assert not (tmp_path / "reports").exists()
    running = run_suite("suites", env=env, report_dir=tmp_path / "reports")
    assert running.returncode == 4 and "no config file" in running.output, running.output


def test_a_demo_variable_that_is_neither_yes_nor_no_is_a_usage_error(tmp_path):
    """EDGEAUDIT_DEMO is read as every yes/no variable: "maybe" is refused with the fix, and no
    report is written (until then the run was guarded, as a demo's is)."""
    run = run_suite("-m", "daily", env={"EDGEAUDIT_DEMO": "maybe"}, report_dir=tmp_path / "reports")
    assert run.returncode == 4, run.output
    assert "EDGEAUDIT_DEMO='maybe' is not a yes or a no" in run.output and not (tmp_path / "reports").exists()


@pytest.mark.parametrize("mutate, key", [
    (lambda doc: doc["targets"][0].update(regoin="eu-west-1"), 'targets[0] ("site").regoin'),
    (lambda doc: doc.update(waivers=[{"control": "EA-S3-05", "reason": "r", "approved_by": "me"}]),
     "waivers[0].expires"),
    (lambda doc: doc["targets"].append(dict(doc["targets"][0])), 'targets[1] ("site").name'),
    (lambda doc: doc.update(thresholds={"lcp": 2.0}), "thresholds.lcp"),
    (lambda doc: doc.update(waivers=[{"control": "EA-NOPE-01", "reason": "r", "approved_by": "me",
                                      "expires": dt.date(2099, 1, 1)}]), "waivers[0].control"),
])
def test_bad_config_names_file_key_and_fix(project, mutate, key):
    project.control("x", PASSING)
    document = {"targets": [project.site.target_entry()]}
    mutate(document)
    (project.root / "edgeaudit.toml").write_text(tomlwrite.dumps(document))
    run = project.run()
    assert run.returncode == 4, run.output
    line = next(line for line in run.output.splitlines() if "edgeaudit.toml" in line)
    assert key in line and "Fix:" in line, line


@pytest.mark.parametrize("source, complaint", [
    ("def test_plain():\n    pass\n", "not a control"),
    ('@pytest.mark.control("S3-5", severity="P2")\ndef test_x(target):\n    """t"""\n', "malformed"),
    ('@pytest.mark.control("A-WEB-01", severity="P2")\ndef test_x(target):\n    """t"""\n', "malformed"),
    ('@pytest.mark.control("ABCDEFGHIJK-WEB-01", severity="P2")\ndef test_x(target):\n    """t"""\n', "malformed"),
    ('@pytest.mark.control("acme-WEB-01", severity="P2")\ndef test_x(target):\n    """t"""\n', "malformed"),
    ('@pytest.mark.control("EA-ACME-01", severity="P2")\ndef test_x(target):\n    """t"""\n',
     "uses the prefix EA-, reserved for edgeaudit's built-in controls. Fix: give your own controls a prefix"),
    ('@pytest.mark.control("EA-S3-05", severity="high")\ndef test_x(target):\n    """t"""\n', "severity"),
    ('@pytest.mark.control("EA-S3-05", severity="P2")\ndef test_x(target):\n    pass\n', "no docstring"),
    ('@pytest.mark.control("EA-OPS-03", severity="P2")\ndef test_x(target):\n    """t"""\n', "duplicate"),
])
def test_every_test_in_suites_is_a_valid_control(project, source, complaint):
    project.control("x", PASSING)
    project.control("y", source)
    project.config()
    run = project.run()
    assert run.returncode == 4, run.output
    assert complaint in run.output


OWN_PREFIX = '''
@pytest.mark.control("ACME-WEB-01", severity="P2", frameworks={"FSBP": "S3.1"})
@pytest.mark.daily
def test_own_waived(target):
    """The site's own control, waived."""
    assert False, "accepted"

@pytest.mark.control("ACME2-WEB-02", severity="P1")
@pytest.mark.daily
def test_own_failing(target, evidence):
    """The site's own control, failing."""
    evidence.record("page", target.url)
    assert False, "the banner is missing"
'''


def test_a_sites_own_controls_take_their_own_prefix_and_count_like_any(project):
    """ACME-WEB-01 is a control as EA-* ones are: waived, failed and reported in every format."""
    project.control("own", OWN_PREFIX)
    waiver = {"control": "ACME-WEB-01", "reason": "r", "approved_by": "me", "expires": dt.date(2099, 1, 1)}
    project.config(waivers=[waiver])
    run = project.run("-m", "daily", "--framework", "FSBP")  # ACME2-WEB-02 maps to no framework
    assert run.returncode == 0, run.output
    assert run.result("ACME-WEB-01", "site")["outcome"] == "waived"
    project.config(waivers=[waiver])
    run = project.run("-m", "daily")
    assert run.returncode == 1, run.output
    report_schema.validate(run.report)
    failed = run.result("ACME2-WEB-02", "site")
    assert (failed["outcome"], failed["severity"]) == ("failed", "P1") and "banner" in failed["message"]
    assert run.report["summary"]["failed_by_severity"]["P1"] == 1
    assert "ACME2-WEB-02" in run.html and "ACME-WEB-01" in run.html
    assert "ACME2-WEB-02" in run._written(".xml").read_text()
    assert {f["metadata"]["event_code"] for f in json.loads(run._written(".ocsf.json").read_text())} == {
        "ACME-WEB-01", "ACME2-WEB-02"}


def test_only_the_built_in_manual_controls_take_attestations(project):
    project.control("own", OWN_PREFIX.replace("ACME-WEB-01", "ACME-MAN-01"))
    project.config(attestations=[{"control": "ACME-MAN-01", "status": "passed", "attested_by": "me",
                                  "date": dt.date.today(), "evidence_url": "https://wiki.example.com/x",
                                  "expires": dt.date.today() + dt.timedelta(days=7), "target": "site"}])
    run = project.run("-m", "daily")
    assert run.returncode == 4 and "ACME-MAN-01 is not a manual control" in run.output, run.output


def test_failure_logs_show_the_fixtures_by_their_target(project):
    """pytest (and pytest-html's log) print a failing control's arguments: named, not `object at 0x`."""
    project.control("a", '''
    @pytest.mark.control("ACME-WEB-03", severity="P3")
    def test_arguments(target, site, aws, tls_probe, evidence, edgeaudit_config):
        """Fails, showing its arguments."""
        assert False, "shown"
    ''')
    project.config()
    run = project.run("--tb=long")
    assert run.returncode == 1, run.output
    url = project.site.target_entry()["url"]
    for shown in (f"target = <Target site {url}>", f"site = <Site site {url}>", "aws = <Aws site ",
                  "tls_probe = <TlsProbe site ", f"evidence = <Evidence {url}: nothing recorded>",
                  "edgeaudit_config = <Config edgeaudit.toml: 1 targets (site)"):
        assert shown in run.output, run.output
    assert " object at 0x" not in run.output


def test_plugin_stays_out_of_other_runs(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_plain.py").write_text("def test_plain():\n    assert True\n")
    run = run_suite("tests", cwd=tmp_path, report_dir=tmp_path / "reports")
    assert run.returncode == 0, run.output
    assert "1 passed" in run.output
    assert not (tmp_path / "reports").exists()


# --- outcomes, exit codes -------------------------------------------------------------------------

def test_fail_on_decides_the_exit_code(project):
    project.control("a", PASSING)
    project.control("b", FAILING_P3)
    project.config()
    assert project.run().returncode == 1
    run = project.run("--fail-on", "P2")
    assert run.returncode == 0, run.output
    assert run.result("EA-OPS-04", "site")["outcome"] == "failed"
    assert project.run(env={"EDGEAUDIT_FAIL_ON": "P3"}).returncode == 1


def test_live_waiver_applies_and_expired_one_does_not(project, world):
    other = world.add(SiteSpec(name="other"))
    project.control("b", FAILING_P3)
    today = dt.date.today()
    project.config(targets=[project.site.target_entry(), other.target_entry()], waivers=[
        {"control": "EA-OPS-04", "target": "site", "reason": "upgrade planned", "approved_by": "J. Doe",
         "expires": today + dt.timedelta(days=30)},
        {"control": "EA-OPS-04", "target": "other", "reason": "old risk", "approved_by": "J. Doe",
         "expires": today - dt.timedelta(days=1)},
    ])
    run = project.run()
    waived, expired = run.result("EA-OPS-04", "site"), run.result("EA-OPS-04", "other")
    assert waived["outcome"] == "waived" and waived["waiver"]["status"] == "live"
    assert waived["waiver"]["approved_by"] == "J. Doe"
    assert expired["outcome"] == "failed" and expired["waiver"]["status"] == "expired"
    assert run.returncode == 1
    assert "WAIVED" in project.run("-v", "--target", "site").output


def test_exception_is_an_error_naming_the_cause(project):
    project.control("a", '''
    @pytest.mark.control("EA-OPS-03", severity="P3")
    def test_broken(target, site):
        """A control whose site lookup fails."""
        site.get("https://127.0.0.1:9/unreachable")
    ''')
    project.config()
    result = project.run().result("EA-OPS-03", "site")
    assert result["outcome"] == "error"
    assert "unreachable" in result["message"] and "127.0.0.1:9" in result["message"]


# --- AWS layer ------------------------------------------------------------------------------------

WRITING = '''
import boto3

@pytest.mark.control("EA-OPS-03", severity="P3")
def test_a_writer(aws, target):
    """A control that tries to change the bucket and hides the refusal."""
    try:
        aws.s3.put_object(Bucket=target.bucket, Key="defaced.html", Body=b"x")
    except Exception:
        pass

@pytest.mark.control("EA-OPS-04", severity="P3")
def test_b_raw_writer(target):
    """A control that makes its own client."""
    boto3.client("s3", region_name="us-east-1").delete_bucket(Bucket=target.bucket)
'''


def test_read_only_guard_refuses_writes_and_fails_the_run(project, world):
    project.control("w", WRITING)
    project.config()
    run = project.run("--fail-on", "P1")
    assert run.returncode == 1, run.output
    first = run.result("EA-OPS-03", "site")
    assert first["outcome"] == "error"
    assert "refused s3:PutObject" in first["message"]
    assert run.report["complete"] is False  # the run stops at the first refused write
    s3 = world.builder.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=project.site.bucket)["Contents"]]
    assert "defaced.html" not in keys


def test_raw_boto3_clients_are_guarded_too(project):
    project.control("w", WRITING.replace("def test_a_writer", "def _unused"))
    project.config()
    run = project.run()
    result = run.result("EA-OPS-04", "site")
    assert result["outcome"] == "error" and "refused s3:DeleteBucket" in result["message"]


@pytest.fixture
def auditor_keys(world):
    """An IAM user that may read versioning but nothing else; moto enforces IAM while it is in use."""
    from moto import settings
    from moto.core.responses import ActionAuthenticatorMixin

    iam = world.builder.client("iam")
    name = f"auditor-{len(world.sites)}-{dt.datetime.now().strftime('%H%M%S%f')}"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="audit", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*",
                                                "Action": ["s3:GetBucketVersioning", "sts:GetCallerIdentity"]}]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    before = settings.INITIAL_NO_AUTH_ACTION_COUNT
    settings.INITIAL_NO_AUTH_ACTION_COUNT = ActionAuthenticatorMixin.request_count  # enforce from now on
    yield {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    settings.INITIAL_NO_AUTH_ACTION_COUNT = before


def test_access_denied_is_an_error_naming_the_iam_action(project, auditor_keys):
    (project.root / "suites" / "test_s3.py").write_text((Path(__file__).parents[1] / "suites" / "test_s3.py").read_text())
    project.config()
    run = project.run(env=auditor_keys)
    assert run.result("EA-S3-05", "site")["outcome"] == "passed", run.output
    denied = run.result("EA-S3-01", "site")
    assert denied["outcome"] == "error", denied
    assert "AccessDenied" in denied["message"] and "s3:GetBucketPublicAccessBlock" in denied["message"]
    assert run.returncode == 1


# --- reports --------------------------------------------------------------------------------------

SECRETIVE = f'''
import os

@pytest.mark.control("EA-OPS-03", severity="P3")
def test_secrets(target, site, evidence):
    """A control that sees secrets and a hostile header."""
    response = site.get("/")
    evidence.record("request_headers", {{"Authorization": "{PLANTED_TOKEN}", "Accept": "*/*"}})
    evidence.record("note", response.headers["X-Note"])
    evidence.record("env_key", os.environ["AWS_SECRET_ACCESS_KEY"])
    evidence.record("url", "https://api.example.com/v1?key=AIzaSyPLANTEDPLANTEDPLANTEDPLANTED12345&page=2")
    assert False, "saw " + response.headers["X-Note"] + " with " + os.environ["AWS_SECRET_ACCESS_KEY"]
'''


def test_reports_hold_no_secrets_and_escape_network_values(project):
    project.control("s", SECRETIVE)
    project.config()
    run = project.run(env={"AWS_SECRET_ACCESS_KEY": PLANTED_SECRET})
    result = run.result("EA-OPS-03", "site")
    assert result["outcome"] == "failed"
    assert result["evidence"]["note"] == '<script>alert("edgeaudit")</script>'  # JSON keeps the value
    for text in (json.dumps(run.report), run.html, (project.root / "reports" / "history.jsonl").read_text()):
        assert PLANTED_SECRET not in text
        assert "planted-token" not in text
        assert "AIzaSyPLANTED" not in text
    assert '<script>alert("edgeaudit")' not in run.html
    assert "alert" in run.html  # it is there, escaped


def test_interrupted_run_still_writes_an_incomplete_report(project):
    project.control("a", PASSING)
    project.control("b", '''
    @pytest.mark.control("EA-OPS-04", severity="P3")
    def test_interrupt(target):
        """A control during which the operator presses Ctrl-C."""
        raise KeyboardInterrupt
    ''')
    project.control("c", PASSING.replace("EA-OPS-03", "EA-OPS-02").replace("test_passing", "test_later"))
    project.config()
    run = project.run()
    assert run.returncode == 2, run.output
    report = run.report
    assert report["complete"] is False
    assert run.result("EA-OPS-03", "site")["outcome"] == "passed"
    assert "EA-OPS-02" not in {r["control"] for r in report["results"]}
    history = [json.loads(line) for line in (project.root / "reports" / "history.jsonl").read_text().splitlines()]
    assert history[-1]["complete"] is False
    assert run.html  # the HTML is written too


def test_settings_from_environment_and_ini(project, tmp_path):
    project.control("a", PASSING)
    config = project.config()
    moved = tmp_path / "elsewhere.toml"
    config.rename(moved)
    assert project.run(env={"EDGEAUDIT_CONFIG": str(moved)}).returncode == 0
    reports = set((project.root / "reports").glob("all-*"))
    (project.root / "pytest.ini").write_text(f"[pytest]\ntestpaths = suites\nedgeaudit_builtin_controls = false\n"
                                             f"edgeaudit_config = {moved}\n"
                                             "edgeaudit_no_report = true\n")
    run = project.run()
    assert run.returncode == 0, run.output
    assert set((project.root / "reports").glob("all-*")) == reports, "no new report with edgeaudit_no_report"


def test_every_option_has_an_edgeaudit_spelling_under_its_heading(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pytest", "--help"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    section = done.stdout.split("edgeaudit compliance suite:", 1)[1].split("\n\n", 1)[0]
    for short in ("--demo", "--target", "--framework", "--report-dir", "--fail-on", "--no-report", "--shard",
                  "--bundle", "--sign-key"):
        assert f"--edgeaudit-{short[2:]}" in section and short in section, short


def test_the_edgeaudit_spelling_does_what_the_short_one_does(project):
    project.control("x", PASSING)
    project.config()
    run = project.run("--edgeaudit-target", "nosuchtarget")
    short = project.run("--target", "nosuchtarget")
    assert run.returncode == short.returncode == 4, run.output
    assert "nosuchtarget" in run.output and "nosuchtarget" in short.output
