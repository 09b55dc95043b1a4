"""The incident log ([incidents] log): JSON lines, a local file or an S3 object, that
`edgeaudit incident` appends to and EA-INC-01/02 read instead of GitHub issues.

It is append-only: one JSON object a line, and several lines may carry one `id`. An incident is
its lines merged in order: a later line's fields win, a field a line leaves out keeps its
earlier value. Its first line must give `detected`. Timestamps are ISO 8601 with a UTC offset.
A line that breaks these rules (not JSON, an unknown field, a naive timestamp, a bad level) makes
the whole log unreadable, naming file:line: a line skipped could be the late incident.

An append is one whole line with its newline: under the file lock locally, and in S3 as a
conditional write of the object read (If-Match its ETag, If-None-Match * when there was none),
so that a concurrent append is retried, never lost. The guard's run never appends.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from edgeaudit.aws import guard
from edgeaudit.aws.clients import Aws, error_code
from edgeaudit.checks.incident_rules import LEVELS, POSTMORTEM_LEVELS, Incident
from edgeaudit.checks.located import read_text
from edgeaudit.errors import NotEvaluated
from edgeaudit.filelock import locked
from edgeaudit.rules.location import is_s3, split

MAX_LOG_BYTES = 20 * 2**20  # a larger log is not read: start a new one
TIMES = ("detected", "acknowledged", "resolved", "postmortem_at", "recorded_at")
TEXTS = ("title", "reported_by", "acknowledged_by", "target")
FIELDS = ("id", "level", *TEXTS, "postmortem", *TIMES)
FIX = ("write one JSON object a line with the fields of docs/records.md (id, level P1..P4, detected, "
       "acknowledged, resolved, postmortem, ... timestamps with a UTC offset such as 2026-12-01T10:00:00Z), "
       "or record incidents with `edgeaudit incident`")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_RETRYABLE = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "412", "409"})


class Refused(ValueError):
    """An append that would break the log (or is made inside a run): the command's one message."""


class AppendFailed(RuntimeError):
    """The log could not be read or written (access, a file error, appends racing too often)."""


def timestamp(value: Any) -> dt.datetime:
    """An ISO 8601 time with a UTC offset, in UTC; raises ValueError naming what to write."""
    try:
        when = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise ValueError(f"{json.dumps(value)[:60]} is not a time with a UTC offset, such as 2026-12-01T10:00:00Z "
                         "or 2026-12-01T11:00:00+01:00")
    return when.astimezone(dt.timezone.utc)


def postmortem_url(value: Any) -> str:
    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname \
            or _CONTROL_CHARS.search(value):
        raise ValueError(f"postmortem {json.dumps(value)[:60]} is not an http(s) URL")
    return value


