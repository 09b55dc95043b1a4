"""Manual controls EA-MAN-01..07: proven by attestation, both ways, and `edgeaudit attest`."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import tomllib

import pytest

from conftest import REPO, run_suite
from edgeaudit.rules import tomlwrite
from edgeaudit.rules.attestations import MANUAL_CONTROLS, entry, evaluate
from edgeaudit.rules.config import Attestation, ConfigError, load
from edgeaudit.rules.schedule import holds_until, latest_opening

TODAY = dt.date.today()
CONTROLS = {"EA-MAN-01": "P4", "EA-MAN-02": "P4", "EA-MAN-03": "P4", "EA-MAN-04": "P3", "EA-MAN-05": "P4",
            "EA-MAN-06": "P3", "EA-MAN-07": "P3", "EA-MAN-08": "P4", "EA-MAN-09": "P4"}


def target(name: str) -> dict:
    # manual controls read only the config: these targets are never contacted
    return {"name": name, "url": f"https://{name}.example.invalid/", "bucket": f"{name}-bucket",
            "distribution_id": "E0000000000000", "region": "eu-west-1"}


def on_schedule(control: str) -> dt.date:
    """The control's latest scheduled day: when a team on schedule last did it."""
    return latest_opening(MANUAL_CONTROLS[control], TODAY)


def two_cycles_ago(control: str) -> dt.date:
    """A scheduled day whose cycle has closed: the next one after it ended before today."""
    earlier = latest_opening(MANUAL_CONTROLS[control], on_schedule(control) - dt.timedelta(days=1))
    return latest_opening(MANUAL_CONTROLS[control], earlier - dt.timedelta(days=1))


def expiring_in(control: str) -> int:
    """Days until an `expires` set 5 days ahead, kept inside the cadence window."""
    return min(5, (holds_until(MANUAL_CONTROLS[control], on_schedule(control)) - TODAY).days - 1)


def attestations_for(name: str, **changes) -> list[dict]:
    made = []
    for control in MANUAL_CONTROLS:
        values = {"date": on_schedule(control), **{k: v(control) if callable(v) else v for k, v in changes.items()}}
        made.append(entry(control, "J. Doe (ops)", f"https://wiki.example.com/{control}", target=name, **values))
    return made


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One run of suites/test_manual.py over one target per situation."""
    workdir = tmp_path_factory.mktemp("manual")
    document = {
        "targets": [target(n) for n in ("good", "none", "expired", "lapsed", "failing", "other", "expiring")],
        "attestations": [
            *attestations_for("good"),
            # done two cycles ago, with an expiry soon after: expired by its own date
            *attestations_for("expired", date=two_cycles_ago,
                              expires=lambda c: two_cycles_ago(c) + dt.timedelta(days=1)),
            # done two cycles ago with the longest expiry allowed: the cadence came due again since
            *attestations_for("lapsed", date=two_cycles_ago),
            *attestations_for("failing", status="failed"),
            *attestations_for("expiring", expires=lambda c: TODAY + dt.timedelta(days=expiring_in(c))),
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
    due = holds_until(MANUAL_CONTROLS[control], on_schedule(control))
    assert result["evidence"]["cadence"] == MANUAL_CONTROLS[control]
    assert result["evidence"]["counts_until"] == due.isoformat() and due > TODAY


@pytest.mark.parametrize("control", sorted(CONTROLS))
@pytest.mark.parametrize("situation, says", [
    ("none", "never attested"),
    ("expired", "not attested since"),
    ("lapsed", "window closed on"),
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
    done = two_cycles_ago("EA-MAN-04")
    assert done.isoformat() in result["message"] and "expired" in result["message"]
    assert result["evidence"]["days_until_expiry"] == (done + dt.timedelta(days=1) - TODAY).days


def test_attestation_counts_only_until_the_cadence_is_due_again(run):
    """Its expiry has not come, but the cadence's next scheduled window has closed since."""
    result = run.result("EA-MAN-01", "lapsed")
    done = two_cycles_ago("EA-MAN-01")
    due = holds_until("monthly", done)
    assert f"not attested since {done.isoformat()}" in result["message"]
    assert f"its monthly window closed on {due.isoformat()}" in result["message"]
    assert due < TODAY and (due - done).days in (28, 35)  # first Mondays are 4 or 5 weeks apart


@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_attestation_about_to_expire_warns(run, control):
    result = run.result(control, "expiring")
    assert result["outcome"] == "warned" and f"expires in {expiring_in(control)} days" in result["message"]


