"""How the suite scales with the size of a fleet.

    python benchmarks/fleet.py [--sizes 1 10 50 200] [--objects 500] [--workers 1 4]
                               [--selection "daily or weekly"] [--latency-ms 30] [--vitals-runs 1]
                               [--build-workers 4] [--build-only] [--rounds 1]

Builds a moto fleet of N sites (each bucket with `--objects` objects, a distribution, a
certificate, and a local edge per site), runs `pytest -m SELECTION` over it with each
number of xdist workers, and writes benchmarks/results/fleet.json: wall seconds, AWS calls
per target, HTTP requests per target, peak memory and open files of the run, seconds per target. AWS calls
per target should not grow with N (the read cache works per target, xdist groups a target's
controls on one worker). While the suite runs, every AWS and edge answer waits `--latency-ms`,
as across a network: on loopback the run would measure this machine's cores, not the waiting
that workers overlap. The lab vitals load each page once (`--vitals-runs 1`, the suite's
default is 3): Chromium's page loads are measured on their own by benchmarks/vitals.py.

`--rounds K` runs each size and worker count K times over the same fleet, back to back (a soak:
a leak shows as peak memory or open files growing from round to round, in the suite's processes
or in this one, which serves the fleet's AWS and edges).

The fleet is built on `--build-workers` threads (1: one site after another). `--build-only`
builds the fleet and runs no suite: it writes benchmarks/results/fleet_build.json, the seconds
each size took to build and the process's peak memory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from edgeaudit.demo.builder import SiteSpec  # noqa: E402
from edgeaudit.demo.environment import DemoEnvironment, attested  # noqa: E402
from edgeaudit.rules import tomlwrite  # noqa: E402

SELECTION = "daily or weekly"
# Runs pytest as its child and reports the largest resident set among its descendants (MB).
PEAK = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, file=sys.stderr); sys.exit(code)")


@contextlib.contextmanager
def latency(env: DemoEnvironment, seconds: float) -> Iterator[None]:
    """While the suite runs, every AWS answer and every edge answer waits `seconds`, as across a
    real network. On loopback each costs a few milliseconds of CPU, and the run would measure this
    machine's cores rather than the waiting that the suite's parallel workers overlap."""
    server = env.server._server  # ThreadedMotoServer's WSGI server: its app is looked up per request
    app = server.app

    def delayed(environ: dict, start_response: Any) -> Any:
        time.sleep(seconds)
        return app(environ, start_response)

    server.app = delayed if seconds else app
    for site in env.sites:
        site.edge.latency_s = seconds
    try:
        yield
    finally:
        server.app = app
        for site in env.sites:
            site.edge.latency_s = 0.0


def grow(env: DemoEnvironment, size: int, objects: int, workers: int = 1) -> float:
    """Add sites until the fleet has `size` (one moto holds one fleet: it only grows), on
    `workers` threads; each site is named by its index, whichever thread builds it."""
    started = time.perf_counter()
    payload = tuple((f"data/item-{i:04d}.json", b'{"n": %d}' % i, "application/json") for i in range(objects))
    env.add_sites([SiteSpec(name=f"site-{n:03d}", extra_objects=payload) for n in range(len(env.sites), size)],
                  workers=workers)
    return time.perf_counter() - started


def build_only(sizes: list[int], objects: int, workers: int, out: Path) -> None:
    """Build each size of fleet (growing one fleet) and write how long each took."""
    rows = []
    env = DemoEnvironment.start(specs=[])
    try:
        for size in sorted(sizes):
            added = len(env.sites)
            build_s = grow(env, size, objects, workers)
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            total = build_s + (rows[-1]["build_s_total"] if rows else 0.0)
            rows.append({"sites": size, "sites_added": size - added, "build_s_added": round(build_s, 1),
                         "build_s_total": round(total, 1), "seconds_per_site": round(build_s / max(size - added, 1), 3),
                         "peak_rss_mb": round(rss_mb, 1)})
            print(f"{size:>6} sites: {build_s:8.1f} s for {size - added} added, peak {rss_mb:.0f} MB", flush=True)
    finally:
        env.stop()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    out.write_text(json.dumps({"benchmark": "fleet_build", "commit": commit.strip(), "objects_per_bucket": objects,
                               "build_workers": workers, "rows": rows, "machine": {
                                   "cpus": os.cpu_count(), "python": platform.python_version()}}, indent=2) + "\n")
    print(f"written to {out}")


def open_files(pid: int) -> int:
    """How many file descriptors the process holds (0 once it has gone)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def resident_mb(pid: int | str = "self") -> float:
    """The process's resident set now, in MB (Linux)."""
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


