"""Loading and validating `edgeaudit.toml` into typed objects.

Every problem is one `ConfigError` that names the file, the key and the fix; the plugin turns
it into a pytest usage error (exit code 4).
"""

from __future__ import annotations

import datetime as dt
import difflib
import fnmatch
import ipaddress
import json
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

from edgeaudit.errors import ConfigError
from edgeaudit.rules.catalog import ID_PATTERN, known_ids, manual_cadences
from edgeaudit.rules.location import BUCKET_NAME, check_location, evidence_place, is_s3, split
from edgeaudit.rules.schedule import SCHEDULES, holds_until
from edgeaudit.rules.shards import shard_of
from edgeaudit.rules.thresholds import DEFAULTS, SPECS, Thresholds

DEFAULT_CONFIG_NAME = "edgeaudit.toml"
_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # fullmatch: "www\n" is not a name
# control characters, line and paragraph separators, and the bidirectional overrides that can
# hide or reorder what a report shows
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Target:
    """One site: a bucket behind a distribution, reached at `url`."""

    name: str
    url: str
    bucket: str
    distribution_id: str
    region: str | None = None
    http_url: str = ""
    paths: tuple[str, ...] = ("/",)
    ca_bundle: str | None = None
    replica_bucket: str | None = None
    scratch_bucket: str | None = None
    monthly_budget_usd: float | None = None
    allowed_writers: tuple[str, ...] = ()
    stack_name: str | None = None
    crux_api_key_env: str | None = None
    profile: str | None = None
    role_arn: str | None = None
    external_id: str | None = None
    allow_source_maps: bool = False
    cost_tag: tuple[str, str] | None = None   # (key, value) of the cost allocation tag of the site
    price_class: str | None = None            # the CloudFront price class the site should use
    deploy_window_s: float | None = None      # writes this close together are one deployment (EA-DR-04)
    release_manifest: str | None = None       # s3://bucket/key or a file: each release's object versions (EA-DR-01/04/05)
    lockfile: str | None = None               # the site's dependency lockfile (EA-OPS-04)
    browser_path: str | None = None           # Chromium for the lab measurements (EA-PERF-*)
    device: str = "mobile"                    # lab profile: "mobile" (throttled) or "desktop"
    baseline: str | None = None               # the snapshot EA-DR-06 compares with; none: baselines/<name>.json
    health_check_id: str | None = None        # a Route 53 health check of url's host: EA-MET-02 measures it
    absent: tuple[tuple[str, str], ...] = ()  # (key, reason): what the site declares it has none of

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    def declared_absent(self, key: str) -> str | None:
        """The reason the config gives for the site having no `key`; None when it gives none."""
        return dict(self.absent).get(key)

    def __repr__(self) -> str:
        """Short, for failure logs: the name and URL, none of the credentials' settings."""
        return f"<Target {self.name} {self.url}>"

    def as_dict(self) -> dict[str, Any]:
        return {k: (dict(v) if k == "absent" else list(v) if isinstance(v, tuple) else v)
                for k, v in self.__dict__.items()}


# The keys a target may declare absent (`absent = { key = "reason" }`), and the controls that
# then skip: leaving a key out declares nothing, and those controls fail saying how to declare it.
DECLARABLE = {"replica_bucket": "EA-DR-02, EA-DR-03 and EA-DR-07", "monthly_budget_usd": "EA-COST-01",
              "lockfile": "EA-OPS-04"}


def undeclared(target: Target, key: str) -> str:
    """The failure of a control whose input the target neither sets nor declares absent."""
    return (f"target {target.name} sets no {key} and does not declare it absent, so {DECLARABLE[key]} cannot "
            f"judge it. Fix: set {key} in the target, or declare that the site has none, with the reason, "
            f'in the target: absent = {{ {key} = "why this site has none" }}')


@dataclass(frozen=True)
class Waiver:
    """An accepted risk: a failure of `control` (on `target`, or all) is reported as waived."""

    control: str
    reason: str
    approved_by: str
    expires: dt.date
    target: str | None = None

    def applies_to(self, control: str, target: str) -> bool:
        return self.control == control and self.target in (None, target)

    def is_live(self, today: dt.date) -> bool:
        return today <= self.expires

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "expires": self.expires.isoformat()}


