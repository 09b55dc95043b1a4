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

from edgeaudit.aws import preflight
from edgeaudit.aws.clients import Aws
from edgeaudit.rules.catalog import reads_of
from edgeaudit.rules.config import Target


@dataclass(frozen=True)
class Read:
    """One read of the target's own resources: the client, its method (or "paginate:<method>")
    and its parameters from the target. It is made ahead when a selected control declares it
    (`reads=` on its control marker), as "service:Operation"."""

    service: str
    method: str
    params: Callable[[Target], dict[str, Any]]

    @property
    def name(self) -> str:
        """service:Operation, as a control declares it (get_bucket_policy -> GetBucketPolicy; no
        service model is loaded for it)."""
        method = self.method.removeprefix("paginate:")
        return f"{self.service}:{''.join(word.capitalize() for word in method.split('_'))}"

    def needed(self, target: Target, declared: set[str]) -> bool:
        return self.name in declared and all(self.params(target).values())

    def make(self, aws: Aws) -> None:
        client = getattr(aws, self.service)
        params = self.params(aws.target)
        with contextlib.suppress(Exception):  # the control that needs it meets the same error
            if self.method.startswith("paginate:"):
                client.paginate(self.method.removeprefix("paginate:"), **params)
            else:
                getattr(client, self.method)(**params)


def _bucket(target: Target) -> dict[str, Any]:
    return {"Bucket": target.bucket}


def _distribution(target: Target) -> dict[str, Any]:
    return {"Id": target.distribution_id}


READS: tuple[Read, ...] = (
    Read("sts", "get_caller_identity", lambda t: {}),  # first, alone: who the credentials are
    Read("s3", "get_bucket_policy", _bucket),
    Read("s3", "get_public_access_block", _bucket),
    Read("s3", "get_bucket_acl", _bucket),
    Read("s3", "get_bucket_encryption", _bucket),
    Read("s3", "get_bucket_versioning", _bucket),
    Read("s3", "get_bucket_lifecycle_configuration", _bucket),
    Read("s3", "get_bucket_logging", _bucket),
    Read("s3", "get_bucket_ownership_controls", _bucket),
    Read("s3", "get_bucket_website", _bucket),
    Read("s3", "get_bucket_replication", _bucket),
    Read("s3", "paginate:list_objects_v2", _bucket),
    Read("cloudfront", "get_distribution_config", _distribution),
    Read("cloudfront", "get_distribution", _distribution),
    Read("cloudfront", "paginate:list_invalidations", lambda t: {"DistributionId": t.distribution_id}),
)


def warm(aws: Aws, selected: Iterable[str], concurrency: int) -> int:
    """Make the reads the `selected` controls will make for `aws.target`, the first alone and the
    rest side by side; returns how many were made. Answers and errors land in the read cache.
    EA-OPS-01's probes depend on the selection too: they are made here as it will make them.
    With a concurrency of 1 nothing is read ahead: the controls read one at a time as they run."""
    if concurrency <= 1:
        return 0
    chosen = set(selected)
    declared = reads_of(chosen)
    tasks: list[Callable[[], Any]] = [partial(read.make, aws) for read in READS if read.needed(aws.target, declared)]
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
