"""The `edgeaudit` command: `edgeaudit run ARGS` is `pytest ARGS`; the rest is what is not a test
run. `edgeaudit controls` lists the catalog of the collected suites for auditors;
`edgeaudit attest` records a manual control in the config; `edgeaudit incident` appends to the
incident log ([incidents] log);
`edgeaudit verify` checks a signed evidence bundle; `edgeaudit merge` combines shards' reports;
`edgeaudit snapshot` records each target's configuration for drift checks (reads AWS, never writes);
`edgeaudit audit-role` prints the read-only IAM policy, or the role as CloudFormation (auditrole.py)."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import inspect
import io
import json
import os
import re
import sys
import urllib.parse
from dataclasses import astuple
from pathlib import Path
from typing import Any, Callable

import botocore.exceptions
import pytest

from edgeaudit import __version__
from edgeaudit.aws import guard
from edgeaudit.reporting.archive import archive_report
from edgeaudit.reporting.archive import summary_line as archive_line
from edgeaudit.reporting.bundle import BundleError, verify_bundle
from edgeaudit.reporting.html_render import catalog_page
from edgeaudit.reporting.merge import MergeError, merge
from edgeaudit.reporting.report import report_stem, selection_label, utc_now
from edgeaudit.reporting.results import SEVERITY_RANK, ControlSpec
from edgeaudit.reporting.step_summary import append_step_summary
from edgeaudit.reporting.store import open_store
from edgeaudit.reporting.write import OCSF_SUFFIX, History, write_report_set
from edgeaudit.rules.attestations import MANUAL_CONTROLS, append, entry
from edgeaudit.rules.catalog import builtin_folder
from edgeaudit.rules.config import DEFAULT_CONFIG_NAME, ConfigError, s3_folder
from edgeaudit.rules.frameworks import UnknownFramework, maps_to, resolve
from edgeaudit.rules.location import check_location, evidence_place, split
from edgeaudit.rules.thresholds import DEFAULTS
from edgeaudit.web.crawl import checked_crawl


class _CatalogCollector:
    """Collects each control's spec once, whatever the number of targets."""

    def __init__(self) -> None:
        self.controls: dict[str, dict[str, Any]] = {}
        self.reads: dict[str, list[str]] = {}  # for the Markdown page only: the JSON listing keeps its shape

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            spec = ControlSpec.of(item)
            if spec is not None:
                self.controls.setdefault(spec.id, {
                    "id": spec.id, "title": spec.title, "severity": spec.severity,
                    "cadence": list(spec.cadence), "categories": list(spec.categories),
                    "frameworks": spec.frameworks, "thresholds": threshold_keys(item),
                    "remediation": spec.remediation, "test": item.nodeid.split("[", 1)[0],
                })
                marker = item.get_closest_marker("control")
                self.reads.setdefault(spec.id, list(marker.kwargs.get("reads") or ()) if marker else [])

    def listing(self) -> list[dict[str, Any]]:
        """The controls in catalog order: by family, then id."""
        return sorted(self.controls.values(), key=lambda c: (c["id"].rsplit("-", 1)[0], c["id"]))


def threshold_keys(item: pytest.Item) -> list[str]:
    """The thresholds a control reads (`thresholds.<key>` in its source, and in the crawl's when
    it uses the `crawl` fixture)."""
    try:
        source = inspect.getsource(item.obj)  # type: ignore[attr-defined]
    except (OSError, TypeError, AttributeError):
        return []
    if "crawl" in getattr(item, "fixturenames", ()):
        source += inspect.getsource(checked_crawl)
    return sorted(set(re.findall(r"thresholds\.(\w+)", source)) & set(DEFAULTS))


def catalog(suites: str) -> list[dict[str, Any]]:
    """The controls of a folder, in catalog order (what `--format json` lists)."""
    return collect(suites).listing()


