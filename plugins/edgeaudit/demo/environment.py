"""The embedded demo environment: a moto server on 127.0.0.1, seeded sites, and their edges.

`pytest --demo` starts one for the run; the project's own tests start one per test session and
build the sites they need. Nothing here reaches beyond loopback.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable

from moto.server import ThreadedMotoServer

from edgeaudit.aws import guard
from edgeaudit.demo import motoext
from edgeaudit.demo.builder import ACCOUNT_ID, ARCHIVE_BUCKET, CREDENTIALS, HISTORY_BUCKET, Builder, BuiltSite, SiteSpec
from edgeaudit.demo.github import TOKEN_ENV, GitHubServer
from edgeaudit.rules import tomlwrite
from edgeaudit.rules.attestations import MANUAL_CONTROLS, entry
from edgeaudit.rules.schedule import latest_opening


def attested(today: dt.date | None = None) -> list[dict[str, Any]]:
    """A passing attestation of each manual control, for every target, made on the control's
    latest scheduled day (the team keeps its checklists on schedule)."""
    today = today or dt.date.today()
    return [entry(control, "Demo Operator (ops)", f"https://wiki.example.com/ops/{control}",
                  date=latest_opening(cadence, today))
            for control, cadence in MANUAL_CONTROLS.items()]


# `[report] history` of a `--demo` run: a bucket of the demo account, as a site's CI keeps its
# history on runners that start empty
HISTORY = f"s3://{HISTORY_BUCKET}/edgeaudit/history.jsonl"
# `[report] archive` of a `--demo` run: an Object Lock bucket (compliance mode, 365 days) of the demo account
ARCHIVE = f"s3://{ARCHIVE_BUCKET}/edgeaudit/"
VERSION_FILE = "version.txt"  # on the demo site: the commit it serves (EA-DEP-05)
EDGE_READER = "demo-edge-reader"  # the IAM user the edges read S3 and CloudFront as, once asked to


def _set_environ(values: dict[str, str | None]) -> None:
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


class OneRequestAtATime:
    """moto's backends keep their resources in plain dicts, not made for threads: a request that
    adds a distribution, stack or web ACL while another walks them fails ("changed size during
    iteration"), as sites built on several threads showed. The demo's server answers one request
    at a time; moto answers under Python's global lock anyway."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            body = self.app(environ, start_response)
            try:
                return list(body)
            finally:
                getattr(body, "close", lambda: None)()


class DemoEnvironment:
    """A moto server plus the sites built into it; `config_data` is the matching config."""

    def __init__(self, server: ThreadedMotoServer, endpoint_url: str, workdir: Path, owns_workdir: bool) -> None:
        self.server = server
        self.endpoint_url = endpoint_url
        self.workdir = workdir
        self._owns_workdir = owns_workdir
        self.builder = Builder(endpoint_url, workdir)
        self.sites: list[BuiltSite] = []
        self._edge_keys: tuple[str, str] | None = None
        self.github = GitHubServer()  # the repository the demo deploys from (EA-DEP-05, EA-MET-01, EA-CHG-01)
        self.version_path: str | None = None  # set when the sites publish the commit they serve

    @classmethod
    def start(cls, specs: list[SiteSpec] | None = None, workdir: Path | None = None) -> "DemoEnvironment":
        motoext.install()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        server._server.app = OneRequestAtATime(server._server.app)  # type: ignore[union-attr]
        host, port = server.get_host_and_port()
        owns = workdir is None
        workdir = workdir or Path(tempfile.mkdtemp(prefix="edgeaudit-demo-"))
        env = cls(server, f"http://{host}:{port}", workdir, owns)
        demo = specs is None  # the demo site itself, not a test's sites
        if demo:  # the demo site publishes the commit it serves, as its deploy workflow wrote it
            newest = env.github.repository.newest_runs(None)[0]["head_sha"]
            specs = [SiteSpec.demo().but(extra_objects=((VERSION_FILE, f"{newest}\n".encode(), "text/plain"),))]
            env.version_path = f"/{VERSION_FILE}"
        for spec in specs:
            env.add(spec)
        if demo:
            env.write_baselines()
        return env

    def write_baselines(self) -> None:
        """Each site's baseline, as `edgeaudit snapshot` writes it (EA-DR-06): the demo's stacks
        hold the bucket and the distribution, not the policies and the WAF they use."""
        from edgeaudit.aws.clients import Aws, AwsRegistry
        from edgeaudit.checks import drift
        from edgeaudit.rules.config import parse

        saved = {key: os.environ.get(key) for key in self.aws_env}
        try:
            _set_environ(self.aws_env)
            registry = AwsRegistry()
            for site in self.sites:
                path = self.workdir / f"{site.spec.name}-{site.bucket}-baseline.json"
                site.extra["baseline"] = str(path)
                [target] = parse(self.workdir / "edgeaudit.toml", {"targets": [site.target_entry()]}).targets
                drift.write_baseline(path, drift.live_config(Aws(registry, target), target))
        finally:
            _set_environ(saved)

    def add(self, spec: SiteSpec) -> BuiltSite:
        site = self.builder.build(spec)
        self.sites.append(site)
        return site

    def add_sites(self, specs: list[SiteSpec], workers: int = 4) -> list[BuiltSite]:
        """Build `specs` on `workers` threads (a fleet of hundreds builds in minutes, not an
        hour); the sites join `sites` in the order of `specs`, whichever thread finished first.
        A site that fails to build fails the call, after every other one has joined `sites`
        (so that stop() stops their edges)."""
        if workers <= 1:
            return [self.add(spec) for spec in specs]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="demo-build") as pool:
            futures = [pool.submit(self.builder.build, spec) for spec in specs]
        built = [f.result() for f in futures if f.exception() is None]
        self.sites.extend(built)
        for future in futures:
            if future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
        return built

    def sign_edges_as_iam_user(self) -> tuple[str, str]:
        """Give every edge, now and later, the keys of a read-only IAM user, so that the sites keep
        serving while a test has moto enforce IAM (the default keys belong to no user)."""
        if self._edge_keys is None:
            iam = self.builder.client("iam")
            with guard.local_seeding():
                iam.create_user(UserName=EDGE_READER)
                iam.put_user_policy(UserName=EDGE_READER, PolicyName="edge-read", PolicyDocument=json.dumps({
                    "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
                        "s3:GetObject", "s3:ListBucket", "cloudfront:GetDistributionConfig",
                        "cloudfront:GetResponseHeadersPolicy"]}]}))
                key = iam.create_access_key(UserName=EDGE_READER)["AccessKey"]
            self._edge_keys = self.builder.edge_credentials = (key["AccessKeyId"], key["SecretAccessKey"])
        for site in self.sites:
            site.edge.source.sign_with(self._edge_keys)
        return self._edge_keys

    @property
    def config_data(self) -> dict[str, Any]:
        """The config document (as tomllib would read it) for every site built so far, with a
        live attestation of every manual control (the demo's team keeps its checklists) and the
        demo's GitHub repository."""
        return {"targets": [site.target_entry() for site in self.sites], "attestations": attested(),
                "github": self.github.source(**({"version_path": self.version_path} if self.version_path else {}))}

    @property
    def run_config_data(self) -> dict[str, Any]:
        """The config of a `pytest --demo` run: config_data, with the run history in S3 (HISTORY) and
        the report set archived to an Object Lock bucket (ARCHIVE)."""
        return {**self.config_data, "report": {"history": HISTORY, "archive": ARCHIVE}}

    def write_config(self, path: Path, **extra: Any) -> Path:
        """Write an edgeaudit.toml for these sites; `extra` adds [thresholds], [[waivers]], ..."""
        path.write_text(tomlwrite.dumps({**extra, **self.config_data}), encoding="utf-8")
        return path

    @property
    def aws_env(self) -> dict[str, str | None]:
        """Environment that points boto3 at the demo's moto server with throwaway credentials
        (None removes a variable, so that no real profile or credential is used), and the token of
        the demo's GitHub."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url, "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
            "AWS_SESSION_TOKEN": None, "AWS_PROFILE": None, "AWS_DEFAULT_PROFILE": None,
            "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            TOKEN_ENV: self.github.token,
        }

    @property
    def account_id(self) -> str:
        return ACCOUNT_ID

    def stop(self) -> None:
        self.github.stop()
        for site in self.sites:
            site.edge.stop()
        self.server.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
