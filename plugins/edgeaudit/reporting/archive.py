"""Archiving the report set off the runner (`[report] archive = "s3://bucket/folder/"`, or
`edgeaudit merge --archive`): a CI runner is thrown away after the run, so the evidence an
auditor asks for later is uploaded to a bucket the organisation keeps.

The set goes under `<folder><report name>-<digest>/`, one object per file, after it was written
locally; the digest is the start of the JSON report's SHA-256, so no one can know the folder
before the run has ended (a control cannot plant a forged report there in advance). Each upload
is a PutObject of a new key only: it carries a SHA-256 checksum (which S3 checks, and which an
Object Lock bucket requires) and `If-None-Match: *`, so that an object already there is never
replaced; nothing is ever deleted. An object already there is tampering: someone wrote into a
folder only the run could name; the result says so loudly. The writes pass the read-only guard
through the run's evidence door (guard.EvidenceDoor, which the run hands in), which lets them
under the declared folder and nowhere else. Then the bucket's Object Lock configuration and each
object's retention are read back, so that the report says under which retention (mode and
until-date) the evidence lies.

An archive that could not complete is a safety check that failed: the result says so (status
"failed" and an error naming the IAM action and the bucket), and the run's exit code is 1.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from edgeaudit.aws import guard
from edgeaudit.aws.clients import client_config, error_code, iam_action
from edgeaudit.reporting.report import write_json
from edgeaudit.rules.location import S3_SCHEME, split

PAGE_SLOT = "<!--edgeaudit:archive-->"  # where the HTML report's header takes the archive's line
CONTENT_TYPES = {".json": "application/json", ".html": "text/html; charset=utf-8", ".csv": "text/csv; charset=utf-8",
                 ".zip": "application/zip", ".xml": "application/xml"}
# GetObjectLockConfiguration on a bucket without Object Lock; GetObjectRetention on an object without retention
NO_LOCK = ("ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration", "InvalidRequest")
DIGEST_CHARS = 16  # of the JSON report's SHA-256, in the folder's name


@dataclass(frozen=True)
class ArchivePlace:
    """A bucket and a folder in it, from a checked `s3://bucket/folder/` value."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> ArchivePlace:
        return cls(*split(url))

    def folder(self, name: str) -> str:
        """The key prefix of one report set: <folder><name>/."""
        return f"{self.prefix}{name}/"


class ArchiveFailed(RuntimeError):
    """One step of the archive could not be done; the message names the IAM action and the bucket."""


class ArchiveTampered(ArchiveFailed):
    """An object was already at a key of the set: someone else wrote there."""

    def __init__(self, url: str) -> None:
        super().__init__(f"TAMPERING: {url} was already there before the run uploaded its evidence to a folder "
                         "no one could name before the run ended (it holds the report's digest): someone else "
                         "wrote into the archive. It was left as found, and the run's copy was not uploaded")
        self.url = url


def archive_set(files: list[Path], place: ArchivePlace, name: str, s3: Any = None, *,
                door: guard.EvidenceDoor | None) -> dict[str, Any]:
    """Upload `files` under <folder><name>/ through the run's evidence `door` and read their
    retention back; the `run.archive` entry of the report: status "archived" or "failed" (with
    `error`, and `tampering` naming an object someone else put there), where, and under what."""
    folder = place.folder(name)
    entry: dict[str, Any] = {"status": "failed", "location": f"{S3_SCHEME}{place.bucket}/{folder}",
                             "objects": [], "object_lock": None, "retention": None}
    try:
        s3 = s3 or archive_client()
    except BotoCoreError as exc:  # a profile that does not exist, a bad region
        entry["error"] = f"no S3 client for the archive in bucket {place.bucket}: {exc}"
        return entry
    try:
        if door is None:
            raise ArchiveFailed("the archive is written by the run's own end-of-run code only (no evidence door)")
        with door.writes(place.bucket, folder):
            for path in files:
                entry["objects"].append(_put(s3, place.bucket, folder + path.name, _read(path)))
        entry["object_lock"], default = _lock_configuration(s3, place.bucket)
        if entry["object_lock"]:
            entry["default_retention"] = default
            entry["retention"] = _retention(s3, place.bucket, entry["objects"])
        entry["status"] = "archived"
    except (ArchiveFailed, guard.ReadOnlyViolation) as exc:  # the guard: the folder is not a declared one
        entry["error"] = str(exc)
        if isinstance(exc, ArchiveTampered):
            entry["tampering"] = exc.url
    return entry


def archive_client() -> Any:
    """An S3 client of the run's own credentials (the default chain: the CI role, a profile)."""
    return boto3.session.Session().client("s3", config=client_config("s3"))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ArchiveFailed(f"{path} could not be read for the archive ({exc.strerror or exc})") from None


def _put(s3: Any, bucket: str, key: str, body: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(body).digest()
    try:
        answer = s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*",  # never over an object
                               ChecksumAlgorithm="SHA256", ChecksumSHA256=base64.b64encode(digest).decode(),
                               ContentType=CONTENT_TYPES.get(Path(key).suffix, "application/octet-stream"))
    except (ClientError, BotoCoreError) as exc:
        if isinstance(exc, ClientError) and error_code(exc) == "PreconditionFailed":
            raise ArchiveTampered(f"{S3_SCHEME}{bucket}/{key}") from None
        raise ArchiveFailed(_refused("PutObject", bucket, exc, key)) from None
    return {"key": key, "sha256": digest.hex(), "version_id": answer.get("VersionId")}