def test_report_lists_attestations_with_their_state(run):
    states = {(a["control"], a["target"]): a["state"] for a in run.report["attestations"]}
    assert states[("EA-MAN-01", "good")] == "live"
    assert states[("EA-MAN-01", "expired")] == "expired"
    assert states[("EA-MAN-01", "lapsed")] == "expired"  # the cadence window counts, not only `expires`
    assert states[("EA-MAN-01", "expiring")] == "expiring"
    assert 'href="https://wiki.example.com/EA-MAN-01"' in run.html


def test_cadence_and_categories_follow_the_catalog(run):
    monthly = {r["control"] for r in run.report["results"] if "monthly" in r["cadence"]}
    quarterly = {r["control"] for r in run.report["results"] if "quarterly" in r["cadence"]}
    assert monthly == {"EA-MAN-01", "EA-MAN-02", "EA-MAN-03"}
    annual = {r["control"] for r in run.report["results"] if "annually" in r["cadence"]}
    assert quarterly == {"EA-MAN-04", "EA-MAN-05", "EA-MAN-06", "EA-MAN-07"}
    assert annual == {"EA-MAN-08", "EA-MAN-09"}
    assert "dr" in run.result("EA-MAN-07", "good")["categories"]
    assert "cost" in run.result("EA-MAN-03", "good")["categories"]


def test_the_nine_controls_share_one_body_and_their_cadence_marker_is_the_catalogs():
    """Each manual control's cadence is written once, as its cadence marker: the attestations'
    windows read it from there (edgeaudit.rules.catalog), so they cannot disagree."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_manual_suite", REPO / "suites" / "test_manual.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tests = [f for name, f in vars(module).items() if name.startswith("test_")]
    assert len(tests) == 9 and len({f.__code__ for f in tests}) == 1
    for function in tests:
        marks = {m.name: m for m in function.pytestmark}
        control = marks["control"].args[0]
        assert MANUAL_CONTROLS[control] in marks
        assert ({"monthly", "quarterly", "annually"} - {MANUAL_CONTROLS[control]}).isdisjoint(marks)


# --- the cadence window -----------------------------------------------------------------------------

@pytest.mark.parametrize("cadence, done, until", [
    ("monthly", dt.date(2026, 11, 2), dt.date(2026, 12, 7)),     # first Mondays 35 days apart
    ("monthly", dt.date(2026, 12, 7), dt.date(2027, 1, 4)),      # ... and 28
    ("monthly", dt.date(2026, 11, 20), dt.date(2026, 12, 7)),    # done late: still due on the next one
    ("quarterly", dt.date(2026, 10, 1), dt.date(2027, 1, 7)),    # the next quarter's first week
    ("quarterly", dt.date(2026, 12, 31), dt.date(2027, 1, 7)),
])
def test_an_attestation_holds_until_the_cadence_is_next_due(cadence, done, until):
    assert holds_until(cadence, done) == until


def test_an_old_attestation_never_passes_whatever_its_expiry():
    """Evaluated directly (the config refuses such an expiry): the window decides, not `expires`."""
    old = Attestation("EA-MAN-04", "passed", "J. Doe", dt.date(2021, 1, 4), "https://wiki.example.com/x",
                      dt.date(2099, 1, 1))
    verdict = evaluate((old,), "EA-MAN-04", "quarterly", "www", TODAY, 14)
    assert not verdict.ok and "not attested since 2021-01-04" in verdict.problem
    assert "quarterly window closed on 2021-04-07" in verdict.problem


# --- validation -----------------------------------------------------------------------------------

@pytest.mark.parametrize("change, key", [
    ({"control": "EA-MAN-10"}, "attestations[0].control"),
    ({"attested_by": None}, "attestations[0].attested_by"),
    ({"date": TODAY + dt.timedelta(days=3)}, "attestations[0].date"),
    ({"expires": TODAY - dt.timedelta(days=30)}, "attestations[0].expires"),
    ({"evidence_url": "wiki page"}, "attestations[0].evidence_url"),
    ({"expires": holds_until("monthly", TODAY - dt.timedelta(days=1)) + dt.timedelta(days=1)},
     "attestations[0].expires"),                                  # past the monthly window
    ({"control": "EA-HDR-01"}, "attestations[0].control"),       # not a manual control
    ({"attested_by": "J. Doe\x1b[2K\rA. Auditor"}, "attestations[0].attested_by"),
    ({"note": "done\nstatus = passed"}, "attestations[0].note"),
    ({"target": "www\u202e"}, "attestations[0].target"),
    ({"note": "tab\there"}, "attestations[0].note"),
    ({"note": "nul\x00"}, "attestations[0].note"),
    ({"note": "del\x7f"}, "attestations[0].note"),
    ({"attested_by": "J. Doe\u2066(ops)"}, "attestations[0].attested_by"),
])
def test_invalid_attestation_names_the_key(tmp_path, change, key):
    attestation = {**entry("EA-MAN-01", "a", "https://wiki/x", date=TODAY - dt.timedelta(days=1)), **change}
    attestation = {k: v for k, v in attestation.items() if v is not None}
    path = tmp_path / "edgeaudit.toml"
    path.write_text(tomlwrite.dumps({"targets": [target("www")], "attestations": [attestation]}))
    with pytest.raises(ConfigError) as raised:
        load(path)
    assert raised.value.key == key


def test_an_expiry_past_the_cadence_window_stops_the_run_with_the_fix(tmp_path):
    """Done years ago, valid 'forever': the run stops (exit 4) naming the file, the key and the fix."""
    forever = entry("EA-MAN-04", "J. Doe (ops)", "https://wiki.example.com/ir", date=dt.date(2021, 1, 4),
                    expires=dt.date(2099, 1, 1))
    config = tmp_path / "edgeaudit.toml"
    config.write_text(tomlwrite.dumps({"targets": [target("www")], "attestations": [forever]}))
    run = run_suite("suites/test_manual.py", "--edgeaudit-config", str(config), cwd=REPO,
                    report_dir=tmp_path / "reports")
    assert run.returncode == 4, run.output
    assert f"{config}: attestations[0].expires: 2099-01-01 is past the quarterly window of EA-MAN-04" in run.output
    assert "Fix: write expires = 2021-04-07 or earlier" in run.output


def test_attestations_file_is_held_to_the_window_too(tmp_path):
    (tmp_path / "edgeaudit.toml").write_text(tomlwrite.dumps({"attestations_file": "attestations.toml",
                                                              "targets": [target("www")]}))
    (tmp_path / "attestations.toml").write_text(tomlwrite.dumps({"attestations": [
        entry("EA-MAN-02", "a", "https://wiki.example.com/t", date=dt.date(2026, 11, 2), expires=dt.date(2026, 12, 8))]}))
    with pytest.raises(ConfigError) as raised:
        load(tmp_path / "edgeaudit.toml")
    assert raised.value.path == str((tmp_path / "attestations.toml").resolve())
    assert raised.value.key == "attestations[0].expires" and "2026-12-07" in raised.value.fix


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
    assert first.expires == holds_until("quarterly", TODAY)  # the next quarter's first week
    assert (second.control, second.status, second.target) == ("EA-MAN-01", "failed", "www")
    assert second.expires == holds_until("monthly", TODAY)  # the next first Monday
    assert tomllib.loads(text)["attestations"][1]["note"] == "runbook for restores is missing"


QUIRKY = """\
# the platform team's config: comments, dotted and quoted keys, an existing attestation
thresholds.cert_warn_days = 30    # a dotted key: [thresholds] written inline

