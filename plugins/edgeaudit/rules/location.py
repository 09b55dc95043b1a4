"""`s3://bucket/key` locations as the config names them (the run history, the archive, a release
manifest): one reading of the scheme, one rule for a bucket's name, and the check of the
history's location. Below both the config (which checks the value) and the reporting store
(which opens it), so that neither needs the other."""

from __future__ import annotations

import re

S3_SCHEME = "s3://"
RUNS_FOLDER = "history.d/"  # one object per run's line, beside the history.jsonl key
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")  # S3's rule for a bucket's name


def is_s3(location: str) -> bool:
    return location.startswith(S3_SCHEME)


def split(location: str) -> tuple[str, str]:
    """(bucket, key or prefix) of `s3://bucket/key`."""
    bucket, _, key = location.removeprefix(S3_SCHEME).partition("/")
    return bucket, key


def check_location(value: str) -> str:
    """The value of `[report] history`, checked; raises TypeError(what to write) like the config's
    other checkers. A folder (ending in '/') means history.jsonl inside it."""
    if value.endswith("/"):
        value += "history.jsonl"
    if is_s3(value):
        bucket, key = split(value)
        if not BUCKET_NAME.fullmatch(bucket) or not key.endswith(".jsonl") or "//" in key or ".." in key.split("/"):
            raise TypeError('"s3://bucket/prefix/history.jsonl" (a bucket name, then a key ending in .jsonl) '
                            'or a local path')
    elif "://" in value:
        raise TypeError('an S3 location "s3://bucket/prefix/history.jsonl" or a local path (no other scheme)')
    elif not value.endswith(".jsonl"):
        raise TypeError('a path ending in .jsonl, such as "reports/history.jsonl", or an S3 location '
                        '"s3://bucket/prefix/history.jsonl"')
    return value


def runs_prefix(key: str) -> str:
    """<prefix>history.d/ beside a history.jsonl key: where each run's line is put."""
    folder = key.rpartition("/")[0]
    return f"{folder}/{RUNS_FOLDER}" if folder else RUNS_FOLDER


def evidence_place(location: str | None) -> tuple[str, str] | None:
    """The (bucket, prefix) the guard lets the run write history to, for guard.allow_evidence_in;
    None for a local history."""
    if not location or not is_s3(location):
        return None
    bucket, key = split(location)
    return bucket, runs_prefix(key)
