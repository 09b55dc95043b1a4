"""Where the run history lives: a local history.jsonl (the default, `<report dir>/history.jsonl`)
or an S3 location (`[report] history = "s3://bucket/prefix/history.jsonl"`), so that CI runners,
which start empty, share one history. Trends, the cadence ledger and EA-OPS-02 read it; each run
adds its line.

Concurrent runs (two shards finishing together) must lose no line. A local file takes an
exclusive lock around its append. In S3 each append is an object of its own,
`<prefix>history.d/<started>-<random>.json`, and a read lists the prefix and merges what it finds,
oldest first. This was chosen over rewriting one object with conditional writes (If-Match and a
retry on 412): no read-modify-write cycle means no lost update to guard against; the run needs
PutObject of new keys only (each with If-None-Match: *; the guard's evidence grant never lets it
overwrite or delete history, and only a store the run opened with its evidence door appends);
and it works on every S3-compatible store, with or without conditional writes. A
history.jsonl object at the configured key itself (one kept by an older version, or uploaded
from a CI cache) is read too, before the per-run objects. The cost is one GetObject per run on
each read.

A read is bounded, newest first: only the per-run objects of the last LISTED_DAYS are listed (a
key begins with its run's start), no more than MAX_OBJECT_BYTES of one object (a larger per-run
object is passed over, of a larger history.jsonl only its newest lines are read) and
MAX_HISTORY_BYTES in all; a line is at most MAX_LINE_BYTES. What is left out is named in the
warnings the read returns.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeaudit.aws import guard
from edgeaudit.aws.clients import error_code
from edgeaudit.filelock import locked
from edgeaudit.redact import redact, redact_text
from edgeaudit.rules.location import S3_SCHEME, is_s3, runs_prefix, split


MAX_OBJECT_BYTES = 4 * 2**20    # of one history object (a run's line, or the newest part of history.jsonl)
MAX_HISTORY_BYTES = 16 * 2**20  # of the whole history read by one run, newest objects first
MAX_LINE_BYTES = 2**20          # of one line: a fleet's measures fit well within
# the days of per-run objects an S3 read lists: more than any reader looks back (EA-OPS-02's
# annual window, 372 days on 7 January, and a raised cadence_grace_h)
LISTED_DAYS = 420


class HistoryUnavailable(RuntimeError):
    """The history could not be read or written (access denied, no such bucket, unreachable)."""


Sourced = tuple[str, dict[str, Any]]  # where a line was read (for the warnings about it), the line


def parse_lines(text: str, damaged: list[str] | None = None) -> list[dict[str, Any]]:
    """The summary lines of a history text; a damaged line (not JSON, nested too deep, too
    long, not a run's summary) is passed over, not fatal, and its start added to `damaged`."""
    entries = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line) if len(line) <= MAX_LINE_BYTES else None
        except (ValueError, RecursionError):
            entry = None
        if isinstance(entry, dict) and "started" in entry:
            entries.append(entry)
        elif damaged is not None:
            damaged.append(line[:40])
    return entries


def _sourced(text: str, source: str, warnings: list[str] | None) -> list[Sourced]:
    damaged: list[str] = []
    entries = [(source, entry) for entry in parse_lines(text, damaged)]
    if damaged and warnings is not None:
        warnings.append(f"{len(damaged)} line(s) of {source} are ignored: not a run's summary in JSON (or nested "
                        f"too deep, or over {MAX_LINE_BYTES} bytes), the first beginning {damaged[0]!r}")
    return entries


def _by_start(line: Sourced) -> str:
    return str(line[1].get("started", ""))


def _text(entries: list[dict[str, Any]]) -> str:
    return "".join(redact_text(json.dumps(redact(e), sort_keys=True)) + "\n" for e in entries)


def _tail(data: bytes, whole: int) -> str:
    """The text of the newest complete lines of an object of `whole` bytes whose end is `data`."""
    text = data.decode("utf-8", errors="replace")
    return text.split("\n", 1)[1] if len(data) < whole and "\n" in text else text


