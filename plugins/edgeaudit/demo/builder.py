"""The site builder: seeds an S3 + CloudFront site into a moto server and puts a local edge in
front of it. Every switch of `SiteSpec` defaults to compliant; the demo and the tests flip one
switch at a time to break exactly one control.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import requests

from edgeaudit.aws import guard
from edgeaudit.aws.clients import adapt_to_emulator
from edgeaudit.checks import cost, rollback
from edgeaudit.checks.metrics import AVAILABILITY_DAYS
from edgeaudit.demo import motoext
from edgeaudit.demo.edge import BotoEdgeSource, Edge
from edgeaudit.demo.pki import CertificateAuthority

ACCOUNT_ID = "123456789012"
ACCOUNT_ALIAS = "example-www"  # the name the demo account is known by (IAM account alias)
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
COST_TAG_KEY = "site"                     # the cost allocation tag of every built site
PARTNER_ACCOUNT = "210987654321"          # another AWS account, for cross-account grants
PARTNER_WRITER = f"arn:aws:iam::{PARTNER_ACCOUNT}:role/partner-deploy"
OTHER_DISTRIBUTION = f"arn:aws:cloudfront::{ACCOUNT_ID}:distribution/EOTHERDIST0001"
CLOUDFRONT_ZONE_ID = "Z2FDTNDATAQYW2"
HISTORY_BUCKET = "edgeaudit-history-123456789012"  # where a `--demo` run keeps its run history
ARCHIVE_BUCKET = "edgeaudit-evidence-123456789012"  # where a `--demo` run archives its report set (Object Lock)
DR_REGION = "eu-central-1"  # where the demo's replica buckets live  # the hosted zone of every *.cloudfront.net alias target
CSP = ("default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
       "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


@dataclass(frozen=True)
class SiteSpec:
    """One site and the switches that break it. The defaults make a compliant site."""

    name: str = "www"
    region: str = "eu-west-1"
    paths: tuple[str, ...] = ("/", "/about.html")
    # distribution (EA-DEP-01, EA-CF-01, EA-SITE-02)
    enabled: bool = True
    status: str = "Deployed"
    status_minutes: float = 120.0            # how long ago the last change was made
    viewer_protocol_policy: str = "redirect-to-https"          # default behaviour
    assets_viewer_protocol_policy: str = "redirect-to-https"   # the /assets/* behaviour
    # site content (EA-SITE-01, EA-SITE-04)
    missing_objects: tuple[str, ...] = ()
    broken_link: bool = False
    # response headers policy (EA-HDR-*)
    hsts_max_age: int | None = 63072000
    hsts_include_subdomains: bool = True
    permissions_policy: bool = True
    # certificate (EA-TLS-01)
    cert_days_left: int = 200
    cert_lifetime_days: int = 395
    # headers the origin adds to every answer, e.g. (("X-Powered-By", "Express"),)
    origin_headers: tuple[tuple[str, str], ...] = ()
    # live site (EA-SITE-*, EA-HDR-*, EA-PEN-*, EA-DEP-02/04, EA-CACHE-01/02)
    csp: str | None = CSP
    frame_options: str | None = "DENY"
    content_type_options: bool = True
    referrer_policy: str | None = "strict-origin-when-cross-origin"
    extra_objects: tuple[tuple[str, bytes, str], ...] = ()   # (key, body, content type)
    mixed_content: bool = False              # the home page loads an image over http://
    source_maps: bool = False                # app.js names its source map, which is served
    asset_cache_control: str = "public, max-age=31536000, immutable"
    html_cache_control: str = "public, max-age=300"
    compress: bool = True
    custom_error_pages: bool = True          # off: S3's XML errors reach viewers
    soft_404: bool = False                   # the error page answers 200
    stale_objects: tuple[str, ...] = ()      # keys the edge keeps serving after a new upload
    public_bucket: bool = False              # bucket policy lets everyone read and list
    cors_reflection: bool = False
    open_redirect: bool = False
    bucket_listing: bool = False
    public_write: bool = False               # every method allowed and the origin accepts writes
    dangling_dns: bool = False               # DNS records point at a distribution and a bucket not ours
    # page speed (EA-PERF-*): the default pages are fast; each switch slows the home page one way
    html_delay_s: float = 0.0                # the edge waits this long before answering HTML (slow origin)
    layout_shift: bool = False               # a banner pushes the content down after load (CLS > 0.25)
    long_task_ms: int = 0                    # a script blocks the main thread this long after load (TBT)
    heavy_kb: int = 0                        # the home page loads a script of this size (KB)
    connect_delay_s: float = 0.0             # each new connection waits this long to be set up (a distant edge)
    unavailable: bool = False                # the edge answers every GET with a quick 503 (an origin that is down)
    # CloudWatch, in percent as CloudFront reports them (EA-SITE-07, EA-CACHE-04)
    error_rate_5xx: float = 0.02             # last 24 h
    error_rate_4xx: float = 1.5
    error_rates_after_release: tuple[float, float] | None = None  # (5xx, 4xx) once the release is live;
                                                                   # None: as before it
    cache_hit_rate: float | None = 93.0      # None: the distribution's additional metrics are off
    # bucket (EA-S3-*)
    block_public_access: bool = True
    versioning: bool = True
    bucket_policy_extra: tuple[str, ...] = ()  # "public-read", "cloudfront-any", "cloudfront-other",
                                               # "partner-read", "partner-write" (allowed), "ip-office"
                                               # (everyone from one /24: allowed), "ip-halves" (everyone
                                               # from 0.0.0.0/1 and 128.0.0.0/1), "open-conditions"
                                               # (everyone, under conditions that name nobody)
    deny_insecure_transport: bool = True
    insecure_transport_denied: tuple[str, ...] = ("s3:*",)  # the actions the Deny of plain HTTP names
    public_object_acl: bool = False          # objects uploaded with the canned ACL public-read
    encryption: str = "AES256"               # "aws:kms" (CloudFront may decrypt), "aws:kms-no-cloudfront", "none"
    lifecycle: bool = True
    noncurrent_days: int = 90                # NoncurrentVersionExpiration of the lifecycle rule
    newer_noncurrent_versions: int | None = None  # ... and how many noncurrent versions it keeps anyway
    access_logging: bool = True
    data_events: str | None = None           # a trail records the bucket's object events: All/ReadOnly/WriteOnly
                                             # (basic selector), AdvancedAll, AdvancedGetObject (advanced)
    object_ownership: str = "BucketOwnerEnforced"
    website_hosting: bool = False
    # distribution configuration (EA-CF-02..11, EA-CACHE-03, EA-COST-04)
    origin_access: str = "oac"               # "oai", "public" (neither), "website" (the website endpoint)
    extra_origins: tuple[str, ...] = ()      # "s3-global", "s3-dash" (other S3 domain forms), "custom-https",
                                             # "custom-http", "dangling" (a bucket that does not exist)
    minimum_protocol_version: str = "TLSv1.2_2021"
    ssl_support_method: str = "sni-only"
    # "empty" (no rules), "none", "count" (rules that only count), "group-count" (a rule group of the
    # account's own whose rules count), "group-block" (one of them blocks), "managed-count" (every
    # rule of a managed group overridden to count), "managed-partly" (one of them)
    web_acl: str = "rules"
    cloudfront_logging: bool = True
    default_root_object: str = "index.html"
    assets_headers_policy: bool = True
    assets_allowed_methods: tuple[str, ...] | None = None   # None: as the default behaviour
    assets_cache_policy: str | None = None                  # None: CachingOptimized
    html_cache_ttls: tuple[int, int, int] | None = None     # the default behaviour's own cache policy
                                                            # (MinTTL, DefaultTTL, MaxTTL); None: CachingOptimized
    http_version: str = "http2and3"
    ipv6: bool = True
    price_class: str = "PriceClass_100"
    aliases: tuple[str, ...] = ()
    # the distribution's ACM certificate (EA-TLS-06); it covers localhost and www.example.com
    acm_certificate: str = "dns"             # "email" (e-mail validated), "imported"
    acm_status: str = "ISSUED"
    acm_renewal: str | None = None           # the last managed renewal's status, e.g. "FAILED"
    # invalidations (EA-DEP-03, EA-CACHE-05)
    invalidation_paths: tuple[int, ...] = (2, 1)  # paths of each completed batch this month
    stuck_invalidation_minutes: float | None = None
    # who may write (EA-IAM-01, 02, 04)
    deploy_actions: tuple[str, ...] = ("s3:PutObject", "s3:DeleteObject", "s3:GetObject")
    invalidation_resource: str | None = None   # None: the distribution's ARN
    deploy_user_key_age_days: int | None = None  # an allowed deploy user with an access key this old
    extra_writer: bool = False               # a user who may write through a group's policy, not allowed
    # cost (EA-COST-*)
    daily_cost_usd: float = 0.40
    cost_spike: bool = False                 # the newest complete day (the day before yesterday, as
                                             # yesterday is Estimated) cost four times the usual
    cost_stopped_days: int = 0               # no spend on the last N days (spend before them)
    cost_forecast: bool = True               # off: Cost Explorer has too little history to forecast
    monthly_budget_usd: float = 40.0
    budget: str = "notified"                 # "silent" (no notification), "none"
    # disaster recovery (EA-DR-*): earlier deployments a day apart, a replica, a scratch bucket
    deployments: int = 3
    replica: str = "sync"                    # "none", "missing" (lacks about.html), "stale" (about.html
                                             # changed two hours ago, the replica has the old bytes)
    scratch_bucket: bool | str = True        # False: none configured; "missing": configured, never created
    rollback_gap: tuple[str, ...] = ()       # keys whose earlier versions were deleted
    later_writes: tuple[str, ...] = ()       # keys rewritten an hour after the latest deployment (a
                                             # regenerated sitemap): the deployment moves an hour back
    release_manifest: str = ""               # "file" (JSON beside the config) or "s3" (an object in a bucket
                                             # of its own): each release's object versions; "stale": a
                                             # file the latest deployment did not update
    origin_group: bool = True                # an origin group fails over to the replica on 5xx
    origin_group_break: str | None = None    # "unused" (the behaviours target the bucket origin),
                                             # "codes" (fails over on 500 and 502 only),
                                             # "members" (the secondary is the origin bucket again)
    stack: bool | str = True                 # a CloudFormation stack declares the site (EA-DR-06);
                                             # "undeclared": a stack that holds neither bucket nor distribution
    declared_absent: tuple[str, ...] = ("lockfile",)  # what the target entry declares the site has none of
    viewer_function: bool = False            # a CloudFront Function on the default behaviour's viewer requests

    @classmethod
    def demo(cls) -> "SiteSpec":
        """The demo site: compliant but for the three deliberate findings of the README."""
        return cls(name="www", cert_days_left=20, permissions_policy=False, broken_link=True)

    def but(self, **changes: Any) -> "SiteSpec":
        return replace(self, **changes)


def site_objects(spec: SiteSpec) -> dict[str, tuple[bytes, str]]:
    """The site's files: key -> (body, content type)."""
    nav = '<a href="/">Home</a> <a href="/about.html">About</a>'
    if spec.broken_link:
        nav += ' <a href="/docs/getting-started.html">Docs</a>'
    head = ('<meta charset="utf-8"><meta name="viewport" content="width=device-width">'
            '<link rel="stylesheet" href="/assets/style.3f9a1c.css">')

    def page(title: str, body: str) -> bytes:
        return (f"<!doctype html><html lang=\"en\"><head>{head}<title>{title}</title></head>"
                f"<body><header>{nav}</header><main><h1>{title}</h1>{body}</main>"
                f'<script src="/assets/app.8c2e4d.js"></script></body></html>').encode()

    objects = {
        "index.html": (page("Example static site", "<p>Served from S3 through CloudFront.</p>"
                            '<img src="/assets/logo.svg" alt="logo" width="64" height="64">'), "text/html"),
        "about.html": (page("About", "<p>A small static site.</p>"), "text/html"),
        "404.html": (page("Page not found", "<p>That page does not exist.</p>"), "text/html"),
        "assets/style.3f9a1c.css": (b"body{font-family:sans-serif;margin:2em auto;max-width:40em}" * 20, "text/css"),
        "assets/app.8c2e4d.js": (b"document.documentElement.dataset.ready='1';\n" * 30, "application/javascript"),
        "assets/logo.svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
                            b'<circle cx="32" cy="32" r="30" fill="#36c"/></svg>', "image/svg+xml"),
        "robots.txt": (b"User-agent: *\nAllow: /\n", "text/plain"),
    }
    if spec.mixed_content:
        body, kind = objects["index.html"]
        objects["index.html"] = (body.replace(b"</main>", b'<img src="http://images.example.com/banner.png" '
                                              b'alt="banner"></main>'), kind)
    if spec.source_maps:
        body, kind = objects["assets/app.8c2e4d.js"]
        objects["assets/app.8c2e4d.js"] = (body + b"//# sourceMappingURL=app.8c2e4d.js.map\n", kind)
        objects["assets/app.8c2e4d.js.map"] = (b'{"version":3,"file":"app.8c2e4d.js","sources":["src/app.ts"],'
                                               b'"names":[],"mappings":"AAAA"}', "application/json")
    _slow_home_page(spec, objects)
    for key, body, kind in spec.extra_objects:
        objects[key] = (body, kind)
    return {k: v for k, v in objects.items() if k not in spec.missing_objects}


