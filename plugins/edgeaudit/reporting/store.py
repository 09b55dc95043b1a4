"""Where the run history lives: a local history.jsonl (the default, `<report dir>/history.jsonl`)
or an S3 location (`[report] history = "s3://bucket/prefix/history.jsonl"`), so that CI runners,
which start empty, share one history. Trends, the cadence ledger and EA-OPS-02 read it; each run
adds its line.

Concurrent runs (two shards finishing together) must lose no line. A local file takes an
exclusive lock around its append. In S3 each append is an object of its own,
`<prefix>history.d/<started>-<random>.json`, and a read lists the prefix and merges what it finds,
oldest first. This was chosen over rewriting one object with conditional writes (If-Match and a
retry on 412): no read-modify-write cycle means no lost update to guard against; the run needs
PutObject of new keys only (the guard's evidence grant never lets it overwrite or delete
history); and it works on every S3-compatible store, with or without conditional writes. A
history.jsonl object at the configured key itself (one kept by an older version, or uploaded
from a CI cache) is read too, before the per-run objects. The cost is one GetObject per run on
each read.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeaudit.aws import guard
from edgeaudit.aws.clients import error_code
from edgeaudit.filelock import locked
from edgeaudit.redact import redact, redact_text
from edgeaudit.rules.location import S3_SCHEME, is_s3, runs_prefix, split


class HistoryUnavailable(RuntimeError):
    """The history could not be read or written (access denied, no such bucket, unreachable)."""


def parse_lines(text: str) -> list[dict[str, Any]]:
    """The summary lines of a history text; a damaged line is passed over, not fatal."""
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and "started" in entry:
            entries.append(entry)
    return entries


def _text(entries: list[dict[str, Any]]) -> str:
    return "".join(redact_text(json.dumps(redact(e), sort_keys=True)) + "\n" for e in entries)


@dataclass(frozen=True)
class LocalHistory:
    """history.jsonl on this machine's disk."""

    path: Path

    @property
    def where(self) -> str:
        return str(self.path)

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return parse_lines(self.path.read_text(encoding="utf-8", errors="replace"))

    def append(self, entries: list[dict[str, Any]]) -> None:
        """Add lines under an exclusive lock, so that concurrent runs never interleave."""
        if not entries:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(self.path.name + ".lock")
        with locked(lock), open(self.path, "a", encoding="utf-8") as handle:
            handle.write(_text(entries))
            handle.flush()
            os.fsync(handle.fileno())


@dataclass(frozen=True)
class S3History:
    """The history in S3: `key` (an older single file, read only) and one object per append under
    `runs_prefix`."""

    bucket: str
    key: str

    @property
    def where(self) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.key}"

    @property
    def runs_prefix(self) -> str:
        """<prefix>history.d/ beside the configured history.jsonl key."""
        return runs_prefix(self.key)

    def _client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client("s3", config=Config(retries={"mode": "standard", "max_attempts": 5},
                                                                   connect_timeout=10, read_timeout=30))

    def read(self) -> list[dict[str, Any]]:
        """The older history.jsonl object, then every per-run object, merged oldest first."""
        from botocore.exceptions import BotoCoreError, ClientError

        s3 = self._client()
        try:
            entries = self._get(s3, self.key, missing_ok=True)
            keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.runs_prefix) for o in page.get("Contents", [])]
            for key in sorted(keys):
                entries += self._get(s3, key, missing_ok=True)  # gone between list and get: nothing to read
        except (ClientError, BotoCoreError) as exc:
            raise HistoryUnavailable(f"the history at {self.where} could not be read ({error_code(exc)})") from None
        return sorted(entries, key=lambda e: str(e.get("started", "")))

    def _get(self, s3: Any, key: str, *, missing_ok: bool) -> list[dict[str, Any]]:
        from botocore.exceptions import ClientError

        try:
            body = s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if missing_ok and exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return []
            raise
        return parse_lines(body.decode("utf-8", errors="replace"))

    def new_key(self, entries: list[dict[str, Any]]) -> str:
        """A key of its own for one append: the first line's start, then a random part."""
        started = re.sub(r"[^0-9TZ]", "", str(entries[0].get("started", ""))) or dt.datetime.now(
            dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        return f"{self.runs_prefix}{started}-{uuid.uuid4().hex}.json"

    def append(self, entries: list[dict[str, Any]]) -> None:
        """Put the lines as a new object; never rewrites or deletes one (the guard allows neither)."""
        from botocore.exceptions import BotoCoreError, ClientError

        if not entries:
            return
        try:
            with guard.evidence_writes(self.bucket, self.runs_prefix):
                self._client().put_object(Bucket=self.bucket, Key=self.new_key(entries),
                                          Body=_text(entries).encode("utf-8"), ContentType="application/x-ndjson")
        except (ClientError, BotoCoreError) as exc:
            raise HistoryUnavailable(f"the run's line could not be added to {self.where} ({error_code(exc)})") from None


HistoryStore = LocalHistory | S3History


def open_store(location: str | None, report_dir: Path) -> HistoryStore:
    """The store of a checked `[report] history` value; none set: <report dir>/history.jsonl."""
    if not location:
        return LocalHistory(report_dir / "history.jsonl")
    if is_s3(location):
        return S3History(*split(location))
    return LocalHistory(Path(location))
