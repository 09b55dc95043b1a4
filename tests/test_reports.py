"""The auditor's report: trend between runs, waiver and attestation sections, the cadence
ledger, margins, JUnit properties, and the signed evidence bundle."""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from test_plugin import Project

from edgeaudit.demo.builder import SiteSpec
from edgeaudit.evidence import Evidence
from edgeaudit.reporting.ledger import ledger, same_environment
from edgeaudit.rules.schedule import due_windows

# Three controls whose outcome the test decides through the environment.
SWITCHED = '''
import os

@pytest.mark.control("EA-OPS-02", severity="P3")
@pytest.mark.monthly
def test_a(target, evidence):
    """Control A."""
    evidence.measure("days_left", int(os.environ.get("DAYS", "40")), 14, better="higher", unit="days")
    assert os.environ.get("FAIL_A") != "1", "A is broken"

@pytest.mark.control("EA-OPS-03", severity="P4")
@pytest.mark.monthly
def test_b(target):
    """Control B."""
    assert os.environ.get("FAIL_B") != "1", "B is broken"

@pytest.mark.control("EA-OPS-04", severity="P2")
@pytest.mark.monthly
def test_c(target):
    """Control C."""
    assert os.environ.get("FAIL_C") != "1", "C is broken"
'''


@pytest.fixture(scope="module")
def report_site(world):
    return world.add(SiteSpec(name="site"))


@pytest.fixture
def switched(tmp_path, world, report_site) -> Project:
    project = Project(tmp_path, world, report_site)
    project.control("switched", SWITCHED)
    return project


def test_trend_between_two_runs(switched):
    switched.config()
    first = switched.run("-m", "monthly", env={"FAIL_A": "1", "FAIL_B": "1", "DAYS": "40"})
    first_started = first.report["run"]["started"]
    second = switched.run("-m", "monthly", env={"FAIL_B": "1", "FAIL_C": "1", "DAYS": "30"})
    b = second.result("EA-OPS-03", "site")
    assert b["failing_since"] == first_started  # still failing: since the first run
    assert second.result("EA-OPS-04", "site")["failing_since"] == second.report["run"]["started"]
    html = second.html
    trend = html.split('id="trend"', 1)[1].split('id="waivers"', 1)[0]
    assert "New failures: 1" in trend and "EA-OPS-04 [site]" in trend
    assert "Resolved: 1" in trend and "EA-OPS-02 [site]" in trend
    assert "Still failing: 1" in trend and f"EA-OPS-03 [site] since {first_started}" in trend
    assert "<svg" in trend and "days_left" in trend  # the measured value's history: 40, 30
    assert '<span class="tag new">new</span>' in html


def test_margins_are_computed_and_shown(switched):
    evidence = Evidence()
    evidence.measure("lcp_s", 2.0, 2.5, unit="s")
    evidence.measure("days_left", 10, 14, better="higher")
    assert evidence.margins["lcp_s"]["margin"] == 0.5 and evidence.margins["lcp_s"]["margin_ratio"] == 0.2
    assert evidence.margins["days_left"]["margin"] == -4  # over the limit
    assert evidence.values["lcp_s"] == 2.0
    with pytest.raises(ValueError):
        evidence.measure("x", 1, 2, better="more")
    switched.config()
    run = switched.run("-m", "monthly", env={"DAYS": "15"})
    margin = run.result("EA-OPS-02", "site")["margins"]["days_left"]
    assert margin == {"observed": 15, "limit": 14, "better": "higher", "margin": 1, "unit": "days",
                      "margin_ratio": 0.0714}
    section = run.html.split('id="margins"', 1)[1].split('id="trend"', 1)[0]
    assert "EA-OPS-02" in section and 'class="bar near"' in section  # 7% from its limit stands out


def test_waiver_sections(switched):
    today = dt.date.today()
    waiver = {"reason": "r", "approved_by": "Risk owner"}
    switched.config(waivers=[
        {"control": "EA-OPS-02", **waiver, "expires": today + dt.timedelta(days=60)},   # covers a pass
        {"control": "EA-OPS-03", **waiver, "expires": today + dt.timedelta(days=5)},    # expiring, applies
        {"control": "EA-OPS-04", **waiver, "expires": today - dt.timedelta(days=1)},    # expired
    ])
    run = switched.run("-m", "monthly", env={"FAIL_B": "1", "FAIL_C": "1"})
    assert run.result("EA-OPS-03", "site")["outcome"] == "waived"
    assert run.result("EA-OPS-04", "site")["outcome"] == "failed"
    section = run.html.split('id="waivers"', 1)[1].split('id="attestations"', 1)[0]
    assert "the control now passes: remove this waiver" in section
    assert "expires soon" in section
    assert "expired: enforced again" in section
    states = {w["control"]: w["state"] for w in run.report["waivers"]}
    assert states == {"EA-OPS-02": "live", "EA-OPS-03": "expiring", "EA-OPS-04": "expired"}


