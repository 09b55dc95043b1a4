"""The read-only guard: it refuses every AWS request that is not a read, so that the suite
cannot change an account it audits.

It patches botocore's classes, not a session's event handlers, so it covers every client
whenever it was made (also one made at import, before the plugin started), and each way a
request leaves botocore: the client's call (`BaseClient._make_api_call`), a request sent past
the client (`Endpoint.make_request`, `Endpoint._send`), the request signer (presigned URLs and
posts, a request signed with `client._request_signer`) and botocore's signing classes (a request
signed by hand with `botocore.auth.SigV4Auth` and sent with another HTTP library).

Two lines of judgement. First the operation's name: a read is an operation on the explicit list
READS of its service; anything else is a write. Then the HTTP request itself, where it is signed
(after every before-sign handler, as the signature will cover it) and where it is sent
(aws/wire.py reads it): GET and HEAD are reads; a request that names an operation on the wire
(X-Amz-Target, Action=, an RPC path) must name the operation it was signed or sent as, and that
must be a read; a POST of a REST API is a read only when it has the method and path of a read's
HTTP binding; everything else is a write, whatever name or model it came with. A write passes
only inside a grant, on the exact bucket and keys the request addresses, and never as a
presigned URL or post (anyone holding one could use it).

Three narrow doors exist: `scratch()` lets a disaster-recovery drill write under a prefix the
guard issued (`_edgeaudit/<run id>/`, scratch_prefix()) of a configured scratch bucket, from the
thread that opened it (and `scratch_cleanup()` delete what an earlier run left under its own
`_edgeaudit/<run id>/`); an EvidenceDoor, minted once per installation by the run itself
(evidence_door()), lets the run's end-of-run code put its own evidence (the run history, an
archive of the report set) as new objects under the S3 places the config declared; and
`local_seeding()` lets the demo builder write to an endpoint on loopback (moto).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import inspect
import ipaddress
import secrets
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, NamedTuple, TypeVar
from urllib.parse import urlsplit

import botocore.auth
import botocore.client
import botocore.endpoint
import botocore.exceptions
import botocore.session
import botocore.signers

from edgeaudit.aws import wire

# Every operation the controls, the preflight, the prefetch and botocore's credential providers
# call, per service (botocore's service name). Nothing else is a read: a name that reads like
# one (cognito-identity:GetId creates an identity) is refused unless it is listed here. The list
# is written out here, not gathered from the controls' `reads=`: what a control declares of itself
# cannot widen what the guard lets through (tests/test_catalog.py checks it holds every such read).
READS: dict[str, frozenset[str]] = {service: frozenset(operations.split()) for service, operations in {
    # CheckNoPublicAccess judges a policy document handed to it and changes nothing
    "accessanalyzer": "CheckNoPublicAccess",
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
    # GenerateCredentialReport asks IAM to refresh the report it keeps (IAM's access level: Read)
    "iam": "GenerateCredentialReport GetAccountAuthorizationDetails GetAccountSummary GetCredentialReport "
           "GetLoginProfile GetPolicy GetPolicyVersion ListAccessKeys ListAccountAliases ListMFADevices ListUsers",
    "kms": "DescribeKey GetKeyPolicy",
    "route53": "GetHealthCheck ListHostedZones ListResourceRecordSets",
    "s3": "GetBucketAcl GetBucketEncryption GetBucketLifecycleConfiguration GetBucketLocation "
          "GetBucketLogging GetBucketOwnershipControls GetBucketPolicy GetBucketReplication "
          "GetBucketVersioning GetBucketWebsite GetObject GetObjectAcl GetObjectLockConfiguration GetObjectRetention "
          "GetPublicAccessBlock HeadBucket HeadObject "
          "ListBuckets ListObjectVersions ListObjects ListObjectsV2",
    "s3control": "GetPublicAccessBlock",
    "wafv2": "DescribeManagedRuleGroup GetRuleGroup GetWebACL",
    # credentials only: an assumed role, web identity (CI), an SSO profile
    "sts": "GetCallerIdentity AssumeRole AssumeRoleWithWebIdentity",
    "sso": "GetRoleCredentials",
    "sso-oidc": "CreateToken",
}.items()}
# A signer knows its service by its id (botocore's ServiceId, hyphenized), which differs from the
# service's name for these services of READS.
SERVICE_NAMES = {"cost-explorer": "ce", "route-53": "route53", "s3-control": "s3control"}
# Protocols that route by method and path: an X-Amz-Target or Action= on their requests names nothing.
REST_PROTOCOLS = ("rest-xml", "rest-json")
# What a drill may do inside its scratch prefix, and what a cleanup of an earlier run's may do.
SCRATCH_OPERATIONS = frozenset({
    "PutObject", "CopyObject", "DeleteObject", "DeleteObjects", "CreateMultipartUpload",
    "UploadPart", "UploadPartCopy", "CompleteMultipartUpload", "AbortMultipartUpload",
})
CLEANUP_OPERATIONS = frozenset({"DeleteObject", "DeleteObjects"})
SCRATCH_ROOT = "_edgeaudit/"
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
    operations: frozenset[str] = SCRATCH_OPERATIONS

    def allows(self, service: str, operation: str, params: dict[str, Any]) -> bool:
        """The first line: the call's name and parameters."""
        if (service != "s3" or operation not in self.operations or params.get("Bucket") != self.bucket
                or threading.get_ident() != self.thread):
            return False
        if operation == "DeleteObjects":
            keys = [o.get("Key", "") for o in params.get("Delete", {}).get("Objects", [])]
        else:
            keys = [params.get("Key", "")]
        return bool(keys) and all(k.startswith(self.prefix) for k in keys)

    def allows_write(self, write: wire.S3Write) -> bool:
        """The request as it goes out: its write, every reading of its address, its headers."""
        return (write.operation in self.operations and not write.risky and threading.get_ident() == self.thread
                and _within(write, self.bucket, self.prefix))


