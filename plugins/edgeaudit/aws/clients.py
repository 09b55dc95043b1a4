"""The AWS layer: one boto3 session per credential scope, clients with adaptive retries and
timeouts, a per-run cache of read calls, and a call counter for the report.

Controls use it through the `aws` fixture: `aws.s3.get_bucket_versioning(Bucket=...)` goes to
AWS once per run however many controls ask; `aws.s3.paginate("list_objects_v2", Bucket=...)`
returns every page. An AccessDenied answer becomes `AccessDeniedError`, which the report shows
as an `error` naming the IAM action.
"""

from __future__ import annotations

import copy
import json
import os
import re
import threading
from collections import Counter
from typing import Any, Callable, Iterator

import boto3
import botocore.config
import botocore.credentials
import botocore.exceptions
import botocore.session
from botocore import UNSIGNED

from edgeaudit import __version__
from edgeaudit.aws import guard
from edgeaudit.errors import AccessDeniedError, NotEvaluated
from edgeaudit.redact import register_secret
from edgeaudit.rules import limits
from edgeaudit.rules.config import Target

# Services whose API lives in one region whatever the target's region.
GLOBAL_REGIONS = {"cloudfront": "us-east-1", "iam": "us-east-1", "ce": "us-east-1",
                  "budgets": "us-east-1", "route53": "us-east-1"}
# "403": a refusal whose body botocore could not parse (a HEAD request has none; an endpoint may
# answer in another protocol's format) keeps only its HTTP status as code.
ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                                 "AuthorizationError", "UnauthorizedAccess", "Forbidden", "403"})
# S3 operations whose IAM action has another name.
S3_ACTIONS = {
    "HeadBucket": "ListBucket", "ListObjects": "ListBucket", "ListObjectsV2": "ListBucket",
    "ListObjectVersions": "ListBucketVersions", "HeadObject": "GetObject",
    "GetBucketEncryption": "GetEncryptionConfiguration", "GetPublicAccessBlock": "GetBucketPublicAccessBlock",
    "GetBucketLifecycleConfiguration": "GetLifecycleConfiguration", "GetBucketReplication": "GetReplicationConfiguration",
    "GetBucketPolicyStatus": "GetBucketPolicyStatus", "GetObjectAttributes": "GetObject",
    "ListMultipartUploads": "ListBucketMultipartUploads", "CopyObject": "PutObject",
    "DeleteObjects": "DeleteObject", "UploadPart": "PutObject", "UploadPartCopy": "PutObject", "CreateMultipartUpload": "PutObject",
    "CompleteMultipartUpload": "PutObject", "AbortMultipartUpload": "AbortMultipartUpload", "ListBuckets": "ListAllMyBuckets",
    "GetObjectLockConfiguration": "GetBucketObjectLockConfiguration",
}

S3CONTROL_ACTIONS = {"GetPublicAccessBlock": "GetAccountPublicAccessBlock"}
# Services whose IAM prefix is not botocore's service name.
IAM_PREFIXES = {"accessanalyzer": "access-analyzer"}
# Second opinions: asked once, since an answer they cannot give is recorded, not waited for.
SINGLE_ATTEMPT = frozenset({"accessanalyzer"})
# AWS Budgets authorises every read with one action.
BUDGETS_READS = frozenset({"DescribeBudgets", "DescribeBudget", "DescribeNotificationsForBudget",
                           "DescribeSubscribersForNotification"})


def iam_action(service: str, operation: str) -> str:
    """The IAM action a call needs, e.g. ('s3', 'GetPublicAccessBlock') -> s3:GetBucketPublicAccessBlock."""
    if service == "s3":
        return f"s3:{S3_ACTIONS.get(operation, operation)}"
    if service == "s3control":  # account-level S3 settings use the s3 prefix
        return f"s3:{S3CONTROL_ACTIONS.get(operation, operation)}"
    if service == "budgets" and operation in BUDGETS_READS:
        return "budgets:ViewBudget"
    return f"{IAM_PREFIXES.get(service, service)}:{operation}"


def aws_limits() -> tuple[float, float, int]:
    """(connect s, read s, attempts) for AWS calls; the environment may change them (limits.py)."""
    connect, read = limits.aws_timeout()
    return connect, read, limits.aws_max_attempts()


