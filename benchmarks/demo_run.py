"""How long a whole run of the suite takes on the embedded demo, and how many AWS calls it makes.

    python benchmarks/demo_run.py [--runs 3] [-n 2]

Runs `pytest --demo` (every marker) several times in a subprocess, prints a table, and writes
benchmarks/results/demo_run.json. Wall time includes starting moto and the local edge.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(workers: int) -> dict:
    with tempfile.TemporaryDirectory() as reports:
        command = [sys.executable, "-m", "pytest", "--demo", "-q", "--report-dir", reports, "-p", "no:cacheprovider"]
        if workers:
            command += ["-n", str(workers)]
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        report = json.loads(next(Path(reports).glob("*Z.json")).read_text())  # not the .ocsf.json export
    return {"wall_s": round(wall, 3), "results": len(report["results"]), "api_calls": report["run"]["api_calls"],
            "complete": report["complete"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("-n", "--workers", type=int, default=0, help="pytest-xdist workers (0: none)")
    args = parser.parse_args()
    runs = [one_run(args.workers) for _ in range(args.runs)]
    summary = {
        "benchmark": "demo_run", "workers": args.workers, "runs": runs,
        "median_wall_s": statistics.median(r["wall_s"] for r in runs),
        "results": runs[0]["results"], "api_calls": runs[0]["api_calls"],
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
    }
    out = ROOT / "benchmarks" / "results" / "demo_run.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{'run':>4} {'wall s':>8} {'results':>8} {'AWS calls':>10}")
    for i, r in enumerate(runs, 1):
        print(f"{i:>4} {r['wall_s']:>8.2f} {r['results']:>8} {r['api_calls']:>10}")
    print(f"median wall time {summary['median_wall_s']:.2f} s on {os.cpu_count()} CPUs; written to {out}")


if __name__ == "__main__":
    main()