@dataclass(frozen=True)
class EvidenceGrant:
    """PutObject of a new object under one declared (bucket, prefix), from the thread that opened the grant."""

    bucket: str
    prefix: str
    thread: int

    def allows(self, service: str, operation: str, params: dict[str, Any]) -> bool:
        return (service == "s3" and operation in EVIDENCE_OPERATIONS and params.get("Bucket") == self.bucket
                and threading.get_ident() == self.thread and _under(str(params.get("Key", "")), self.prefix))

    def allows_write(self, write: wire.S3Write) -> bool:
        return (write.operation in EVIDENCE_OPERATIONS and write.if_none_match and not write.risky
                and threading.get_ident() == self.thread and _within(write, self.bucket, self.prefix))


def _under(key: str, prefix: str) -> bool:
    """Is `key` an object below `prefix` (not the prefix itself, no `..` climbing out of it)?"""
    return key.startswith(prefix) and len(key) > len(prefix) and ".." not in key[len(prefix):].split("/")


def _within(write: wire.S3Write, bucket: str, prefix: str) -> bool:
    """Does every reading of the write's address name `bucket` and keys under `prefix`?"""
    return bool(write.targets) and all(b == bucket and keys and all(_under(k, prefix) for k in keys)
                                       for b, keys in write.targets)


class _Call(NamedTuple):
    """A call the guard let through, for the signer and the endpoint further down this thread."""

    service: str
    operation: str
    model: Any = None          # botocore's OperationModel, when the call came through an endpoint
    signing_type: str = ""     # inside RequestSigner.sign: standard, presign-url, presign-post


_lock = threading.Lock()
_local = threading.local()  # per thread: `approved` calls in progress, `signing` calls in progress
Grant = TypeVar("Grant", ScratchGrant, EvidenceGrant)
_grants: list[ScratchGrant | EvidenceGrant] = []
_scratch_buckets: frozenset[str] = frozenset()
_scratch_prefixes: set[str] = set()
_door_minted = False
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


def scratch_prefix() -> str:
    """A new `_edgeaudit/<run id>/` (20261127T190000Z-1a2b3c4d: it sorts by time) for one drill:
    scratch() opens no other prefix, so that every scratch write is one the cleanup finds."""
    prefix = f"{SCRATCH_ROOT}{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}/"
    with _lock:
        _scratch_prefixes.add(prefix)
    return prefix


def _scratch_bucket(bucket: str) -> None:
    with _lock:
        configured = bucket in _scratch_buckets
    if not configured:
        _refuse(f"a scratch context on {bucket}", "it is not a configured scratch_bucket")


@contextlib.contextmanager
def scratch(bucket: str, prefix: str) -> Iterator[ScratchGrant]:
    """Allow this thread writes of SCRATCH_OPERATIONS on keys under `prefix`, one scratch_prefix()
    issued, in `bucket`, a configured scratch bucket."""
    with _lock:
        issued = prefix in _scratch_prefixes
    if not issued:
        _refuse(f"a scratch context on s3://{bucket}/{prefix}",
                f"its prefix is not one the guard issued ({SCRATCH_ROOT}<run id>/, guard.scratch_prefix())")
    _scratch_bucket(bucket)
    with _granted(ScratchGrant(bucket, prefix, threading.get_ident())) as grant:
        yield grant


