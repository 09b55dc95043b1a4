"""`s3://bucket/key` locations as the config names them (the run history, the archive, a release
manifest): one reading of the scheme and one rule for a bucket's name."""

from __future__ import annotations

import re

S3_SCHEME = "s3://"
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")  # S3's rule for a bucket's name


def is_s3(location: str) -> bool:
    return location.startswith(S3_SCHEME)


def split(location: str) -> tuple[str, str]:
    """(bucket, key or prefix) of `s3://bucket/key`."""
    bucket, _, key = location.removeprefix(S3_SCHEME).partition("/")
    return bucket, key
