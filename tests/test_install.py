"""The package as a user gets it: the built wheel installed in a fresh venv outside the checkout,
used from an empty folder the way the set-up of docs/getting-started.md says, with the controls shipped inside
it (edgeaudit.suites) and a user's own controls beside them.

It builds and installs for real (pip's cache keeps it to a minute or two) and runs in the
project's own `pytest tests -n 2`: the xdist workers share one build and one venv."""

from __future__ import annotations

import ast
import datetime as dt
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO, run_suite
from edgeaudit import __version__
from edgeaudit.filelock import locked
from edgeaudit.rules import catalog, tomlwrite
from edgeaudit.rules.config import parse

SUITES = REPO / "suites"
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "plugins", "suites")  # what the build reads
DOCUMENTED = {("EA-TLS-01", "warned"), ("EA-HDR-06", "failed"), ("EA-SITE-04", "failed")}

MINE = '''
import pytest


@pytest.mark.control("{id}", severity="P3")
@pytest.mark.daily
def test_mine(target, evidence):
    """The site has a name (a user's own control).

    Remediation: name it.
    """
    evidence.record("name", target.name)
    assert target.name
'''


@dataclass
class Venv:
    """A fresh virtual environment with the wheel installed."""

    root: Path
    wheel: Path

    @property
    def bin(self) -> Path:
        return self.root / ("Scripts" if os.name == "nt" else "bin")

    def run(self, *command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        """A command of the venv, as a user's shell with it activated runs it (no checkout in sight)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGEAUDIT_", "PYTHON", "VIRTUAL_ENV"))
               or k == "EDGEAUDIT_CHROMIUM_SANDBOX"}  # as root, the machine's own setting
        env.update(VIRTUAL_ENV=str(self.root), PATH=f"{self.bin}{os.pathsep}{env.get('PATH', '')}")
        return subprocess.run(list(command), cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def _build_and_install(where: Path) -> Venv:
    """`python -m build` (sdist and wheel) of a copy of the sources, its output kept in build.log,
    then `pip install '<wheel>[demo,lab]'`."""
    for stale in ("source", "dist", "venv"):  # what a failed attempt left
        shutil.rmtree(where / stale, ignore_errors=True)
    source = where / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=ignore, symlinks=False)
        else:
            shutil.copy2(path, source / name)
    # PYTHONDONTWRITEBYTECODE makes setuptools warn that it skips byte-compiling: the machine's
    # setting, not the package's; left out so that the build's own warnings are what the log holds
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    built = subprocess.run([sys.executable, "-m", "build", "--outdir", str(where / "dist"), str(source)],
                           check=True, capture_output=True, text=True, timeout=900, env=environ)
    (where / "build.log").write_text(built.stdout + built.stderr)
    wheel, = (where / "dist").glob("edgeaudit-*.whl")
    venv = Venv(where / "venv", wheel)
    subprocess.run([sys.executable, "-m", "venv", str(venv.root)], check=True, capture_output=True, timeout=300)
    done = venv.run("python", "-m", "pip", "install", "--quiet", f"{wheel}[demo,lab]", cwd=where)
    assert done.returncode == 0, done.stdout + done.stderr
    return venv


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Venv:
    """One build and one venv per test session: xdist's workers share them (the first builds)."""
    base = tmp_path_factory.getbasetemp()
    where = (base if worker_id == "master" else base.parent) / "edgeaudit-install"
    where.mkdir(exist_ok=True)
    with locked(where / ".lock"):
        ready = where / "ready.json"
        if not ready.exists():
            built = _build_and_install(where)
            ready.write_text(json.dumps({"root": str(built.root), "wheel": str(built.wheel)}))
        found = json.loads(ready.read_text())
    return Venv(Path(found["root"]), Path(found["wheel"]))


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    folder = tmp_path / "audit"
    folder.mkdir()
    return folder


def _report(done: subprocess.CompletedProcess[str], folder: Path) -> dict:
    """The JSON report the run names in its summary."""
    line = next((line for line in done.stdout.splitlines() if line.startswith("json:")), None)
    assert line, done.stdout + done.stderr
    path = Path(line.split(":", 1)[1].strip())
    return json.loads((path if path.is_absolute() else folder / path).read_text())


def _findings(report: dict) -> set[tuple[str, str]]:
    return {(r["control"], r["outcome"]) for r in report["results"] if r["outcome"] != "passed"}


def _setup_commands() -> list[str]:
    """The code block of docs/getting-started.md's "Set-up and a first run": the install, then the run."""
    section = REPO.joinpath("docs", "getting-started.md").read_text().split("## Set-up and a first run", 1)[1]
    block = section.split("```", 2)[1]
    return [line.strip() for line in block.strip().splitlines() if line.strip()]


# --- the wheel --------------------------------------------------------------------------------------

def test_the_wheel_carries_the_controls_and_every_package(venv):
    names = set(zipfile.ZipFile(venv.wheel).namelist())
    shipped = {f"edgeaudit/suites/{path.name}" for path in SUITES.glob("*.py")}
    assert shipped and shipped <= names, shipped - names
    packages = {path.parent.relative_to(REPO / "plugins").as_posix()
                for path in (REPO / "plugins" / "edgeaudit").rglob("__init__.py") if "__pycache__" not in path.parts}
    missing = {package for package in packages if f"{package}/__init__.py" not in names}
    assert not missing, f"add {missing} to [tool.setuptools] packages in pyproject.toml"
    assert {"edgeaudit/markers.ini", "edgeaudit/reporting/templates/report.html"} <= names


def test_the_build_warns_of_nothing(venv):
    log = (venv.wheel.parent.parent / "build.log").read_text()
    warnings = [line for line in log.splitlines() if "warning" in line.lower() or "would be ignored" in line]
    assert not warnings, "\n".join(warnings)


def test_the_distributions_pass_twine_check_strict(venv):
    dist = sorted(str(path) for path in venv.wheel.parent.iterdir())
    assert any(name.endswith(".tar.gz") for name in dist), dist
    done = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *dist], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_metadata_says_the_license_and_pytest(venv):
    with zipfile.ZipFile(venv.wheel) as wheel:
        [metadata] = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        text = wheel.read(metadata).decode()
        assert any(n.endswith("licenses/LICENSE") for n in wheel.namelist())
        assert "edgeaudit/py.typed" in wheel.namelist() and "edgeaudit/edgeaudit.example.toml" in wheel.namelist()
    assert "License-Expression: Apache-2.0" in text
    assert "Classifier: Framework :: Pytest" in text and "Classifier: Operating System :: OS Independent" in text
    assert "Requires-Dist: pytest<10,>=9.0" in text and "Requires-Dist: botocore<2,>=1.34" in text