def client_config(service: str) -> botocore.config.Config:
    """Adaptive retries and timeouts; no host prefix when an endpoint override points at one
    host for every account (a test or emulator endpoint through AWS_ENDPOINT_URL)."""
    overridden = endpoint_overridden(service)
    connect, read, attempts = aws_limits()
    return botocore.config.Config(
        retries={"mode": "adaptive", "max_attempts": 1 if service in SINGLE_ATTEMPT else attempts},
        connect_timeout=connect, read_timeout=read,
        user_agent_extra=f"edgeaudit/{__version__}",
        inject_host_prefix=not overridden,
    )


_ACCOUNT_PREFIX = re.compile(r"^(https?://)\d{12}\.")


def _strip_account_prefix(request: Any, **_: Any) -> None:
    """s3control puts the account id in front of the host; an emulator on one host has no such name."""
    request.url = _ACCOUNT_PREFIX.sub(r"\1", request.url)


def endpoint_overridden(service: str) -> bool:
    return bool(os.environ.get("AWS_ENDPOINT_URL") or os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}"))


def adapt_to_emulator(client: Any) -> Any:
    """For an endpoint override (moto, LocalStack): requests go to the one host as given."""
    client.meta.events.register("before-sign.s3-control", _strip_account_prefix)  # signed as sent
    return client


class CallLog:
    """Counts the API calls the suite makes (each page and each operation once, retries not)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_operation: Counter[str] = Counter()

    def count(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.by_operation[f"{model.service_model.service_name}:{model.name}"] += 1

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.by_operation)


class ReadCache:
    """Answers (or errors) of read calls, keyed by scope, region, service, operation, parameters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[bool, Any]] = {}
        self._key_locks: dict[str, threading.Lock] = {}
        self._names: dict[str, frozenset[str]] = {}  # the resources each entry's parameters name

    def get(self, key: str, compute: Callable[[], Any], names: frozenset[str] = frozenset()) -> Any:
        """The cached answer for `key`, asked once; `names` are the resources its parameters name
        (a bucket, a distribution id), by which `release` finds a target's entries."""
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # concurrent askers of one key wait for the first answer
            if key not in self._entries:
                try:
                    self._entries[key] = (True, compute())
                except (botocore.exceptions.ClientError, NotEvaluated) as exc:
                    self._entries[key] = (False, exc)
                with self._lock:
                    self._names[key] = names
            ok, value = self._entries[key]
        if ok:
            return copy.deepcopy(value)
        raise copy.copy(value)

    def responses(self) -> dict[str, Any]:
        with self._lock:
            return {k: v for k, (ok, v) in self._entries.items() if ok}

    def release(self, names: set[str], keep: set[str]) -> dict[str, Any]:
        """Forget the entries whose parameters name one of `names` and none of `keep` (a target's
        own resources, not those it shares with another target); returns the answers forgotten.
        Account-wide reads (the bucket list, IAM, shared policies) name neither and stay."""
        with self._lock:
            gone = [key for key, named in self._names.items() if named & names and not named & keep]
            forgotten: dict[str, Any] = {}
            for key in gone:
                ok, value = self._entries.pop(key)
                del self._names[key]
                self._key_locks.pop(key, None)
                if ok:
                    forgotten[key] = value
        return forgotten

    def keys(self) -> list[str]:
        """The keys of the answers and errors held now."""
        with self._lock:
            return list(self._entries)


def named_in(params: Any) -> Iterator[str]:
    """Every text in a call's parameters, nested ones too (a metric's dimension values): the
    names of the resources it reads."""
    if isinstance(params, str):
        yield params
    elif isinstance(params, dict):
        for value in params.values():
            yield from named_in(value)
    elif isinstance(params, (list, tuple)):
        for value in params:
            yield from named_in(value)


def error_code(exc: Exception) -> str:
    """The error code AWS answered (a ClientError's), else the exception's type name."""
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__)


CREDENTIAL_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId",
                              "UnrecognizedClientException", "SignatureDoesNotMatch", "InvalidAccessKeyId",
                              "AuthFailure", "RequestExpired"})
CREDENTIAL_ERRORS = (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError,
                     botocore.exceptions.CredentialRetrievalError, botocore.exceptions.NoRegionError)
ENDPOINT_ERRORS = (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError,
                   botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectionClosedError)