def _line(started: dt.datetime, cadences: list[str], complete: bool = True, demo: bool = False) -> dict:
    return {"started": started.strftime("%Y-%m-%dT%H:%M:%SZ"), "complete": complete, "cadences": cadences,
            "demo": demo}


def _status(history: list[dict], now: dt.datetime, cadence: str, grace_h: float = 12) -> str:
    """The status of the newest window the schedule has closed (every window: test_schedule.py)."""
    grace = dt.timedelta(hours=grace_h)
    row = {row.cadence: row for row in ledger(history, now, grace)}[cadence]
    first, last = due_windows(cadence, now, grace)[0]
    newest = first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"
    return "never" if row.status == "never" else "overdue" if newest in row.missed else "within"


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc)


def test_daily_means_every_business_day_and_a_monday_looks_back_to_friday():
    friday = [_line(_at("2026-11-27T09:00"), ["daily"])]
    assert _status(friday, _at("2026-11-30T10:00"), "daily") == "within"      # Monday: Friday's run covers
    assert _status(friday, _at("2026-12-01T11:00"), "daily") == "within"      # Monday ended < 12 h ago
    assert _status(friday, _at("2026-12-01T13:00"), "daily") == "overdue"     # Monday's run never came
    assert _status(friday, _at("2026-12-01T13:00"), "daily", grace_h=48) == "within"


def test_weekly_means_each_monday():
    history = [_line(_at("2026-11-23T10:00"), ["weekly"])]
    assert _status(history, _at("2026-11-30T23:00"), "weekly") == "within"   # this Monday is not over
    assert _status(history, _at("2026-12-01T13:00"), "weekly") == "overdue"


@pytest.mark.parametrize("ran, within_until, overdue_from", [
    ("2026-11-02T09:00", "2026-12-07T20:00", "2026-12-08T13:00"),   # first Mondays 35 days apart
    ("2026-12-07T09:00", "2027-01-04T20:00", "2027-01-05T13:00"),   # ... and 28 days apart
])
def test_monthly_means_the_first_monday_of_each_month(ran, within_until, overdue_from):
    history = [_line(_at(ran), ["monthly"])]
    assert _status(history, _at(within_until), "monthly") == "within"
    assert _status(history, _at(overdue_from), "monthly") == "overdue"


def test_quarterly_and_dr_mean_the_first_week_of_each_quarter():
    history = [_line(_at("2026-10-02T09:00"), ["quarterly", "dr"])]
    for cadence in ("quarterly", "dr"):
        assert _status(history, _at("2027-01-07T20:00"), cadence) == "within"
        assert _status(history, _at("2027-01-08T13:00"), cadence) == "overdue"
    late = [_line(_at("2026-09-30T09:00"), ["quarterly"])]   # a day before the quarter: the old one's
    assert _status(late, _at("2026-10-08T13:00"), "quarterly") == "overdue"


def test_cadence_ledger():
    now = _at("2026-11-27T09:00")
    history = [_line(now - dt.timedelta(hours=20), ["daily"]), _line(now - dt.timedelta(days=10), ["weekly"]),
               _line(now - dt.timedelta(hours=2), ["weekly"], complete=False),
               _line(now - dt.timedelta(days=40), ["monthly"]), _line(now - dt.timedelta(hours=1), ["quarterly", "dr"], demo=True)]
    rows = {row.cadence: row for row in ledger(same_environment(history, demo=False), now)}
    assert rows["daily"].age == "20 h" and "2026-11-25" in rows["daily"].missed  # Thursday's run is not Wednesday's
    assert rows["weekly"].status == "overdue"  # the newer weekly run did not complete
    assert rows["monthly"].status == "overdue" and rows["monthly"].age == "40 d"
    assert rows["monthly"].window == "2 windows since 2026-10-05 (the first Monday of the month)"
    assert rows["quarterly"].status == "never" and rows["dr"].status == "never"  # demo runs do not count
    demo = {row.cadence: row.status for row in ledger(same_environment(history, demo=True), now)}
    assert demo["dr"] == "overdue" and demo["daily"] == "never"  # nor a site's for the demo