@dataclass(frozen=True)
class Attestation:
    """A person's statement that a manual control (EA-MAN-*) was done."""

    control: str
    status: str
    attested_by: str
    date: dt.date
    evidence_url: str
    expires: dt.date
    target: str | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "date": self.date.isoformat(), "expires": self.expires.isoformat()}


@dataclass(frozen=True)
class GitHubSource:
    """Where the deploy workflow, its pull requests and the branch protection are read ([github]).
    `absent` is a declaration that there is none (the GitHub-backed controls skip, naming it)."""

    repository: str = ""
    token_env: str = ""
    api_url: str = "https://api.github.com"
    workflow: str = "deploy.yml"
    branch: str = "main"
    version_path: str | None = None     # a file on the target holding the commit SHA it serves (EA-DEP-05)
    emergency_label: str = "emergency"  # a PR label: merged unreviewed, reviewed after the merge (EA-CHG-01)
    incident_label: str = "incident"    # an issue label: an incident, with a level label P1..P4 (EA-INC-01/02)
    absent: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class IncidentSource:
    """Where EA-INC-01/02 read incidents when not from GitHub issues ([incidents]): `log`, a
    JSON-lines file (a path resolved against the config's folder, or s3://bucket/key) that
    `edgeaudit incident` appends to; or `absent`, a declaration that the site keeps none."""

    log: str | None = None
    absent: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Config:
    path: Path | None
    targets: tuple[Target, ...]
    thresholds: Thresholds
    waivers: tuple[Waiver, ...] = ()
    attestations: tuple[Attestation, ...] = ()
    threshold_overrides: dict[str, Any] = field(default_factory=dict)
    bundle: bool = False  # [report] bundle = true: write the signed evidence bundle
    archive: str | None = None  # [report] archive = "s3://bucket/prefix/": the report set is uploaded there
    history: str | None = None  # [report] history: s3://bucket/prefix/history.jsonl or a path; none: <report dir>
    github: GitHubSource | None = None  # [github]: the deploy workflow's repository; none: not configured
    incidents: IncidentSource | None = None  # [incidents]: the incident log; none: GitHub issues, if [github]

    def target(self, name: str) -> Target:
        return next(t for t in self.targets if t.name == name)

    def __repr__(self) -> str:
        """Short, for failure logs: the file and what it holds, never the targets' settings
        (role, external id, key names) nor the entries' text."""
        names = ", ".join(t.name for t in self.targets[:3]) + (", ..." if len(self.targets) > 3 else "")
        return (f"<Config {self.path.name if self.path else '(no file)'}: {len(self.targets)} targets ({names}), "
                f"{len(self.waivers)} waivers, {len(self.attestations)} attestations>")

    def select(self, patterns: list[str]) -> "Config":
        """Keep only the targets named by `--target` (names or glob patterns such as 'shop-*');
        a pattern that matches no target is an error."""
        if not patterns:
            return self
        known = [t.name for t in self.targets]
        for pattern in patterns:
            if not fnmatch.filter(known, pattern):
                raise ConfigError(self.path or "--target", f"--target {pattern}", "no target matches",
                                  f"use a name or pattern of: {', '.join(sorted(known)[:20])}")
        chosen = tuple(t for t in self.targets if any(fnmatch.fnmatchcase(t.name, p) for p in patterns))
        return replace(self, targets=chosen)

    def shard(self, index: int, count: int) -> "Config":
        """A deterministic 1/count of the targets (`--shard index/count`, index from 1): a target's
        shard depends on its name only, so adding a target moves no other."""
        chosen = tuple(t for t in self.targets if shard_of(t.name, count) == index)
        return replace(self, targets=chosen)

    def evidence_places(self) -> list[tuple[str, str]]:
        """The S3 (bucket, prefix) places the run may write its own evidence to: the history's
        per-run folder and the archive folder (guard.allow_evidence_in)."""
        places = [evidence_place(self.history)]
        if self.archive:
            places.append(split(self.archive))
        return [place for place in places if place]

    def effective(self) -> dict[str, Any]:
        """The config as the run used it (thresholds with defaults), for the evidence bundle."""
        return {"path": str(self.path), "thresholds": self.thresholds.as_dict(),
                "targets": [t.as_dict() for t in self.targets], "waivers": [w.as_dict() for w in self.waivers],
                "attestations": [a.as_dict() for a in self.attestations],
                "report": {"bundle": self.bundle, "archive": self.archive, "history": self.history},
                "github": self.github.as_dict() if self.github else None,
                "incidents": self.incidents.as_dict() if self.incidents else None}


