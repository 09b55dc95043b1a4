"""The demo is an optional extra (`edgeaudit[demo]`): an install for real sites has no moto, so
the plugin imports the demo package only for --demo, and --demo without the extra ends with one
usage line saying how to add it."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from conftest import run_suite
from edgeaudit.demo.builder import SiteSpec

# A pytest plugin (loaded with -p, before edgeaudit's) that makes the named modules uninstalled.
UNINSTALL = '''
import importlib.abc, os, sys

GONE = set(os.environ["GONE_MODULES"].split(","))


class Uninstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in GONE:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Uninstalled())
'''

# A pytest plugin that writes the names of the modules the run imported, as it ends.
LOADED = '''
import json, os, sys


def pytest_unconfigure(config):
    with open(os.environ["LOADED_MODULES"], "w") as out:
        json.dump(sorted(sys.modules), out)
'''

DEMO_MODULES = ("moto", "flask", "werkzeug", "edgeaudit.demo")


def plugin(folder: Path, name: str, source: str) -> dict[str, str]:
    """The environment that puts plugin `name` on the path of a subprocess."""
    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    return {"PYTHONPATH": str(folder)}


def demo_modules(path: Path) -> list[str]:
    return [m for m in json.loads(path.read_text()) if m.partition(".")[0] in DEMO_MODULES
            or m.startswith("edgeaudit.demo")]


@pytest.mark.parametrize("gone", ["moto", "flask"])  # no moto at all; moto without its server
def test_demo_without_its_extra_is_one_usage_line(tmp_path, gone):
    env = {**plugin(tmp_path, "uninstall", UNINSTALL), "GONE_MODULES": gone}
    run = run_suite("-p", "uninstall", "--demo", cwd=tmp_path, env=env, report_dir=tmp_path / "reports")
    assert run.returncode == 4, run.output
    assert run.output.strip().splitlines() == [
        "ERROR: --demo: the demo environment needs the demo extra (moto's server), which is not installed "
        f"(no module named '{gone}'). Fix: pip install 'edgeaudit[demo]'"]
    assert not (tmp_path / "reports").exists()


def test_importing_the_plugin_and_its_command_leaves_the_demo_out(tmp_path):
    env = {**plugin(tmp_path, "loaded", LOADED), "LOADED_MODULES": str(tmp_path / "loaded.json")}
    # pytest loads edgeaudit.plugin (and its command line) in every run; here one with no controls
    (tmp_path / "test_plain.py").write_text("import edgeaudit.cli\n\ndef test_plain():\n    pass\n")
    run = run_suite("-p", "loaded", "test_plain.py", cwd=tmp_path, env=env, report_dir=tmp_path / "reports")
    assert run.returncode == 0, run.output
    loaded = json.loads((tmp_path / "loaded.json").read_text())
    assert "edgeaudit.plugin" in loaded and "edgeaudit.cli" in loaded
    assert demo_modules(tmp_path / "loaded.json") == []


def test_a_run_against_a_real_site_leaves_the_demo_out(world, suite_runner, tmp_path):
    site = world.add(SiteSpec(name="extra-free"))
    env = {**plugin(tmp_path, "loaded", LOADED), "LOADED_MODULES": str(tmp_path / "loaded.json")}
    run = suite_runner([site], "-p", "loaded", "-m", "daily", env=env)
    assert run.returncode in (0, 1), run.output
    assert run.report["complete"] is True and run.report["results"], run.output
    assert demo_modules(tmp_path / "loaded.json") == []