def test_junit_xml_carries_control_properties(switched):
    switched.config()
    run = switched.run("-m", "monthly", env={"FAIL_A": "1"})
    xml = next(run.report_dir.glob("monthly-*.xml"))
    cases = {case.get("name"): case for case in ET.parse(xml).getroot().iter("testcase")}
    properties = {p.get("name"): p.get("value") for p in cases["EA-OPS-02 test_a[site]"].iter("property")}
    assert properties == {"control": "EA-OPS-02", "severity": "P3", "outcome": "failed", "target": "site"}
    assert cases["EA-OPS-02 test_a[site]"].find("failure") is not None


# --- the evidence bundle --------------------------------------------------------------------------

def _keypair(directory: Path, name: str) -> tuple[Path, Path]:
    key = Ed25519PrivateKey.generate()
    private, public = directory / f"{name}.pem", directory / f"{name}.pub.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def verify(bundle: Path, public: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgeaudit.cli", "verify", str(bundle), "--public-key", str(public)],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def bundled(switched, tmp_path):
    private, public = _keypair(tmp_path, "signing")
    switched.control("aws", '''
    @pytest.mark.control("EA-S3-05", severity="P2")
    @pytest.mark.monthly
    def test_versioning(aws, target, evidence):
        """Versioning, so that the bundle holds an AWS answer."""
        evidence.record("status", aws.s3.get_bucket_versioning(Bucket=target.bucket)["Status"])
    ''')
    switched.config()
    run = switched.run("-m", "monthly", "--bundle", "--sign-key", str(private),
                       env={"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYBUNDLESECRET"})
    assert run.returncode == 0, run.output
    return next(run.report_dir.glob("*.bundle.zip")), public


def test_bundle_holds_reports_config_responses_and_versions(bundled):
    bundle, _ = bundled
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        assert {"config.json", "aws-responses.json", "versions.json", "MANIFEST.json", "MANIFEST.sig"} <= names
        assert any(n.endswith(".json") and n.startswith("monthly-") for n in names)
        assert any(n.endswith(".html") for n in names)
        responses = archive.read("aws-responses.json").decode()
        assert "get_bucket_versioning" in responses and "Enabled" in responses
        versions = json.loads(archive.read("versions.json"))
        assert versions["packages"]["boto3"] and versions["python"]
        for name in names:
            assert b"BUNDLESECRET" not in archive.read(name)


def test_verify_accepts_an_untouched_bundle(bundled):
    bundle, public = bundled
    done = verify(bundle, public)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "intact" in done.stdout and "signature verified" in done.stdout


def _rewrite(bundle: Path, target: Path, change) -> Path:
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(target, "w") as out:
        for info in source.infolist():
            out.writestr(info.filename, change(info.filename, source.read(info.filename)))
    return target


@pytest.mark.parametrize("member", ["html", "json", "config.json", "aws-responses.json", "versions.json",
                                    "MANIFEST.json"])
def test_verify_rejects_one_changed_byte_in_any_member(bundled, tmp_path, member):
    bundle, public = bundled

    def flip(name: str, data: bytes) -> bytes:
        chosen = name == member or (member in ("html", "json") and name.endswith("." + member)
                                    and name.startswith("monthly-"))
        if not chosen:
            return data
        middle = len(data) // 2
        return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1:]

    done = verify(_rewrite(bundle, tmp_path / "tampered.zip", flip), public)
    assert done.returncode == 1, done.stdout
    assert "FAILED" in done.stdout


def test_verify_rejects_another_signer(bundled, tmp_path):
    bundle, _ = bundled
    _, other_public = _keypair(tmp_path, "other")
    done = verify(bundle, other_public)
    assert done.returncode == 1 and "signature does not match" in done.stdout