# --- field checking ---------------------------------------------------------------------------

def _str(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TypeError("a non-empty string")
    return value


def _str_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise TypeError("a list of strings")
    return tuple(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("true or false")
    return value


def _line(value: Any) -> str:
    """A one-line string: a target's names reach test ids, reports and terminals, where a
    newline or an escape sequence could forge a line."""
    value = _str(value)
    if _CONTROL_CHARS.search(value) or value != value.strip():
        raise TypeError("one line of text without control characters or surrounding spaces")
    return value


def _text(value: Any) -> str:
    """Free text shown in reports (a waiver's reason): printable, on one line."""
    value = _str(value)
    if _CONTROL_CHARS.search(value):
        raise TypeError("one line of printable text, without control characters")
    return value


def _line_list(value: Any) -> tuple[str, ...]:
    values = _str_list(value)
    if any(_CONTROL_CHARS.search(v) or v != v.strip() for v in values):
        raise TypeError("a list of one-line strings without control characters or surrounding spaces")
    return values


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        raise TypeError("a finite number >= 0")
    return value


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise TypeError("a date such as 2027-02-01 (a TOML date, no quotes)")


def _url(value: Any) -> str:
    value = _line(value)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TypeError("an absolute http(s) URL such as https://www.example.com/")
    return value


def _tag(value: Any) -> tuple[str, str]:
    if not isinstance(value, dict) or set(value) != {"key", "value"} or not all(
            isinstance(v, str) and v for v in value.values()):
        raise TypeError('an inline table { key = "...", value = "..." }')
    return (value["key"], value["value"])


def _price_class(value: Any) -> str:
    if value not in ("PriceClass_100", "PriceClass_200", "PriceClass_All"):
        raise TypeError('one of "PriceClass_100", "PriceClass_200", "PriceClass_All"')
    return value


def _device(value: Any) -> str:
    if value not in ("mobile", "desktop"):
        raise TypeError('"mobile" (throttled as Lighthouse does) or "desktop" (unthrottled)')
    return value


def _absent(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not value or not all(
            k in DECLARABLE and isinstance(v, str) and v.strip() and not _CONTROL_CHARS.search(v)
            for k, v in value.items()):
        raise TypeError(f'an inline table of key = "reason", the keys among {", ".join(DECLARABLE)}, e.g. '
                        'absent = { replica_bucket = "single-region site, rebuilt from the repository" }')
    return tuple(sorted(value.items()))


def _health_check_id(value: Any) -> str:
    """A Route 53 health check's id: it lands in an IAM ARN and a CloudWatch dimension, so no
    wildcard and nothing but the letters, digits and hyphens Route 53 gives its ids."""
    value = _line(value)
    if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", value):
        raise TypeError('the id of a Route 53 health check, e.g. "abcdef11-2222-3333-4444-555555fedcba" '
                        "(`aws route53 list-health-checks` lists them)")
    return value


def _release_manifest(value: Any) -> str:
    value = _str(value)
    if is_s3(value) and not all(split(value)):
        raise TypeError('"s3://bucket/key" or the path of a JSON file, relative to this config')
    return value


def s3_folder(value: Any) -> str:
    """s3://bucket/prefix/: a bucket and a folder in it (the only place the run may write to)."""
    value = _line(value)
    bucket, prefix = split(value)
    if (not is_s3(value) or not BUCKET_NAME.fullmatch(bucket) or not prefix.endswith("/")
            or any(part in ("", ".", "..") for part in prefix[:-1].split("/"))):
        raise TypeError('"s3://bucket/folder/": a bucket name and a folder in it ending in "/", '
                        'e.g. "s3://example-audit-archive/edgeaudit/"')
    return value


def _history(value: Any) -> str:
    """[report] history: an S3 location or a local path of history.jsonl (reporting/store.py)."""
    return check_location(_line(value))


def _paths(value: Any) -> tuple[str, ...]:
    paths = _str_list(value)
    if not paths or not all(p.startswith("/") and not _CONTROL_CHARS.search(p) for p in paths):
        raise TypeError('a non-empty list of paths that start with "/", e.g. ["/", "/about/"]')
    return paths


def _shown(value: Any) -> str:
    """A value as an error message quotes it: escaped, and short."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# key -> (checker, required)
_Schema = dict[str, tuple[Callable[[Any], Any], bool]]

TARGET_SCHEMA: _Schema = {
    "name": (_line, True), "url": (_url, True), "bucket": (_line, True), "distribution_id": (_line, True),
    "region": (_line, False), "http_url": (_url, False), "paths": (_paths, False), "ca_bundle": (_line, False),
    "replica_bucket": (_line, False), "scratch_bucket": (_line, False), "monthly_budget_usd": (_number, False),
    "allowed_writers": (_line_list, False), "stack_name": (_line, False), "crux_api_key_env": (_line, False),
    "profile": (_line, False), "role_arn": (_line, False), "external_id": (_line, False),
    "allow_source_maps": (_bool, False),
    "cost_tag": (_tag, False), "price_class": (_price_class, False),
    "deploy_window_s": (_number, False), "release_manifest": (_release_manifest, False), "lockfile": (_line, False),
    "browser_path": (_line, False), "device": (_device, False), "absent": (_absent, False),
    "baseline": (_line, False), "health_check_id": (_health_check_id, False),
}
WAIVER_SCHEMA: _Schema = {
    "control": (_str, True), "reason": (_text, True), "approved_by": (_text, True),
    "expires": (_date, True), "target": (_str, False),
}
ATTESTATION_SCHEMA: _Schema = {
    "control": (_str, True), "status": (_str, True), "attested_by": (_str, True), "date": (_date, True),
    "evidence_url": (_url, True), "expires": (_date, True), "target": (_str, False), "note": (_str, False),
}
def _api_url(value: Any) -> str:
    """https, or http to a loopback address only (a token never crosses a network in clear)."""
    value = _url(value).rstrip("/")
    parts = urlsplit(value)
    if parts.scheme != "https" and not _loopback(parts.hostname or ""):
        raise TypeError("an https URL such as https://github.example.com/api/v3 (http only to a loopback address)")
    return value


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _repository(value: Any) -> str:
    value = _line(value)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", value):
        raise TypeError('"owner/name", e.g. "example/www"')
    return value


def _env_name(value: Any) -> str:
    value = _line(value)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise TypeError('the name of an environment variable, e.g. "GITHUB_TOKEN" (not the token itself)')
    return value


def _site_path(value: Any) -> str:
    value = _line(value)
    if not value.startswith("/"):
        raise TypeError('a path on the target starting with "/", e.g. "/version.txt"')
    return value


GITHUB_SCHEMA: _Schema = {
    "repository": (_repository, False), "token_env": (_env_name, False), "api_url": (_api_url, False),
    "workflow": (_line, False), "branch": (_line, False), "version_path": (_site_path, False),
    "emergency_label": (_line, False), "incident_label": (_line, False), "absent": (_line, False),
}
REPORT_SCHEMA: _Schema = {"bundle": (_bool, False), "archive": (s3_folder, False), "history": (_history, False)}


def incident_log(value: Any) -> str:
    """[incidents] log: "s3://bucket/key" or a local path (no other scheme, not a folder)."""
    value = _line(value)
    bucket, key = split(value)
    if is_s3(value):
        if not BUCKET_NAME.fullmatch(bucket) or not key or key.endswith("/") or ".." in key.split("/"):
            raise TypeError('"s3://bucket/key" (a bucket name, then the object\'s key), e.g. '
                            '"s3://example-ops/incidents.jsonl", or a local path such as "incidents.jsonl"')
    elif "://" in value or value.endswith(("/", "\\")):
        raise TypeError('the path of a file, relative to this config (e.g. "incidents.jsonl"), or '
                        '"s3://bucket/key"')
    return value


INCIDENTS_SCHEMA: _Schema = {"log": (incident_log, False), "absent": (_line, False)}
TOP_LEVEL = ("thresholds", "targets", "targets_file", "waivers", "attestations", "attestations_file", "report",
             "github", "incidents")


class _Validator:
    """Checks one parsed file; every method raises ConfigError naming the key."""

    def __init__(self, path: Path, known_controls: frozenset[str] | None = None) -> None:
        self.path = path
        self._known = known_controls

    @property
    def known_controls(self) -> frozenset[str]:
        """The ids given, else those the suites declare (read when a control id is first checked)."""
        if self._known is None:
            self._known = known_ids()
        return self._known

    def fail(self, key: str, problem: str, fix: str) -> None:
        raise ConfigError(self.path, key, problem, fix)

    def unknown_keys(self, where: str, table: dict[str, Any], known: tuple[str, ...] | list[str]) -> None:
        for key in table:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f'did you mean "{close[0]}"? ' if close else ""
                name = key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)  # as TOML quotes it
                self.fail(f"{where}{name}", "unknown key", f"{hint}remove it or use one of: {', '.join(known)}")

    def table(self, where: str, table: Any, schema: _Schema) -> dict[str, Any]:
        if not isinstance(table, dict):
            self.fail(where.rstrip("."), "not a table", "write it as a [[table]] with key = value lines")
        self.unknown_keys(where, table, list(schema))
        values: dict[str, Any] = {}
        for key, (check, required) in schema.items():
            if key not in table:
                if required:
                    self.fail(f"{where}{key}", "missing", f"add {key} = ... to this entry")
                continue
            try:
                values[key] = check(table[key])
            except TypeError as wanted:
                self.fail(f"{where}{key}", f"wrong type or value {_shown(table[key])}", f"write {wanted}")
        return values

    def control(self, key: str, value: str) -> None:
        if not ID_PATTERN.match(value):
            self.fail(key, f"{value!r} is not a control id",
                      "write an id of the form PREFIX-XXX-NN, e.g. EA-HDR-02 or ACME-WEB-01")
        if value not in self.known_controls:
            self.fail(key, f"unknown control {value}", "name a control of the catalog (`edgeaudit controls` lists them)")

    def thresholds(self, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict):
            self.fail("thresholds", "not a table", "write [thresholds] with key = number lines")
        self.unknown_keys("thresholds.", raw, sorted(DEFAULTS))
        for key, value in raw.items():
            try:
                SPECS[key].check(value)
            except TypeError as wanted:
                self.fail(f"thresholds.{key}", f"wrong type or value {_shown(value)}", f"write {wanted}")
        if raw.get("cert_fail_days", DEFAULTS["cert_fail_days"]) > raw.get("cert_warn_days", DEFAULTS["cert_warn_days"]):
            self.fail("thresholds.cert_fail_days", "larger than cert_warn_days", "fail at fewer days than you warn")
        return dict(raw)

    def targets(self, raw: Any) -> tuple[Target, ...]:
        if not isinstance(raw, list) or not raw:
            self.fail("targets", "no [[targets]] entry", "add at least one [[targets]] table (see edgeaudit.example.toml)")
        targets: list[Target] = []
        for i, entry in enumerate(raw):
            label = f"targets[{i}]"
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                label = f'targets[{i}] ("{json.dumps(entry["name"], ensure_ascii=False)[1:-1]}")'
            values = self.table(f"{label}.", entry, TARGET_SCHEMA)
            if not _NAME_PATTERN.fullmatch(values["name"]):
                self.fail(f"{label}.name", f"{values['name']!r} is not a short id",
                          "use letters, digits, '.', '_' or '-' (it appears in test ids: test_x[www])")
            if any(t.name == values["name"] for t in targets):
                self.fail(f"{label}.name", f'duplicate target name "{values["name"]}"', "give every target its own name")
            if "ca_bundle" in values:
                bundle = (self.path.parent / values["ca_bundle"]).resolve()
                if not bundle.is_file():
                    self.fail(f"{label}.ca_bundle", f"no file at {bundle}", "point it at a PEM file of CA certificates")
                values["ca_bundle"] = str(bundle)
            if "release_manifest" in values and not is_s3(values["release_manifest"]):
                manifest = (self.path.parent / values["release_manifest"]).resolve()
                if not manifest.is_file():
                    self.fail(f"{label}.release_manifest", f"no file at {manifest}",
                              "point it at the JSON release manifest the deploy pipeline writes, or at s3://bucket/key")
                values["release_manifest"] = str(manifest)
            if "baseline" in values:
                values["baseline"] = str((self.path.parent / values["baseline"]).resolve())
            for key, _ in values.get("absent", ()):
                if key in values:
                    self.fail(f"{label}.absent.{key}", f"{key} is both set and declared absent",
                              f"remove {key} from absent, or remove {key} = ... from the target")
            scratch = values.get("scratch_bucket")
            for other in ("bucket", "replica_bucket"):
                if scratch and scratch == values.get(other):
                    self.fail(f"{label}.scratch_bucket", f"same bucket as {other} ({scratch})",
                              "give DR drills a bucket of their own; they write and delete there")
            if "http_url" not in values:
                parts = urlsplit(values["url"])
                values["http_url"] = urlunsplit(("http", parts.hostname or "", parts.path or "/", "", ""))
            targets.append(Target(**values))
        return tuple(targets)

    def entries(self, name: str, raw: Any, schema: _Schema, targets: tuple[Target, ...]) -> list[dict[str, Any]]:
        if not isinstance(raw, list):
            self.fail(name, "not an array of tables", f"write each entry as [[{name}]]")
        names = {t.name for t in targets}
        out = []
        for i, entry in enumerate(raw):
            where = f"{name}[{i}]"
            values = self.table(f"{where}.", entry, schema)
            self.control(f"{where}.control", values["control"])
            if values.get("target") is not None and values["target"] not in names:
                self.fail(f"{where}.target", f'no target named "{values["target"]}"',
                          f"use one of: {', '.join(sorted(names))}, or leave it out for all targets")
            out.append(values)
        return out

    def github(self, raw: Any) -> GitHubSource | None:
        """[github]: either the repository and the token's variable, or `absent` with a reason."""
        if raw is None:
            return None
        values = self.table("github.", raw, GITHUB_SCHEMA)
        if "absent" in values:
            others = sorted(set(values) - {"absent"})
            if others:
                self.fail(f"github.{others[0]}", "set together with absent",
                          "either declare the source absent or configure it, not both")
            return GitHubSource(absent=values["absent"])
        for key in ("repository", "token_env"):
            if key not in values:
                self.fail(f"github.{key}", "missing",
                          'add repository = "owner/name" and token_env = "GITHUB_TOKEN" (the variable holding a '
                          'read-only token), or absent = "why there is none"')
        return GitHubSource(**values)

    def incidents(self, raw: Any) -> IncidentSource | None:
        """[incidents]: either the log's location or `absent` with a reason; a local log is
        resolved against the config's folder (it need not exist yet: `edgeaudit incident` creates it)."""
        if raw is None:
            return None
        values = self.table("incidents.", raw, INCIDENTS_SCHEMA)
        if len(values) != 1:
            self.fail("incidents.absent" if values else "incidents", "set together with log" if values else "empty",
                      'either name the log, log = "incidents.jsonl" (or "s3://bucket/key"), or declare that '
                      'there is none, absent = "why", not both')
        if "log" in values and not is_s3(values["log"]):
            values["log"] = str((self.path.parent / values["log"]).resolve())
        return IncidentSource(**values)

    def attestations(self, raw: Any, targets: tuple[Target, ...]) -> tuple[Attestation, ...]:
        out = []
        for i, values in enumerate(self.entries("attestations", raw, ATTESTATION_SCHEMA, targets)):
            where = f"attestations[{i}]"
            if values["status"] not in ("passed", "failed"):
                self.fail(f"{where}.status", f"{values['status']!r} is not a status", 'write "passed" or "failed"')
            if values["date"] > dt.date.today():
                self.fail(f"{where}.date", "date is in the future", "write the day the control was done")
            if values["expires"] < values["date"]:
                self.fail(f"{where}.expires", "expires before date", "write an expiry on or after the date")
            self.attestation_window(where, values)
            out.append(Attestation(**values))
        return tuple(out)


    def attestation_window(self, where: str, values: dict[str, Any]) -> None:
        """A manual control's attestation: printable text, and an expiry within the cadence window."""
        for key, value in values.items():
            if isinstance(value, str) and _has_control_characters(value):
                self.fail(f"{where}.{key}", "contains a control character (newline, tab, escape, ...)",
                          "write it on one line of printable text")
        manual = manual_cadences()
        cadence = manual.get(values["control"])
        if cadence is None:
            self.fail(f"{where}.control", f"{values['control']} is not a manual control",
                      f"attest one of {', '.join(sorted(manual))}; a finding of another control "
                      "is accepted with [[waivers]]")
        latest = holds_until(cadence, values["date"])
        if values["expires"] > latest:
            self.fail(f"{where}.expires", f"{values['expires'].isoformat()} is past the {cadence} window of "
                      f"{values['control']}: done on {values['date'].isoformat()}, it is due again by "
                      f"{latest.isoformat()} ({SCHEDULES[cadence]})",
                      f"write expires = {latest.isoformat()} or earlier (or attest again when it is next done)")


def _has_control_characters(text: str) -> bool:
    """Control characters and bidirectional overrides, which can hide or reorder what a report shows."""
    return any(unicodedata.category(c) == "Cc" or 0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069
               for c in text)


def parse(path: Path, data: dict[str, Any], known_controls: frozenset[str] | None = None) -> Config:
    """Validate an already-parsed TOML document (also used by the demo, which builds one in memory)."""
    check = _Validator(path, known_controls)
    check.unknown_keys("", data, TOP_LEVEL)
    overrides = check.thresholds(data.get("thresholds", {}))
    raw_targets = data.get("targets", [])
    if "targets_file" in data:
        raw_targets = [*raw_targets, *_targets_file(path, data["targets_file"])]
    targets = check.targets(raw_targets or None)
    waivers = tuple(Waiver(**v) for v in check.entries("waivers", data.get("waivers", []), WAIVER_SCHEMA, targets))
    attestations = check.attestations(data.get("attestations", []), targets)
    if "attestations_file" in data:
        attestations += _attestations_file(path, data["attestations_file"], targets, known_controls)
    report = check.table("report.", data.get("report", {}), REPORT_SCHEMA)
    return Config(path, targets, Thresholds(overrides), waivers, attestations, overrides, report.get("bundle", False),
                  archive=report.get("archive"), history=_history_at(path, report.get("history")),
                  github=check.github(data.get("github")), incidents=check.incidents(data.get("incidents")))


def _history_at(path: Path, location: str | None) -> str | None:
    """A local history path is relative to the config's folder, like targets_file."""
    if not location or is_s3(location) or Path(location).is_absolute():
        return location
    return str(path.parent / location)


def _targets_file(path: Path, name: Any) -> list[Any]:
    """A fleet's [[targets]] kept in a file of their own (`targets_file`)."""
    other = path.parent / str(name)
    if not isinstance(name, str) or not other.is_file():
        raise ConfigError(path, "targets_file", f"no file at {other}",
                          "name a TOML file of [[targets]] tables, relative to this config")
    data = read_toml(other)
    _Validator(other).unknown_keys("", data, ("targets",))
    if not isinstance(data.get("targets"), list):
        raise ConfigError(other, "targets", "no [[targets]] entry", "add [[targets]] tables to this file")
    return data["targets"]


def _attestations_file(path: Path, name: Any, targets: tuple[Target, ...],
                       known_controls: frozenset[str] | None) -> tuple[Attestation, ...]:
    """Attestations kept in a file of their own (`attestations_file`), validated the same way."""
    if not isinstance(name, str) or not (path.parent / name).is_file():
        raise ConfigError(path, "attestations_file", f"no file at {path.parent / str(name)}",
                          "name a TOML file of [[attestations]] tables, relative to this config")
    other = (path.parent / name).resolve()
    data = read_toml(other)
    return check_attestations(other, data, targets, known_controls)


def check_attestations(path: Path, data: dict[str, Any], targets: tuple[Target, ...],
                       known_controls: frozenset[str] | None = None) -> tuple[Attestation, ...]:
    """Validate a document holding only [[attestations]] (a file of its own, or one new entry)."""
    check = _Validator(path, known_controls)
    check.unknown_keys("", data, ("attestations",))
    return check.attestations(data.get("attestations", []), targets)


def load(path: Path, known_controls: frozenset[str] | None = None) -> Config:
    """Read and validate one config file."""
    if not path.is_file():
        raise ConfigError(path, "file", "no config file here",
                          f"write one with `edgeaudit init --url https://your.site/` (it finds the distribution and "
                          "bucket where your credentials allow, and explains every key), "
                          "or run with --demo to try the suite on the embedded demo environment")
    return parse(path, read_toml(path), known_controls)


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file's document; bad syntax, bad encoding or values nested too deeply to read are
    one ConfigError, never a traceback."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(path, "syntax", f"not valid TOML ({exc})", "correct the TOML syntax at that line") from None
    except RecursionError:
        raise ConfigError(path, "syntax", "values nested too deeply to read",
                          "write tables of keys with plain values, as edgeaudit.example.toml does") from None