class Breaker:
    """Remembers a dead endpoint or refused credentials, so that the next call fails at once with
    the same cause: a target whose account denies everything costs one answer, not one per call,
    and a dead endpoint one timeout."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, str] = {}

    def trip(self, scope: str, reason: str) -> NotEvaluated:
        with self._lock:
            self._open.setdefault(scope, reason)
        return NotEvaluated(reason)

    def check(self, *scopes: str) -> None:
        with self._lock:
            for scope in scopes:
                if scope in self._open:
                    raise NotEvaluated(self._open[scope] + " (not asked again)")


class CachedClient:
    """A boto3 client whose read calls are cached for the run; writes go straight to the guard."""

    def __init__(self, client: Any, cache: ReadCache, scope: str, breaker: "Breaker | None" = None) -> None:
        self.raw = client
        self._cache = cache
        self._service = client.meta.service_model.service_name
        self._credentials_scope = scope
        self._scope = f"{scope}|{client.meta.region_name}|{self._service}"
        self._breaker = breaker or Breaker()

    def _call(self, method: str, params: dict[str, Any], compute: Callable[[], Any]) -> Any:
        base = method.removeprefix("paginate:")
        operation = self.raw.meta.method_to_api_mapping.get(base, base)
        key = f"{self._scope}|{method}|{json.dumps(params, sort_keys=True, default=str)}"

        def guarded() -> Any:
            self._breaker.check(self._credentials_scope, self._scope)
            try:
                return compute()
            except botocore.exceptions.ClientError as exc:
                if error_code(exc) in ACCESS_DENIED_CODES:
                    where = (params.get("Bucket") or params.get("Id") or params.get("DistributionId")
                             or params.get("HealthCheckId") or "")
                    raise AccessDeniedError(iam_action(self._service, operation), str(where),
                                            f"{error_code(exc)} from {self._service}:{operation}") from None
                if error_code(exc) in CREDENTIAL_CODES:
                    raise self._breaker.trip(self._credentials_scope, f"the AWS credentials were refused "
                                             f"({error_code(exc)} from {self._service}:{operation})") from None
                raise
            except CREDENTIAL_ERRORS as exc:
                raise self._breaker.trip(self._credentials_scope, f"no usable AWS credentials ({exc})") from None
            except ENDPOINT_ERRORS as exc:
                raise self._breaker.trip(self._scope, f"AWS endpoint unreachable for {self._service}: {exc}") from None

        if not guard.is_read(self._service, operation) or self._streams(operation):
            return guarded()  # writes go to the guard; object bodies are read once, not kept
        return self._cache.get(key, guarded, frozenset(named_in(params)))

    def _streams(self, operation: str) -> bool:
        try:
            return self.raw.meta.service_model.operation_model(operation).has_streaming_output
        except Exception:  # not an operation name (a paginator of another name): cacheable
            return False

    def paginate(self, method: str, **params: Any) -> list[dict[str, Any]]:
        """Every page of a paginated read, cached as one entry."""
        return self._call(f"paginate:{method}", params,
                          lambda: list(self.raw.get_paginator(method).paginate(**params)))

    def __getattr__(self, method: str) -> Callable[..., Any]:
        target = getattr(self.raw, method)
        if method not in self.raw.meta.method_to_api_mapping:
            return target  # exceptions, meta, waiters, ...
        return lambda **params: self._call(method, params, lambda: target(**params))


def register_credentials(session: boto3.Session) -> None:
    """The secret key and session token the run signs with are redacted wherever they appear,
    whatever names them (a profile's, the environment's, a container's)."""
    try:
        credentials = session.get_credentials()
        frozen = credentials.get_frozen_credentials() if credentials is not None else None
    except botocore.exceptions.BotoCoreError:
        return  # the first call names the problem, as it did before
    if frozen is not None:
        register_secret(frozen.secret_key)
        register_secret(frozen.token)


def assumed_session(base: boto3.Session, role_arn: str, external_id: str | None) -> boto3.Session:
    """A session that assumes `role_arn` (another account's audit role) from the base credentials,
    and assumes it again when the temporary credentials run out."""
    extra = {"RoleSessionName": f"edgeaudit-{__version__}"}
    if external_id:
        extra["ExternalId"] = external_id
    fetcher = botocore.credentials.AssumeRoleCredentialFetcher(
        client_creator=base._session.create_client, source_credentials=base.get_credentials(),
        role_arn=role_arn, extra_args=extra)
    credentials = botocore.credentials.DeferredRefreshableCredentials(
        refresh_using=fetcher.fetch_credentials, method="assume-role")
    assumed = botocore.session.Session()
    assumed._credentials = credentials  # botocore's own way to hand a session its credentials
    if base.region_name:
        assumed.set_config_variable("region", base.region_name)
    return boto3.Session(botocore_session=assumed)


class AwsRegistry:
    """Run-wide: sessions per credential scope, the read cache and the call log."""

    def __init__(self) -> None:
        self.cache = ReadCache()
        self.calls = CallLog()
        self.breaker = Breaker()
        self._lock = threading.Lock()
        self._sessions: dict[tuple[str, ...], boto3.Session] = {}
        self._clients: dict[tuple[str, ...], CachedClient] = {}

    def session(self, target: Target) -> boto3.Session:
        scope = (target.profile or "", target.role_arn or "", target.external_id or "")
        with self._lock:
            if scope not in self._sessions:
                session = boto3.Session(profile_name=target.profile) if target.profile else boto3.Session()
                register_credentials(session)
                if target.role_arn:
                    session = assumed_session(session, target.role_arn, target.external_id)
                session._session.register("before-call", self.calls.count, unique_id="edgeaudit-call-log")
                self._sessions[scope] = session
            return self._sessions[scope]

    def client(self, target: Target, service: str, region: str | None = None) -> CachedClient:
        region = region or GLOBAL_REGIONS.get(service) or target.region or None
        scope = "/".join((target.profile or "default", target.role_arn or ""))
        key = (scope, service, region or "")
        with self._lock:
            cached = self._clients.get(key)
        if cached is None:
            session = self.session(target)
            raw = session.client(service, region_name=region or session.region_name or "us-east-1",
                                 config=client_config(service))
            if endpoint_overridden(service):
                adapt_to_emulator(raw)
            cached = CachedClient(raw, self.cache, scope, self.breaker)
            with self._lock:
                cached = self._clients.setdefault(key, cached)
        return cached

    def anonymous(self, target: Target, service: str, region: str | None = None) -> CachedClient:
        """A client that signs nothing, with the target's profile settings (region, endpoint
        overrides): it asks, and builds URLs, as anyone on the internet would. S3 addresses
        buckets virtual-hosted on AWS and by path under an endpoint override (one host for all)."""
        region = region or GLOBAL_REGIONS.get(service) or target.region or "us-east-1"
        key = ("anonymous", target.profile or "default", service, region)
        with self._lock:
            cached = self._clients.get(key)
        if cached is None:
            session = boto3.Session(profile_name=target.profile) if target.profile else boto3.Session()
            session._session.register("before-call", self.calls.count, unique_id="edgeaudit-call-log")
            style = "path" if endpoint_overridden(service) else "virtual"
            config = client_config(service).merge(botocore.config.Config(
                signature_version=UNSIGNED, s3={"addressing_style": style}))
            raw = session.client(service, region_name=region, config=config)
            if endpoint_overridden(service):
                adapt_to_emulator(raw)
            cached = CachedClient(raw, self.cache, f"anonymous/{target.profile or 'default'}", self.breaker)
            with self._lock:
                cached = self._clients.setdefault(key, cached)
        return cached


class Aws:
    """What the `aws` fixture gives a control: `aws.s3`, `aws.cloudfront`, `aws.client(name, region)`,
    and `aws.anonymous(name, region)` for what anyone may ask."""

    def __init__(self, registry: AwsRegistry, target: Target) -> None:
        self._registry = registry
        self.target = target

    def client(self, service: str, region: str | None = None) -> CachedClient:
        return self._registry.client(self.target, service, region)

    def anonymous(self, service: str, region: str | None = None) -> CachedClient:
        """An unsigned client: what the target's endpoints give anyone (EA-PEN-03's bucket URLs)."""
        return self._registry.anonymous(self.target, service, region)

    def __getattr__(self, service: str) -> CachedClient:
        if service.startswith("_"):
            raise AttributeError(service)
        return self.client(service)

    def __repr__(self) -> str:
        return f"<Aws {self.target.name} {self.target.region or 'default region'}>"

    @property
    def account_id(self) -> str:
        return self.client("sts").get_caller_identity()["Account"]

    @property
    def account_alias(self) -> str | None:
        """The account's IAM alias (an account has one at most), None when it has none."""
        aliases = self.client("iam").list_account_aliases().get("AccountAliases") or []
        return str(aliases[0]) if aliases else None
