"""How the daily lab vitals cost grows with the number of critical paths: one demo site on a
local edge, its vitals measured as the `vitals` fixture does (one browser, vitals_runs fresh
loads per path) for 1, 5 and 20 critical paths.

    python benchmarks/vitals.py [--paths 1,5,20] [--runs 3] [--device mobile]

Prints the seconds in all and per page load, and records them in benchmarks/results/vitals.json.
The paths are distinct URLs of the site's pages (query strings make them distinct); every load
is a fresh browser context, so none is served from the browser's cache.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from edgeaudit.demo.builder import SiteSpec
from edgeaudit.demo.environment import DemoEnvironment
from edgeaudit.rules.config import Target
from edgeaudit.web.vitals import measure

ROOT = Path(__file__).resolve().parents[1]


def critical_paths(count: int) -> tuple[str, ...]:
    pages = ("/", "/about.html")
    return tuple(pages[n % 2] + (f"?v={n}" if n >= 2 else "") for n in range(count))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", default="1,5,20")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--device", choices=("mobile", "desktop"), default="mobile")
    args = parser.parse_args()
    env = DemoEnvironment.start(specs=[])
    rows = []
    try:
        entry = env.add(SiteSpec(name="bench")).target_entry()
        for count in (int(n) for n in args.paths.split(",")):
            target = Target("bench", entry["url"], entry["bucket"], entry["distribution_id"],
                            paths=critical_paths(count), ca_bundle=entry["ca_bundle"], device=args.device)
            started = time.perf_counter()
            vitals = measure(target, args.runs)
            seconds = time.perf_counter() - started
            assert vitals.lab_error is None, vitals.lab_error
            loads = count * args.runs
            rows.append({"paths": count, "runs_per_path": args.runs, "loads": loads, "seconds": round(seconds, 2),
                         "seconds_per_load": round(seconds / loads, 3), "browser": vitals.browser})
    finally:
        env.stop()
    print(f"{'paths':>6} {'loads':>6} {'seconds':>8} {'s/load':>7}")
    for row in rows:
        print(f"{row['paths']:>6} {row['loads']:>6} {row['seconds']:>8} {row['seconds_per_load']:>7}")
    out = ROOT / "benchmarks" / "results" / "vitals.json"
    out.write_text(json.dumps({"device": args.device, "machine": platform.machine(), "cpus": os.cpu_count(),
                               "daily_vitals": rows}, indent=2) + "\n")
    print(f"written: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