class OpenFilesWatch(threading.Thread):
    """Samples, once a second, the open files of every process below `root` (the suite and its
    xdist workers; Chromium's processes too) and keeps the largest count one of them held."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root, self.peak, self.done = root, 0, threading.Event()

    def descendants(self) -> list[int]:
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as stat:
                        parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
        found, frontier = [], [self.root]
        while frontier:
            pid = frontier.pop()
            children = [child for child, parent in parents.items() if parent == pid]
            found += children
            frontier += children
        return found

    def run(self) -> None:
        while not self.done.wait(1.0):
            self.peak = max([self.peak, *map(open_files, self.descendants())])


def run(env: DemoEnvironment, workers: int, workdir: Path, vitals_runs: int, latency_ms: float,
        selection: str) -> dict:
    config = workdir / "edgeaudit.toml"
    config.write_text(tomlwrite.dumps({"thresholds": {"vitals_runs": vitals_runs},
                                       "targets": [s.target_entry() for s in env.sites], "attestations": attested()}))
    reports = workdir / f"reports-{len(env.sites)}-n{workers}"
    before = sum(len(s.edge.requests_seen) for s in env.sites)
    environ = {**os.environ, **{k: v for k, v in env.aws_env.items() if v is not None}}
    for key in (k for k, v in env.aws_env.items() if v is None):
        environ.pop(key, None)
    command = [sys.executable, "-c", PEAK, sys.executable, "-m", "pytest", "-m", selection, "-q", "-p",
               "no:cacheprovider", "--edgeaudit-config", str(config), "--report-dir", str(reports),
               "-n", str(workers)]
    with latency(env, latency_ms / 1000):
        started = time.perf_counter()
        with subprocess.Popen(command, cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) as child:
            watch = OpenFilesWatch(child.pid)
            watch.start()
            out, err = child.communicate()
            watch.done.set()
            watch.join()
        wall = time.perf_counter() - started
    done = subprocess.CompletedProcess(command, child.returncode, out, err)
    peak_mb = float(done.stderr.strip().splitlines()[-1])
    report = json.loads(max(reports.glob("*Z.json")).read_text())  # the newest; not the .ocsf.json export
    size = len(env.sites)
    requests = sum(len(s.edge.requests_seen) for s in env.sites) - before
    return {"workers": workers, "wall_s": round(wall, 2), "seconds_per_target": round(wall / size, 3),
            "aws_calls_per_target": round(report["run"]["api_calls"] / size, 2),
            "http_requests_per_target": round(requests / size, 1), "peak_rss_mb": round(peak_mb, 1),
            "peak_open_files": watch.peak, "host_rss_mb": round(resident_mb(), 1),
            "host_open_files": open_files(os.getpid()),
            "results": len(report["results"]), "complete": report["complete"], "exit_code": done.returncode,
            "not_passed": dict(Counter(f"{r['control']} {r['outcome']}" for r in report["results"]
                                       if r["outcome"] in ("failed", "error")))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50, 200])
    parser.add_argument("--objects", type=int, default=500)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--output", type=Path, default=None,
                        help="default: benchmarks/results/fleet.json (fleet_build.json with --build-only)")
    parser.add_argument("--selection", default=SELECTION, help=f"the -m expression the suite runs (default: {SELECTION})")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each size and worker count, back to back (a soak)")
    parser.add_argument("--latency-ms", type=float, default=30.0,
                        help="added to every AWS and edge answer, as a network round trip (0: loopback only)")
    parser.add_argument("--vitals-runs", type=int, default=1,
                        help="page loads per critical path for the lab vitals (the suite's default is 3)")
    parser.add_argument("--build-workers", type=int, default=4, help="threads that build the fleet's sites")
    parser.add_argument("--build-only", action="store_true",
                        help="build the fleet only, and write benchmarks/results/fleet_build.json (or --output)")
    args = parser.parse_args()
    if args.build_only:
        return build_only(args.sizes, args.objects, args.build_workers,
                          args.output or ROOT / "benchmarks" / "results" / "fleet_build.json")
    rows = []
    print(f"{'sites':>6} {'workers':>7} {'wall s':>8} {'s/target':>9} {'AWS/target':>10} {'HTTP/target':>11} "
          f"{'peak MB':>8} {'files':>6} {'host MB':>8} {'host files':>10} {'build s':>8}")
    env = DemoEnvironment.start(specs=[])
    try:
        with tempfile.TemporaryDirectory() as workdir:
            for size in sorted(args.sizes):
                build_s = grow(env, size, args.objects, args.build_workers)
                for workers, round_ in ((w, r) for w in args.workers for r in range(1, args.rounds + 1)):
                    row = {"sites": size, "objects_per_bucket": args.objects, "build_s_added": round(build_s, 1),
                           **({"round": round_} if args.rounds > 1 else {}),
                           **run(env, workers, Path(workdir), args.vitals_runs, args.latency_ms, args.selection)}
                    rows.append(row)
                    print(f"{size:>6} {workers:>7} {row['wall_s']:>8.1f} {row['seconds_per_target']:>9.2f} "
                          f"{row['aws_calls_per_target']:>10.1f} {row['http_requests_per_target']:>11.1f} "
                          f"{row['peak_rss_mb']:>8.0f} {row['peak_open_files']:>6} {row['host_rss_mb']:>8.0f} "
                          f"{row['host_open_files']:>10} {build_s:>8.1f}", flush=True)
    finally:
        env.stop()
    out = args.output or ROOT / "benchmarks" / "results" / "fleet.json"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    out.write_text(json.dumps({"benchmark": "fleet", "commit": commit.strip(), "selection": args.selection,
                               "vitals_runs": args.vitals_runs, "latency_ms": args.latency_ms, "rounds": args.rounds,
                               "rows": rows,
                               "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                           "platform": platform.platform(),
                                           "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf(
                                               "SC_PHYS_PAGES") / 2**30, 1)}}, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
