"""The site builder: seeds an S3 + CloudFront site into a moto server and puts a local edge in
front of it. Every switch of `SiteSpec` defaults to compliant; the demo and the tests flip one
switch at a time to break exactly one control.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3
import botocore.config

from .. import guard
from ..aws import adapt_to_emulator
from . import motoext
from .edge import BotoEdgeSource, Edge
from .pki import CertificateAuthority

ACCOUNT_ID = "123456789012"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
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
    # bucket (EA-S3-*)
    block_public_access: bool = True
    versioning: bool = True

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
    return {k: v for k, v in objects.items() if k not in spec.missing_objects}


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
            "allowed_writers": [self.extra["deploy_role_arn"]],
        }


class Builder:
    """Builds sites into one moto endpoint; one CA signs every edge certificate."""

    def __init__(self, endpoint_url: str, workdir: Path, ca: CertificateAuthority | None = None) -> None:
        motoext.install()
        self.endpoint_url = endpoint_url
        self.workdir = workdir
        self.ca = ca or CertificateAuthority.create()
        self.ca_file = self.ca.write_ca(workdir / "demo-ca.pem")
        self._session = boto3.Session(region_name="us-east-1", **CREDENTIALS)
        self._account_seeded = False

    def client(self, service: str, region: str = "us-east-1") -> Any:
        # moto serves every API on one host: no account-id host prefix (s3control)
        return adapt_to_emulator(self._session.client(service, region_name=region, endpoint_url=self.endpoint_url,
                                                      config=botocore.config.Config(inject_host_prefix=False)))

    def _seed_account(self) -> None:
        """Account-wide parts: Block Public Access, a multi-region trail, its log bucket."""
        self.client("s3control").put_public_access_block(AccountId=ACCOUNT_ID, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
        s3 = self.client("s3")
        s3.create_bucket(Bucket="audit-logs-123456789012")
        trail = self.client("cloudtrail")
        trail.create_trail(Name="org-trail", S3BucketName="audit-logs-123456789012", IsMultiRegionTrail=True,
                           EnableLogFileValidation=True)
        trail.start_logging(Name="org-trail")
        self._account_seeded = True

    def build(self, spec: SiteSpec) -> BuiltSite:
        with guard.local_seeding():
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
        if spec.block_public_access:
            s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
                "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True})
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]})
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={
            "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
        for key, (body, content_type) in site_objects(spec).items():
            cache = "public, max-age=31536000, immutable" if key.startswith("assets/") else "public, max-age=300"
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, CacheControl=cache)

        cert = self._certificate(spec)
        cert_arn = self._acm_certificate(spec, cert)
        cert_file, key_file = cert.write(self.workdir, f"{spec.name}-{suffix}")
        web_acl_arn = self._web_acl(spec.name, suffix)
        distribution_id = self._distribution(spec, bucket, suffix, cert_arn, web_acl_arn)
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(_bucket_policy(bucket, distribution_id)))
        role_arn = self._deploy_role(spec.name, suffix, bucket, distribution_id)
        moment = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=spec.status_minutes)
        motoext.set_distribution_status(distribution_id, spec.status, last_modified=moment)

        source = BotoEdgeSource(endpoint_url=self.endpoint_url, distribution_id=distribution_id, bucket=bucket,
                                region=spec.region, credentials=(CREDENTIALS["aws_access_key_id"],
                                                                 CREDENTIALS["aws_secret_access_key"]))
        edge = Edge(source, cert_file=cert_file, key_file=key_file, name=spec.name,
                    extra_headers=dict(spec.origin_headers)).start()
        return BuiltSite(spec, bucket, distribution_id, edge, self.ca_file,
                         {"deploy_role_arn": role_arn, "certificate_arn": cert_arn, "web_acl_arn": web_acl_arn})

    def _certificate(self, spec: SiteSpec) -> Any:
        """An edge certificate that has `cert_days_left` days to go (plus an hour, so the day count is exact)."""
        now = dt.datetime.now(dt.timezone.utc)
        not_before = now - dt.timedelta(days=spec.cert_lifetime_days - spec.cert_days_left) + dt.timedelta(hours=1)
        return self.ca.issue(["localhost", "127.0.0.1"], days_valid=spec.cert_lifetime_days, not_before=not_before)

    def _acm_certificate(self, spec: SiteSpec, cert: Any) -> str:
        """The edge's certificate in ACM (us-east-1); ACM refuses an expired one, as AWS does,
        so an expired edge gets a requested certificate in its place."""
        acm = self.client("acm")
        if spec.cert_days_left <= 0:
            return acm.request_certificate(DomainName="localhost", ValidationMethod="DNS")["CertificateArn"]
        return acm.import_certificate(Certificate=cert.cert_pem, PrivateKey=cert.key_pem,
                                      CertificateChain=self.ca.cert_pem)["CertificateArn"]

    def _web_acl(self, name: str, suffix: str) -> str:
        waf = self.client("wafv2")
        return waf.create_web_acl(
            Name=f"{name}-{suffix}-acl", Scope="CLOUDFRONT", DefaultAction={"Allow": {}},
            VisibilityConfig={"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": "site"},
            Rules=[{"Name": "common", "Priority": 0, "OverrideAction": {"None": {}},
                    "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": "AWSManagedRulesCommonRuleSet"}},
                    "VisibilityConfig": {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True,
                                         "MetricName": "common"}}],
        )["Summary"]["ARN"]

    def _headers_policy(self, spec: SiteSpec, suffix: str) -> str:
        security: dict[str, Any] = {
            "ContentTypeOptions": {"Override": True},
            "FrameOptions": {"FrameOption": "DENY", "Override": True},
            "ReferrerPolicy": {"ReferrerPolicy": "strict-origin-when-cross-origin", "Override": True},
            "XSSProtection": {"Protection": True, "ModeBlock": True, "Override": True},
            "ContentSecurityPolicy": {"ContentSecurityPolicy": CSP, "Override": True},
        }
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

        def behaviour(viewer_policy: str, **extra: Any) -> dict[str, Any]:
            return {"TargetOriginId": "s3-origin", "ViewerProtocolPolicy": viewer_policy, "AllowedMethods": methods,
                    "Compress": True, "CachePolicyId": CACHING_OPTIMIZED, "ResponseHeadersPolicyId": policy_id, **extra}

        errors = [{"ErrorCode": code, "ResponsePagePath": "/404.html", "ResponseCode": "404",
                   "ErrorCachingMinTTL": 60} for code in (403, 404)]
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
        return cloudfront.create_distribution(DistributionConfig=config)["Distribution"]["Id"]

    def _deploy_role(self, name: str, suffix: str, bucket: str, distribution_id: str) -> str:
        """The one principal allowed to write the bucket: the CI deploy role."""
        iam = self.client("iam")
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
                 "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/token.actions.githubusercontent.com"}}]}
        role = iam.create_role(RoleName=f"deploy-{name}-{suffix}", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
        policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:PutObject", "s3:DeleteObject", "s3:GetObject"],
             "Resource": f"arn:aws:s3:::{bucket}/*"},
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
            {"Effect": "Allow", "Action": "cloudfront:CreateInvalidation",
             "Resource": f"arn:aws:cloudfront::{ACCOUNT_ID}:distribution/{distribution_id}"}]}
        iam.put_role_policy(RoleName=role["RoleName"], PolicyName="deploy", PolicyDocument=json.dumps(policy))
        return role["Arn"]


def _bucket_policy(bucket: str, distribution_id: str) -> dict[str, Any]:
    """CloudFront (this distribution only) may read; plain HTTP is refused."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "AllowCloudFrontServicePrincipalReadOnly", "Effect": "Allow",
         "Principal": {"Service": "cloudfront.amazonaws.com"}, "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{bucket}/*",
         "Condition": {"StringEquals": {"AWS:SourceArn": f"arn:aws:cloudfront::{ACCOUNT_ID}:distribution/{distribution_id}"}}},
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ]}