def _slow_home_page(spec: SiteSpec, objects: dict[str, tuple[bytes, str]]) -> None:
    """The page-speed switches: scripts on the home page (external files, as the CSP wants)."""
    extra = b""
    if spec.layout_shift:  # full-width content that a banner pushes down 70 % of the viewport after load
        objects["assets/shift.7d1e0a.js"] = (
            b"document.body.style.maxWidth='none';document.querySelector('main').style.minHeight='100vh';"
            b"addEventListener('load',function(){setTimeout(function(){var b=document.createElement('div');"
            b"b.style.height='70vh';b.style.background='#fc6';b.textContent='Offer';"
            b"document.body.insertBefore(b,document.body.firstChild)},100)});\n", "application/javascript")
        extra += b'<script src="/assets/shift.7d1e0a.js"></script>'
    if spec.long_task_ms:
        objects["assets/busy.4b9f2e.js"] = (
            b"addEventListener('load',function(){setTimeout(function(){var end=performance.now()+"
            + str(int(spec.long_task_ms)).encode() + b";while(performance.now()<end){}},50)});\n",
            "application/javascript")
        extra += b'<script src="/assets/busy.4b9f2e.js"></script>'
    if spec.heavy_kb:  # a script of random text in a comment: compression gains only a quarter
        noise = base64.b64encode(hashlib.shake_256(b"bundle").digest(spec.heavy_kb * 768))
        objects["assets/bundle.9a8b7c.js"] = (b"/*" + noise + b"*/\n", "application/javascript")
        extra += b'<script src="/assets/bundle.9a8b7c.js"></script>'
    if extra:
        body, kind = objects["index.html"]
        objects["index.html"] = (body.replace(b"</main>", extra + b"</main>"), kind)