def _lock_configuration(s3: Any, bucket: str) -> tuple[bool, dict[str, Any] | None]:
    """(Object Lock enabled?, its default retention rule {mode, days|years} or None)."""
    try:
        lock = s3.get_object_lock_configuration(Bucket=bucket).get("ObjectLockConfiguration", {})
    except ClientError as exc:
        if error_code(exc) in NO_LOCK:
            return False, None
        raise ArchiveFailed(_refused("GetObjectLockConfiguration", bucket, exc)) from None
    except BotoCoreError as exc:
        raise ArchiveFailed(_refused("GetObjectLockConfiguration", bucket, exc)) from None
    rule = lock.get("Rule", {}).get("DefaultRetention")
    default = ({"mode": rule.get("Mode"), **{k.lower(): rule[k] for k in ("Days", "Years") if rule.get(k)}}
               if rule else None)
    return lock.get("ObjectLockEnabled") == "Enabled", default


def _retention(s3: Any, bucket: str, objects: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Each object's retention as S3 holds it; the set's is the shortest (None: some object has none)."""
    for entry in objects:
        version = {"VersionId": entry["version_id"]} if entry["version_id"] else {}
        try:
            held = s3.get_object_retention(Bucket=bucket, Key=entry["key"], **version).get("Retention", {})
        except ClientError as exc:
            if error_code(exc) not in NO_LOCK:
                raise ArchiveFailed(_refused("GetObjectRetention", bucket, exc, entry["key"])) from None
            held = {}
        except BotoCoreError as exc:
            raise ArchiveFailed(_refused("GetObjectRetention", bucket, exc, entry["key"])) from None
        until = held.get("RetainUntilDate")
        entry["retention"] = ({"mode": held.get("Mode"), "until": _iso(until)} if until else None)
    held_all = [o["retention"] for o in objects]
    if not held_all or None in held_all:
        return None
    return min(held_all, key=lambda r: r["until"])


def _iso(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def _refused(operation: str, bucket: str, exc: Exception, key: str = "") -> str:
    """One line: the IAM action, the bucket (and key), what S3 answered, and what that means."""
    code = error_code(exc)
    where = f"{S3_SCHEME}{bucket}/{key}" if key else f"bucket {bucket}"
    meaning = {
        "AccessDenied": "the run's credentials lack it, or the bucket policy denies it",
        "NoSuchBucket": "the bucket does not exist",
        "PreconditionFailed": "an object is already there, and archived evidence is never overwritten",
        "InvalidRequest": "the bucket refused the request",
    }.get(code, "")
    if isinstance(exc, BotoCoreError):
        meaning = str(exc)
    return f"{iam_action('s3', operation)} on {where} refused: {code}" + (f" ({meaning})" if meaning else "")


def summary_line(entry: dict[str, Any]) -> str:
    """The terminal's line for the archive: where, and under which retention, or why it failed."""
    if entry.get("tampering"):
        return f"archive FAILED, {entry['error']} (the local reports are written)"
    if entry["status"] != "archived":
        return f"archive FAILED: {entry.get('error', 'not archived')} (the local reports are written)"
    retention = entry.get("retention")
    if retention:
        held = f"Object Lock {retention['mode']} until {retention['until']}"
    elif entry.get("object_lock"):
        held = "Object Lock enabled, but no retention on the objects (the bucket has no default rule)"
    else:
        held = "no Object Lock on the bucket (the objects can be changed or deleted)"
    return f"archive: {entry['location']} ({len(entry['objects'])} files; {held})"


def report_digest(path: Path) -> str:
    """The start of the JSON report's SHA-256: the archive folder's last part, known only once the
    run has ended (a report that cannot be read gets a random part; the upload then names it)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:DIGEST_CHARS]
    except OSError:
        return secrets.token_hex(DIGEST_CHARS // 2)


def archive_report(report: dict[str, Any], stem: Path, written: list[Path], url: str, name: str, *,
                   door: guard.EvidenceDoor | None) -> dict[str, Any]:
    """Archive the written set under <folder><name>-<digest>/, then record `run.archive` in the
    local JSON report (the archived copy is the report as it was before the upload: it cannot name
    its own retention), and its line in the local HTML report. A failed archive turns an exit code
    0 into 1: evidence that was to be kept and is not fails closed."""
    name = f"{name}-{report_digest(stem.with_suffix('.json'))}"
    entry = archive_set(written, ArchivePlace.parse(url), name, door=door)
    report["run"]["archive"] = entry
    if entry["status"] != "archived" and report["run"].get("exit_code") == 0:
        report["run"]["exit_code"] = 1
    write_json(stem.with_suffix(".json"), report)
    mark_page(stem.with_suffix(".html"), entry)
    return entry


def mark_page(page: Path, entry: dict[str, Any]) -> None:
    """Put the archive's line in the local HTML report, at the slot its header keeps (PAGE_SLOT):
    the auditor who opens the page sees where the evidence lies, or that the archive failed or
    was tampered with. Streamed, line by line: a fleet's page is tens of megabytes."""
    failed = entry.get("status") != "archived"
    line = (f'<p class="meta{" archive-failed" if failed else ""}" id="archive">'
            f"{html.escape(summary_line(entry))}</p>")
    marked = page.with_name(page.name + ".marking")
    try:
        with open(page, encoding="utf-8") as source, open(marked, "w", encoding="utf-8") as target:
            pending = True
            for text in source:
                if pending and PAGE_SLOT in text:
                    text, pending = text.replace(PAGE_SLOT, line, 1), False
                target.write(text)
        marked.replace(page)
    except OSError:
        marked.unlink(missing_ok=True)  # the JSON report and the terminal still say it