def test_verify_rejects_an_added_member(bundled, tmp_path):
    bundle, public = bundled
    tampered = tmp_path / "added.zip"
    _rewrite(bundle, tampered, lambda name, data: data)
    with zipfile.ZipFile(tampered, "a") as archive:
        archive.writestr("extra.txt", b"not from the run")
    done = verify(tampered, public)
    assert done.returncode == 1 and "extra.txt: not in the manifest" in done.stdout


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgeaudit.cli", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_verify_rejects_two_members_of_one_name(bundled, tmp_path):
    """A forged config.json first, the genuine one after it: readers differ on which they show."""
    bundle, public = bundled
    forged = tmp_path / "duplicate.zip"
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(forged, "w") as out:
        out.writestr("config.json", b'{"waivers": "forged"}\n')
        for info in source.infolist():
            out.writestr(info.filename, source.read(info.filename))
    done = verify(forged, public)
    assert done.returncode == 1, done.stdout
    assert "config.json: 2 members of that name" in done.stdout


def test_verify_rejects_a_missing_member(bundled, tmp_path):
    bundle, public = bundled
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(tmp_path / "short.zip", "w") as out:
        for info in source.infolist():
            if info.filename != "versions.json":
                out.writestr(info.filename, source.read(info.filename))
    done = verify(tmp_path / "short.zip", public)
    assert done.returncode == 1 and "versions.json: missing" in done.stdout


FORGED_REPORT = b'{"schema": "edgeaudit.report/1", "summary": {"failed": 0}, "note": "forged"}\n'


@pytest.mark.parametrize(("where", "said"), [("before the first member", "bytes before the first member"),
                                             ("after the directory", "bytes after the zip's directory"),
                                             ("as the zip comment", "bytes after the zip's directory")])
def test_verify_rejects_bytes_the_directory_does_not_account_for(bundled, tmp_path, where, said):
    bundle, public = bundled
    data = bundle.read_bytes()
    forged = tmp_path / "forged.bundle.zip"
    if where == "before the first member":
        forged.write_bytes(FORGED_REPORT + data)
    elif where == "after the directory":
        forged.write_bytes(data + FORGED_REPORT)
    else:
        forged.write_bytes(data[:-2] + len(FORGED_REPORT).to_bytes(2, "little") + FORGED_REPORT)
    with zipfile.ZipFile(forged) as archive:
        assert archive.testzip() is None  # a zip reader takes it as it is
    done = verify(forged, public)
    assert done.returncode == 1, done.stdout
    assert f"FAILED {said}" in done.stdout or f": {len(FORGED_REPORT)} {said}" in done.stdout


def test_verify_rejects_a_local_header_that_disagrees_with_the_directory(bundled, tmp_path):
    """A reader that walks the local headers (a streaming unzip) would show config.jsoN."""
    bundle, public = bundled
    data = bytearray(bundle.read_bytes())
    with zipfile.ZipFile(bundle) as archive:
        offset = archive.getinfo("config.json").header_offset
    name_at = offset + 30
    assert data[name_at:name_at + 11] == b"config.json"
    data[name_at + 10:name_at + 11] = b"N"
    forged = tmp_path / "local.bundle.zip"
    forged.write_bytes(bytes(data))
    done = verify(forged, public)
    assert done.returncode == 1, done.stdout
    assert "config.json: its local header disagrees with the zip's directory" in done.stdout


def test_verify_with_another_signers_key_says_so_and_fails(bundled, tmp_path):
    """A forger signs with their own key and names the auditors' key in the manifest."""
    from edgeaudit.reporting.bundle import MANIFEST, SIGNATURE

    bundle, public = bundled
    forger_private, forger_public = _keypair(tmp_path, "forger")
    with zipfile.ZipFile(bundle) as source:
        members = {n: source.read(n) for n in source.namelist()}
    manifest = members.pop(MANIFEST)
    members.pop(SIGNATURE)
    key = serialization.load_pem_private_key(forger_private.read_bytes(), password=None)
    forged = tmp_path / "forger.bundle.zip"
    with zipfile.ZipFile(forged, "w") as out:
        for name, data in members.items():
            out.writestr(name, data)
        out.writestr(MANIFEST, manifest)
        out.writestr(SIGNATURE, base64.b64encode(key.sign(manifest)) + b"\n")
    real_id = json.loads(manifest)["signature"]["key_id"]
    done = verify(forged, forger_public)
    assert done.returncode == 1, done.stdout
    assert "signed by another key" in done.stdout and real_id not in done.stdout
    honest = verify(bundle, forger_public)
    assert honest.returncode == 1 and "signed by another key" in honest.stdout


