"""The `edgeaudit` command: `edgeaudit run ARGS` is `pytest ARGS`; the rest is what is not a test
run. `edgeaudit controls` lists the catalog of the collected suites for auditors;
`edgeaudit attest` records a manual control in the config;
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
from html import escape
from pathlib import Path
from typing import Any, Callable

import botocore.exceptions
import pytest

from edgeaudit import __version__
from edgeaudit.aws import guard
from edgeaudit.reporting.archive import archive_report
from edgeaudit.reporting.archive import summary_line as archive_line
from edgeaudit.reporting.bundle import BundleError, verify_bundle
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
    collector = _CatalogCollector()
    args = [suites, "--collect-only", "--edgeaudit-catalog", "-p", "no:cacheprovider", "-p", "no:terminal",
            "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    with contextlib.redirect_stdout(io.StringIO()) as output:
        code = pytest.main(args, plugins=[collector])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        sys.stderr.write(output.getvalue())
        raise SystemExit(1)
    return sorted(collector.controls.values(), key=lambda c: (c["id"].rsplit("-", 1)[0], c["id"]))


def markdown(controls: list[dict[str, Any]]) -> str:
    lines = ["| id | severity | title | cadence | categories | frameworks | thresholds |",
             "|---|---|---|---|---|---|---|"]
    for c in controls:
        frameworks = ", ".join(f"{k} {v}" for k, v in c["frameworks"].items())
        lines.append(f"| {c['id']} | {c['severity']} | {c['title']} | {', '.join(c['cadence'])} | "
                     f"{', '.join(c['categories'])} | {frameworks} | {', '.join(c['thresholds'])} |")
    counts = {level: sum(c["severity"] == level for c in controls) for level in SEVERITY_RANK}
    lines.append("")
    lines.append(f"{len(controls)} controls: " + ", ".join(f"{n} {level}" for level, n in counts.items()))
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


def html_catalog(controls: list[dict[str, Any]]) -> str:
    """A printable page of the catalog for auditors."""
    rows = "".join(
        f"<tr><td>{escape(c['id'])}</td><td>{escape(c['severity'])}</td><td>{escape(c['title'])}</td>"
        f"<td>{escape(', '.join(c['cadence']))}</td><td>{escape(', '.join(c['categories']))}</td>"
        f"<td>{escape(', '.join(f'{k} {v}' for k, v in c['frameworks'].items()))}</td>"
        f"<td>{escape(', '.join(c['thresholds']))}</td><td>{escape(c['remediation'])}</td></tr>" for c in controls)
    return ("<!doctype html><html lang=en><head><meta charset=utf-8><title>edgeaudit control catalog</title>"
            "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            "<style>body{font:13px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top;text-align:left}th{background:#eee}"
            "</style></head><body><h1>edgeaudit control catalog</h1>"
            f"<p>{len(controls)} controls</p><table><tr><th>id</th><th>severity</th><th>title</th><th>cadence</th>"
            "<th>categories</th><th>frameworks</th><th>thresholds</th><th>remediation</th></tr>"
            f"{rows}</table></body></html>")


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


def _checked_as_config(check: Callable[[str], str]) -> Callable[[str], str]:
    """An argparse type from the config's checker of the same value (--history as [report]
    history, --archive as [report] archive): it raises TypeError naming what to write."""
    def parse(value: str) -> str:
        try:
            return check(value)
        except TypeError as wanted:
            raise argparse.ArgumentTypeError(f"write {wanted}") from None
    return parse


def _merged_history(location: str | None, output: Path, sign_key: Path | None = None) -> History | None:
    """The history the merged run joins (--history), its line signed with --sign-key if given."""
    if not location:
        return None
    return History(open_store(location, output), dt.timedelta(hours=DEFAULTS["cadence_grace_h"]), sign_key)


def _merge(args: argparse.Namespace) -> int:
    reports = []
    # the places the merge may write its evidence to in S3, declared together (guard.evidence_writes)
    guard.allow_evidence_in([place for place in (evidence_place(args.history),
                                                 split(args.archive) if args.archive else None) if place])
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
        history = _merged_history(args.history, args.output, args.sign_key)
        written = write_report_set(merged, stem, history=history)
    except (MergeError, BundleError) as exc:  # unreadable, not the shards of one run, or an unusable --sign-key
        sys.stderr.write(f"edgeaudit merge: {exc}\n")
        return 2
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a field the checks let through
        sys.stderr.write(f"edgeaudit merge: a report holds a malformed entry ({type(exc).__name__}: {exc})\n")
        return 2
    archive = _archive_merged(merged, stem, written, args.archive) if args.archive else None
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


def _archive_merged(report: dict[str, Any], stem: Path, written: list[Path], url: str) -> dict[str, Any]:
    """--archive: the merged set uploaded under the guard, whose evidence door opens on the
    declared folders only."""
    guard.install()
    try:
        return archive_report(report, stem, written, url, stem.name)
    finally:
        guard.uninstall()


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
    args = parser.parse_args(argv)
    if args.command == "audit-role":
        from edgeaudit.aws.auditrole import render
        if args.scratch_bucket and args.format != "policy":
            parser.error(f"--scratch-bucket goes with --format policy; {args.format} takes the bucket when deployed")
        if args.suites is not None and not args.suites.is_dir():
            parser.error(f"no folder of controls at {args.suites}")
        sys.stdout.write(render(args.format, args.scratch_bucket, args.suites))
        return 0
    if args.command == "snapshot":
        return _snapshot(args)
    if args.command == "merge":
        return _merge(args)
    if args.command == "verify":
        return _verify(args)
    if args.command == "attest":
        return _attest(args)
    if args.command == "controls":
        args.suites = args.suites or ("suites" if Path("suites").is_dir() else str(builtin_folder()))
        if not Path(args.suites).exists():
            parser.error(f"no folder of controls at {args.suites}")
        found = catalog(args.suites)
        try:
            chosen = resolve(args.framework, {name for c in found for name in c["frameworks"]})
        except UnknownFramework as exc:
            controls.error(f"--framework: {exc}")
        found = [c for c in found if maps_to(c["frameworks"], chosen)]
        render = {"json": lambda c: json.dumps(c, indent=2), "html": html_catalog, "md": markdown}[args.format]
        sys.stdout.write(render(found) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