def test_mypy_reads_the_installed_package_as_typed(venv, empty):
    (empty / "mine.py").write_text("from edgeaudit.errors import NotEvaluated\n\n"
                                   "def check() -> None:\n    raise NotEvaluated('no data')\n")
    python = venv.bin / "python"
    done = subprocess.run([sys.executable, "-m", "mypy", "--python-executable", str(python), "--strict",
                           "--no-incremental", "mine.py"], cwd=empty, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


def test_version_and_the_package_come_from_the_venv(venv, empty):
    done = venv.run("edgeaudit", "--version", cwd=empty)
    assert (done.returncode, done.stdout.strip()) == (0, f"edgeaudit {__version__}"), done.stderr
    code = "import edgeaudit, edgeaudit.suites; print(edgeaudit.__file__); print(edgeaudit.suites.__file__)"
    done = venv.run("python", "-c", code, cwd=empty)
    assert done.returncode == 0, done.stderr
    for path in map(Path, done.stdout.split()):
        assert venv.root in path.resolve().parents and REPO not in path.resolve().parents, path


def test_edgeaudit_run_lists_the_built_in_controls(venv, empty):
    done = venv.run("edgeaudit", "run", "--co", "-q", "--demo", "--no-report", cwd=empty)
    assert done.returncode == 0, done.stdout + done.stderr
    listed = {line.split("[", 1)[0] for line in done.stdout.splitlines() if "::" in line}
    assert listed == _suite_tests(), done.stdout
    assert "Warning" not in done.stdout + done.stderr  # as quiet as `pytest --co -q --demo`
    done = venv.run("edgeaudit", "controls", "--format", "json", cwd=empty)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) == len(catalog.controls(SUITES))
    assert not (empty / "reports").exists()


def _suite_tests() -> set[str]:
    """Every control of the checkout's suites/ as `module.py::test_name` (its module-level tests)."""
    found = set()
    for path in SUITES.glob("test_*.py"):
        tree = ast.parse(path.read_text())
        found |= {f"{path.name}::{node.name}" for node in tree.body if isinstance(node, ast.FunctionDef)
                  and node.name.startswith("test_")}
        found |= {f"{path.name}::{target.id}" for node in tree.body if isinstance(node, ast.Assign)
                  for target in node.targets if isinstance(target, ast.Name) and target.id.startswith("test_")}
    return found


# --- the documented set-up, in an empty folder ----------------------------------------------------------

def test_the_documented_set_up_gives_the_documented_findings(venv, empty):
    install, run = _setup_commands()
    assert install.startswith("pip install ") and "[demo,lab]" in install, install
    assert run == "pytest -m daily --demo"
    done = venv.run(*shlex.split(run), cwd=empty)
    assert done.returncode == 1, done.stdout + done.stderr  # the two failures
    assert _findings(_report(done, empty)) == DOCUMENTED


def test_a_users_own_control_runs_beside_the_built_in_ones(venv, empty):
    (empty / "suites").mkdir()
    (empty / "suites" / "test_mine.py").write_text(MINE.format(id="ACME-OWN-01"))
    done = venv.run("pytest", "-m", "daily", "--demo", "-n", "2", "-k", "test_mine or test_tls", cwd=empty)
    assert done.returncode == 0, done.stdout + done.stderr
    outcomes = {r["control"]: r["outcome"] for r in _report(done, empty)["results"]}
    assert outcomes["ACME-OWN-01"] == "passed"
    assert outcomes == {"ACME-OWN-01": "passed", "EA-TLS-01": "warned"}, outcomes


