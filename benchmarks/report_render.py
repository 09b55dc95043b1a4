"""How long the HTML report of 10,000 results takes to become interactive in headless Chromium.

    python benchmarks/report_render.py

Runs the measuring test of tests/test_report_browser.py and records its figures in
benchmarks/results/report_render.json (needs Debian's chromium and the dev extras).
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    env = {**os.environ, "EDGEAUDIT_RECORD_BENCHMARKS": "1"}
    done = subprocess.run([sys.executable, "-m", "pytest", "tests/test_report_browser.py", "-k", "ten_thousand",
                           "-s", "-q", "-p", "no:cacheprovider"], cwd=ROOT, env=env, check=False)
    print((ROOT / "benchmarks" / "results" / "report_render.json").read_text())
    sys.exit(done.returncode)
