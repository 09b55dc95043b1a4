"""A document the config names by location, `s3://bucket/key` or a local file (a release
manifest, the incident log), read whole: one reader, so that every such input meets the same
rules. An S3 object is read with s3:GetObject through the run's clients (an AccessDenied names
that action); a file the config resolved against its folder. What cannot be read, or is larger
than the reader's bound, leaves the control not evaluated, saying why and how to fix it.
"""

from __future__ import annotations

from pathlib import Path

from botocore.exceptions import ClientError

from edgeaudit.aws.clients import Aws
from edgeaudit.errors import NotEvaluated
from edgeaudit.rules.location import is_s3, split


def _too_large(what: str, location: str, size: int, limit: int) -> NotEvaluated:
    return NotEvaluated(f"{what} {location} is {size} bytes, over the {limit // 2**20} MB this read allows: not read. "
                        f"Fix: keep it under {limit // 2**20} MB (start a new one and point the config at it)")


def read_text(aws: Aws | None, location: str, what: str, fix: str, limit: int | None = None) -> str:
    """The text at `location` (UTF-8); `what` names it in messages ("release manifest"), `fix` says
    what to point the config at. `aws` may be None for a local file. Over `limit` bytes: not read."""
    if is_s3(location):
        if aws is None:
            raise NotEvaluated(f"{what} {location}: no AWS clients to read it with")
        bucket, key = split(location)
        try:
            answer = aws.s3.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            raise NotEvaluated(f"{what} {location}: {exc.response['Error']['Code']} from GetObject. "
                               f"Fix: {fix}") from None
        size = int(answer.get("ContentLength") or 0)
        if limit is not None and size > limit:
            answer["Body"].close()
            raise _too_large(what, location, size, limit)
        data = answer["Body"].read() if limit is None else answer["Body"].read(limit + 1)
    else:
        path = Path(location)
        try:
            size = path.stat().st_size
            if limit is not None and size > limit:
                raise _too_large(what, location, size, limit)
            with path.open("rb") as handle:
                data = handle.read() if limit is None else handle.read(limit + 1)
        except OSError as exc:
            raise NotEvaluated(f"{what} {location}: {exc.strerror}. Fix: {fix}") from None
    if limit is not None and len(data) > limit:
        raise _too_large(what, location, len(data), limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotEvaluated(f"{what} {location}: not UTF-8 text ({exc.reason} at byte {exc.start}). "
                           f"Fix: {fix}") from None
