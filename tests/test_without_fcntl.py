"""The package imports where fcntl does not exist (Windows), and its file locks still hold there:
the history's appends and the browser's lab slot exclude a second taker."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from conftest import REPO

# Run with fcntl unimportable, as on Windows; prints what it proved.
PROBE = textwrap.dedent('''
    import importlib.abc, json, os, sys, tempfile
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

    import filelock

    def taken(lock_file):
        """Is the lock held? A second taker that will not wait says so."""
        try:
            filelock.FileLock(lock_file, timeout=0).acquire()
        except filelock.Timeout:
            return True
        return False

    folder = Path(tempfile.mkdtemp())
    history = LocalHistory(folder / "history.jsonl")
    proved = {"fcntl": "fcntl" in sys.modules, "lock": filelock.FileLock.__name__}
    with lab_slot(folder / "lab.lock"):
        proved["lab slot held"] = taken(folder / "lab.lock")
    proved["lab slot released"] = not taken(folder / "lab.lock")
    history.append([{"run": 1}])
    synced = os.fsync
    def fsync(fd):  # append's last step before it lets go: is its lock held then?
        proved["history held"] = taken(folder / "history.jsonl.lock")
        synced(fd)
    os.fsync = fsync
    history.append([{"run": 2}])
    os.fsync = synced
    proved["history"] = (folder / "history.jsonl").read_text().splitlines()
    print(json.dumps(proved))
''')


def test_package_imports_and_its_locks_hold_without_fcntl():
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    proved = json.loads(done.stdout.splitlines()[-1])
    assert proved == {"fcntl": False, "lock": "SoftFileLock", "lab slot held": True, "lab slot released": True,
                      "history held": True, "history": ['{"run": 1}', '{"run": 2}']}
