"""Manual controls EA-MAN-01..07: proven by attestation, both ways, and `edgeaudit attest`."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import tomllib

import pytest

from edgeaudit import tomlwrite
from edgeaudit.attestations import MANUAL_CONTROLS, entry
from edgeaudit.config import ConfigError, load

from conftest import REPO, run_suite

TODAY = dt.date.today()
CONTROLS = {"EA-MAN-01": "P4", "EA-MAN-02": "P4", "EA-MAN-03": "P4", "EA-MAN-04": "P3", "EA-MAN-05": "P4",
            "EA-MAN-06": "P3", "EA-MAN-07": "P3"}


def target(name: str) -> dict:
    # manual controls read only the config: these targets are never contacted
    return {"name": name, "url": f"https://{name}.example.invalid/", "bucket": f"{name}-bucket",
            "distribution_id": "E0000000000000", "region": "eu-west-1"}


def attestations_for(name: str, **changes) -> list[dict]:
    done = TODAY - dt.timedelta(days=5)
    made = [entry(control, "J. Doe (ops)", f"https://wiki.example.com/{control}", date=done, target=name)
            for control in MANUAL_CONTROLS]
    return [{**a, **changes} for a in made]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One run of suites/test_manual.py over one target per situation."""
    workdir = tmp_path_factory.mktemp("manual")
    document = {
        "targets": [target(n) for n in ("good", "none", "expired", "failing", "other", "expiring")],
        "attestations": [
            *attestations_for("good"),
            *attestations_for("expired", date=TODAY - dt.timedelta(days=100), expires=TODAY - dt.timedelta(days=8)),
            *attestations_for("failing", status="failed"),
            *attestations_for("expiring", expires=TODAY + dt.timedelta(days=5)),
        ],
    }
    config = workdir / "edgeaudit.toml"
    config.write_text(tomlwrite.dumps(document))
    return run_suite("suites/test_manual.py", "--edgeaudit-config", str(config), cwd=REPO,
                     report_dir=workdir / "reports")


@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_live_passing_attestation_passes(run, control):
    result = run.result(control, "good")
    assert result["outcome"] == "passed", result
    assert result["severity"] == CONTROLS[control]
    assert result["evidence"]["attested_by"] == "J. Doe (ops)"
    assert result["evidence"]["evidence_url"] == f"https://wiki.example.com/{control}"
    assert result["evidence"]["days_until_expiry"] > 14


@pytest.mark.parametrize("control", sorted(CONTROLS))
@pytest.mark.parametrize("situation, says", [
    ("none", "never attested"),
    ("expired", "not attested since"),
    ("failing", "attested as failed"),
    ("other", "never attested"),   # another target's attestation does not apply
])
def test_missing_expired_or_failed_attestation_fails(run, control, situation, says):
    result = run.result(control, situation)
    assert result["outcome"] == "failed", result
    assert result["severity"] == CONTROLS[control]
    assert says in result["message"]


def test_expired_attestation_names_the_last_one(run):
    result = run.result("EA-MAN-04", "expired")
    assert (TODAY - dt.timedelta(days=100)).isoformat() in result["message"]
    assert result["evidence"]["days_until_expiry"] == -8


@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_attestation_about_to_expire_warns(run, control):
    result = run.result(control, "expiring")
    assert result["outcome"] == "warned" and "expires in 5 days" in result["message"]


def test_report_lists_attestations_with_their_state(run):
    states = {(a["control"], a["target"]): a["state"] for a in run.report["attestations"]}
    assert states[("EA-MAN-01", "good")] == "live"
    assert states[("EA-MAN-01", "expired")] == "expired"
    assert states[("EA-MAN-01", "expiring")] == "expiring"
    assert 'href="https://wiki.example.com/EA-MAN-01"' in run.html


def test_cadence_and_categories_follow_the_catalog(run):
    monthly = {r["control"] for r in run.report["results"] if "monthly" in r["cadence"]}
    quarterly = {r["control"] for r in run.report["results"] if "quarterly" in r["cadence"]}
    assert monthly == {"EA-MAN-01", "EA-MAN-02", "EA-MAN-03"}
    assert quarterly == {"EA-MAN-04", "EA-MAN-05", "EA-MAN-06", "EA-MAN-07"}
    assert "dr" in run.result("EA-MAN-07", "good")["categories"]
    assert "cost" in run.result("EA-MAN-03", "good")["categories"]


