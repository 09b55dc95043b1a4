"""The package imports where fcntl does not exist (Windows): its file locks become no-ops."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from conftest import REPO

# Run with fcntl unimportable, as on Windows; prints what it proved.
PROBE = textwrap.dedent('''
    import importlib.abc, json, sys, tempfile
    from pathlib import Path

    class NoFcntl(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "fcntl":
                raise ModuleNotFoundError("No module named 'fcntl'", name=name)
            return None

    sys.modules.pop("fcntl", None)
    sys.meta_path.insert(0, NoFcntl())
    import edgeaudit.plugin, edgeaudit.cli, edgeaudit.web.browser, edgeaudit.demo.history
    from edgeaudit.web.browser import lab_slot
    from edgeaudit.reporting.store import LocalHistory

    folder = Path(tempfile.mkdtemp())
    entered = 0
    with lab_slot(folder / "lab.lock"):
        with lab_slot(folder / "lab.lock"):  # a held flock would block this second open file
            entered = 2
    LocalHistory(folder / "history.jsonl").append([{"run": 1}])
    LocalHistory(folder / "history.jsonl").append([{"run": 2}])
    print(json.dumps({"fcntl": "fcntl" in sys.modules, "entered": entered,
                      "history": (folder / "history.jsonl").read_text().splitlines()}))
''')


def test_package_imports_and_locks_are_no_ops_without_fcntl():
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    proved = json.loads(done.stdout.splitlines()[-1])
    assert proved == {"fcntl": False, "entered": 2, "history": ['{"run": 1}', '{"run": 2}']}