@contextlib.contextmanager
def scratch_cleanup(bucket: str, prefix: str) -> Iterator[ScratchGrant]:
    """Allow this thread deletes only, under one run's `_edgeaudit/<run id>/` of a configured
    scratch bucket: what an earlier run left behind."""
    run = prefix[len(SCRATCH_ROOT):-1] if prefix.startswith(SCRATCH_ROOT) and prefix.endswith("/") else ""
    if not run or "/" in run or run in (".", ".."):
        _refuse(f"a scratch cleanup on s3://{bucket}/{prefix}", f"it is not one run's {SCRATCH_ROOT}<run id>/")
    _scratch_bucket(bucket)
    with _granted(ScratchGrant(bucket, prefix, threading.get_ident(), CLEANUP_OPERATIONS)) as grant:
        yield grant


_MINT = object()


class EvidenceDoor:
    """The only way to the run's evidence places: evidence_door() mints one per installation of
    the guard, for the run itself, which hands it to the history and the archive. There is no
    module-level door: a control that calls evidence_door() after the run minted its own is
    refused, and one minted before the run's makes the run stop."""

    def __init__(self, places: Iterable[tuple[str, str]], mint: object = None) -> None:
        if mint is not _MINT:
            raise TypeError("an EvidenceDoor is minted by guard.evidence_door() only")
        self.places = frozenset((b, p) for b, p in places if b)

    @contextlib.contextmanager
    def writes(self, bucket: str, prefix: str) -> Iterator[EvidenceGrant]:
        """Allow this thread PutObject of new objects (If-None-Match: *) on keys under `prefix` in
        `bucket`, which must lie within a declared place. Nothing else: no delete, no copy."""
        if prefix and not prefix.endswith("/"):
            raise ValueError("an evidence prefix is a folder such as 'ci/edgeaudit/' (or '' for the whole bucket)")
        if not any(bucket == b and prefix.startswith(p) for b, p in self.places):
            _refuse(f"an evidence context on s3://{bucket}/{prefix}",
                    "it is not a place the config declared for the run's evidence ([report])")
        with _granted(EvidenceGrant(bucket, prefix, threading.get_ident())) as grant:
            yield grant


def evidence_door(places: Iterable[tuple[str, str]]) -> EvidenceDoor:
    """The door to the (bucket, prefix) places the config declared for the run's evidence
    ([report] history, [report] archive); once per installation of the guard, for the run."""
    global _door_minted
    with _lock:
        refused = _door_minted or not _installed
        _door_minted = True
    if refused:
        _refuse("an evidence door", "the run holds the only one (it is minted once, by the run, while the guard "
                "is installed)")
    return EvidenceDoor(places, _MINT)


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
    """A loopback host, also under a label the client puts in front (s3control's <account>.127.0.0.1)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    for address in (host, ".".join(host.split(".")[-4:])):
        try:
            return ipaddress.ip_address(address).is_loopback
        except ValueError:
            continue
    return False


def _seeding_to(url: str) -> bool:
    with _lock:
        return bool(_seeding) and _is_loopback(url)


@contextlib.contextmanager
def _approved(call: _Call, stack: str = "approved") -> Iterator[None]:
    """Mark a call the guard allowed (or a signing in progress) on this thread."""
    calls = _local.__dict__.setdefault(stack, [])
    calls.append(call)
    try:
        yield
    finally:
        calls.pop()


def _current(stack: str = "approved") -> _Call | None:
    calls = getattr(_local, stack, None)
    return calls[-1] if calls else None


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


@functools.cache
def _protocol(service: str) -> str:
    """The wire protocol of a service of READS, from botocore's model ("" for another service)."""
    if service not in READS:
        return ""
    try:
        return str(botocore.session.get_session().get_service_model(service).protocol)
    except botocore.exceptions.BotoCoreError:
        return ""


def judge(call: _Call, request: Any) -> None:
    """Let the HTTP request of `call` through only if it is a read, or a write a grant covers
    (never a presigned one); whatever the operation's name, its request decides."""
    if _seeding_to(request.url or ""):
        return
    what = f"{wire.describe(request)} (as {call.service}:{call.operation})"
    protocol = call.model.service_model.protocol if call.model is not None else _protocol(call.service)
    named = set() if protocol in REST_PROTOCOLS else wire.named_operations(request)
    if named:
        if named == {call.operation} and is_read(call.service, call.operation):
            return
        _refuse(what, f"the request names {', '.join(sorted(named))}; only a read that names the operation "
                      "it is sent as passes; " + READ_ONLY)
    method = (request.method or "").upper()
    if method in ("GET", "HEAD"):
        return
    if (call.model is not None and call.model.name == call.operation and is_read(call.service, call.operation)
            and wire.matches_binding(call.model.http, request)):
        return  # a REST read sent as POST (sso-oidc:CreateToken), with its own method and path
    if call.signing_type in ("presign-url", "presign-post"):
        _refuse(f"a presigned {'POST' if call.signing_type == 'presign-post' else 'URL'} for {what}",
                "anyone holding it could write; " + READ_ONLY)
    write = wire.s3_write(request) if call.service == "s3" else None
    with _lock:
        grants = list(_grants)
    if write is not None and any(g.allows_write(write) for g in grants):
        return
    _refuse(what, "a write no grant covers (its method, bucket, key and query decide); " + READ_ONLY)