# --- validation -----------------------------------------------------------------------------------

@pytest.mark.parametrize("change, key", [
    ({"control": "EA-MAN-09"}, "attestations[0].control"),
    ({"attested_by": None}, "attestations[0].attested_by"),
    ({"date": TODAY + dt.timedelta(days=3)}, "attestations[0].date"),
    ({"expires": TODAY - dt.timedelta(days=30)}, "attestations[0].expires"),
    ({"evidence_url": "wiki page"}, "attestations[0].evidence_url"),
])
def test_invalid_attestation_names_the_key(tmp_path, change, key):
    attestation = {**entry("EA-MAN-01", "a", "https://wiki/x", date=TODAY - dt.timedelta(days=1)), **change}
    attestation = {k: v for k, v in attestation.items() if v is not None}
    path = tmp_path / "edgeaudit.toml"
    path.write_text(tomlwrite.dumps({"targets": [target("www")], "attestations": [attestation]}))
    with pytest.raises(ConfigError) as raised:
        load(path)
    assert raised.value.key == key


# --- edgeaudit attest -----------------------------------------------------------------------------

def attest(*args: str, cwd) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgeaudit.cli", "attest", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_attest_appends_a_valid_attestation_and_keeps_the_file(tmp_path):
    original = (REPO / "edgeaudit.example.toml").read_text()
    (tmp_path / "edgeaudit.toml").write_text(original)
    done = attest("EA-MAN-04", "--by", "J. Doe (ops)", "--evidence", "https://tickets.example.com/IR-12",
                  cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    done = attest("EA-MAN-01", "--by", "A. N. Other", "--evidence", "https://wiki.example.com/review",
                  "--target", "www", "--status", "failed", "--note", "runbook for restores is missing",
                  cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "edgeaudit.toml").read_text()
    assert text.startswith(original)  # comments and layout kept
    first, second = load(tmp_path / "edgeaudit.toml").attestations
    assert (first.control, first.status, first.date, first.target) == ("EA-MAN-04", "passed", TODAY, None)
    assert first.expires == TODAY + dt.timedelta(days=93)  # quarterly window
    assert (second.control, second.status, second.target) == ("EA-MAN-01", "failed", "www")
    assert second.expires == TODAY + dt.timedelta(days=32)  # monthly window
    assert tomllib.loads(text)["attestations"][1]["note"] == "runbook for restores is missing"


def test_attest_writes_to_the_attestations_file(tmp_path):
    (tmp_path / "edgeaudit.toml").write_text(tomlwrite.dumps({"attestations_file": "attestations.toml",
                                                              "targets": [target("www")]}))
    (tmp_path / "attestations.toml").write_text("# signed-off checklist items\n")
    done = attest("EA-MAN-07", "--by", "DR lead", "--evidence", "https://wiki.example.com/dr-drill",
                  "--expires", (TODAY + dt.timedelta(days=60)).isoformat(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "attestations.toml" in done.stdout
    (attestation,) = load(tmp_path / "edgeaudit.toml").attestations
    assert attestation.control == "EA-MAN-07" and attestation.expires == TODAY + dt.timedelta(days=60)


def test_attest_refuses_bad_input_and_writes_nothing(tmp_path):
    (tmp_path / "edgeaudit.toml").write_text(tomlwrite.dumps({"targets": [target("www")]}))
    before = (tmp_path / "edgeaudit.toml").read_text()
    done = attest("EA-MAN-04", "--by", "x", "--evidence", "not a url", cwd=tmp_path)
    assert done.returncode == 2 and "evidence_url" in done.stderr
    done = attest("EA-MAN-04", "--by", "x", "--evidence", "https://x.example/", "--target", "api", cwd=tmp_path)
    assert done.returncode == 2 and "target" in done.stderr
    assert (tmp_path / "edgeaudit.toml").read_text() == before