def collect(suites: str) -> _CatalogCollector:
    """The controls of a folder as pytest collects them (without running any)."""
    collector = _CatalogCollector()
    args = [suites, "--collect-only", "--edgeaudit-catalog", "-p", "no:cacheprovider", "-p", "no:terminal",
            "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    with contextlib.redirect_stdout(io.StringIO()) as output:
        code = pytest.main(args, plugins=[collector])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        sys.stderr.write(output.getvalue())
        raise SystemExit(1)
    return collector


MD_COMMAND = "edgeaudit controls --format md"


def _cell(text: str) -> str:
    """Text that stays in its Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown(controls: list[dict[str, Any]], reads: dict[str, list[str]] | None = None,
             command: str = MD_COMMAND) -> str:
    """The catalog as a Markdown page, one table per family of controls: the documentation's
    controls page is this output (tests/test_docs.py holds it to the controls)."""
    reads = reads or {}
    counts = {level: sum(c["severity"] == level for c in controls) for level in SEVERITY_RANK}
    lines = ["# Controls", "",
             f"Generated from the controls themselves by `{command}`; do not edit it by hand: change the "
             "controls, then run the command again.", "",
             "Each control's id, severity, cadence and category markers, frameworks and AWS reads are those "
             "written on it (`@pytest.mark.control(...)` and its markers), its title the first paragraph of its "
             "docstring. Its thresholds are the `thresholds.<key>` names its function reads (and the crawl's, "
             "when it reads the crawl), each with its default; `[thresholds]` in the config overrides them.", "",
             f"{len(controls)} controls: " + ", ".join(f"{n} {level}" for level, n in counts.items())]
    family = None
    for c in controls:
        if c["id"].rsplit("-", 1)[0] != family:
            family = c["id"].rsplit("-", 1)[0]
            lines += ["", f"## {family}", "",
                      "| id | title | severity | cadences | categories | frameworks | thresholds | reads |",
                      "|---|---|---|---|---|---|---|---|"]
        frameworks = ", ".join(f"{k} {v}" for k, v in c["frameworks"].items())
        thresholds = ", ".join(f"`{key} = {DEFAULTS[key]}`" for key in c["thresholds"])
        declared = ", ".join(f"`{read}`" for read in reads.get(c["id"], ()))
        cells = [c["id"], _cell(c["title"]), c["severity"], ", ".join(c["cadence"]), ", ".join(c["categories"]),
                 _cell(frameworks), thresholds, declared]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _attest(args: argparse.Namespace) -> int:
    path = args.config or Path(os.environ.get("EDGEAUDIT_CONFIG") or DEFAULT_CONFIG_NAME)
    new = entry(args.control, args.by, args.evidence, status=args.status, date=args.date, expires=args.expires,
                target=args.target, note=args.note)
    try:
        written = append(path, new)
    except ConfigError as exc:
        sys.stderr.write(f"edgeaudit attest: {exc}\n")
        return 2
    sys.stdout.write(f"attested {args.control} ({args.status}) by {args.by} in {written}, "
                     f"expires {new['expires'].isoformat()}\n")
    return 0


NOW = "now"


def _incident_fields(args: argparse.Namespace, targets: list[str]) -> dict[str, Any]:
    """The line's fields from the options; raises ValueError naming the option and what to write."""
    from edgeaudit.checks.incident_log import postmortem_url, timestamp
    from edgeaudit.checks.incident_rules import LEVELS

    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    fields: dict[str, Any] = {"id": args.id}

    def time(option: str, value: str) -> dt.datetime:
        try:
            return now if value == NOW else timestamp(value)
        except ValueError as exc:
            raise ValueError(f"--{option}: {exc}") from None

    if args.level is not None:
        if args.level.upper() not in LEVELS:
            raise ValueError(f"--level: {args.level!r} is not a level: write one of {', '.join(LEVELS)}")
        fields["level"] = args.level.upper()
    if args.detected is not None:
        fields["detected"] = time("detected", args.detected)
    if args.acknowledged is not None:
        fields["acknowledged"] = time("acknowledged", args.acknowledged)
    if args.resolved is not None:
        fields["resolved"] = time("resolved", args.resolved)
    if args.postmortem is not None:
        try:
            fields["postmortem"] = postmortem_url(args.postmortem)
        except ValueError as exc:
            raise ValueError(f"--postmortem: {exc}: write the post-mortem's https:// address") from None
        fields["postmortem_at"] = now
    if args.title is not None:
        fields["title"] = args.title
    if args.target is not None:
        if args.target not in targets:
            raise ValueError(f"--target: no target named {args.target!r} in the config: use one of "
                             f"{', '.join(sorted(targets)[:20])}, or leave it out (the incident concerns every target)")
        fields["target"] = args.target
    if args.by is not None:
        if "acknowledged" not in fields and "detected" not in fields:
            raise ValueError("--by names who reported the incident (with --detected) or who acknowledged it "
                             "(with --acknowledged): give one of them, or leave --by out")
        if "detected" in fields:
            fields["reported_by"] = args.by
        if "acknowledged" in fields:
            fields["acknowledged_by"] = args.by
    elif "acknowledged" in fields:
        raise ValueError("--acknowledged: say who acknowledged it with --by NAME")
    if len(fields) == 1:
        raise ValueError("nothing to record: open an incident with --level and --detected, or give --acknowledged, "
                         "--resolved or --postmortem")
    return fields


def _incident(args: argparse.Namespace) -> int:
    """Append one line to the incident log: the user's own write, outside any run."""
    from edgeaudit.checks import incident_log
    from edgeaudit.rules.config import load
    from edgeaudit.rules.location import is_s3

    def refused(message: str) -> int:
        sys.stderr.write(f"edgeaudit incident: {message}\n")
        return 4

    path = (args.config or Path(os.environ.get("EDGEAUDIT_CONFIG") or DEFAULT_CONFIG_NAME)).resolve()
    try:
        config = load(path)
    except ConfigError as exc:
        return refused(str(exc))
    log = config.incidents.log if config.incidents else None
    if log is None:
        declared = f" (it declares absent = {config.incidents.absent!r})" if config.incidents else ""
        return refused(f'{path}: incidents.log: the config names no incident log{declared}. Fix: add [incidents] '
                       'with log = "incidents.jsonl" (a file beside the config) or "s3://bucket/key"')
    try:
        fields = _incident_fields(args, [t.name for t in config.targets])
        if is_s3(log):
            import boto3

            from edgeaudit.aws.clients import client_config
            incident_log.append_s3(boto3.session.Session().client("s3", config=client_config("s3")), log, fields)
        else:
            incident_log.append_local(Path(log), fields)
    except (ValueError, incident_log.Refused) as exc:
        return refused(str(exc))
    except (incident_log.AppendFailed, OSError, botocore.exceptions.BotoCoreError) as exc:
        sys.stderr.write(f"edgeaudit incident: nothing was appended: {exc}\n")
        return 1
    done = [word for key, word in (("detected", "opened"), ("acknowledged", "acknowledged"), ("resolved", "resolved"),
                                   ("postmortem", "post-mortem linked"), ("level", "level"), ("title", "title"))
            if key in fields]
    sys.stdout.write(f"incident {args.id}: {', '.join(done) or 'recorded'} in {log}\n")
    return 0


def _verify(args: argparse.Namespace) -> int:
    """0 only when the bundle is proven to be the run's: every digest holds and, with the
    auditors' public key, the signature; digests alone prove nothing against someone who can
    rewrite the bundle (and its manifest), so they pass only with --unsigned-ok."""
    if not args.bundle.is_file():
        sys.stderr.write(f"edgeaudit verify: no file at {args.bundle}\n")
        return 2
    try:
        problems, manifest = verify_bundle(args.bundle, args.public_key)
    except BundleError as exc:
        sys.stderr.write(f"edgeaudit verify: {exc}\n")
        return 2
    for problem in problems:
        sys.stdout.write(f"FAILED {problem}\n")
    if problems:
        sys.stdout.write(f"{args.bundle}: {len(problems)} problem(s): this is not the bundle the run wrote\n")
        return 1
    files = len(manifest["files"])
    if args.public_key:
        sys.stdout.write(f"{args.bundle}: intact, {files} files match the manifest; "
                         f"signature verified ({manifest['signature']['key_id']})\n")
        return 0
    signed = "signed, signature not checked" if manifest.get("signature") else "not signed"
    sys.stdout.write(f"{args.bundle}: integrity only: {files} files match the manifest ({signed}); "
                     "without --public-key this does not show who wrote the bundle\n")
    if args.unsigned_ok:
        return 0
    sys.stdout.write(f"{args.bundle}: not verified. Fix: give --public-key (the signer's Ed25519 public key), "
                     "or --unsigned-ok to accept an integrity-only check\n")
    return 1


def _audit_role(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Print the audit role's policy (scoped to a config when given) or its deployable forms."""
    from edgeaudit.aws.auditrole import ACCOUNT_WIDE_NOTE, bucket_name_problem, render
    from edgeaudit.rules.config import load
    if args.scratch_bucket and args.format != "policy":
        parser.error(f"--scratch-bucket goes with --format policy; {args.format} takes the bucket when deployed")
    if args.config and args.format not in ("policy", "cloudformation"):
        parser.error(f"--config goes with --format policy or cloudformation; {args.format} takes the bucket when "
                     "deployed")
    if args.scratch_bucket and args.config:
        parser.error("--scratch-bucket and --config: the config's targets name their scratch_bucket")
    if args.scratch_bucket and bucket_name_problem(args.scratch_bucket):
        parser.error(f"--scratch-bucket: {bucket_name_problem(args.scratch_bucket)}")
    if args.suites is not None and not args.suites.is_dir():
        parser.error(f"no folder of controls at {args.suites}")
    config = None
    if args.config is not None:
        try:
            config = load(args.config.resolve())
        except ConfigError as exc:
            sys.stderr.write(f"edgeaudit audit-role: {exc}\n")
            return 4
    try:
        sys.stdout.write(render(args.format, args.scratch_bucket, args.suites, config))
    except ValueError as exc:  # a bucket name the config let through that IAM cannot scope
        parser.error(f"--config {args.config}: {exc}")
    if config is None:
        sys.stderr.write(f"edgeaudit audit-role: {ACCOUNT_WIDE_NOTE}\n")
    return 0


def _snapshot(args: argparse.Namespace) -> int:
    """Write baselines/<target>.json beside the config: the configuration EA-DR-06 compares with."""
    from edgeaudit.aws import guard
    from edgeaudit.aws.clients import Aws, AwsRegistry
    from edgeaudit.checks import drift
    from edgeaudit.errors import NotEvaluated
    from edgeaudit.rules.config import load

    path = (args.config or Path(os.environ.get("EDGEAUDIT_CONFIG") or DEFAULT_CONFIG_NAME)).resolve()
    try:
        config = load(path).select(args.target or [])
    except ConfigError as exc:
        sys.stderr.write(f"edgeaudit snapshot: {exc}\n")
        return 2
    registry, failed = AwsRegistry(), 0
    guard.install()  # a snapshot only reads
    try:
        for target in config.targets:
            try:
                live = drift.live_config(Aws(registry, target), target)
            except (NotEvaluated, botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
                sys.stderr.write(f"edgeaudit snapshot: {target.name}: {exc}\n")
                failed = 1
                continue
            written = drift.baseline_path(args.output or path.parent, target)
            drift.write_baseline(written, live)
            sys.stdout.write(f"{target.name}: {written}\n")
    finally:
        guard.uninstall()
    return failed


def _init(args: argparse.Namespace) -> int:
    """Write a commented edgeaudit.toml for one site: what was not given is found with read calls
    (the distribution serving the URL's host, its S3 origin, the bucket's region)."""
    import boto3

    from edgeaudit.aws import discover
    from edgeaudit.rules.config import parse, read_toml
    from edgeaudit.rules.starter import starter_config

    output = args.output
    if output.exists() and not args.force:
        sys.stderr.write(f"edgeaudit init: {output} exists; pass --force to replace it\n")
        return 2
    host = urllib.parse.urlsplit(args.url).hostname or ""
    found = (args.distribution_id, args.bucket, args.region, None)
    if not all(found[:3]):
        guard.install()  # finding the site only reads
        try:
            found = astuple(discover.discover(boto3.session.Session(), host, *found[:3]))
        except discover.NotFound as exc:
            sys.stderr.write(f"edgeaudit init: {exc}\n")
            return 2
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            sys.stderr.write(f"edgeaudit init: could not look the site up in AWS ({exc}): pass --distribution-id, "
                             "--bucket and --region\n")
            return 2
        finally:
            guard.uninstall()
    distribution_id, bucket, region, replica = found
    site = {"name": args.name or host.split(".")[0] or "www", "url": args.url, "bucket": bucket, "region": region,
            "distribution_id": distribution_id, "paths": args.path or ["/"]}
    if replica:
        site["replica_bucket"] = replica
    if args.ca_bundle:
        site["ca_bundle"] = str(args.ca_bundle.resolve())
    text = starter_config(site)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    try:
        parse(output, read_toml(output))  # what init writes, the suite reads
    except ConfigError as exc:
        sys.stderr.write(f"edgeaudit init: {exc}\n")
        return 2
    sys.stdout.write(f"{output}: {site['name']} ({args.url}): distribution {distribution_id}, bucket {bucket} in "
                     f"{region}\nNext: read the file's comments, then run: pytest -m daily\n")
    return 0


def _checked_as_config(check: Callable[[str], str]) -> Callable[[str], str]:
    """An argparse type from the config's checker of the same value (--history as [report]
    history, --archive as [report] archive): it raises TypeError naming what to write."""
    def parse(value: str) -> str:
        try:
            return check(value)
        except TypeError as wanted:
            raise argparse.ArgumentTypeError(f"write {wanted}") from None
    return parse


def _merged_history(location: str | None, output: Path, door: guard.EvidenceDoor,
                    sign_key: Path | None = None) -> History | None:
    """The history the merged run joins (--history), its line signed with --sign-key if given."""
    if not location:
        return None
    return History(open_store(location, output, door), dt.timedelta(hours=DEFAULTS["cadence_grace_h"]), sign_key)


def _merge(args: argparse.Namespace) -> int:
    """The merge under the read-only guard: it writes its own evidence only, through its door to
    the places it may write in S3 (--history, --archive), declared together."""
    guard.install()
    try:
        return _merge_with(args, guard.evidence_door([place for place in (
            evidence_place(args.history), split(args.archive) if args.archive else None) if place]))
    finally:
        guard.uninstall()


def _merge_with(args: argparse.Namespace, door: guard.EvidenceDoor) -> int:
    reports = []
    # `reports/*.json` also names the OCSF exports written beside each report: they are the
    # reports' own findings again, not shards
    args.reports = [path for path in args.reports if not path.name.endswith(OCSF_SUFFIX)]
    try:
        for path in args.reports:
            try:
                reports.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, RecursionError) as exc:
                raise MergeError(f"{path}: not a readable JSON report ({str(exc).splitlines()[0]})") from None
        merged = merge(reports, [str(path) for path in args.reports], allow_partial=args.allow_partial,
                       fail_on=args.fail_on)
        stem = report_stem(args.output, selection_label(merged["run"]["selection"], merged["run"]["frameworks"]),
                           utc_now())
        stem = stem.with_name(stem.name + "-merged")
        # with --history the merged run joins the run history (its one line, the trend, the cadence
        # ledger) as a single run would; without, it renders before it writes (a malformed report
        # writes nothing). The shards were checked field by field before either.
        history = _merged_history(args.history, args.output, door, args.sign_key)
        written = write_report_set(merged, stem, history=history)
    except (MergeError, BundleError) as exc:  # unreadable, not the shards of one run, or an unusable --sign-key
        sys.stderr.write(f"edgeaudit merge: {exc}\n")
        return 2
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a field the checks let through
        sys.stderr.write(f"edgeaudit merge: a report holds a malformed entry ({type(exc).__name__}: {exc})\n")
        return 2
    archive = archive_report(merged, stem, written, args.archive, stem.name, door=door) if args.archive else None
    append_step_summary(merged, written)  # the CI page's summary, when $GITHUB_STEP_SUMMARY is set
    summary = merged["summary"]
    sys.stdout.write(f"merged {len(reports)} reports: {len(merged['results'])} results "
                     f"({summary['failed']} failed, {summary['error']} error); "
                     f"{stem.with_suffix('.json')}, .html, .ocsf.json and .csv\n")
    if not merged["complete"]:
        missing = merged["run"]["shards"]["missing"]
        sys.stdout.write("incomplete: " + (f"shard(s) {', '.join(map(str, missing))} of "
                                           f"{merged['run']['shards']['count']} missing" if missing
                                           else "a shard did not complete") + "\n")
    if archive is not None:  # a failed archive made the exit code 1 (archive_report)
        sys.stdout.write(archive_line(archive) + "\n")
    return merged["run"]["exit_code"]


def run(args: list[str]) -> int:
    """`edgeaudit run ARGS`: pytest with these arguments, its exit code unchanged. (This process
    imported edgeaudit before pytest could mark it for assertion rewriting: nothing to warn about.)"""
    quiet = ["-W", "ignore:Module already imported so cannot be rewritten; edgeaudit"  # a literal prefix
                   ":pytest.PytestAssertRewriteWarning"]
    return int(pytest.main([*quiet, *args]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edgeaudit", description="edgeaudit: compliance controls for "
                                     "static sites on S3 + CloudFront (run the controls with pytest)")
    parser.add_argument("--version", action="version", version=f"edgeaudit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", add_help=False, help="run the controls: pytest with the same arguments "
                        "and exit code (e.g. edgeaudit run -m daily --demo)")
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["run"]:
        return run(argv[1:])
    controls = commands.add_parser("controls", help="the control catalog of the collected suites")
    controls.add_argument("--format", choices=("md", "json", "html"), default="md")
    controls.add_argument("suites", nargs="?", default=None,
                          help="folder of controls (default: ./suites with the built-in controls, else the built-in ones)")
    controls.add_argument("--framework", action="append", default=[], metavar="ID",
                          help="only the controls mapped to this framework, e.g. FSBP (repeatable; any case)")
    initial = commands.add_parser("init", help="write a commented edgeaudit.toml for a site, found from its URL "
                                  "with read calls where credentials allow")
    initial.add_argument("--url", required=True, help="the site as viewers reach it, e.g. https://www.example.com/")
    initial.add_argument("--name", help="the target's short name (default: the host's first label)")
    initial.add_argument("--distribution-id", help="the CloudFront distribution (default: the one whose aliases "
                         "include the URL's host)")
    initial.add_argument("--bucket", help="the origin bucket (default: the distribution's S3 origin)")
    initial.add_argument("--region", help="the bucket's region (default: asked of S3)")
    initial.add_argument("--path", action="append", metavar="PATH", help="a critical page (repeatable; default /)")
    initial.add_argument("--ca-bundle", type=Path, help="extra trusted CAs for the site (staging, a private CA)")
    initial.add_argument("--output", type=Path, default=Path(DEFAULT_CONFIG_NAME), help="default: ./edgeaudit.toml")
    initial.add_argument("--force", action="store_true", help="replace an existing file")
    attest = commands.add_parser("attest", help="record that a manual control (EA-MAN-*) was done")
    attest.add_argument("control", choices=sorted(MANUAL_CONTROLS), metavar="CONTROL",
                        help="the manual control, e.g. EA-MAN-04")
    attest.add_argument("--by", required=True, help="who did it, e.g. 'J. Doe (ops)'")
    attest.add_argument("--evidence", required=True, help="URL of the evidence (ticket, minutes, report)")
    attest.add_argument("--status", choices=("passed", "failed"), default="passed")
    attest.add_argument("--date", type=dt.date.fromisoformat, help="when it was done (default today)")
    attest.add_argument("--expires", type=dt.date.fromisoformat,
                        help="until when it holds (default and latest: the end of the control's next "
                             "scheduled window, the next first Monday for monthly, the next quarter's first "
                             "week for quarterly)")
    attest.add_argument("--target", help="the target it concerns (default: all targets)")
    attest.add_argument("--note")
    attest.add_argument("--config", type=Path, default=None,
                        help=f"config file (default $EDGEAUDIT_CONFIG or ./{DEFAULT_CONFIG_NAME})")
    incident = commands.add_parser("incident", help="record an incident, or its acknowledgement, resolution or "
                                   "post-mortem, in the incident log ([incidents] log) that EA-INC-01/02 read")
    incident.add_argument("id", metavar="ID", help="the incident's id, e.g. INC-2026-014")
    incident.add_argument("--level", metavar="P1..P4", help="its level (opening: required)")
    incident.add_argument("--detected", metavar="TIME", help="when it was detected, ISO 8601 with a UTC offset, "
                          "e.g. 2026-12-01T10:00:00Z (opening: required)")
    incident.add_argument("--title", help="what happened, in a line")
    incident.add_argument("--by", metavar="NAME", help="who reported it (with --detected) or acknowledged it "
                          "(with --acknowledged)")
    incident.add_argument("--acknowledged", nargs="?", const=NOW, metavar="TIME",
                          help="when it was acknowledged (default now), with --by")
    incident.add_argument("--resolved", nargs="?", const=NOW, metavar="TIME", help="when it was resolved (default now)")
    incident.add_argument("--postmortem", metavar="URL", help="the post-mortem's http(s) address (linked now)")
    incident.add_argument("--target", help="the target it concerns (default: every target)")
    incident.add_argument("--config", type=Path, default=None,
                          help=f"config file (default $EDGEAUDIT_CONFIG or ./{DEFAULT_CONFIG_NAME})")
    verify = commands.add_parser("verify", help="check an evidence bundle: every digest, and the signature")
    verify.add_argument("bundle", type=Path, help="reports/<name>.bundle.zip")
    verify.add_argument("--public-key", type=Path, help="Ed25519 public key (PEM) the manifest must be signed with")
    verify.add_argument("--unsigned-ok", action="store_true",
                        help="without --public-key, exit 0 when the digests hold (integrity only, not who wrote it)")
    merging = commands.add_parser("merge", help="combine the JSON reports of shards into one JSON and HTML report")
    merging.add_argument("reports", nargs="+", type=Path, help="the shards' JSON reports")
    merging.add_argument("--output", type=Path, default=Path("reports"), help="folder to write into (default reports/)")
    merging.add_argument("--allow-partial", action="store_true",
                         help="merge although shards are missing; the result is marked incomplete")
    merging.add_argument("--history", type=_checked_as_config(check_location), default=None, metavar="FILE",
                         help="append the merged run's line to this history.jsonl, a path or "
                              "s3://bucket/prefix/history.jsonl (what EA-OPS-02 and the trend read; the shards' "
                              "own lines stay where their config keeps them)")
    merging.add_argument("--sign-key", type=Path, default=None, metavar="PATH",
                         help="Ed25519 private key that signs the merged run's history line (the runs' own "
                              "--sign-key: with one, EA-OPS-02 counts only signed lines)")
    merging.add_argument("--fail-on", choices=tuple(SEVERITY_RANK), default="P4",
                         help="lowest severity whose failures or errors make the exit code 1 (default P4)")
    merging.add_argument("--archive", type=_checked_as_config(s3_folder), default=None, metavar="S3_FOLDER",
                         help="also upload the merged set under s3://bucket/folder/<report name>/ (as [report] "
                              "archive does for a run); a failed upload makes the exit code 1")
    snapshot = commands.add_parser("snapshot", help="write baselines/<target>.json: the live configuration "
                                   "that EA-DR-06 compares with (targets without stack_name)")
    snapshot.add_argument("--config", type=Path, default=None,
                          help=f"config file (default $EDGEAUDIT_CONFIG or ./{DEFAULT_CONFIG_NAME})")
    snapshot.add_argument("--target", action="append", help="only this target (repeatable; default all)")
    snapshot.add_argument("--output", type=Path, default=None,
                          help="folder that holds baselines/ (default: the config file's folder)")
    role = commands.add_parser("audit-role", help="the read-only IAM policy the controls need: the policy "
                               "document, the role as CloudFormation, or the Terraform module's policy.json")
    role.add_argument("--format", choices=("policy", "cloudformation", "terraform-policy"), default="policy")
    role.add_argument("--scratch-bucket", help="with --format policy: also allow the DR drills' writes under "
                      "_edgeaudit/ of this bucket (the templates take it as a parameter)")
    role.add_argument("--suites", type=Path, default=None, help="folder of controls (default: ./suites, else edgeaudit's)")
    role.add_argument("--config", type=Path, default=None,
                      help="with --format policy: scope the policy to this config's buckets, distributions and "
                           "stacks (without it the policy is account-wide)")
    args = parser.parse_args(argv)
    if args.command == "audit-role":
        return _audit_role(parser, args)
    if args.command == "snapshot":
        return _snapshot(args)
    if args.command == "init":
        return _init(args)
    if args.command == "merge":
        return _merge(args)
    if args.command == "verify":
        return _verify(args)
    if args.command == "attest":
        return _attest(args)
    if args.command == "incident":
        return _incident(args)
    if args.command == "controls":
        args.suites = args.suites or ("suites" if Path("suites").is_dir() else str(builtin_folder()))
        if not Path(args.suites).exists():
            parser.error(f"no folder of controls at {args.suites}")
        collected = collect(args.suites)
        found = collected.listing()
        try:
            chosen = resolve(args.framework, {name for c in found for name in c["frameworks"]})
        except UnknownFramework as exc:
            controls.error(f"--framework: {exc}")
        found = [c for c in found if maps_to(c["frameworks"], chosen)]
        command = " ".join([MD_COMMAND, *(f"--framework {name}" for name in args.framework)])
        render = {"json": lambda c: json.dumps(c, indent=2), "html": catalog_page,
                  "md": lambda c: markdown(c, collected.reads, command)}[args.format]
        sys.stdout.write(render(found) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
