"""The read-only guard: it refuses every AWS call that is not a read, so that the suite cannot
change an account it audits.

It patches botocore's classes, not a session's event handlers, so it covers every client
whenever it was made (also one made at import, before the plugin started), and each way a
request leaves botocore: the client's call (`BaseClient._make_api_call`), a request sent past
the client (`Endpoint.make_request`), the request signer (presigned URLs and posts, a request
signed with `client._request_signer`) and botocore's signing classes (a request signed by hand
with `botocore.auth.SigV4Auth` and sent with another HTTP library).

A read is an operation on the explicit list READS of its service; anything else is a write.
Three narrow doors exist: `scratch()` lets a disaster-recovery drill write under one prefix of a
configured scratch bucket, from the thread that opened it; `evidence_writes()` lets the run put
its own evidence (the run history, an archive of the report set) under an S3 prefix the config
declared, from the thread that opened it, adding objects and never deleting one; and
`local_seeding()` lets the demo builder write to an endpoint on loopback (moto).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import ipaddress
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, TypeVar
from urllib.parse import urlsplit

import botocore.auth
import botocore.client
import botocore.endpoint
import botocore.signers

# Every operation the controls, the preflight, the prefetch and botocore's credential providers
# call, per service (botocore's service name). Nothing else is a read: a name that reads like
# one (cognito-identity:GetId creates an identity) is refused unless it is listed here. The list
# is written out here, not gathered from the controls' `reads=`: what a control declares of itself
# cannot widen what the guard lets through (tests/test_catalog.py checks it holds every such read).
READS: dict[str, frozenset[str]] = {service: frozenset(operations.split()) for service, operations in {
    "acm": "DescribeCertificate",
    "budgets": "DescribeBudgets DescribeNotificationsForBudget",
    "ce": "GetCostAndUsage GetCostForecast",
    # DetectStackDrift compares a stack with its resources and changes neither
    "cloudformation": "DetectStackDrift DescribeStackDriftDetectionStatus DescribeStackResourceDrifts "
                      "ListStackResources",
    "cloudfront": "GetCachePolicy GetDistribution GetDistributionConfig GetFunction GetInvalidation "
                  "GetOriginAccessControl GetOriginRequestPolicy "
                  "GetResponseHeadersPolicy ListDistributions ListInvalidations",
    "cloudtrail": "DescribeTrails GetEventSelectors GetTrailStatus",
    "cloudwatch": "GetMetricData GetMetricStatistics",
    "iam": "GetAccountAuthorizationDetails GetLoginProfile GetPolicy GetPolicyVersion ListAccessKeys "
           "ListMFADevices ListUsers",
    "kms": "DescribeKey GetKeyPolicy",
    "route53": "ListHostedZones ListResourceRecordSets",
    "s3": "GetBucketAcl GetBucketEncryption GetBucketLifecycleConfiguration GetBucketLocation "
          "GetBucketLogging GetBucketOwnershipControls GetBucketPolicy GetBucketReplication "
          "GetBucketVersioning GetBucketWebsite GetObject GetObjectLockConfiguration GetObjectRetention "
          "GetPublicAccessBlock HeadBucket HeadObject "
          "ListBuckets ListObjectVersions ListObjects ListObjectsV2",
    "s3control": "GetPublicAccessBlock",
    "wafv2": "GetWebACL",
    # credentials only: an assumed role, web identity (CI), an SSO profile
    "sts": "GetCallerIdentity AssumeRole AssumeRoleWithWebIdentity",
    "sso": "GetRoleCredentials",
    "sso-oidc": "CreateToken",
}.items()}
# What a drill may do inside its scratch prefix.
SCRATCH_OPERATIONS = frozenset({
    "PutObject", "CopyObject", "DeleteObject", "DeleteObjects", "CreateMultipartUpload",
    "UploadPart", "UploadPartCopy", "CompleteMultipartUpload", "AbortMultipartUpload",
})
# What the run may do under a declared evidence prefix: add objects, never delete or copy over one.
EVIDENCE_OPERATIONS = frozenset({"PutObject"})
READ_ONLY = "edgeaudit is read-only outside a DR scratch context"


class ReadOnlyViolation(RuntimeError):
    """A control tried to change AWS outside a scratch context."""


def is_read(service: str, operation: str) -> bool:
    """Is `service:operation` on the explicit list of reads?"""
    return operation in READS.get(service, ())


@dataclass(frozen=True)
class ScratchGrant:
    bucket: str
    prefix: str
    thread: int  # the thread that opened the grant; writes from any other are refused

    def allows(self, service: str, operation: str, params: dict[str, Any]) -> bool:
        if (service != "s3" or operation not in SCRATCH_OPERATIONS or params.get("Bucket") != self.bucket
                or threading.get_ident() != self.thread):
            return False
        if operation == "DeleteObjects":
            keys = [o.get("Key", "") for o in params.get("Delete", {}).get("Objects", [])]
        else:
            keys = [params.get("Key", "")]
        return bool(keys) and all(k.startswith(self.prefix) for k in keys)


@dataclass(frozen=True)
class EvidenceGrant:
    """PutObject under one declared (bucket, prefix), from the thread that opened the grant."""

    bucket: str
    prefix: str
    thread: int

    def allows(self, service: str, operation: str, params: dict[str, Any]) -> bool:
        return (service == "s3" and operation in EVIDENCE_OPERATIONS and params.get("Bucket") == self.bucket
                and threading.get_ident() == self.thread and _under(str(params.get("Key", "")), self.prefix))


def _under(key: str, prefix: str) -> bool:
    """Is `key` an object below `prefix` (not the prefix itself, no `..` climbing out of it)?"""
    return key.startswith(prefix) and len(key) > len(prefix) and ".." not in key[len(prefix):].split("/")


_lock = threading.Lock()
_local = threading.local()  # per thread: `approved` calls in progress, `signing` depth
Grant = TypeVar("Grant", ScratchGrant, EvidenceGrant)
_grants: list[ScratchGrant | EvidenceGrant] = []
_scratch_buckets: frozenset[str] = frozenset()
_evidence_places: frozenset[tuple[str, str]] = frozenset()
_seeding = 0
_installed = 0
_originals: list[tuple[type, str, Any]] = []
violations: list[str] = []


def _refuse(what: str, why: str = READ_ONLY) -> None:
    message = f"refused {what}: {why}"
    with _lock:
        violations.append(message)
    raise ReadOnlyViolation(message)


@contextlib.contextmanager
def _granted(grant: Grant) -> Iterator[Grant]:
    """`grant` is in force for the duration of the block."""
    with _lock:
        _grants.append(grant)
    try:
        yield grant
    finally:
        with _lock:
            _grants.remove(grant)


def allow_scratch_in(buckets: Iterable[str]) -> None:
    """The configured scratch buckets: the only buckets a scratch grant may name."""
    global _scratch_buckets
    with _lock:
        _scratch_buckets = frozenset(b for b in buckets if b)


@contextlib.contextmanager
def scratch(bucket: str, prefix: str) -> Iterator[ScratchGrant]:
    """Allow this thread writes of SCRATCH_OPERATIONS on keys under `prefix` in `bucket`, a
    configured scratch bucket."""
    if not prefix or not prefix.endswith("/"):
        raise ValueError("a scratch prefix must be a non-empty folder such as '_edgeaudit/<run>/'")
    with _lock:
        configured = bucket in _scratch_buckets
    if not configured:
        _refuse(f"a scratch context on {bucket}", "it is not a configured scratch_bucket")
    with _granted(ScratchGrant(bucket, prefix, threading.get_ident())) as grant:
        yield grant


def allow_evidence_in(places: Iterable[tuple[str, str]]) -> None:
    """The (bucket, prefix) places the config declared for the run's evidence ([report] history,
    [report] archive): the only places an evidence grant may name."""
    global _evidence_places
    with _lock:
        _evidence_places = frozenset((b, p) for b, p in places if b)


@contextlib.contextmanager
def evidence_writes(bucket: str, prefix: str) -> Iterator[EvidenceGrant]:
    """Allow this thread PutObject on keys under `prefix` in `bucket`, which must lie within a
    place allow_evidence_in() declared. Nothing else is allowed: no delete, no copy."""
    if prefix and not prefix.endswith("/"):
        raise ValueError("an evidence prefix is a folder such as 'ci/edgeaudit/' (or '' for the whole bucket)")
    with _lock:
        declared = any(bucket == b and prefix.startswith(p) for b, p in _evidence_places)
    if not declared:
        _refuse(f"an evidence context on s3://{bucket}/{prefix}",
                "it is not a place the config declared for the run's evidence ([report])")
    with _granted(EvidenceGrant(bucket, prefix, threading.get_ident())) as grant:
        yield grant


@contextlib.contextmanager
def local_seeding() -> Iterator[None]:
    """Allow writes to AWS endpoints on loopback only (the demo's moto server)."""
    global _seeding
    with _lock:
        _seeding += 1
    try:
        yield
    finally:
        with _lock:
            _seeding -= 1


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _seeding_to(url: str) -> bool:
    with _lock:
        return bool(_seeding) and _is_loopback(url)


@contextlib.contextmanager
def _approved(service: str, operation: str) -> Iterator[None]:
    """Mark a call the guard allowed, for the endpoint and the signer further down this thread."""
    stack = _local.__dict__.setdefault("approved", [])
    stack.append((service, operation))
    try:
        yield
    finally:
        stack.pop()


def _current() -> tuple[str, str] | None:
    stack = getattr(_local, "approved", None)
    return stack[-1] if stack else None


def check(service: str, operation: str, params: dict[str, Any], url: str = "") -> None:
    """Let a read through; refuse a write unless a grant (or seeding on loopback) covers it."""
    if is_read(service, operation):
        return
    with _lock:
        grants = list(_grants)
    if any(g.allows(service, operation, params) for g in grants) or _seeding_to(url):
        return
    where = params.get("Bucket") or params.get("Id") or ""
    _refuse(f"{service}:{operation}{' on ' + str(where) if where else ''}")


# --- the patches --------------------------------------------------------------------------------

def _guard_api_call(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def _make_api_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        service = client.meta.service_model.service_name
        check(service, operation_name, api_params, client.meta.endpoint_url or "")
        with _approved(service, operation_name):
            return original(client, operation_name, api_params)
    return _make_api_call


def _guard_make_request(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def make_request(endpoint: Any, operation_model: Any, request_dict: dict[str, Any]) -> Any:
        service, operation = operation_model.service_model.service_name, operation_model.name
        if not (_current() == (service, operation) or is_read(service, operation)
                or _seeding_to(request_dict.get("url", ""))):
            _refuse(f"{service}:{operation} sent past the client (Endpoint.make_request)")
        with _approved(service, operation):
            return original(endpoint, operation_model, request_dict)
    return make_request


def _guard_sign(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def sign(signer: Any, operation_name: str, request: Any, region_name: Any = None,
             signing_type: str = "standard", expires_in: Any = None, signing_name: Any = None) -> Any:
        service = signer._service_id.hyphenize()
        what = f"{service}:{operation_name}"
        if signing_type == "presign-post":
            _refuse(f"a presigned POST for {what}", "anyone holding it could upload; " + READ_ONLY)
        current = _current()
        allowed = ((signing_type == "standard" and current is not None and current[1] == operation_name)
                   or is_read(service, operation_name) or _seeding_to(getattr(request, "url", "") or ""))
        if not allowed:
            if signing_type == "presign-url":
                _refuse(f"a presigned URL for {what}", "anyone holding it could write; " + READ_ONLY)
            _refuse(f"{what} signed outside a client call", READ_ONLY)
        _local.signing = getattr(_local, "signing", 0) + 1
        try:
            return original(signer, operation_name, request, region_name, signing_type, expires_in, signing_name)
        finally:
            _local.signing -= 1
    return sign


def _guard_add_auth(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def add_auth(auth: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        if not getattr(_local, "signing", 0):
            host = urlsplit(getattr(request, "url", "") or "").hostname or "?"
            _refuse(f"a request to {host} signed with {type(auth).__name__} by hand",
                    "botocore signs only the calls of a client; " + READ_ONLY)
        return original(auth, request, *args, **kwargs)
    return add_auth


def _targets() -> list[tuple[type, str, Callable[[Any], Any]]]:
    """Each (class, method, wrapper factory) the guard patches."""
    targets: list[tuple[type, str, Callable[[Any], Any]]] = [
        (botocore.client.BaseClient, "_make_api_call", _guard_api_call),
        (botocore.endpoint.Endpoint, "make_request", _guard_make_request),
        (botocore.signers.RequestSigner, "sign", _guard_sign),
    ]
    for cls in vars(botocore.auth).values():
        if (inspect.isclass(cls) and issubclass(cls, botocore.auth.BaseSigner) and cls is not botocore.auth.BaseSigner
                and "add_auth" in vars(cls)):
            targets.append((cls, "add_auth", _guard_add_auth))
    return targets


def install() -> None:
    """Guard every botocore client, made before or after; counted, so nested installs nest."""
    global _installed
    with _lock:
        _installed += 1
        if _installed > 1:
            return
        for cls, name, wrap in _targets():
            original = vars(cls)[name]
            _originals.append((cls, name, original))
            setattr(cls, name, wrap(original))


def uninstall() -> None:
    """Undo one install(); the last one restores botocore and forgets the scratch buckets and
    the evidence places."""
    global _installed, _scratch_buckets, _evidence_places
    with _lock:
        if _installed == 0:
            return
        _installed -= 1
        if _installed:
            return
        while _originals:
            cls, name, original = _originals.pop()
            setattr(cls, name, original)
        _scratch_buckets = frozenset()
        _evidence_places = frozenset()
