"""A target's independent AWS reads, made side by side before its controls ask for them.

Without xdist a target's controls run one after another, each waiting for its own reads in
turn. The reads below depend on nothing but the target's config, so when the target's first
control asks for `aws`, those that a selected control makes are started at once, up to
`http_concurrency`, into the run's read cache; the controls then find their answers there. Only
reads of selected controls are made, so the run makes no call it would not have made anyway,
and the first read is made alone: refused credentials or a dead endpoint trip the breaker once
instead of once per read.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterable

from . import preflight
from .aws import Aws
from .config import Target

# The controls that read the distribution's configuration.
DISTRIBUTION_READERS = ("EA-CF-01", "EA-CF-02", "EA-CF-03", "EA-CF-04", "EA-CF-05", "EA-CF-06", "EA-CF-07",
                        "EA-CF-08", "EA-CF-09", "EA-CF-10", "EA-CF-11", "EA-CACHE-01", "EA-CACHE-03",
                        "EA-COST-04", "EA-DEP-02", "EA-DEP-04", "EA-DR-01", "EA-DR-04", "EA-DR-07",
                        "EA-PEN-03", "EA-TLS-06")


@dataclass(frozen=True)
class Read:
    """One read: the client, its method (or "paginate:<method>"), its parameters from the
    target, and the controls that make exactly this call."""

    service: str
    method: str
    params: Callable[[Target], dict[str, Any]]
    controls: frozenset[str]

    def needed(self, target: Target, selected: set[str]) -> bool:
        return bool(self.controls & selected) and all(self.params(target).values())

    def make(self, aws: Aws) -> None:
        client = getattr(aws, self.service)
        params = self.params(aws.target)
        with contextlib.suppress(Exception):  # the control that needs it meets the same error
            if self.method.startswith("paginate:"):
                client.paginate(self.method.removeprefix("paginate:"), **params)
            else:
                getattr(client, self.method)(**params)


def _read(service: str, method: str, params: Callable[[Target], dict[str, Any]], *controls: str) -> Read:
    return Read(service, method, params, frozenset(controls))


def _bucket(target: Target) -> dict[str, Any]:
    return {"Bucket": target.bucket}


def _distribution(target: Target) -> dict[str, Any]:
    return {"Id": target.distribution_id}


READS: tuple[Read, ...] = (
    # first, alone: who the credentials are
    _read("sts", "get_caller_identity", lambda t: {}, "EA-S3-01", "EA-S3-02", "EA-S3-10", "EA-IAM-01",
          "EA-IAM-02", "EA-IAM-03", "EA-IAM-04", "EA-COST-03", "EA-OPS-01"),
    _read("s3", "get_bucket_policy", _bucket, "EA-S3-02", "EA-S3-03", "EA-S3-10", "EA-IAM-01", "EA-IAM-02",
          "EA-IAM-04"),
    _read("s3", "get_public_access_block", _bucket, "EA-S3-01"),
    _read("s3", "get_bucket_acl", _bucket, "EA-S3-02"),
    _read("s3", "get_bucket_encryption", _bucket, "EA-S3-04"),
    _read("s3", "get_bucket_versioning", _bucket, "EA-S3-05"),
    _read("s3", "get_bucket_lifecycle_configuration", _bucket, "EA-S3-06"),
    _read("s3", "get_bucket_logging", _bucket, "EA-S3-07", "EA-IAM-06"),
    _read("s3", "get_bucket_ownership_controls", _bucket, "EA-S3-08"),
    _read("s3", "get_bucket_website", _bucket, "EA-S3-09"),
    _read("s3", "get_bucket_replication", _bucket, "EA-DR-02"),
    _read("s3", "paginate:list_objects_v2", _bucket, "EA-DEP-02", "EA-DEP-04", "EA-DR-01", "EA-DR-02",
          "EA-DR-03", "EA-DR-05"),
    _read("cloudfront", "get_distribution_config", _distribution, *DISTRIBUTION_READERS),
    _read("cloudfront", "get_distribution", _distribution, "EA-DEP-01", "EA-PEN-09"),
    _read("cloudfront", "paginate:list_invalidations", lambda t: {"DistributionId": t.distribution_id},
          "EA-DEP-03", "EA-CACHE-05"),
)


def warm(aws: Aws, selected: Iterable[str], concurrency: int) -> int:
    """Make the reads the `selected` controls will make for `aws.target`, the first alone and the
    rest side by side; returns how many were made. Answers and errors land in the read cache.
    EA-OPS-01's probes depend on the selection too: they are made here as it will make them.
    With a concurrency of 1 nothing is read ahead: the controls read one at a time as they run."""
    if concurrency <= 1:
        return 0
    chosen = set(selected)
    tasks: list[Callable[[], Any]] = [partial(read.make, aws) for read in READS if read.needed(aws.target, chosen)]
    if "EA-OPS-01" in chosen:
        tasks += [partial(_probe, aws, probe) for probe in preflight.probes_for(sorted(chosen))]
    if not tasks:
        return 0
    tasks[0]()
    if len(tasks) > 1:
        with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="edgeaudit-prefetch") as pool:
            list(pool.map(lambda task: task(), tasks[1:]))
    return len(tasks)


def _probe(aws: Aws, probe: preflight.Probe) -> None:
    with contextlib.suppress(Exception):
        preflight.try_all(aws, aws.target, [probe])
