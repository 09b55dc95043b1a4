"""`--shard auto`: the shard index and count a batch engine gives each of its parallel jobs
(a GitHub Actions matrix, a Kubernetes Indexed Job, an AWS Batch array job, GitLab's
`parallel`), so that one command line serves every job of the run."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

COUNT = "EDGEAUDIT_SHARD_COUNT"
MAX_COUNT = 10_000  # shards of one run; a larger count is a typo (or an attack on `merge`), not a fleet
SHARD_FLAG = "--shard"  # a scope's reason naming it is a shard's own: another shard may have run the control


@dataclass(frozen=True)
class Source:
    """Where an engine puts a job's index (and, when it does, the number of jobs)."""

    engine: str
    index: str                # the variable holding the index
    base: int                 # the engine's first index: 0 or 1
    count: str | None = None  # the engine's own count variable; None: EDGEAUDIT_SHARD_COUNT


# Precedence, first found wins: the variables set on purpose, then the engines, the job
# closest to the process first (a pod or a Batch child before the CI runner that started it).
SOURCES = (
    Source("EDGEAUDIT_SHARD_INDEX", "EDGEAUDIT_SHARD_INDEX", 0),
    Source("AWS Batch array job", "AWS_BATCH_JOB_ARRAY_INDEX", 0, "AWS_BATCH_JOB_ARRAY_SIZE"),
    Source("Kubernetes Indexed Job", "JOB_COMPLETION_INDEX", 0),
    Source("GitLab CI parallel job", "CI_NODE_INDEX", 1, "CI_NODE_TOTAL"),
)

HOW = ("Fix: run it as a parallel job of an engine, or set the variables yourself: GitHub Actions: "
       "EDGEAUDIT_SHARD_INDEX: ${{ strategy.job-index }} and EDGEAUDIT_SHARD_COUNT: ${{ strategy.job-total }} "
       "in the job's env; Kubernetes Indexed Job: EDGEAUDIT_SHARD_COUNT = the Job's completions "
       "(JOB_COMPLETION_INDEX is set by Kubernetes); AWS Batch: submit with --array-properties size=N "
       "(AWS_BATCH_JOB_ARRAY_INDEX and AWS_BATCH_JOB_ARRAY_SIZE are set by Batch); GitLab CI: parallel: N "
       "(CI_NODE_INDEX and CI_NODE_TOTAL); or use --shard K/N")


def shard_of(name: str, count: int) -> int:
    """The shard (1..count) that checks a target: its name's hash alone decides, so that adding a
    target moves no other."""
    return int(hashlib.sha256(name.encode()).hexdigest(), 16) % count + 1


class ShardError(ValueError):
    """`--shard auto` found no index, or a bad one: a usage error naming the variables."""


def whole_number(text: str) -> int | None:
    """A whole number written in ASCII digits (str.isdigit() also takes "٣" and "³"), else None."""
    text = text.strip()
    return int(text) if text and text.isascii() and text.isdigit() and len(text) <= 9 else None


def _number(environ: Mapping[str, str], name: str) -> int:
    number = whole_number(environ[name])
    if number is None or number > MAX_COUNT:
        raise ShardError(f"--shard auto: {name}={environ[name]!r} is not a whole number from 0 to {MAX_COUNT} in "
                         f"digits 0-9. Fix: set {name} to a number (an index counts from 0 in "
                         "EDGEAUDIT_SHARD_INDEX), or unset it")
    return number


def auto_shard(environ: Mapping[str, str]) -> tuple[int, int, Source]:
    """Shard K of N (K from 1, as `--shard K/N`) from the first source whose index is set."""
    source = next((s for s in SOURCES if environ.get(s.index, "").strip()), None)
    if source is None:
        names = ", ".join(s.index for s in SOURCES)
        raise ShardError(f"--shard auto: none of {names} is set, so this job's shard is unknown. {HOW}")
    index = _number(environ, source.index)
    count_name = source.count if source.count and environ.get(source.count, "").strip() else COUNT
    if not environ.get(count_name, "").strip():
        raise ShardError(f"--shard auto: {source.index} is set ({source.engine}) but {COUNT} is not: the number "
                         f"of shards is unknown. Fix: set {COUNT} to the number of parallel jobs, the same in "
                         "every job (a Kubernetes Indexed Job: its completions)")
    count = _number(environ, count_name)
    if count < 1:
        raise ShardError(f"--shard auto: {count_name}={count}: there is at least one shard. Fix: set {count_name} "
                         "to the number of parallel jobs")
    if count_name != COUNT and environ.get(COUNT, "").strip() and _number(environ, COUNT) != count:
        raise ShardError(f"--shard auto: {COUNT}={environ[COUNT].strip()} disagrees with {count_name}={count}. "
                         f"Fix: unset {COUNT}, or set it to {count}")
    if not source.base <= index < count + source.base:
        first, last = source.base, count - 1 + source.base
        raise ShardError(f"--shard auto: {source.index}={index} with {count_name}={count} is not a shard: "
                         f"{source.index} runs {first}..{last} ({source.engine}). Fix: set {count_name} to the number "
                         "of parallel jobs, the same in every job of the run")
    return index - source.base + 1, count, source
