"""How the replication comparison of EA-DR-02/03 scales: origin and replica of 1,000, 10,000
and 100,000 objects on moto, compared the way the control does (both buckets listed page by
page, one small record per key).

    python benchmarks/replication.py [--sizes 1000,10000,100000]

Prints, per size, the API calls and the seconds of the comparison, each per 1,000 objects, and
records them in benchmarks/results/replication.json. The buckets are filled through moto's
backend in this process (seeding is not what is measured); the comparison goes over HTTP.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import boto3
from moto.s3.models import s3_backends
from moto.server import ThreadedMotoServer

from edgeaudit.checks import replication

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT, PARTITION = "123456789012", "aws"


def seed(backend, bucket: str, count: int, stale_every: int = 0) -> None:
    for n in range(count):
        body = f"object {n}".encode()
        if stale_every and n % stale_every == 0:
            body += b" (older)"
        backend.put_object(bucket, f"site/{n // 1000:03d}/page-{n:06d}.html", body)


def measure(endpoint: str, count: int) -> dict[str, float]:
    backend = s3_backends[ACCOUNT][PARTITION]
    origin, replica = f"bench-origin-{count}", f"bench-replica-{count}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    for bucket in (origin, replica):
        s3.create_bucket(Bucket=bucket)
    seed(backend, origin, count)
    seed(backend, replica, count, stale_every=1000)  # one object in a thousand differs
    calls = []
    s3.meta.events.register("before-call.s3.ListObjectsV2", lambda **_: calls.append(1))
    started = time.perf_counter()
    pages = s3.get_paginator("list_objects_v2")
    result = replication.compare(pages.paginate(Bucket=origin), pages.paginate(Bucket=replica))
    seconds = time.perf_counter() - started
    assert result.origin_objects == count and len(result.stale) == -(-count // 1000), result
    for bucket in (origin, replica):
        backend.buckets.pop(bucket, None)  # keep memory small between sizes
    thousands = count / 1000
    return {"objects": count, "api_calls": len(calls), "seconds": round(seconds, 3),
            "api_calls_per_1000": round(len(calls) / thousands, 2),
            "seconds_per_1000": round(seconds / thousands, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    sizes = [int(s) for s in parser.parse_args().sizes.split(",")]
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        rows = [measure(f"http://{host}:{port}", size) for size in sizes]
    finally:
        server.stop()
    print(f"{'objects':>8} {'API calls':>10} {'seconds':>8} {'calls/1000':>11} {'s/1000':>8}")
    for row in rows:
        print(f"{row['objects']:>8} {row['api_calls']:>10} {row['seconds']:>8} "
              f"{row['api_calls_per_1000']:>11} {row['seconds_per_1000']:>8}")
    out = ROOT / "benchmarks" / "results" / "replication.json"
    out.write_text(json.dumps({"replication_comparison": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
