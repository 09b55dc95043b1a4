"""One source per control fact: the suites declare each control's id, severity, marks and reads
once, and the catalog, the config's checks, the reads made ahead, the preflight, the guard and
the documented IAM policy (docs/iam-policy.md) agree with them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from edgeaudit.aws import auditrole, guard, prefetch, preflight
from edgeaudit.aws.clients import iam_action
from edgeaudit.rules import catalog
from edgeaudit.rules.config import ConfigError, parse

REPO = Path(__file__).resolve().parents[1]
SUITES = REPO / "suites"


class _Marks:
    """What pytest's own collection sees on each control's markers."""

    def __init__(self) -> None:
        self.controls: dict[str, dict[str, Any]] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            marker = item.get_closest_marker("control")
            self.controls[marker.args[0]] = {
                "severity": marker.kwargs.get("severity"), "reads": tuple(marker.kwargs.get("reads", ())),
                "marks": {m.name for m in item.iter_markers()} - {"control", "parametrize"}}


def test_the_scan_reads_what_pytest_collects(pytester):
    """The catalog reads the suites without importing them: it must see what pytest sees.
    (pytester's inline run puts back the modules it imported, the root conftest among them; the
    importlib mode keeps suites/test_manual.py apart from tests/test_manual.py.)"""
    marks = _Marks()
    code = pytester.inline_run(str(SUITES), "--collect-only", "--edgeaudit-catalog", "-p", "no:cacheprovider",
                               "-p", "no:terminal", "--import-mode=importlib", plugins=[marks]).ret
    assert code == pytest.ExitCode.OK
    declared = catalog.controls(SUITES)
    assert set(declared) == set(marks.controls) and len(declared) == 101
    for control, seen in marks.controls.items():
        assert (declared[control].severity, declared[control].reads, set(declared[control].markers)) == (
            seen["severity"], seen["reads"], seen["marks"]), control


def test_cadences_and_categories_are_the_markers_files():
    assert catalog.CADENCES == ("daily", "weekly", "monthly", "quarterly", "deploy")
    assert catalog.CATEGORIES == ("security", "dr", "performance", "cost", "availability", "infrastructure")
    root = REPO / "markers.ini"
    assert root.is_symlink() and root.resolve() == catalog.MARKERS_FILE.resolve()
    assert not catalog.MARKERS_FILE.is_symlink(), "the package carries the file itself (a wheel holds no link)"


def test_manual_controls_and_their_cadence_come_from_their_markers():
    manual = catalog.manual_cadences(SUITES)
    assert manual == {"EA-MAN-01": "monthly", "EA-MAN-02": "monthly", "EA-MAN-03": "monthly",
                      "EA-MAN-04": "quarterly", "EA-MAN-05": "quarterly", "EA-MAN-06": "quarterly",
                      "EA-MAN-07": "quarterly"}
    for control in manual:
        assert len(catalog.controls(SUITES)[control].cadences) == 1, control


NEW_MODULE = '''
import pytest


@pytest.mark.control("EA-NEW-01", severity="P3", frameworks=dict(FSBP="S3.14"), reads=("s3:GetBucketVersioning",))
@pytest.mark.weekly
@pytest.mark.dr
def test_new(aws, target):
    """A new control."""


def made(*marks):
    def test():
        """A manual one."""
    for mark in marks:
        test = mark(test)
    return test


test_made = made(pytest.mark.control("EA-MAN-09", severity="P4"), pytest.mark.monthly)
'''


def _config(control: str) -> dict[str, Any]:
    today = dt.date.today()
    return {"targets": [{"name": "www", "url": "https://www.example.com/", "bucket": "b", "distribution_id": "E1"}],
            "waivers": [{"control": control, "reason": "r", "approved_by": "me",
                         "expires": today + dt.timedelta(days=10)}]}


def test_a_new_control_is_known_from_its_own_module(tmp_path):
    """Adding a control is one module under suites/: waivers may name it, attestations of a new
    manual control take its cadence, its reads are made ahead and tried by the preflight."""
    (tmp_path / "test_new.py").write_text(NEW_MODULE)
    declared = catalog.controls(tmp_path)
    assert set(declared) == {"EA-NEW-01", "EA-MAN-09"}
    assert declared["EA-NEW-01"].reads == ("s3:GetBucketVersioning",)
    assert declared["EA-NEW-01"].markers == {"weekly", "dr"} and declared["EA-NEW-01"].cadences == ("weekly",)
    assert catalog.manual_cadences(tmp_path) == {"EA-MAN-09": "monthly"}
    catalog.use_suites(tmp_path)
    try:
        assert parse(tmp_path / "edgeaudit.toml", _config("EA-NEW-01")).waivers[0].control == "EA-NEW-01"
        with pytest.raises(ConfigError, match=r"waivers\[0\]\.control.*unknown control EA-S3-05"):
            parse(tmp_path / "edgeaudit.toml", _config("EA-S3-05"))  # not a control of this folder
        assert [p.action for p in preflight.probes_for(["EA-NEW-01"])] == ["s3:GetBucketVersioning"]
        assert [r.name for r in prefetch.READS if r.needed(_Target(), catalog.reads_of({"EA-NEW-01"}))] == [
            "s3:GetBucketVersioning"]
    finally:
        catalog.done_with_suites()
    assert catalog.suites_folder() != tmp_path


class _Target:
    bucket, distribution_id = "b", "E1"


def _declared_reads() -> dict[str, set[str]]:
    reads: dict[str, set[str]] = {}
    for control in catalog.controls(SUITES).values():
        for read in control.reads:
            reads.setdefault(read, set()).add(control.id)
    return reads


def test_declared_reads_are_botocore_operations():
    session = botocore.session.get_session()
    for read, controls in _declared_reads().items():
        service, _, operation = read.partition(":")
        assert operation in session.get_service_model(service).operation_names, (read, controls)


def test_the_guard_lets_every_declared_read_through():
    """The guard's list stays explicit (a control cannot widen it); a control that declares a read
    the list lacks fails here, before its first run fails."""
    missing = {read: controls for read, controls in _declared_reads().items() if not guard.is_read(*read.split(":"))}
    assert not missing, f"reads declared by controls but not on guard.READS: {missing}"


def test_the_documented_policy_is_the_generated_one_and_grants_every_declared_read():
    page = (REPO / "docs" / "iam-policy.md").read_text()
    block = page.split("## The read-only IAM policy", 1)[1].split("```json\n", 1)[1].split("```", 1)[0]
    assert block == auditrole.policy_json("example-www-drills"), (
        "regenerate docs/iam-policy.md: edgeaudit audit-role --format policy --scratch-bucket example-www-drills")
    granted = set(json.loads(block)["Statement"][0]["Action"])
    needed = {iam_action(*read.split(":")) for read in _declared_reads()}
    assert needed <= granted, f"missing from the generated policy: {sorted(needed - granted)}"


def test_every_read_made_ahead_and_every_probe_serves_a_declared_read():
    declared = _declared_reads()
    assert all(read.name in declared for read in prefetch.READS), [r.name for r in prefetch.READS if r.name not in declared]
    actions = preflight.actions_of(sorted(catalog.known_ids(SUITES)))
    assert all(probe.action in actions for probe in preflight.PROBES), [p.method for p in preflight.PROBES
                                                                       if p.action not in actions]


def test_a_control_marker_the_catalog_cannot_read_stops_collection(tmp_path, capsys, pytester):
    """The catalog reads literals only: a control whose id is computed would be unknown to the
    config's checks, so collection stops with a usage error that says how to write it."""
    (tmp_path / "pytest.ini").write_text("[pytest]\ntestpaths = suites\nedgeaudit_builtin_controls = false\n")
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "test_computed.py").write_text(
        'import pytest\n\nFAMILY = "S3"\n\n\n'
        '@pytest.mark.control(f"EA-{FAMILY}-05", severity="P2")\n'
        'def test_computed():\n    """A control whose id is computed."""\n')
    code = pytester.inline_run("--rootdir", str(tmp_path), "-c", str(tmp_path / "pytest.ini"), str(tmp_path / "suites"),
                               "--collect-only", "--edgeaudit-catalog", "-p", "no:cacheprovider", "-p", "no:terminal").ret
    assert code == pytest.ExitCode.USAGE_ERROR
    assert "the catalog cannot read the control marker of EA-S3-05" in capsys.readouterr().err