def discovery_objects(spec: SiteSpec, base_url: str) -> dict[str, tuple[bytes, str]]:
    """robots.txt and sitemap.xml, which name the site's own URL (known once the edge listens)."""
    pages = "".join(f"<url><loc>{base_url.rstrip('/')}{path}</loc></url>" for path in ("/", "/about.html"))
    objects = {
        "robots.txt": (f"User-agent: *\nAllow: /\nSitemap: {base_url}sitemap.xml\n".encode(), "text/plain"),
        "sitemap.xml": (('<?xml version="1.0" encoding="UTF-8"?>\n'
                         f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{pages}</urlset>\n').encode(),
                        "application/xml"),
    }
    return {k: v for k, v in objects.items() if k not in spec.missing_objects}


VIEWER_FUNCTION = (b"function handler(event) { var r = event.request;"
                   b" if (r.uri.endsWith('/')) { r.uri += 'index.html'; } return r; }")
# why a demo site has none of what it declares absent (its target entry's `absent`)
ABSENT_REASONS = {"lockfile": "the demo site is hand-written files with no package dependencies",
                  "replica_bucket": "a single-region site, rebuilt from its repository",
                  "monthly_budget_usd": "the site's spend is covered by the account's budget"}


@dataclass
class BuiltSite:
    spec: SiteSpec
    bucket: str
    distribution_id: str
    edge: Edge
    ca_file: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def target_entry(self) -> dict[str, Any]:
        """The [[targets]] entry of a config for this site."""
        return {
            "name": self.spec.name, "url": self.edge.url, "http_url": self.edge.http_url,
            "bucket": self.bucket, "region": self.spec.region, "distribution_id": self.distribution_id,
            "paths": list(self.spec.paths), "ca_bundle": str(self.ca_file),
            "allowed_writers": [self.extra["deploy_role_arn"], *self.extra.get("other_writers", [])],
            **({} if "monthly_budget_usd" in self.spec.declared_absent
               else {"monthly_budget_usd": self.spec.monthly_budget_usd}),
            "cost_tag": {"key": COST_TAG_KEY, "value": self.extra["cost_tag"]},
            **{key: self.extra[key] for key in ("replica_bucket", "scratch_bucket", "stack_name", "release_manifest",
                                                "baseline") if self.extra.get(key)},
            **({"absent": {key: ABSENT_REASONS[key] for key in self.spec.declared_absent}}
               if self.spec.declared_absent else {}),
        }


class Builder:
    """Builds sites into one moto endpoint; one CA signs every edge certificate. Sites may be
    built from several threads at once: what they share (clients, the account's parts, the log
    buckets, Cost Explorer's queue of answers) is made under one lock."""

    def __init__(self, endpoint_url: str, workdir: Path, ca: CertificateAuthority | None = None) -> None:
        motoext.install()
        self.endpoint_url = endpoint_url
        self.workdir = workdir
        self.ca = ca or CertificateAuthority.create()
        self.ca_file = self.ca.write_ca(workdir / "demo-ca.pem")
        self._session = boto3.Session(region_name="us-east-1", **CREDENTIALS)
        self.edge_credentials = (CREDENTIALS["aws_access_key_id"], CREDENTIALS["aws_secret_access_key"])
        self._account_seeded = False
        self._clients: dict[tuple[str, str], Any] = {}
        self._log_buckets: set[str] = set()
        self._lock = threading.RLock()

    def client(self, service: str, region: str = "us-east-1") -> Any:
        # moto serves every API on one host: no account-id host prefix (s3control)
        with self._lock:  # a boto3 session makes clients one thread at a time; the clients are thread-safe
            if (service, region) not in self._clients:
                self._clients[service, region] = adapt_to_emulator(self._session.client(
                    service, region_name=region, endpoint_url=self.endpoint_url,
                    config=botocore.config.Config(inject_host_prefix=False, max_pool_connections=32)))
            return self._clients[service, region]

    def _seed_account(self) -> None:
        """Account-wide parts: Block Public Access, a multi-region trail, its log bucket, a root
        user with MFA and no access keys, an account alias."""
        self.client("s3control").put_public_access_block(AccountId=ACCOUNT_ID, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
        s3 = self.client("s3")
        s3.create_bucket(Bucket="audit-logs-123456789012")
        s3.create_bucket(Bucket=HISTORY_BUCKET)
        s3.create_bucket(Bucket=ARCHIVE_BUCKET, ObjectLockEnabledForBucket=True)  # evidence no one can alter
        s3.put_object_lock_configuration(Bucket=ARCHIVE_BUCKET, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 365}}})
        trail = self.client("cloudtrail")
        trail.create_trail(Name="org-trail", S3BucketName="audit-logs-123456789012", IsMultiRegionTrail=True,
                           EnableLogFileValidation=True)
        trail.start_logging(Name="org-trail")
        motoext.set_root_user(mfa=True, access_keys=False)  # set in the console on AWS; no API does it
        self.client("iam").generate_credential_report()  # an account whose report IAM already keeps
        self.client("iam").create_account_alias(AccountAlias=ACCOUNT_ALIAS)  # its name in the reports
        self._account_seeded = True

    def build(self, spec: SiteSpec) -> BuiltSite:
        with guard.local_seeding():
            with self._lock:
                if not self._account_seeded:
                    self._seed_account()
            return self._build(spec)

    def _build(self, spec: SiteSpec) -> BuiltSite:
        suffix = secrets.token_hex(3)
        bucket = f"{spec.name}-origin-{suffix}".lower()
        s3 = self.client("s3", spec.region)
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": spec.region})
        if spec.versioning:
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        if spec.block_public_access and not spec.public_bucket:
            s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
                "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True})
        self._encryption(spec, s3, bucket)
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={
            "Rules": [{"ObjectOwnership": spec.object_ownership}]})
        self._bucket_settings(spec, s3, bucket, suffix)
        self._earlier_deployments(spec, s3, bucket)
        extra, bulk = {key for key, _, _ in spec.extra_objects}, []
        for key, (body, content_type) in site_objects(spec).items():
            cache = (spec.asset_cache_control if key.startswith("assets/") else
                     spec.html_cache_control if content_type == "text/html" else "public, max-age=300")
            if key in extra:  # data beside the site, maybe thousands of objects: written at once
                bulk.append((key, body, content_type, cache))
            else:
                s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, CacheControl=cache)
        motoext.put_objects(bucket, bulk)
        if spec.public_object_acl:
            for key in site_objects(spec):
                s3.put_object_acl(Bucket=bucket, Key=key, ACL="public-read")

        cert = self._certificate(spec)
        cert_arn = self._acm_certificate(spec, cert)
        cert_file, key_file = cert.write(self.workdir, f"{spec.name}-{suffix}")
        web_acl_arn = self._web_acl(spec.name, suffix)
        distribution_id = self._distribution(spec, bucket, suffix, cert_arn, web_acl_arn)
        policy = _bucket_policy(bucket, distribution_id, public=spec.public_bucket)
        policy["Statement"] = _policy_switches(spec, bucket, policy["Statement"])
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        role_arn = self._deploy_role(spec.name, suffix, bucket, distribution_id, spec.deploy_actions,
                                     spec.invalidation_resource)
        other_writers = self._other_writers(spec, suffix, bucket)
        self._invalidations(spec, distribution_id, suffix)
        cost_tag = self._costs(spec, s3, bucket, distribution_id, suffix)
        moment = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=spec.status_minutes)
        motoext.set_distribution_status(distribution_id, spec.status, last_modified=moment)

        source = BotoEdgeSource(endpoint_url=self.endpoint_url, distribution_id=distribution_id, bucket=bucket,
                                region=spec.region, credentials=self.edge_credentials)
        edge = Edge(source, cert_file=cert_file, key_file=key_file, name=spec.name,
                    extra_headers=dict(spec.origin_headers), cors_reflection=spec.cors_reflection,
                    open_redirect=spec.open_redirect, bucket_listing=spec.bucket_listing,
                    accepts_writes=spec.public_write, html_delay_s=spec.html_delay_s,
                    connect_delay_s=spec.connect_delay_s, unavailable=spec.unavailable).start()
        self._publish_after_start(spec, s3, bucket, edge)
        self._dns(spec, distribution_id, suffix)
        built = BuiltSite(spec, bucket, distribution_id, edge, self.ca_file,
                          {"deploy_role_arn": role_arn, "certificate_arn": cert_arn, "web_acl_arn": web_acl_arn,
                           "other_writers": other_writers, "cost_tag": cost_tag,
                           **self._disaster_recovery(spec, s3, bucket, suffix),
                           **self._stack(spec, bucket, distribution_id, suffix)})
        self._traffic_after_release(spec, distribution_id)
        return built

    def _traffic_after_release(self, spec: SiteSpec, distribution_id: str) -> None:
        """Error rates of the first minute after the release went live (after the last write)."""
        rate_5xx, rate_4xx = spec.error_rates_after_release or (spec.error_rate_5xx, spec.error_rate_4xx)
        dimensions = [{"Name": "DistributionId", "Value": distribution_id}, {"Name": "Region", "Value": "Global"}]
        now = dt.datetime.now(dt.timezone.utc)
        self.client("cloudwatch").put_metric_data(Namespace="AWS/CloudFront", MetricData=[
            {"MetricName": name, "Dimensions": dimensions, "Timestamp": now, "Unit": "Percent", "Value": value}
            for name, value in (("5xxErrorRate", rate_5xx), ("4xxErrorRate", rate_4xx))])

    def _publish_after_start(self, spec: SiteSpec, s3: Any, bucket: str, edge: Edge) -> None:
        """robots.txt and sitemap.xml name the edge's URL; a stale edge keeps the old bytes of
        `stale_objects` while the bucket gets a new release of them."""
        for key, (body, content_type) in discovery_objects(spec, edge.url).items():
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type,
                          CacheControl="public, max-age=300")
        for key in spec.stale_objects:
            edge.hold(key)
            old = s3.get_object(Bucket=bucket, Key=key)
            s3.put_object(Bucket=bucket, Key=key, Body=old["Body"].read() + b"\n<!-- release 2 -->\n",
                          ContentType=old["ContentType"], CacheControl=old.get("CacheControl", ""))

    def _earlier_deployments(self, spec: SiteSpec, s3: Any, bucket: str) -> None:
        """The releases before the current one, a day apart (pages carry their release number),
        so that a versioned bucket has a history to restore and roll back. `extra_objects` are
        data beside the site, written once."""
        now = dt.datetime.now(dt.timezone.utc)
        extra = {key for key, _, _ in spec.extra_objects}
        for release in range(1, spec.deployments):
            moment = now - dt.timedelta(days=spec.deployments - release)
            for key, (body, content_type) in site_objects(spec).items():
                if key in extra:
                    continue
                if content_type == "text/html":
                    body = body + f"\n<!-- release {release} -->\n".encode()
                put = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
                motoext.set_object_last_modified(bucket, key, moment, version_id=put.get("VersionId"))

    def _stack(self, spec: SiteSpec, bucket: str, distribution_id: str, suffix: str) -> dict[str, str]:
        """A CloudFormation stack that declares the site (EA-DR-06): made with a release
        parameter, then the bucket and the distribution, built by hand, imported into it;
        `stack="undeclared"` leaves them out, so the stack declares nothing of the site."""
        if not spec.stack:
            return {}
        name, cloudformation = f"{spec.name}-{suffix}-site", self.client("cloudformation", spec.region)
        resources: dict[str, Any] = {"Release": {"Type": "AWS::SSM::Parameter", "Properties": {
            "Name": f"/{spec.name}-{suffix}/release", "Type": "String", "Value": "3"}}}
        cloudformation.create_stack(StackName=name, TemplateBody=json.dumps({"Resources": resources}))
        if spec.stack == "undeclared":
            return {"stack_name": name}
        resources["Bucket"] = {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain",
                               "Properties": {"BucketName": bucket}}
        resources["Distribution"] = {"Type": "AWS::CloudFront::Distribution", "DeletionPolicy": "Retain",
                                     "Properties": {"DistributionConfig": {"Comment": f"{spec.name} static site",
                                                                           "Enabled": spec.enabled}}}
        change_set = cloudformation.create_change_set(
            StackName=name, ChangeSetName="adopt-the-site", ChangeSetType="IMPORT",
            TemplateBody=json.dumps({"Resources": resources}), ResourcesToImport=[
                {"ResourceType": "AWS::S3::Bucket", "LogicalResourceId": "Bucket",
                 "ResourceIdentifier": {"BucketName": bucket}},
                {"ResourceType": "AWS::CloudFront::Distribution", "LogicalResourceId": "Distribution",
                 "ResourceIdentifier": {"Id": distribution_id}}])
        cloudformation.execute_change_set(ChangeSetName=change_set["Id"])
        return {"stack_name": name}

    def _disaster_recovery(self, spec: SiteSpec, s3: Any, bucket: str, suffix: str) -> dict[str, str]:
        """A replica in another region kept in sync (moto replicates nothing, so the builder
        copies), and a scratch bucket for drills."""
        made: dict[str, str] = {}
        self._later_writes(spec, s3, bucket)
        if spec.release_manifest:
            made["release_manifest"] = self._release_manifest(spec, s3, bucket, suffix)
        for key in spec.rollback_gap:
            for version in s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", []):
                if version["Key"] == key and not version["IsLatest"]:
                    s3.delete_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])
        if spec.scratch_bucket:
            made["scratch_bucket"] = f"{spec.name}-drills-{suffix}".lower()
        if spec.scratch_bucket is True:
            s3.create_bucket(Bucket=made["scratch_bucket"],
                             CreateBucketConfiguration={"LocationConstraint": spec.region})
        if spec.replica == "none" or not spec.versioning:
            return made
        replica = made["replica_bucket"] = f"{spec.name}-replica-{suffix}".lower()
        dr_s3 = self.client("s3", DR_REGION)
        dr_s3.create_bucket(Bucket=replica, CreateBucketConfiguration={"LocationConstraint": DR_REGION})
        dr_s3.put_bucket_versioning(Bucket=replica, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_replication(Bucket=bucket, ReplicationConfiguration={
            "Role": f"arn:aws:iam::{ACCOUNT_ID}:role/{spec.name}-{suffix}-replication",
            "Rules": [{"ID": "all-to-dr", "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": ""},
                       "DeleteMarkerReplication": {"Status": "Enabled"},
                       "Destination": {"Bucket": f"arn:aws:s3:::{replica}"}}]})
        motoext.copy_objects(bucket, replica)  # every current object, in one pass through moto's model
        if spec.replica == "missing":
            dr_s3.delete_object(Bucket=replica, Key="about.html")
        elif spec.replica == "stale":
            old = s3.get_object(Bucket=bucket, Key="about.html")
            put = s3.put_object(Bucket=bucket, Key="about.html", Body=old["Body"].read() + b"\n<!-- hotfix -->\n",
                                ContentType="text/html")
            moment = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=120)
            motoext.set_object_last_modified(bucket, "about.html", moment, version_id=put.get("VersionId"))
        return made

    def _later_writes(self, spec: SiteSpec, s3: Any, bucket: str) -> None:
        """The latest deployment an hour ago, and `later_writes` rewritten since, as a job that
        regenerates a file between deployments does."""
        if not spec.later_writes:
            return
        hour_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
        for version in s3.list_object_versions(Bucket=bucket).get("Versions", []):
            if version["LastModified"] > hour_ago:  # this deployment's writes (the earlier ones are days old)
                motoext.set_object_last_modified(bucket, version["Key"], hour_ago, version_id=version["VersionId"])
        for key in spec.later_writes:
            old = s3.get_object(Bucket=bucket, Key=key)
            s3.put_object(Bucket=bucket, Key=key, Body=old["Body"].read() + b"\n<!-- regenerated -->\n",
                          ContentType=old["ContentType"], CacheControl=old.get("CacheControl", ""))

    def _release_manifest(self, spec: SiteSpec, s3: Any, bucket: str, suffix: str) -> str:
        """What a deploy pipeline records: the object versions of each release (the earlier
        ones a day apart, as `_earlier_deployments` wrote them, the live one last)."""
        history = rollback.History.from_pages(s3.get_paginator("list_object_versions").paginate(Bucket=bucket))
        now = dt.datetime.now(dt.timezone.utc)
        releases = [{"id": f"release-{n}", "objects": {
            key: v["VersionId"] for key, v in rollback.view_before(
                history, now - dt.timedelta(days=spec.deployments - n, hours=-1)).items()}}
            for n in range(1, spec.deployments)]
        releases.append({"id": f"release-{spec.deployments}",
                         "objects": {v["Key"]: v["VersionId"] for v in history.versions if v["IsLatest"]}})
        if spec.release_manifest == "stale":
            releases.pop()
        body = json.dumps({"releases": releases}, indent=1)
        if spec.release_manifest == "s3":
            manifests = f"{spec.name}-releases-{suffix}".lower()
            s3.create_bucket(Bucket=manifests, CreateBucketConfiguration={"LocationConstraint": spec.region})
            s3.put_object(Bucket=manifests, Key="www/releases.json", Body=body.encode(), ContentType="application/json")
            return f"s3://{manifests}/www/releases.json"
        path = self.workdir / f"{spec.name}-{suffix}-releases.json"
        path.write_text(body, encoding="utf-8")
        return str(path)

    def _dns(self, spec: SiteSpec, distribution_id: str, suffix: str) -> None:
        """A public hosted zone for the site's host whose record aliases the distribution; with
        `dangling_dns`, two more that point at a distribution and a bucket that are not ours."""
        route53 = self.client("route53")
        domain = self.client("cloudfront").get_distribution(Id=distribution_id)["Distribution"]["DomainName"]
        zone = route53.create_hosted_zone(Name="localhost.", CallerReference=f"{spec.name}-{suffix}",
                                          HostedZoneConfig={"Comment": f"{spec.name} site", "PrivateZone": False})
        changes = [{"Action": "CREATE", "ResourceRecordSet": {
            "Name": "localhost.", "Type": "A",
            "AliasTarget": {"HostedZoneId": CLOUDFRONT_ZONE_ID, "DNSName": f"{domain}.",
                            "EvaluateTargetHealth": False}}}]
        if spec.dangling_dns:
            for name, value in (("old.localhost.", "d111111abcdef8.cloudfront.net."),
                                ("media.localhost.", f"gone-{suffix}-media.s3.amazonaws.com.")):
                changes.append({"Action": "CREATE", "ResourceRecordSet": {
                    "Name": name, "Type": "CNAME", "TTL": 300, "ResourceRecords": [{"Value": value}]}})
        route53.change_resource_record_sets(HostedZoneId=zone["HostedZone"]["Id"],
                                            ChangeBatch={"Changes": changes})

    def _certificate(self, spec: SiteSpec) -> Any:
        """An edge certificate that has `cert_days_left` days to go (plus an hour, so the day count is exact)."""
        now = dt.datetime.now(dt.timezone.utc)
        not_before = now - dt.timedelta(days=spec.cert_lifetime_days - spec.cert_days_left) + dt.timedelta(hours=1)
        return self.ca.issue(["localhost", "127.0.0.1"], days_valid=spec.cert_lifetime_days, not_before=not_before)

    def _acm_certificate(self, spec: SiteSpec, cert: Any) -> str:
        """The distribution's certificate in ACM (us-east-1): requested and DNS-validated, so ACM
        renews it. `acm_certificate="imported"` puts the edge's own certificate there instead
        (ACM refuses an expired one, as AWS does, so an expired edge keeps a requested one)."""
        acm = self.client("acm")
        if spec.acm_certificate == "imported" and spec.cert_days_left > 0:
            return acm.import_certificate(Certificate=cert.cert_pem, PrivateKey=cert.key_pem,
                                          CertificateChain=self.ca.cert_pem)["CertificateArn"]
        arn = acm.request_certificate(DomainName="localhost", SubjectAlternativeNames=["localhost", "www.example.com"],
                                      ValidationMethod="EMAIL" if spec.acm_certificate == "email" else "DNS",
                                      )["CertificateArn"]
        motoext.set_certificate_status(arn, spec.acm_status, renewal_status=spec.acm_renewal)
        return arn

    def _web_acl(self, name: str, suffix: str) -> str:
        return self._create_web_acl(
            Name=f"{name}-{suffix}-acl",
            Rules=[{"Name": "common", "Priority": 0, "OverrideAction": {"None": {}},
                    "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": "AWSManagedRulesCommonRuleSet"}},
                    "VisibilityConfig": {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True,
                                         "MetricName": "common"}}])

    def _rule_group(self, name: str, block: bool) -> str:
        """A rule group of the account's own: a rate limit and a bad-bot match that count, the
        second blocking when `block`."""
        statement = {"ByteMatchStatement": {"SearchString": "badbot", "FieldToMatch": {"SingleHeader": {
            "Name": "user-agent"}}, "TextTransformations": [{"Priority": 0, "Type": "LOWERCASE"}],
            "PositionalConstraint": "CONTAINS"}}
        return self.client("wafv2").create_rule_group(
            Name=name, Scope="CLOUDFRONT", Capacity=100, VisibilityConfig=_visibility(name), Rules=[
                {"Name": "rate", "Priority": 0, "Action": {"Count": {}}, "VisibilityConfig": _visibility("rate"),
                 "Statement": {"RateBasedStatement": {"Limit": 2000, "AggregateKeyType": "IP"}}},
                {"Name": "bad-bots", "Priority": 1, "Action": {"Block": {}} if block else {"Count": {}},
                 "VisibilityConfig": _visibility("bots"), "Statement": statement}])["Summary"]["ARN"]

    def _create_web_acl(self, **acl: Any) -> str:
        return self.client("wafv2").create_web_acl(
            Scope="CLOUDFRONT", DefaultAction={"Allow": {}}, **acl,
            VisibilityConfig={"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True,
                              "MetricName": "site"})["Summary"]["ARN"]

    def _headers_policy(self, spec: SiteSpec, suffix: str) -> str:
        security: dict[str, Any] = {"XSSProtection": {"Protection": True, "ModeBlock": True, "Override": True}}
        if spec.content_type_options:
            security["ContentTypeOptions"] = {"Override": True}
        if spec.frame_options:
            security["FrameOptions"] = {"FrameOption": spec.frame_options, "Override": True}
        if spec.referrer_policy:
            security["ReferrerPolicy"] = {"ReferrerPolicy": spec.referrer_policy, "Override": True}
        if spec.csp:
            security["ContentSecurityPolicy"] = {"ContentSecurityPolicy": spec.csp, "Override": True}
        if spec.hsts_max_age is not None:
            security["StrictTransportSecurity"] = {
                "AccessControlMaxAgeSec": spec.hsts_max_age, "IncludeSubdomains": spec.hsts_include_subdomains,
                "Preload": spec.hsts_include_subdomains, "Override": True}
        custom = [{"Header": "Permissions-Policy", "Value": "camera=(), microphone=(), geolocation=()",
                   "Override": True}] if spec.permissions_policy else []
        config = {"Name": f"{spec.name}-{suffix}-security-headers", "Comment": "security headers",
                  "SecurityHeadersConfig": security,
                  "CustomHeadersConfig": {"Quantity": len(custom), "Items": custom}}
        created = self.client("cloudfront").create_response_headers_policy(ResponseHeadersPolicyConfig=config)
        return created["ResponseHeadersPolicy"]["Id"]

    def _distribution(self, spec: SiteSpec, bucket: str, suffix: str, cert_arn: str, web_acl_arn: str) -> str:
        cloudfront = self.client("cloudfront")
        oac = cloudfront.create_origin_access_control(OriginAccessControlConfig={
            "Name": f"{spec.name}-{suffix}-oac", "SigningProtocol": "sigv4", "SigningBehavior": "always",
            "OriginAccessControlOriginType": "s3"})["OriginAccessControl"]["Id"]
        policy_id = self._headers_policy(spec, suffix)
        methods = {"Quantity": 2, "Items": ["GET", "HEAD"], "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]}}
        if spec.public_write:
            every = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
            methods = {"Quantity": 7, "Items": every, "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]}}

        def behaviour(viewer_policy: str, **extra: Any) -> dict[str, Any]:
            return {"TargetOriginId": "s3-origin", "ViewerProtocolPolicy": viewer_policy, "AllowedMethods": methods,
                    "Compress": spec.compress, "CachePolicyId": CACHING_OPTIMIZED,
                    "ResponseHeadersPolicyId": policy_id, **extra}

        page_code = "200" if spec.soft_404 else "404"
        errors = [{"ErrorCode": code, "ResponsePagePath": "/404.html", "ResponseCode": page_code,
                   "ErrorCachingMinTTL": 60} for code in (403, 404)] if spec.custom_error_pages else []
        config = {
            "CallerReference": f"{spec.name}-{suffix}", "Comment": f"{spec.name} static site", "Enabled": spec.enabled,
            "DefaultRootObject": "index.html", "PriceClass": "PriceClass_100", "HttpVersion": "http2and3",
            "IsIPV6Enabled": True, "WebACLId": web_acl_arn,
            "Origins": {"Quantity": 1, "Items": [{
                "Id": "s3-origin", "DomainName": f"{bucket}.s3.{spec.region}.amazonaws.com",
                "S3OriginConfig": {"OriginAccessIdentity": ""}, "OriginAccessControlId": oac}]},
            "DefaultCacheBehavior": behaviour(spec.viewer_protocol_policy),
            "CacheBehaviors": {"Quantity": 1, "Items": [
                behaviour(spec.assets_viewer_protocol_policy, PathPattern="/assets/*")]},
            "CustomErrorResponses": {"Quantity": len(errors), "Items": errors},
            "ViewerCertificate": {"ACMCertificateArn": cert_arn, "SSLSupportMethod": "sni-only",
                                  "MinimumProtocolVersion": "TLSv1.2_2021"},
            "Logging": {"Enabled": True, "IncludeCookies": False, "Bucket": "audit-logs-123456789012.s3.amazonaws.com",
                        "Prefix": f"cloudfront/{spec.name}/"},
        }
        self._distribution_switches(spec, config, bucket, suffix)
        self._origin_group(spec, config, suffix, oac)
        if spec.viewer_function:
            config["DefaultCacheBehavior"]["FunctionAssociations"] = {"Quantity": 1, "Items": [{
                "EventType": "viewer-request", "FunctionARN": self.viewer_function(f"{spec.name}-{suffix}-rewrite")}]}
        return cloudfront.create_distribution(DistributionConfig=config)["Distribution"]["Id"]

    def viewer_function(self, name: str, code: bytes = VIEWER_FUNCTION) -> str:
        """A published CloudFront Function (made anew when it exists: moto has no UpdateFunction);
        its ARN."""
        cloudfront = self.client("cloudfront")
        try:
            etag = cloudfront.describe_function(Name=name)["ETag"]
            cloudfront.delete_function(Name=name, IfMatch=etag)
        except cloudfront.exceptions.NoSuchFunctionExists:
            pass
        created = cloudfront.create_function(Name=name, FunctionCode=code, FunctionConfig={
            "Comment": "directory index rewrite", "Runtime": "cloudfront-js-2.0"})
        return created["FunctionSummary"]["FunctionMetadata"]["FunctionARN"]

    def _origin_group(self, spec: SiteSpec, config: dict[str, Any], suffix: str, oac: str) -> None:
        """The replica bucket as a second origin (through OAC) and an origin group that fails over
        to it on 5xx, which every cache behaviour targets; `origin_group_break` breaks one part."""
        if not spec.origin_group or spec.replica == "none" or not spec.versioning:
            return
        origins = config["Origins"]["Items"]
        if spec.origin_group_break == "members":  # a second origin on the same bucket, not the replica
            secondary = {**origins[0], "Id": "s3-origin-again"}
        else:
            replica = f"{spec.name}-replica-{suffix}".lower()
            secondary = {"Id": "replica-origin", "DomainName": f"{replica}.s3.{DR_REGION}.amazonaws.com",
                         "S3OriginConfig": {"OriginAccessIdentity": ""}, "OriginAccessControlId": oac}
        origins.append(secondary)
        config["Origins"]["Quantity"] = len(origins)
        codes = [500, 502] if spec.origin_group_break == "codes" else [500, 502, 503, 504]
        config["OriginGroups"] = {"Quantity": 1, "Items": [{
            "Id": "failover-to-replica",
            "FailoverCriteria": {"StatusCodes": {"Quantity": len(codes), "Items": codes}},
            "Members": {"Quantity": 2, "Items": [{"OriginId": "s3-origin"}, {"OriginId": secondary["Id"]}]}}]}
        if spec.origin_group_break != "unused":
            for behaviour in [config["DefaultCacheBehavior"], *config["CacheBehaviors"]["Items"]]:
                behaviour["TargetOriginId"] = "failover-to-replica"

    def _deploy_role(self, name: str, suffix: str, bucket: str, distribution_id: str,
                     actions: tuple[str, ...] = ("s3:PutObject", "s3:DeleteObject", "s3:GetObject"),
                     invalidation_resource: str | None = None) -> str:
        """The one principal allowed to write the bucket: the CI deploy role."""
        iam = self.client("iam")
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
                 "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/token.actions.githubusercontent.com"}}]}
        role = iam.create_role(RoleName=f"deploy-{name}-{suffix}", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
        policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": list(actions), "Resource": f"arn:aws:s3:::{bucket}/*"},
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
            {"Effect": "Allow", "Action": "cloudfront:CreateInvalidation",
             "Resource": invalidation_resource or f"arn:aws:cloudfront::{ACCOUNT_ID}:distribution/{distribution_id}"}]}
        iam.put_role_policy(RoleName=role["RoleName"], PolicyName="deploy", PolicyDocument=json.dumps(policy))
        return role["Arn"]

    # --- what the AWS-side controls read (EA-S3, EA-CF, EA-TLS-06, EA-IAM, EA-COST, invalidations)

    def _encryption(self, spec: SiteSpec, s3: Any, bucket: str) -> None:
        """Default encryption: SSE-S3, or SSE-KMS with a key whose policy may or may not let
        CloudFront decrypt."""
        if spec.encryption == "none":
            return
        rule: dict[str, Any] = {"SSEAlgorithm": "AES256"}
        if spec.encryption.startswith("aws:kms"):
            statements = [{"Sid": "KeyAdministration", "Effect": "Allow", "Action": "kms:*", "Resource": "*",
                           "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}}]
            if spec.encryption == "aws:kms":
                statements.append({"Sid": "AllowCloudFrontToDecrypt", "Effect": "Allow", "Resource": "*",
                                   "Principal": {"Service": "cloudfront.amazonaws.com"}, "Action": "kms:Decrypt",
                                   "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}})
            key = self.client("kms", spec.region).create_key(
                Description=f"{bucket} objects", Policy=json.dumps({"Version": "2012-10-17", "Statement": statements}))
            rule = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key["KeyMetadata"]["Arn"]}
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": rule, "BucketKeyEnabled": True}]})

    def _bucket_exists(self, region: str, name: str) -> bool:
        """Whether moto still holds the bucket (a test's mock_aws may have reset moto's state since)."""
        try:
            self.client("s3", region).head_bucket(Bucket=name)
        except botocore.exceptions.ClientError:
            return False
        return True

    def _access_log_bucket(self, region: str) -> str:
        """One bucket per region for S3 server access logs (S3 logs only within a region)."""
        name = f"access-logs-{ACCOUNT_ID}-{region}"
        with self._lock:
            if name not in self._log_buckets or not self._bucket_exists(region, name):
                s3 = self.client("s3", region)
                where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
                s3.create_bucket(Bucket=name, **where)
                s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
                    "Sid": "S3ServerAccessLogs", "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
                    "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{name}/*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}}]}))
                self._log_buckets.add(name)
        return name

    def _bucket_settings(self, spec: SiteSpec, s3: Any, bucket: str, suffix: str) -> None:
        """Lifecycle, access logging, website hosting, and a trail of the bucket's object events."""
        if spec.lifecycle:
            s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [{
                "ID": "expire-old-versions", "Status": "Enabled", "Filter": {"Prefix": ""},
                "NoncurrentVersionExpiration": {"NoncurrentDays": spec.noncurrent_days, **(
                    {"NewerNoncurrentVersions": spec.newer_noncurrent_versions}
                    if spec.newer_noncurrent_versions else {})},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}]})
        if spec.access_logging:
            s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={"LoggingEnabled": {
                "TargetBucket": self._access_log_bucket(spec.region), "TargetPrefix": f"s3/{bucket}/"}})
        if spec.website_hosting:
            s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration={
                "IndexDocument": {"Suffix": "index.html"}, "ErrorDocument": {"Key": "404.html"}})
        if spec.data_events:
            trail, name = self.client("cloudtrail", spec.region), f"{spec.name}-{suffix}-objects"
            trail.create_trail(Name=name, S3BucketName="audit-logs-123456789012")
            if spec.data_events.startswith("Advanced"):
                fields = [{"Field": "eventCategory", "Equals": ["Data"]},
                          {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
                          {"Field": "resources.ARN", "StartsWith": [f"arn:aws:s3:::{bucket}/"]}]
                if spec.data_events == "AdvancedGetObject":
                    fields.append({"Field": "eventName", "Equals": ["GetObject"]})
                trail.put_event_selectors(TrailName=name, AdvancedEventSelectors=[
                    {"Name": "bucket objects", "FieldSelectors": fields}])
            else:
                trail.put_event_selectors(TrailName=name, EventSelectors=[{
                    "ReadWriteType": spec.data_events, "IncludeManagementEvents": False,
                    "DataResources": [{"Type": "AWS::S3::Object", "Values": [f"arn:aws:s3:::{bucket}/"]}]}])
            trail.start_logging(Name=name)

    def _distribution_switches(self, spec: SiteSpec, config: dict[str, Any], bucket: str, suffix: str) -> None:
        """The distribution settings the configuration controls read, as the spec says."""
        config.update(DefaultRootObject=spec.default_root_object, PriceClass=spec.price_class,
                      HttpVersion=spec.http_version, IsIPV6Enabled=spec.ipv6)
        config["ViewerCertificate"].update(SSLSupportMethod=spec.ssl_support_method,
                                           MinimumProtocolVersion=spec.minimum_protocol_version)
        config["Logging"]["Enabled"] = spec.cloudfront_logging
        if spec.aliases:
            config["Aliases"] = {"Quantity": len(spec.aliases), "Items": list(spec.aliases)}
        if spec.web_acl == "none":
            config["WebACLId"] = ""
        elif spec.web_acl == "empty":
            config["WebACLId"] = self._create_web_acl(Name=f"{spec.name}-{suffix}-empty-acl", Rules=[])
        elif spec.web_acl == "count":
            config["WebACLId"] = self._create_web_acl(Name=f"{spec.name}-{suffix}-count-acl", Rules=_counting_rules())
        elif spec.web_acl in ("group-count", "group-block"):
            group = self._rule_group(f"{spec.name}-{suffix}-group", block=spec.web_acl == "group-block")
            config["WebACLId"] = self._create_web_acl(Name=f"{spec.name}-{suffix}-group-acl", Rules=[{
                "Name": "own-group", "Priority": 0, "OverrideAction": {"None": {}}, "VisibilityConfig": _visibility("own"),
                "Statement": {"RuleGroupReferenceStatement": {"ARN": group}}}])
        elif spec.web_acl in ("managed-count", "managed-partly"):
            names = motoext.MANAGED_RULE_GROUPS["AWS", "AWSManagedRulesCommonRuleSet"]
            counted = names if spec.web_acl == "managed-count" else names[:1]
            config["WebACLId"] = self._create_web_acl(Name=f"{spec.name}-{suffix}-managed-acl", Rules=[{
                "Name": "common", "Priority": 0, "OverrideAction": {"None": {}}, "VisibilityConfig": _visibility("common"),
                "Statement": {"ManagedRuleGroupStatement": {
                    "VendorName": "AWS", "Name": "AWSManagedRulesCommonRuleSet",
                    "RuleActionOverrides": [{"Name": name, "ActionToUse": {"Count": {}}} for name in counted]}}}])
        origins = config["Origins"]["Items"]
        oac, main = origins[0]["OriginAccessControlId"], origins[0]
        if spec.origin_access == "oai":  # moto has no OAI API and does not check the reference
            del main["OriginAccessControlId"]
            main["S3OriginConfig"] = {"OriginAccessIdentity": "origin-access-identity/cloudfront/E2QWRUHEXAMPLE"}
        elif spec.origin_access == "public":
            del main["OriginAccessControlId"]
        elif spec.origin_access == "website":
            origins[0] = {"Id": main["Id"], "DomainName": f"{bucket}.s3-website-{spec.region}.amazonaws.com",
                          "CustomOriginConfig": _custom_origin("http-only")}
        s3_origin = {"S3OriginConfig": {"OriginAccessIdentity": ""}, "OriginAccessControlId": oac}
        extra = {
            "s3-global": {"DomainName": f"{bucket}.s3.amazonaws.com", **s3_origin},
            "s3-dash": {"DomainName": f"{bucket}.s3-{spec.region}.amazonaws.com", **s3_origin},
            "dangling": {"DomainName": f"{bucket}-legacy.s3.{spec.region}.amazonaws.com", **s3_origin},
            "custom-https": {"DomainName": "api.example.com", "CustomOriginConfig": _custom_origin("https-only")},
            "custom-http": {"DomainName": "api.example.com", "CustomOriginConfig": _custom_origin("match-viewer")},
        }
        origins += [{"Id": name, **extra[name]} for name in spec.extra_origins]
        config["Origins"]["Quantity"] = len(origins)
        assets = config["CacheBehaviors"]["Items"][0]
        if not spec.assets_headers_policy:
            del assets["ResponseHeadersPolicyId"]
        if spec.assets_allowed_methods:
            assets["AllowedMethods"] = {"Quantity": len(spec.assets_allowed_methods),
                                        "Items": list(spec.assets_allowed_methods),
                                        "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]}}
        if spec.assets_cache_policy:
            assets["CachePolicyId"] = spec.assets_cache_policy
        if spec.html_cache_ttls:
            low, default, high = spec.html_cache_ttls
            managed = self.client("cloudfront").get_cache_policy(Id=CACHING_OPTIMIZED)["CachePolicy"]
            policy = {**managed["CachePolicyConfig"], "Name": f"{spec.name}-{suffix}-html", "MinTTL": low,
                      "DefaultTTL": default, "MaxTTL": high}
            created = self.client("cloudfront").create_cache_policy(CachePolicyConfig=policy)
            config["DefaultCacheBehavior"]["CachePolicyId"] = created["CachePolicy"]["Id"]

    def _other_writers(self, spec: SiteSpec, suffix: str, bucket: str) -> list[str]:
        """Writers besides the deploy role; returns those the target allows: a deploy user with an
        access key `deploy_user_key_age_days` old, a partner role of another account (through
        the bucket policy). `extra_writer` adds a user who may write but is not allowed."""
        iam, allowed = self.client("iam"), []
        writes = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": ["s3:PutObject", "s3:DeleteObject"], "Resource": f"arn:aws:s3:::{bucket}/*"}]})
        if spec.deploy_user_key_age_days is not None:
            user = f"deployer-{spec.name}-{suffix}"
            allowed.append(iam.create_user(UserName=user)["User"]["Arn"])
            iam.put_user_policy(UserName=user, PolicyName="deploy", PolicyDocument=writes)
            key = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
            motoext.set_access_key_create_date(user, key, dt.datetime.now(dt.timezone.utc)
                                               - dt.timedelta(days=spec.deploy_user_key_age_days))
        if spec.extra_writer:
            group, user = f"web-{spec.name}-{suffix}", f"intern-{spec.name}-{suffix}"
            iam.create_group(GroupName=group)
            managed = iam.create_policy(PolicyName=f"site-writer-{spec.name}-{suffix}", PolicyDocument=writes)
            iam.attach_group_policy(GroupName=group, PolicyArn=managed["Policy"]["Arn"])
            iam.create_user(UserName=user)
            iam.add_user_to_group(GroupName=group, UserName=user)
        if "partner-write" in spec.bucket_policy_extra:
            allowed.append(PARTNER_WRITER)
        return allowed

    def _invalidations(self, spec: SiteSpec, distribution_id: str, suffix: str) -> None:
        """This month's completed invalidation batches, and one stuck InProgress if asked."""
        cloudfront = self.client("cloudfront")

        def invalidate(paths: list[str], reference: str) -> str:
            return cloudfront.create_invalidation(DistributionId=distribution_id, InvalidationBatch={
                "Paths": {"Quantity": len(paths), "Items": paths}, "CallerReference": reference})["Invalidation"]["Id"]

        for n, count in enumerate(spec.invalidation_paths):
            invalidate(["/*"] if count == 1 else [f"/page-{k}.html" for k in range(count)], f"{suffix}-{n}")
        if spec.stuck_invalidation_minutes is not None:
            stuck = invalidate(["/index.html"], f"{suffix}-stuck")
            since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=spec.stuck_invalidation_minutes)
            motoext.set_invalidation_status(distribution_id, stuck, "InProgress", create_time=since)

    def _costs(self, spec: SiteSpec, s3: Any, bucket: str, distribution_id: str, suffix: str) -> str:
        """Tags the site's bucket with its cost allocation tag and seeds what the cost controls
        read: Cost Explorer's daily costs (through moto's own queue, bound at once to the exact
        request the controls make) and forecast, an AWS Budget, and CloudFront daily requests."""
        tag = (COST_TAG_KEY, f"{spec.name}-{suffix}")
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": tag[0], "Value": tag[1]}]})
        today = cost.today()
        for day in (today, today + dt.timedelta(days=1)):  # a run may start after midnight UTC
            request = cost.daily_costs_request(day, tag)
            start = dt.date.fromisoformat(request["TimePeriod"]["Start"])
            amounts = {start + dt.timedelta(days=n): spec.daily_cost_usd for n in range((day - start).days)}
            for n in range(1, spec.cost_stopped_days + 1):
                amounts[day - dt.timedelta(days=n)] = 0.0
            if spec.cost_spike:
                amounts[day - dt.timedelta(days=2)] = 4 * spec.daily_cost_usd
            with self._lock:  # the queued answer binds to the next request: no other site's in between
                requests.post(f"{self.endpoint_url}/moto-api/static/ce/cost-and-usage-results", timeout=10,
                              json={"results": [cost.daily_results(request, amounts)]}).raise_for_status()
                self.client("ce").get_cost_and_usage(**request)
        if spec.cost_forecast:
            motoext.set_cost_forecast(cost.cost_filter(tag), spec.daily_cost_usd)
        if spec.budget != "none":
            notify = [] if spec.budget == "silent" else [{
                "Notification": {"NotificationType": "FORECASTED", "ComparisonOperator": "GREATER_THAN",
                                 "Threshold": 80.0, "ThresholdType": "PERCENTAGE"},
                "Subscribers": [{"SubscriptionType": "EMAIL", "Address": "ops@example.com"}]}]
            self.client("budgets").create_budget(AccountId=ACCOUNT_ID, NotificationsWithSubscribers=notify, Budget={
                "BudgetName": f"site-{spec.name}-{suffix}", "BudgetType": "COST", "TimeUnit": "MONTHLY",
                "BudgetLimit": {"Amount": str(spec.monthly_budget_usd), "Unit": "USD"},
                "CostFilters": {"TagKeyValue": [f"user:{tag[0]}${tag[1]}"]}})
        dimensions = [{"Name": "DistributionId", "Value": distribution_id}, {"Name": "Region", "Value": "Global"}]
        noon = dt.datetime.combine(today, dt.time(12), dt.timezone.utc)
        # a day's requests at its noon, and the 5xx rate of that hour: the month's availability (EA-MET-02)
        self.client("cloudwatch").put_metric_data(Namespace="AWS/CloudFront", MetricData=[
            {"MetricName": "Requests", "Dimensions": dimensions, "Timestamp": noon - dt.timedelta(days=n),
             "Unit": "None", "Value": 12000.0 * (4 if spec.cost_spike and n == 2 else 1)}
            for n in range(1, max(cost.HISTORY_DAYS, AVAILABILITY_DAYS) + 1)])
        self.client("cloudwatch").put_metric_data(Namespace="AWS/CloudFront", MetricData=[
            {"MetricName": "5xxErrorRate", "Dimensions": dimensions, "Timestamp": noon - dt.timedelta(days=n),
             "Unit": "Percent", "Value": spec.error_rate_5xx} for n in range(1, AVAILABILITY_DAYS + 1)])
        self._edge_metrics(spec, dimensions)
        return tag[1]

    def _edge_metrics(self, spec: SiteSpec, dimensions: list[dict[str, str]]) -> None:
        """Error rates every two hours of the last day; the cache hit rate (an additional metric)
        every day of the last week."""
        now = dt.datetime.now(dt.timezone.utc)
        data = [{"MetricName": name, "Dimensions": dimensions, "Timestamp": now - dt.timedelta(hours=hours),
                 "Unit": "Percent", "Value": value}
                for name, value in (("5xxErrorRate", spec.error_rate_5xx), ("4xxErrorRate", spec.error_rate_4xx))
                for hours in range(1, 24, 2)]
        if spec.cache_hit_rate is not None:
            data += [{"MetricName": "CacheHitRate", "Dimensions": dimensions, "Unit": "Percent",
                      "Timestamp": now - dt.timedelta(days=days, hours=1), "Value": spec.cache_hit_rate}
                     for days in range(7)]
        self.client("cloudwatch").put_metric_data(Namespace="AWS/CloudFront", MetricData=data)


def _custom_origin(protocol_policy: str) -> dict[str, Any]:
    protocols = ["TLSv1.2"] if protocol_policy == "https-only" else ["TLSv1", "TLSv1.1", "TLSv1.2"]
    return {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": protocol_policy,
            "OriginSslProtocols": {"Quantity": len(protocols), "Items": protocols}}


def _visibility(name: str) -> dict[str, Any]:
    return {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": name}


def _counting_rules() -> list[dict[str, Any]]:
    """A managed rule group and a rate limit, both set to count: the web ACL blocks nothing."""
    return [{"Name": "common", "Priority": 0, "OverrideAction": {"Count": {}}, "VisibilityConfig": _visibility("common"),
             "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": "AWSManagedRulesCommonRuleSet"}}},
            {"Name": "rate-limit", "Priority": 1, "Action": {"Count": {}}, "VisibilityConfig": _visibility("rate"),
             "Statement": {"RateBasedStatement": {"Limit": 2000, "AggregateKeyType": "IP"}}}]


def _policy_switches(spec: SiteSpec, bucket: str, statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The bucket policy's statements with the switches of EA-S3-02, 03 and 10 applied."""
    if not spec.deny_insecure_transport:
        statements = [s for s in statements if s.get("Sid") != "DenyInsecureTransport"]
    statements = [{**s, "Action": list(spec.insecure_transport_denied) if len(spec.insecure_transport_denied) > 1
                   else spec.insecure_transport_denied[0]} if s.get("Sid") == "DenyInsecureTransport" else s
                  for s in statements]
    objects = f"arn:aws:s3:::{bucket}/*"
    cloudfront = {"Service": "cloudfront.amazonaws.com"}
    extra = {
        "public-read": {"Sid": "PublicRead", "Principal": "*", "Action": "s3:GetObject"},
        "cloudfront-any": {"Sid": "AllowAnyCloudFront", "Principal": cloudfront, "Action": "s3:GetObject"},
        "cloudfront-other": {"Sid": "AllowOtherDistribution", "Principal": cloudfront, "Action": "s3:GetObject",
                             "Condition": {"StringEquals": {"AWS:SourceArn": OTHER_DISTRIBUTION}}},
        "partner-read": {"Sid": "PartnerRead", "Principal": {"AWS": PARTNER_ACCOUNT}, "Action": "s3:GetObject"},
        "partner-write": {"Sid": "PartnerDeploy", "Principal": {"AWS": PARTNER_WRITER},
                          "Action": ["s3:PutObject", "s3:DeleteObject"]},
        "ip-office": {"Sid": "OfficeRead", "Principal": "*", "Action": "s3:GetObject",
                      "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}},
        "ip-halves": {"Sid": "HalvesRead", "Principal": "*", "Action": "s3:GetObject",
                      "Condition": {"IpAddress": {"aws:SourceIp": ["0.0.0.0/1", "128.0.0.0/1"]}}},
        "open-conditions": {"Sid": "LooselyBoundRead", "Principal": "*", "Action": "s3:GetObject", "Condition": {
            "StringLike": {"aws:SourceArn": "arn:aws:cloudfront::*:distribution/*"},
            "StringEqualsIfExists": {"aws:SourceVpce": "vpce-1a2b3c4d"},
            "StringNotEquals": {"aws:SourceAccount": PARTNER_ACCOUNT}}},
    }
    return statements + [{"Effect": "Allow", "Resource": objects, **extra[name]} for name in spec.bucket_policy_extra]


def _bucket_policy(bucket: str, distribution_id: str, public: bool = False) -> dict[str, Any]:
    """CloudFront (this distribution only) may read; plain HTTP is refused. `public`: everyone
    may also read and list, the misconfiguration that lets viewers bypass CloudFront."""
    everyone = [{"Sid": "PublicReadAndList", "Effect": "Allow", "Principal": "*",
                 "Action": ["s3:GetObject", "s3:ListBucket"],
                 "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}] if public else []
    return {"Version": "2012-10-17", "Statement": everyone + [
        {"Sid": "AllowCloudFrontServicePrincipalReadOnly", "Effect": "Allow",
         "Principal": {"Service": "cloudfront.amazonaws.com"}, "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{bucket}/*",
         "Condition": {"StringEquals": {"AWS:SourceArn": f"arn:aws:cloudfront::{ACCOUNT_ID}:distribution/{distribution_id}"}}},
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ]}