@dataclass(frozen=True)
class LocalHistory:
    """history.jsonl on this machine's disk."""

    path: Path

    @property
    def where(self) -> str:
        return str(self.path)

    def read(self, warnings: list[str] | None = None) -> list[dict[str, Any]]:
        return [entry for _, entry in self.read_sourced(warnings)]

    def read_sourced(self, warnings: list[str] | None = None, now: dt.datetime | None = None) -> list[Sourced]:
        """Its lines, oldest first: of a file larger than MAX_HISTORY_BYTES, the newest part."""
        if not self.path.is_file():
            return []
        with open(self.path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - MAX_HISTORY_BYTES))
            data = handle.read(MAX_HISTORY_BYTES)
        if size > MAX_HISTORY_BYTES and warnings is not None:
            warnings.append(f"{self.path} holds {size} bytes: only its newest {MAX_HISTORY_BYTES} were read")
        return _sourced(_tail(data, size), str(self.path), warnings)

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
    `runs_prefix`. Only a store holding the run's evidence door appends."""

    bucket: str
    key: str
    door: guard.EvidenceDoor | None = field(default=None, compare=False, repr=False)

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

    def read(self, warnings: list[str] | None = None) -> list[dict[str, Any]]:
        return [entry for _, entry in self.read_sourced(warnings)]

    def read_sourced(self, warnings: list[str] | None = None, now: dt.datetime | None = None) -> list[Sourced]:
        """The per-run objects newest first, then the newest part of the older history.jsonl
        object, within the bounds; merged oldest first. With `now`, only the objects named for the
        last LISTED_DAYS are listed (their keys begin with the run's start), and none named for
        after tomorrow: the listing is bounded by time, and future-dated objects are not read."""
        from botocore.exceptions import BotoCoreError, ClientError

        warnings = [] if warnings is None else warnings
        s3 = self._client()
        entries: list[Sourced] = []
        budget = MAX_HISTORY_BYTES
        try:
            listed = self._listed(s3, now, warnings)
            for item in sorted(listed, key=lambda o: o["Key"], reverse=True):
                where = f"{S3_SCHEME}{self.bucket}/{item['Key']}"
                if item.get("Size", 0) > MAX_OBJECT_BYTES:
                    warnings.append(f"{where} is passed over: {item['Size']} bytes, more than {MAX_OBJECT_BYTES}")
                    continue
                if item.get("Size", 0) > budget:
                    warnings.append(f"the history read stopped at {where}: {MAX_HISTORY_BYTES} bytes read")
                    budget = 0
                    break
                budget -= item.get("Size", 0)
                entries += self._get(s3, item["Key"], item.get("Size", 0), warnings)  # gone since the list: none
            if budget > 0:
                entries += self._get(s3, self.key, min(budget, MAX_OBJECT_BYTES), warnings)
        except (ClientError, BotoCoreError) as exc:
            raise HistoryUnavailable(f"the history at {self.where} could not be read ({error_code(exc)})") from None
        return sorted(entries, key=_by_start)

    def _listed(self, s3: Any, now: dt.datetime | None, warnings: list[str]) -> list[dict[str, Any]]:
        """The per-run objects, of the window around `now` when given (keys sort by start time)."""
        window: dict[str, str] = {}
        last = None
        if now is not None:
            window["StartAfter"] = f"{self.runs_prefix}{now - dt.timedelta(days=LISTED_DAYS):%Y%m%dT%H%M%SZ}"
            last = f"{self.runs_prefix}{now + dt.timedelta(days=1):%Y%m%dT%H%M%SZ}"
        listed = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.runs_prefix,
                                                                  **window):
            for item in page.get("Contents", []):
                if last is not None and item["Key"] > last:
                    warnings.append(f"objects of {S3_SCHEME}{self.bucket}/{self.runs_prefix} named for after "
                                    f"{now + dt.timedelta(days=1):%Y-%m-%d} are not read (dated in the future)")
                    return listed
                listed.append(item)
        return listed

    def _get(self, s3: Any, key: str, limit: int, warnings: list[str] | None = None) -> list[Sourced]:
        """The lines of one object, of its newest `limit` bytes at most; none if it is missing."""
        from botocore.exceptions import ClientError

        where = f"{S3_SCHEME}{self.bucket}/{key}"
        try:
            answer = s3.get_object(Bucket=self.bucket, Key=key, Range=f"bytes=-{max(limit, 1)}")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "InvalidRange"):
                return []
            raise
        data = answer["Body"].read(limit)
        total = str(answer.get("ContentRange", "")).rpartition("/")[2]  # "bytes 10-99/100"
        whole = int(total) if total.isdigit() else len(data)
        if whole > len(data) and warnings is not None:
            warnings.append(f"{where} holds {whole} bytes: only its newest {len(data)} were read")
        return _sourced(_tail(data, whole), where, warnings)

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
        if self.door is None:
            raise HistoryUnavailable(f"the run's line could not be added to {self.where} (only the run's own "
                                     "end-of-run code adds history)")
        try:
            with self.door.writes(self.bucket, self.runs_prefix):
                self._client().put_object(Bucket=self.bucket, Key=self.new_key(entries), IfNoneMatch="*",
                                          Body=_text(entries).encode("utf-8"), ContentType="application/x-ndjson")
        except (ClientError, BotoCoreError) as exc:
            raise HistoryUnavailable(f"the run's line could not be added to {self.where} ({error_code(exc)})") from None


HistoryStore = LocalHistory | S3History


def open_store(location: str | None, report_dir: Path, door: guard.EvidenceDoor | None = None) -> HistoryStore:
    """The store of a checked `[report] history` value; none set: <report dir>/history.jsonl. An S3
    store appends only with the run's evidence `door`."""
    if not location:
        return LocalHistory(report_dir / "history.jsonl")
    if is_s3(location):
        return S3History(*split(location), door=door)
    return LocalHistory(Path(location))