def _rebuilt(bundle: Path, target: Path, sign_key: Path | None) -> Path:
    """The bundle rebuilt by someone who changed config.json: a fresh, consistent manifest."""
    from edgeaudit.reporting.bundle import MANIFEST, SIGNATURE, write_bundle

    with zipfile.ZipFile(bundle) as source:
        members = {n: source.read(n) for n in source.namelist() if n not in (MANIFEST, SIGNATURE)}
    members["config.json"] = b'{"waivers": "forged"}\n'
    return write_bundle(target, members, sign_key)


@pytest.mark.parametrize("kind", ["untouched", "re-signed", "unsigned"])
def test_verify_without_a_public_key_checks_integrity_only(bundled, tmp_path, kind):
    bundle, public = bundled
    if kind != "untouched":
        other_private, _ = _keypair(tmp_path, "forger")
        bundle = _rebuilt(bundle, tmp_path / f"{kind}.zip", other_private if kind == "re-signed" else None)
    done = _cli("verify", str(bundle))
    assert done.returncode == 1, done.stdout
    assert "integrity only" in done.stdout and "--public-key" in done.stdout
    accepted = _cli("verify", str(bundle), "--unsigned-ok")
    assert accepted.returncode == 0 and "integrity only" in accepted.stdout
    with_key = verify(bundle, public)
    assert with_key.returncode == (0 if kind == "untouched" else 1), with_key.stdout


@pytest.mark.parametrize("manifest", [b"not json", b"[]", b'{"schema": "edgeaudit.bundle/1", "files": ["a"]}',
                                      b'{"schema": "edgeaudit.bundle/1", "files": {"a": "b"}}',
                                      b'{"schema": "edgeaudit.bundle/1", "files": {}, "signature": 7}'])
def test_a_malformed_manifest_is_a_clean_error(tmp_path, manifest):
    bundle = tmp_path / "odd.bundle.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("MANIFEST.json", manifest)
    for extra in ([], ["--unsigned-ok"]):
        done = _cli("verify", str(bundle), *extra)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
        assert "MANIFEST.json is malformed" in done.stderr


# --- what the run checks before any control runs ----------------------------------------------------

MARKS_ITS_RUN = '''
import os, pathlib

@pytest.mark.control("EA-OPS-03", severity="P3")
def test_marks(target):
    """Leaves a mark: the control ran."""
    pathlib.Path(os.environ["RAN_FILE"]).write_text("ran")
'''


@pytest.fixture
def marking(tmp_path, world, report_site) -> Project:
    project = Project(tmp_path, world, report_site)
    project.control("marks", MARKS_ITS_RUN)
    project.config()
    return project


def _run_marking(project: Project, *args: str, report_dir: Path | None = None):
    from conftest import run_suite

    return run_suite(*args, cwd=project.root, env={**project.world.aws_env, "RAN_FILE": str(project.root / "ran")},
                     report_dir=report_dir or project.root / "reports")


def test_a_signing_key_that_is_not_ed25519_stops_the_run_before_any_control(marking, tmp_path):
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = tmp_path / "rsa.pem"
    key.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    key.chmod(0o600)
    run = _run_marking(marking, "--bundle", "--sign-key", str(key))
    assert run.returncode == 4, run.output
    assert "not an Ed25519 private key" in run.output and "Fix:" in run.output
    assert not (marking.root / "ran").exists()


def test_a_signing_key_others_can_read_is_warned_about(marking, tmp_path):
    private, _ = _keypair(tmp_path, "loose")
    private.chmod(0o644)
    run = _run_marking(marking, "--bundle", "--sign-key", str(private))
    assert run.returncode == 0, run.output
    assert "can be read or written by others (mode 644)" in run.output and f"chmod 600 {private}" in run.output
    private.chmod(0o600)
    assert "chmod 600" not in _run_marking(marking, "--bundle", "--sign-key", str(private)).output


@pytest.mark.parametrize("where", ["a file", "a file's child", "unwritable"])
def test_a_report_dir_that_cannot_be_written_stops_the_run_before_any_control(marking, tmp_path, where):
    plain = tmp_path / "plain.txt"
    plain.write_text("not a folder")
    # /proc refuses new files whoever asks, root included
    report_dir = {"a file": plain, "a file's child": plain / "reports", "unwritable": Path("/proc/edgeaudit")}[where]
    run = _run_marking(marking, report_dir=report_dir)
    assert run.returncode == 4, run.output
    assert "--report-dir" in run.output and "Fix:" in run.output
    assert not (marking.root / "ran").exists()
