"""The scratch context: the only way a control writes to AWS.

A disaster-recovery drill opens it on the target's `scratch_bucket`; it writes under
`_edgeaudit/<run id>/`, a prefix the read-only guard issued (guard.scratch_prefix(): a caller
cannot choose another), the guard lets exactly the drill's writes on keys under that prefix
through, and every object under the prefix is removed when the context closes, also
after a failure or Ctrl-C (a Ctrl-C pressed again during the removal waits for its end).
Opening it also removes what earlier runs left behind (a run killed hard cannot clean up)
once it is older than a day.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from edgeaudit.aws import guard
from edgeaudit.interrupts import Deferred

ROOT = guard.SCRATCH_ROOT
LEFTOVER_AGE = dt.timedelta(days=1)


def _keys_under(client: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o for page in pages for o in page.get("Contents", [])]


def _delete(client: Any, bucket: str, keys: list[str]) -> None:
    for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
        batch = keys[start:start + 1000]
        client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})


class Scratch:
    """`with Scratch(raw_s3_client, bucket) as scratch:` then `scratch.key("index.html")` names a
    key under the run's prefix; writes go through `client` (a raw boto3 S3 client)."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = guard.scratch_prefix()  # _edgeaudit/<run id>/, which sorts by time
        self.run_id = self.prefix[len(ROOT):-1]
        self.leftovers_removed: list[str] = []
        self._grant: Any = None

    def key(self, name: str) -> str:
        return self.prefix + name.lstrip("/")

    def __enter__(self) -> "Scratch":
        self._grant = guard.scratch(self.bucket, self.prefix)
        self._grant.__enter__()
        try:
            self.leftovers_removed = self._remove_old_runs()
        except BaseException:
            self._grant.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        with Deferred():  # a Ctrl-C during the removal waits for its end: nothing is left behind
            try:
                _delete(self.client, self.bucket, [o["Key"] for o in _keys_under(self.client, self.bucket, self.prefix)])
            finally:
                self._grant.__exit__(None, None, None)

    def remaining(self) -> list[str]:
        """Keys still under this run's prefix (empty once closed)."""
        return [o["Key"] for o in _keys_under(self.client, self.bucket, self.prefix)]

    def _remove_old_runs(self) -> list[str]:
        """Objects of earlier runs older than a day, removed run by run (each under its own
        delete-only grant)."""
        cutoff = dt.datetime.now(dt.timezone.utc) - LEFTOVER_AGE
        by_run: dict[str, list[str]] = {}
        for obj in _keys_under(self.client, self.bucket, ROOT):
            run, slash, _ = obj["Key"][len(ROOT):].partition("/")
            run_prefix = f"{ROOT}{run}/"
            if run and slash and run_prefix != self.prefix and obj["LastModified"] < cutoff:
                by_run.setdefault(run_prefix, []).append(obj["Key"])
        for run_prefix, keys in by_run.items():
            with guard.scratch_cleanup(self.bucket, run_prefix):
                _delete(self.client, self.bucket, keys)
        return sorted(k for keys in by_run.values() for k in keys)