def test_a_users_control_reusing_a_built_in_id_names_both_files(venv, empty):
    (empty / "suites").mkdir()
    (empty / "suites" / "test_mine.py").write_text(MINE.format(id="EA-TLS-01"))
    done = venv.run("pytest", "-m", "daily", "--demo", cwd=empty)
    assert done.returncode == 4, done.stdout + done.stderr
    line, = [line for line in done.stderr.splitlines() if "EA-TLS-01" in line]
    assert "duplicate control id" in line and str(empty / "suites" / "test_mine.py") in line
    assert re.search(r"edgeaudit/suites/test_tls\.py", line) and "Fix:" in line, line


def test_a_users_control_may_not_take_the_built_in_prefix(venv, empty):
    """EA- is the built-in controls': a release adding EA-OWN-01 would otherwise break this run."""
    (empty / "suites").mkdir()
    (empty / "suites" / "test_mine.py").write_text(MINE.format(id="EA-OWN-01"))
    done = venv.run("pytest", "-m", "daily", "--demo", cwd=empty)
    assert done.returncode == 4, done.stdout + done.stderr
    line, = [line for line in done.stderr.splitlines() if "EA-OWN-01" in line]
    assert "uses the prefix EA-, reserved for edgeaudit's built-in controls" in line, line
    assert "Fix: give your own controls a prefix of your own, e.g. ACME-OWN-01" in line, line


# --- in the checkout (the editable install) -------------------------------------------------------------

def test_in_the_checkout_suites_is_the_built_in_folder(tmp_path):
    assert catalog.builtin_folder() == SUITES.resolve()
    env = {"EDGEAUDIT_CONFIG": str(tmp_path / "absent.toml"), "EDGEAUDIT_DEMO": None}
    run = run_suite("--co", "-q", "-n", "2", cwd=REPO, env=env, report_dir=tmp_path / "reports")
    assert run.returncode == 0, run.output
    assert f"{len(_suite_tests())} tests collected" in run.output  # once each, not twice


TARGET = {"name": "www", "url": "https://www.example.com/", "bucket": "b", "distribution_id": "E1"}


def test_a_config_in_the_folder_activates_and_the_built_ins_can_be_left_out(tmp_path):
    """No path given and an edgeaudit.toml there: the built-in controls, against its targets.
    A path given that reaches no controls: a plain pytest run. The ini option leaves them out."""
    (tmp_path / "edgeaudit.toml").write_text(tomlwrite.dumps({"targets": [TARGET]}))
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_plain.py").write_text("def test_plain():\n    pass\n")
    env = {"EDGEAUDIT_CONFIG": None, "EDGEAUDIT_DEMO": None}
    listed = run_suite("--co", "-q", cwd=tmp_path, env=env, report_dir=tmp_path / "reports")
    assert listed.returncode == 0, listed.output
    assert "test_acm.py::test_acm_certificate_renews[www]" in listed.output
    assert "tests/test_plain.py::test_plain" in listed.output  # the user's paths are still collected
    plain = run_suite("tests", "-q", cwd=tmp_path, env=env, report_dir=tmp_path / "plain-reports")
    assert plain.returncode == 0 and "1 passed" in plain.output, plain.output
    assert not (tmp_path / "plain-reports").exists()
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "test_mine.py").write_text(MINE.format(id="ACME-OWN-01"))
    (tmp_path / "pytest.ini").write_text("[pytest]\ntestpaths = suites\nedgeaudit_builtin_controls = false\n")
    own = run_suite("--co", "-q", cwd=tmp_path, env=env, report_dir=tmp_path / "reports")
    assert own.returncode == 0, own.output
    assert "suites/test_mine.py::test_mine[www]" in own.output and "1 test collected" in own.output, own.output


def test_waivers_may_name_a_users_control_and_a_built_in_one(tmp_path):
    (tmp_path / "test_mine.py").write_text(MINE.format(id="ACME-OWN-01"))
    expires = dt.date.today() + dt.timedelta(days=10)
    waivers = [{"control": control, "reason": "r", "approved_by": "me", "expires": expires}
               for control in ("ACME-OWN-01", "EA-S3-05")]
    catalog.use_suites(catalog.builtin_folder(), tmp_path)
    try:
        config = parse(tmp_path / "edgeaudit.toml", {"targets": [TARGET], "waivers": waivers})
        assert [w.control for w in config.waivers] == ["ACME-OWN-01", "EA-S3-05"]
        assert catalog.clashes() == []
    finally:
        catalog.done_with_suites()
    (tmp_path / "test_mine.py").write_text(textwrap.dedent(MINE.format(id="EA-S3-05")))
    clash, = catalog.clashes((catalog.builtin_folder(), tmp_path))
    assert str(tmp_path / "test_mine.py") in clash and str(SUITES / "test_s3.py") in clash