def checked(entry: Any) -> dict[str, Any]:
    """One line's fields, checked and with times parsed; raises ValueError naming the problem."""
    if not isinstance(entry, dict):
        raise ValueError("not a JSON object")
    unknown = sorted(set(entry) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (the fields: {', '.join(FIELDS)})")
    if not isinstance(entry.get("id"), str) or not entry["id"].strip() or _CONTROL_CHARS.search(entry["id"]):
        raise ValueError('no "id" (a non-empty string on one line)')
    fields: dict[str, Any] = {}
    for key, value in entry.items():
        if key in TIMES:
            try:
                fields[key] = timestamp(value)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        elif key == "level":
            if value not in LEVELS:
                raise ValueError(f"level {json.dumps(value)[:20]} is not one of {', '.join(LEVELS)}")
            fields[key] = value
        elif key == "postmortem":
            fields[key] = postmortem_url(value)
        elif key in TEXTS:
            if not isinstance(value, str) or not value.strip() or _CONTROL_CHARS.search(value):
                raise ValueError(f"{key}: not a non-empty string on one line")
            fields[key] = value
        else:
            fields[key] = value
    return fields


def _merged(earlier: dict[str, Any] | None, fields: dict[str, Any]) -> dict[str, Any]:
    """An incident's state after one more line; raises ValueError when the line cannot follow."""
    if earlier is None and "detected" not in fields:
        raise ValueError(f"the first line of incident {fields['id']!r} gives no detected time")
    state = {**(earlier or {}), **fields}
    if "postmortem" in fields and "postmortem_at" not in fields:
        if "recorded_at" not in fields:
            raise ValueError("a line that sets postmortem needs postmortem_at (or recorded_at): when it was linked")
        state["postmortem_at"] = fields["recorded_at"]
    for key in ("acknowledged", "resolved"):
        if key in state and state[key] < state["detected"]:
            raise ValueError(f"incident {fields['id']!r}: {key} {state[key].isoformat()} is before detected "
                             f"{state['detected'].isoformat()}")
    return state


def _incident(state: dict[str, Any]) -> Incident:
    return Incident(state["id"], state.get("level"), state["detected"], state.get("acknowledged"),
                    state.get("acknowledged_by"), state.get("resolved"), state.get("postmortem"),
                    state.get("postmortem_at"), title=state.get("title"), target=state.get("target"))


def _states(location: str, text: str) -> dict[str, dict[str, Any]]:
    """Every incident's merged fields, in the order each was first recorded."""
    states: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            try:
                entry = json.loads(line)
            except (ValueError, RecursionError) as exc:
                raise ValueError(f"not JSON ({str(exc)[:80]})") from None
            fields = checked(entry)
            states[fields["id"]] = _merged(states.get(fields["id"]), fields)
        except ValueError as exc:
            raise NotEvaluated(f"incident log {location}:{number}: {exc}. Fix: {FIX}") from None
    return states


def parse(location: str, text: str) -> list[Incident]:
    """The incidents of a log's text; a malformed line is NotEvaluated naming location:line."""
    return [_incident(state) for state in _states(location, text).values()]


def load(aws: Aws | None, location: str) -> list[Incident]:
    """Read and merge the log (s3:GetObject through `aws` for s3://, else the local file)."""
    where = "object" if is_s3(location) else "file"
    fix = (f"create the {where} (empty when no incident was recorded yet), record one with `edgeaudit incident`, "
           "or point [incidents] log at the log")
    return parse(location, read_text(aws, location, "incident log", fix, MAX_LOG_BYTES))


class LoggedIncidents:
    """The log's incidents as incident_rules.Source, for one target: those that name no target,
    and those that name this one. An incident that names a target the config does not have
    (`known`: every target of the config file, whatever the run selected) belongs to none: the
    log is not judged, since that incident could be the late one."""

    unlevelled = "has no level (P1..P4)"

    def __init__(self, location: str, incidents: list[Incident], target: str,
                 known: set[str] | None = None) -> None:
        self.where = f"incident log {location}"
        strays = [i for i in incidents if i.target is not None and known is not None and i.target not in known]
        if strays:
            raise NotEvaluated(f"incident {strays[0].id} of {location} names target {strays[0].target!r}, which the "
                               f"config has no target of: it would count for no target. Fix: record it again with "
                               f"`edgeaudit incident {strays[0].id} --target NAME` naming one of "
                               f"{', '.join(sorted(known or ()))}")
        self.incidents = [i for i in incidents if i.target in (None, target)]

    def opened(self, since: dt.date) -> list[Incident]:
        return [i for i in self.incidents if i.detected.date() >= since]

    def closed(self, since: dt.date, max_days: float) -> list[Incident]:
        return [i for i in self.incidents if i.level in POSTMORTEM_LEVELS and i.resolved is not None
                and i.resolved.date() >= since]


# --- appending (`edgeaudit incident`) ------------------------------------------------------------

def line_text(fields: dict[str, Any]) -> str:
    """One line of the log: the fields as JSON, times in UTC with Z, and its newline."""
    shown = {k: (v.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z") if isinstance(v, dt.datetime) else v)
             for k, v in fields.items() if v is not None}
    return json.dumps(shown, ensure_ascii=False, separators=(", ", ": ")) + "\n"


def appended(location: str, text: str, fields: dict[str, Any]) -> str:
    """`text` with the line of `fields` added (recorded_at now), after checking it against the log:
    a first line needs level and detected, an update an id the log knows. Raises Refused."""
    try:
        states = _states(location, text)
    except NotEvaluated as exc:
        raise Refused(f"{exc}; nothing was appended") from None
    line = {**fields, "recorded_at": fields.get("recorded_at") or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)}
    if fields["id"] not in states:
        missing = [key for key in ("level", "detected") if key not in fields]
        if missing:
            raise Refused(f"no incident {fields['id']!r} in {location}: open it with --level and --detected "
                          f"(missing: {', '.join('--' + key for key in missing)}), or name an incident of the log")
    try:
        _merged(states.get(fields["id"]), checked(json.loads(line_text(line))))
    except ValueError as exc:
        raise Refused(f"{location}: {exc}") from None
    return text + ("" if not text or text.endswith("\n") else "\n") + line_text(line)


def _refuse_inside_a_run() -> None:
    if guard.installed():
        raise Refused("the incident log is written by `edgeaudit incident`, outside a run: the read-only guard "
                      "is in force in this process")


def append_local(path: Path, fields: dict[str, Any]) -> None:
    """Append one line under the log's lock (`<log>.lock` beside it), creating the file."""
    _refuse_inside_a_run()
    with locked(path.with_name(path.name + ".lock")):
        try:
            before = path.read_text(encoding="utf-8") if path.exists() else ""
        except (OSError, UnicodeDecodeError) as exc:
            raise AppendFailed(f"{path}: cannot be read ({exc})") from None
        if len(before.encode("utf-8")) > MAX_LOG_BYTES:
            raise Refused(f"{path} is over {MAX_LOG_BYTES // 2**20} MB, which the controls do not read: start a new "
                          "log and point [incidents] log at it")
        text = appended(str(path), before, fields)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text[len(before):])
            handle.flush()
            os.fsync(handle.fileno())


def append_s3(s3: Any, location: str, fields: dict[str, Any], attempts: int = 5) -> None:
    """Append one line to the object: read it, put it back only if unchanged (If-Match its
    ETag; If-None-Match * when absent), and start again when another append came first."""
    _refuse_inside_a_run()
    bucket, key = split(location)
    for _ in range(attempts):
        try:
            answer = s3.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) not in ("NoSuchKey", "404"):
                raise AppendFailed(f"{location}: {error_code(exc)} from GetObject (needs s3:GetObject)") from None
            before, condition = "", {"IfNoneMatch": "*"}
        else:
            if int(answer.get("ContentLength") or 0) > MAX_LOG_BYTES:
                raise Refused(f"{location} is over {MAX_LOG_BYTES // 2**20} MB, which the controls do not read: "
                              "start a new log and point [incidents] log at it")
            try:
                before = answer["Body"].read().decode("utf-8")
            except UnicodeDecodeError as exc:
                raise Refused(f"{location}: not UTF-8 text ({exc.reason}); nothing was appended") from None
            condition = {"IfMatch": answer["ETag"]}
        text = appended(location, before, fields)
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"), ContentType="application/x-ndjson",
                          **condition)
            return
        except ClientError as exc:
            if error_code(exc) in _RETRYABLE:
                continue  # another append came between the read and the write: read again
            raise AppendFailed(f"{location}: {error_code(exc)} from PutObject (needs s3:PutObject)") from None
    raise AppendFailed(f"{location} changed under each of {attempts} attempts to append: nothing was appended, try again")