[[targets]]
"name" = "www"                    # a quoted key
url = "https://www.example.invalid/"
bucket = "www-bucket"
distribution_id = "E0000000000000"
region = "eu-west-1"

[[attestations]]  # the last review
control = "EA-MAN-01"
status = "passed"
attested_by = "J. Doe"
date = {date}
evidence_url = "https://wiki.example.com/review"
expires = {date}

# keep this line: the file ends with a comment
"""


def test_attest_keeps_comments_and_quoted_or_dotted_keys_byte_for_byte(tmp_path):
    original = QUIRKY.format(date=TODAY.isoformat())
    (tmp_path / "edgeaudit.toml").write_text(original)
    done = attest("EA-MAN-04", "--by", "J. Doe (ops)", "--evidence", "https://tickets.example.com/IR-12",
                  "--note", 'a "quoted" note', cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "edgeaudit.toml").read_text()
    assert text.startswith(original), text
    added = tomllib.loads(text[len(original):])["attestations"]
    assert [a["control"] for a in added] == ["EA-MAN-04"] and added[0]["note"] == 'a "quoted" note'
    config = load(tmp_path / "edgeaudit.toml")
    assert [a.control for a in config.attestations] == ["EA-MAN-01", "EA-MAN-04"]
    assert config.thresholds.cert_warn_days == 30


def test_attest_appends_to_an_inline_array_of_attestations(tmp_path):
    original = ('attestations = [  # done by hand\n    { control = "EA-MAN-01", status = "passed", '
                f'attested_by = "J. Doe", date = {TODAY}, evidence_url = "https://wiki.example.com/r", '
                f'expires = {TODAY} }}\n]\n\n' + tomlwrite.dumps({"targets": [target("www")]}))
    (tmp_path / "edgeaudit.toml").write_text(original)
    done = attest("EA-MAN-04", "--by", "J. Doe (ops)", "--evidence", "https://tickets.example.com/IR-12", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "edgeaudit.toml").read_text()
    assert "# done by hand" in text and text.endswith(tomlwrite.dumps({"targets": [target("www")]}))
    assert [a.control for a in load(tmp_path / "edgeaudit.toml").attestations] == ["EA-MAN-01", "EA-MAN-04"]


def test_keys_toml_must_quote_stay_one_key():
    document = {"report": {"app.env": "prod", "a b": 1}, "targets": [{"name": "www", "x.y": [{"k": None, "v": 1}]}]}
    text = tomlwrite.dumps(document)
    assert tomllib.loads(text) == {"report": {"app.env": "prod", "a b": 1},
                                   "targets": [{"name": "www", "x.y": [{"v": 1}]}]}
    assert tomlwrite.value_text({"app.env": [1, "a"], "a b": dt.date(2027, 1, 1)}) == \
        '{"app.env" = [1, "a"], "a b" = 2027-01-01}'


def test_attest_writes_to_the_attestations_file(tmp_path):
    (tmp_path / "edgeaudit.toml").write_text(tomlwrite.dumps({"attestations_file": "attestations.toml",
                                                              "targets": [target("www")]}))
    (tmp_path / "attestations.toml").write_text("# signed-off checklist items\n")
    done = attest("EA-MAN-07", "--by", "DR lead", "--evidence", "https://wiki.example.com/dr-drill",
                  "--expires", (TODAY + dt.timedelta(days=5)).isoformat(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "attestations.toml" in done.stdout
    (attestation,) = load(tmp_path / "edgeaudit.toml").attestations
    assert attestation.control == "EA-MAN-07" and attestation.expires == TODAY + dt.timedelta(days=5)


def test_attest_refuses_bad_input_and_writes_nothing(tmp_path):
    (tmp_path / "edgeaudit.toml").write_text(tomlwrite.dumps({"targets": [target("www")]}))
    before = (tmp_path / "edgeaudit.toml").read_text()
    done = attest("EA-MAN-04", "--by", "x", "--evidence", "not a url", cwd=tmp_path)
    assert done.returncode == 2 and "evidence_url" in done.stderr
    done = attest("EA-MAN-04", "--by", "x", "--evidence", "https://x.example/", "--target", "api", cwd=tmp_path)
    assert done.returncode == 2 and "target" in done.stderr
    assert (tmp_path / "edgeaudit.toml").read_text() == before


def test_attest_refuses_an_expiry_past_the_cadence_window(tmp_path):
    (tmp_path / "edgeaudit.toml").write_text(tomlwrite.dumps({"targets": [target("www")]}))
    before = (tmp_path / "edgeaudit.toml").read_text()
    latest = holds_until("monthly", TODAY)
    done = attest("EA-MAN-01", "--by", "x", "--evidence", "https://x.example/",
                  "--expires", (latest + dt.timedelta(days=1)).isoformat(), cwd=tmp_path)
    assert done.returncode == 2 and "attestations[0].expires" in done.stderr
    assert f"Fix: write expires = {latest.isoformat()} or earlier" in done.stderr
    done = attest("EA-MAN-01", "--by", "x", "--evidence", "https://x.example/", "--expires", "2099-01-01",
                  "--date", "2021-01-04", cwd=tmp_path)
    assert done.returncode == 2 and "past the monthly window" in done.stderr
    assert (tmp_path / "edgeaudit.toml").read_text() == before


@pytest.mark.parametrize("option, key", [
    ("--by", "attested_by"), ("--note", "note"), ("--evidence", "evidence_url"), ("--target", "target")])
@pytest.mark.parametrize("sneaky", ["\n", "\x1b[31m", "\u202e"])
def test_attest_refuses_control_characters_in_any_field(tmp_path, option, key, sneaky):
    (tmp_path / "edgeaudit.toml").write_text(tomlwrite.dumps({"targets": [target("www")]}))
    before = (tmp_path / "edgeaudit.toml").read_text()
    values = {"--by": "J. Doe", "--evidence": "https://x.example/a", "--note": "ok", "--target": "www"}
    values[option] += sneaky + "forged"
    done = attest("EA-MAN-01", *[part for pair in values.items() for part in pair], cwd=tmp_path)
    assert done.returncode == 2, done.stdout
    assert f"attestations[0].{key}" in done.stderr or (key == "target" and "target" in done.stderr)
    assert (tmp_path / "edgeaudit.toml").read_text() == before


def test_the_annual_window_is_the_first_week_of_january():
    from edgeaudit.rules.schedule import window_opening

    assert window_opening("annually", dt.date(2027, 1, 1)) == (dt.date(2027, 1, 1), dt.date(2027, 1, 7))
    assert all(window_opening("annually", dt.date(2027, month, 1)) is None for month in range(2, 13))
    # done in this year's window, it holds until the end of next year's
    assert holds_until("annually", dt.date(2027, 1, 5)) == dt.date(2028, 1, 7)