# --- the patches --------------------------------------------------------------------------------

def _guard_api_call(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def _make_api_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        service = client.meta.service_model.service_name
        check(service, operation_name, api_params, client.meta.endpoint_url or "")
        with _approved(_Call(service, operation_name)):
            return original(client, operation_name, api_params)
    return _make_api_call


def _guard_make_request(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def make_request(endpoint: Any, operation_model: Any, request_dict: dict[str, Any]) -> Any:
        service, operation = operation_model.service_model.service_name, operation_model.name
        current = _current()
        if not ((current is not None and current[:2] == (service, operation)) or is_read(service, operation)
                or _seeding_to(request_dict.get("url", ""))):
            _refuse(f"{service}:{operation} sent past the client (Endpoint.make_request)")
        with _approved(_Call(service, operation, operation_model)):
            return original(endpoint, operation_model, request_dict)
    return make_request


def _guard_send(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def _send(endpoint: Any, request: Any) -> Any:
        call = _current()
        if call is None or call.model is None:
            _refuse(f"{wire.describe(request)} sent past the client (Endpoint._send)")
        else:
            judge(call, request)
        return original(endpoint, request)
    return _send


def _guard_sign(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def sign(signer: Any, operation_name: str, request: Any, region_name: Any = None,
             signing_type: str = "standard", expires_in: Any = None, signing_name: Any = None) -> Any:
        service_id = signer._service_id.hyphenize()
        current = _current()
        inside = current is not None and current.operation == operation_name
        service = current.service if inside else SERVICE_NAMES.get(service_id, service_id)
        what = f"{service}:{operation_name}"
        if signing_type == "presign-post":
            _refuse(f"a presigned POST for {what}", "anyone holding it could upload; " + READ_ONLY)
        allowed = ((signing_type == "standard" and inside) or is_read(service, operation_name)
                   or _seeding_to(getattr(request, "url", "") or ""))
        if not allowed:
            if signing_type == "presign-url":
                _refuse(f"a presigned URL for {what}", "anyone holding it could write; " + READ_ONLY)
            _refuse(f"{what} signed outside a client call", READ_ONLY)
        call = _Call(service, operation_name, current.model if inside else None, signing_type)
        judge(call, request)
        with _approved(call, "signing"):
            return original(signer, operation_name, request, region_name, signing_type, expires_in, signing_name)
    return sign


def _guard_add_auth(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def add_auth(auth: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        call = _current("signing")
        if call is None:
            host = urlsplit(getattr(request, "url", "") or "").hostname or "?"
            _refuse(f"a request to {host} signed with {type(auth).__name__} by hand",
                    "botocore signs only the calls of a client; " + READ_ONLY)
        else:
            judge(call, request)  # again: before-sign handlers may have changed it since sign() began
        return original(auth, request, *args, **kwargs)
    return add_auth


def _targets() -> list[tuple[type, str, Callable[[Any], Any]]]:
    """Each (class, method, wrapper factory) the guard patches."""
    targets: list[tuple[type, str, Callable[[Any], Any]]] = [
        (botocore.client.BaseClient, "_make_api_call", _guard_api_call),
        (botocore.endpoint.Endpoint, "make_request", _guard_make_request),
        (botocore.endpoint.Endpoint, "_send", _guard_send),
        (botocore.signers.RequestSigner, "sign", _guard_sign),
    ]
    for cls in vars(botocore.auth).values():
        if (inspect.isclass(cls) and issubclass(cls, botocore.auth.BaseSigner) and cls is not botocore.auth.BaseSigner
                and "add_auth" in vars(cls)):
            targets.append((cls, "add_auth", _guard_add_auth))
    return targets


def installed() -> bool:
    """Is the guard in force in this process (a run, a merge, a snapshot)? The user's own writes
    outside a run (`edgeaudit incident`) refuse to start inside one."""
    with _lock:
        return _installed > 0


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
    """Undo one install(); the last one restores botocore, forgets the scratch buckets and lets
    the next installation mint its evidence door."""
    global _installed, _scratch_buckets, _door_minted
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
        _door_minted = False
