"""Fill moto 5.2.5's gaps so the demo environment answers like AWS.

The demo environment and our tests run the controls against moto (a
``ThreadedMotoServer`` or ``mock_aws``) instead of a real account.  Out of the
box moto 5.2.5 drops or misreports several fields the controls read, has no
CloudFront cache policy or response headers policy API at all, lets no cache
behaviour target an origin group, lets a
bucket policy's ``Condition`` block the bucket owner's own reads, has no Cost
Explorer forecast nor ACM validation and renewal states, starts CloudTrail trails without
AWS's default event selector, and, when it enforces
IAM, refuses every CloudFront read and answers refusals in a shape botocore
cannot read.  A control would then pass or fail for moto's reasons rather than
the site's.

``install()`` patches moto's models and response handlers in this process.
Nothing here touches boto3: botocore still validates every request and parses
every response into the documented shapes.  Call ``install()`` before the
first CloudFront request reaches the server (in practice: before starting
``ThreadedMotoServer``), since moto builds its URL routes on that request.

moto has no API to move a distribution or an invalidation between states, so
``set_distribution_status()`` and ``set_invalidation_status()`` change the
in-process backend directly (the threaded server shares it); so do
``set_certificate_status()`` (ACM validation and renewal),
``set_access_key_create_date()`` (an old IAM access key), ``set_access_key_last_used()``,
``set_root_user()`` (the root user's MFA and access keys, which no API changes),
``set_cost_forecast()`` (Cost Explorer forecasts, which moto lacks; WAF's managed rule groups are
described from a small catalog, MANAGED_RULE_GROUPS),
``set_object_last_modified()`` (past writes: deployment history, replication lag),
``put_objects()`` and ``copy_objects()`` (a fleet's bulk data and its replica, without an HTTP
round trip per object) and
``set_stack_drift()`` (what CloudFormation drift detection finds; moto has none).
CloudFormation resource import (ChangeSetType IMPORT) lets a stack declare a bucket and a
distribution that were made by hand, as on AWS.
"""

from __future__ import annotations

import copy
import functools
import json
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import botocore.session
import cryptography.hazmat.primitives.asymmetric.rsa
from moto.acm.models import CertBundle, acm_backends
from moto.acm.responses import AWSCertificateManagerResponse
from moto.ce.models import ce_backends
from moto.ce.responses import CostExplorerResponse
from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import cloudformation_backends
from moto.cloudformation.responses import CloudFormationResponse
from moto.cloudfront import urls as cloudfront_urls
from moto.cloudtrail.models import Trail
from moto.cloudfront.exceptions import CloudFrontException, OriginDoesNotExist
from moto.cloudfront.models import (
    CloudFrontBackend,
    DefaultCacheBehaviour,
    Distribution,
    DistributionConfig,
    Invalidation,
    Origin,
    ViewerCertificate,
    cloudfront_backends,
    random_id,
)
from moto.cloudfront.responses import CloudFrontResponse
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import JsonRESTError, _RESTError
from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import camelcase_to_underscores, utcnow
from moto.iam.access_control import IAMPolicy, IAMRequestBase, PermissionResult
from moto.iam.models import iam_backends
from moto.moto_api import state_manager
from moto.moto_api._internal.managed_state_model import ManagedState
from moto.s3.exceptions import BucketAccessDeniedError, S3ClientError
from moto.s3.models import FakeBucket, FakeKey, s3_backends
from moto.s3.responses import S3Response
from moto.wafv2.exceptions import WAFNonexistentItemException
from moto.wafv2.responses import WAFV2Response

_installed = False

_DISTRIBUTION_STATUSES = ("InProgress", "Deployed")
_INVALIDATION_STATUSES = ("InProgress", "Completed")


def install() -> None:
    """Patch moto in this process (idempotent: calling twice is harmless)."""
    global _installed
    if _installed:
        return
    _keep_origin_access_settings()
    _report_custom_certificates()
    _keep_cache_behaviour_fields()
    _let_behaviours_target_origin_groups()
    _track_distribution_status_and_time()
    _report_invalidations_as_aws_does()
    _add_policy_api("CachePolicy", "cache-policy")
    _add_policy_api("ResponseHeadersPolicy", "response-headers-policy")
    _skip_bucket_policy_statements_moto_cannot_evaluate()
    _refuse_anonymous_listing()
    _add_object_retention_read()
    _keep_certificate_validation_and_renewal()
    _one_key_for_requested_certificates()
    _add_cost_forecast()
    _add_managed_rule_group_descriptions()
    _event_selectors_as_aws_keeps_them()
    _add_stack_drift_detection()
    _add_resource_import()
    _authorization_as_aws_does_it()
    _installed = True


def set_distribution_status(
    distribution_id: str,
    status: str,
    last_modified: datetime | None = None,
    account_id: str = "123456789012",
) -> None:
    """Pin a distribution's Status (and optionally its LastModifiedTime).

    The status stays as set until set again; moto's own state transitions no
    longer move it.  ``last_modified=None`` leaves LastModifiedTime unchanged;
    a naive datetime is taken as UTC.
    """
    if status not in _DISTRIBUTION_STATUSES:
        raise ValueError(f"status must be one of {_DISTRIBUTION_STATUSES}, not {status!r}")
    distribution = _distribution(distribution_id, account_id)
    distribution.pinned_status = status
    if last_modified is not None:
        if last_modified.tzinfo is not None:
            last_modified = last_modified.astimezone(UTC)
        distribution.last_modified_time = last_modified


def set_invalidation_status(
    distribution_id: str,
    invalidation_id: str,
    status: str,
    account_id: str = "123456789012",
    create_time: datetime | None = None,
) -> None:
    """Set an invalidation's Status ("InProgress" or "Completed"), and optionally its
    CreateTime (moto stamps the time of the request; a naive datetime is taken as UTC)."""
    if status not in _INVALIDATION_STATUSES:
        raise ValueError(f"status must be one of {_INVALIDATION_STATUSES}, not {status!r}")
    _distribution(distribution_id, account_id)
    backend = cloudfront_backends[account_id]["aws"]
    for invalidation in backend.invalidations.get(distribution_id, []):
        if invalidation.id == invalidation_id:
            invalidation.status = status
            if create_time is not None:
                invalidation.create_time = _utc(create_time)
            return
    raise KeyError(f"no invalidation {invalidation_id} on distribution {distribution_id}")


def set_certificate_status(
    certificate_arn: str,
    status: str,
    renewal_status: str | None = None,
    renewal_reason: str = "OTHER",
    account_id: str = "123456789012",
) -> None:
    """Pin an ACM certificate's Status (e.g. ISSUED once its DNS validation succeeded, or
    EXPIRED), and optionally its managed renewal's RenewalStatus (e.g. FAILED).

    moto moves a requested certificate to ISSUED only after MOTO_ACM_VALIDATION_WAIT
    seconds of wall-clock time and reports no renewal at all.
    """
    region = certificate_arn.split(":")[3]
    bundle = acm_backends[account_id][region].get_certificate(certificate_arn)
    bundle.status = status
    bundle.pinned_status = status
    bundle.renewal_summary = None
    if renewal_status is not None:
        bundle.renewal_summary = {"RenewalStatus": renewal_status, "RenewalStatusReason": renewal_reason,
                                  "UpdatedAt": utcnow().timestamp()}


def set_access_key_create_date(
    user_name: str, access_key_id: str, created: datetime, account_id: str = "123456789012"
) -> None:
    """Backdate an IAM access key (moto stamps the time of the request; naive is UTC)."""
    user = iam_backends[account_id]["global"].get_user(user_name)
    for key in user.access_keys:
        if key.access_key_id == access_key_id:
            key.create_date = _utc(created)
            return
    raise KeyError(f"no access key {access_key_id} for user {user_name}")


def set_root_user(mfa: bool, access_keys: bool, account_id: str = "123456789012") -> None:
    """What GetAccountSummary says of the root user (AccountMFAEnabled, AccountAccessKeysPresent).
    moto reports a root user without MFA and has no call that changes it; on AWS a person sets
    both in the console, so the demo's account says what a kept account says."""
    summary = iam_backends[account_id]["global"].account_summary
    summary._account_mfa_enabled = int(mfa)
    summary._account_access_keys_present = int(access_keys)


def set_access_key_last_used(
    user_name: str, access_key_id: str, used: datetime | None, account_id: str = "123456789012"
) -> None:
    """When an IAM access key was last used (None: never), as the credential report shows it."""
    user = iam_backends[account_id]["global"].get_user(user_name)
    for key in user.access_keys:
        if key.access_key_id == access_key_id:
            key.last_used = None if used is None else _utc(used)
            return
    raise KeyError(f"no access key {access_key_id} for user {user_name}")


def set_cost_forecast(
    cost_filter: dict[str, Any] | None, daily_usd: float, account_id: str = "123456789012"
) -> None:
    """What GetCostForecast answers for requests with this Filter: daily_usd for every day
    of the requested period. moto has no forecast at all; moto's own mechanism for cost data
    (/moto-api/static/ce/cost-and-usage-results) covers GetCostAndUsage only."""
    forecasts = ce_backends[account_id]["global"].__dict__.setdefault("motoext_forecasts", {})
    forecasts[_filter_key(cost_filter)] = daily_usd


def set_object_last_modified(
    bucket: str, key: str, moment: datetime, version_id: str | None = None, account_id: str = "123456789012"
) -> None:
    """Backdate one version of an S3 object (the current one when version_id is None), as if
    it had been written at `moment`: deployment history and replication lag need past writes,
    and moto stamps the time of the request (naive is UTC)."""
    versions = s3_backends[account_id]["aws"].get_bucket(bucket).keys.getlist(key, [])
    for version in versions:
        if version_id in (None, "null") and version is versions[-1] or version.version_id == version_id:
            version.last_modified = _utc(moment).replace(tzinfo=None)
            return
    raise KeyError(f"no version {version_id} of s3://{bucket}/{key}")


def put_objects(
    bucket: str, objects: Iterable[tuple[str, bytes, str, str]], account_id: str = "123456789012"
) -> None:
    """Write many objects (key, body, content type, cache control) into moto's S3 model at
    once, as PutObject would: bulk data beside a site (a fleet's thousands of objects) costs an
    HTTP round trip per object otherwise, most of a big fleet's build."""
    backend = s3_backends[account_id]["aws"]
    acl = backend.get_bucket(bucket).acl
    for key, body, content_type, cache_control in objects:
        made = backend.put_object(bucket, key, body)
        made.set_metadata({"Content-Type": content_type, "Cache-Control": cache_control})
        made.set_acl(acl)


def copy_objects(source: str, destination: str, account_id: str = "123456789012") -> int:
    """Copy the current version of every object of `source` into `destination`, as CopyObject
    would (metadata kept), as a replication would; returns how many were copied."""
    backend = s3_backends[account_id]["aws"]
    current = [versions[-1] for _, versions in backend.get_bucket(source).keys.lists() if versions]
    copied = 0
    for key in current:
        if isinstance(key, FakeKey):  # not a delete marker
            backend.copy_object(key, destination, key.name)
            copied += 1
    return copied


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment


def _distribution(distribution_id: str, account_id: str) -> Distribution:
    backend = cloudfront_backends[account_id]["aws"]
    try:
        return backend.distributions[distribution_id]
    except KeyError:
        raise KeyError(f"no distribution {distribution_id} in account {account_id}") from None


def _after_init(cls: type, extra: Callable[..., None]) -> None:
    """Make cls.__init__ run extra(self, same arguments) after moto's own __init__."""
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        extra(self, *args, **kwargs)

    cls.__init__ = __init__  # type: ignore[misc]


# --- CloudFront distributions -------------------------------------------------


def _keep_origin_access_settings() -> None:
    """moto's Origin drops OriginAccessControlId and S3OriginConfig.

    Its serialiser looks attributes up by snake_case name, so keeping them on
    the Origin object is enough for every distribution response to carry them.
    AWS reports an empty OriginAccessControlId for origins without one.
    """

    def keep(origin: Origin, config: dict[str, Any]) -> None:
        origin.origin_access_control_id = config.get("OriginAccessControlId") or ""
        if "S3OriginConfig" in config:
            s3_origin_config = dict(config["S3OriginConfig"] or {})
            s3_origin_config.setdefault("OriginAccessIdentity", "")
            origin.s3_origin_config = s3_origin_config

    _after_init(Origin, keep)


def _report_custom_certificates() -> None:
    """moto's ViewerCertificate keeps CloudFrontDefaultCertificate=True with a custom certificate.

    AWS answers False, names the certificate's source, and leaves out the
    identifier of the kind not in use.
    """

    def report(certificate: ViewerCertificate, config: dict[str, Any]) -> None:
        if certificate.acm_certificate_arn:
            certificate.cloud_front_default_certificate = False
            certificate.certificate_source = "acm"
            certificate.certificate = certificate.acm_certificate_arn
            certificate.iam_certificate_id = None
        elif certificate.iam_certificate_id:
            certificate.cloud_front_default_certificate = False
            certificate.certificate_source = "iam"
            certificate.certificate = certificate.iam_certificate_id
            certificate.acm_certificate_arn = None

    _after_init(ViewerCertificate, report)


def _keep_cache_behaviour_fields() -> None:
    """moto defaults Compress to True and drops function associations.

    AWS's default for an omitted Compress is False, and FunctionAssociations /
    LambdaFunctionAssociations come back as given.  The policy ids, viewer
    protocol policy, allowed/cached methods and path pattern moto already
    keeps.  CacheBehaviour subclasses DefaultCacheBehaviour, so both get this.
    """

    def keep(behaviour: DefaultCacheBehaviour, config: dict[str, Any]) -> None:
        behaviour.compress = config.get("Compress", False)
        for key in ("FunctionAssociations", "LambdaFunctionAssociations"):
            if config.get(key):
                setattr(behaviour, camelcase_to_underscores(key), config[key])

    _after_init(DefaultCacheBehaviour, keep)


def _let_behaviours_target_origin_groups() -> None:
    """moto refuses a default cache behaviour whose TargetOriginId names an origin group
    (NoSuchOrigin), and checks no other behaviour's target at all.

    AWS lets every behaviour target an origin or an origin group, and answers NoSuchOrigin
    when a behaviour's target, or a group's member, is neither.  moto's own check runs with
    the default behaviour pointed at the group's primary member; the group id is put back
    afterwards, so every response names the group, as AWS's do.
    """
    original = DistributionConfig.__init__

    @functools.wraps(original)
    def __init__(self: DistributionConfig, config: dict[str, Any]) -> None:
        origins = {origin["Id"] for origin in (config.get("Origins") or {}).get("Items") or []}
        groups = {
            group["Id"]: [member["OriginId"] for member in (group.get("Members") or {}).get("Items") or []]
            for group in (config.get("OriginGroups") or {}).get("Items") or []
        }
        if any(not set(members) <= origins for members in groups.values()):
            raise OriginDoesNotExist
        default = config.get("DefaultCacheBehavior") or {}
        behaviours = [default, *((config.get("CacheBehaviors") or {}).get("Items") or [])]
        if any(b.get("TargetOriginId") not in origins | set(groups) for b in behaviours):
            raise OriginDoesNotExist
        group = default.get("TargetOriginId")
        if group not in groups:
            original(self, config)
            return
        config["DefaultCacheBehavior"] = {**default, "TargetOriginId": (groups[group] or [group])[0]}
        original(self, config)
        self.DefaultCacheBehavior.target_origin_id = group

    DistributionConfig.__init__ = __init__  # type: ignore[method-assign]


def _track_distribution_status_and_time() -> None:
    """moto reports a new distribution InProgress and a fixed 2021 LastModifiedTime.

    moto registers a manual state transition, so the create response says
    InProgress and only a later read says Deployed; the demo wants Deployed
    straight away.  LastModifiedTime becomes the create/update time, and a
    status pinned by set_distribution_status() wins over moto's transitions.
    """
    state_manager.register_default_transition(
        "cloudfront::distribution", transition={"progression": "immediate"}
    )

    def stamp(distribution: Distribution, *_: Any) -> None:
        distribution.last_modified_time = utcnow()

    _after_init(Distribution, stamp)

    def status(distribution: Distribution) -> str | None:
        pinned = distribution.__dict__.get("pinned_status")
        return pinned if pinned is not None else ManagedState.status.fget(distribution)

    Distribution.status = property(status, ManagedState.status.fset)  # type: ignore[assignment]

    original_update = CloudFrontBackend.update_distribution

    @functools.wraps(original_update)
    def update_distribution(self: CloudFrontBackend, *args: Any, **kwargs: Any) -> Any:
        distribution, location, etag = original_update(self, *args, **kwargs)
        distribution.last_modified_time = utcnow()
        return distribution, location, etag

    CloudFrontBackend.update_distribution = update_distribution  # type: ignore[method-assign]


def _report_invalidations_as_aws_does() -> None:
    """moto reports a finished invalidation as "COMPLETED"; AWS says "Completed"."""

    def complete(invalidation: Invalidation, *_: Any) -> None:
        invalidation.status = "Completed"

    _after_init(Invalidation, complete)


# --- CloudFront cache policies and response headers policies ----------------


class _Policy:
    """One cache policy or response headers policy."""

    def __init__(self, config: dict[str, Any], managed: bool = False, policy_id: str = "") -> None:
        self.id = policy_id or str(uuid.uuid4())
        self.config = config
        self.managed = managed
        self.etag = random_id()
        self.last_modified_time = utcnow()


class _PolicyStore:
    """One account's CachePolicy or ResponseHeadersPolicy objects, managed ones included. A name
    is checked and taken under one lock: moto's server answers requests on many threads."""

    def __init__(self, kind: str, managed: dict[str, dict[str, Any]]) -> None:
        self.kind = kind
        self.lock = threading.Lock()
        self.policies = {
            policy_id: _Policy(copy.deepcopy(config), managed=True, policy_id=policy_id)
            for policy_id, config in managed.items()
        }

    def get(self, policy_id: str) -> _Policy:
        if policy_id not in self.policies:
            raise CloudFrontException(
                f"NoSuch{self.kind}", f"The {self.kind} {policy_id} does not exist."
            )
        return self.policies[policy_id]

    def list(self, policy_type: str | None) -> list[_Policy]:
        if policy_type not in (None, "managed", "custom"):
            raise CloudFrontException(
                "InvalidArgument", f"Type must be managed or custom, not {policy_type}."
            )
        return [
            policy
            for policy in list(self.policies.values())
            if policy_type is None or policy.managed == (policy_type == "managed")
        ]

    def create(self, config: dict[str, Any]) -> _Policy:
        with self.lock:
            self._check_name_is_free(config["Name"], policy_id=None)
            policy = _Policy(config)
            self.policies[policy.id] = policy
            return policy

    def update(self, policy_id: str, config: dict[str, Any], if_match: str | None) -> _Policy:
        with self.lock:
            policy = self._changeable(policy_id, if_match, "IllegalUpdate")
            self._check_name_is_free(config["Name"], policy_id)
            policy.config = config
            policy.etag = random_id()
            policy.last_modified_time = utcnow()
            return policy

    def delete(self, policy_id: str, if_match: str | None, in_use: bool) -> None:
        with self.lock:
            self._changeable(policy_id, if_match, "IllegalDelete")
            if in_use:
                raise CloudFrontException(
                    f"{self.kind}InUse", f"The {self.kind} is attached to a cache behavior."
                )
            del self.policies[policy_id]

    def _changeable(self, policy_id: str, if_match: str | None, illegal_code: str) -> _Policy:
        policy = self.get(policy_id)
        if not if_match:
            raise CloudFrontException(
                "InvalidIfMatchVersion", "The If-Match version is missing or not valid."
            )
        if policy.managed:
            raise CloudFrontException(illegal_code, f"A managed {self.kind} cannot be changed.")
        if if_match != policy.etag:
            raise CloudFrontException(
                "PreconditionFailed", "The If-Match version does not match the ETag."
            )
        return policy

    def _check_name_is_free(self, name: str, policy_id: str | None) -> None:
        for policy in self.policies.values():
            if policy.config.get("Name") == name and policy.id != policy_id:
                raise CloudFrontException(
                    f"{self.kind}AlreadyExists", f"A {self.kind} named {name} already exists."
                )


def _policy_store(backend: CloudFrontBackend, kind: str) -> _PolicyStore:
    """The backend's store for kind, made with the managed policies on first use.

    It lives in the backend's __dict__, so moto's reset() discards it too.
    """
    stores = backend.__dict__.setdefault("motoext_policy_stores", {})
    if kind not in stores:
        stores.setdefault(kind, _PolicyStore(kind, _MANAGED_POLICIES[kind]))
    return stores[kind]


def _behaviours(backend: CloudFrontBackend) -> Iterator[DefaultCacheBehaviour]:
    for distribution in backend.distributions.values():
        config = distribution.distribution_config
        yield config.DefaultCacheBehavior
        yield from config.CacheBehaviors.get("Items") or []


def _add_policy_api(kind: str, path: str) -> None:
    """moto 5.2.5 has no CloudFront {kind} operations at all (they answer 404).

    Adds Create/Get/GetConfig/List (with the Type filter)/Update/Delete as
    CloudFrontResponse handlers and routes their URLs to it.
    """
    config_key = f"{kind}Config"
    snake = camelcase_to_underscores(kind)
    policy_id_attribute = f"{snake}_id"
    location = f"https://cloudfront.amazonaws.com/2020-05-31/{path}/"

    def as_dict(policy: _Policy) -> dict[str, Any]:
        return {
            "Id": policy.id,
            "LastModifiedTime": policy.last_modified_time,
            config_key: policy.config,
        }

    def create(self: CloudFrontResponse) -> ActionResult:
        policy = _policy_store(self.backend, kind).create(self._get_param(config_key))
        return ActionResult(
            {kind: as_dict(policy), "Location": location + policy.id, "ETag": policy.etag}
        )

    def get(self: CloudFrontResponse) -> ActionResult:
        policy = _policy_store(self.backend, kind).get(self._get_param("Id"))
        return ActionResult({kind: as_dict(policy), "ETag": policy.etag})

    def get_config(self: CloudFrontResponse) -> ActionResult:
        policy = _policy_store(self.backend, kind).get(self._get_param("Id"))
        return ActionResult({config_key: policy.config, "ETag": policy.etag})

    def list_(self: CloudFrontResponse) -> ActionResult:
        policies = _policy_store(self.backend, kind).list(self._get_param("Type"))
        items = [{"Type": "managed" if p.managed else "custom", kind: as_dict(p)} for p in policies]
        max_items = self._get_int_param("MaxItems") or 100
        return ActionResult(
            {f"{kind}List": {"MaxItems": max_items, "Quantity": len(items), "Items": items}}
        )

    def update(self: CloudFrontResponse) -> ActionResult:
        store = _policy_store(self.backend, kind)
        policy = store.update(
            self._get_param("Id"), self._get_param(config_key), self._get_param("IfMatch")
        )
        return ActionResult({kind: as_dict(policy), "ETag": policy.etag})

    def delete(self: CloudFrontResponse) -> EmptyResult:
        policy_id = self._get_param("Id")
        in_use = any(
            getattr(b, policy_id_attribute, None) == policy_id for b in _behaviours(self.backend)
        )
        _policy_store(self.backend, kind).delete(policy_id, self._get_param("IfMatch"), in_use)
        return EmptyResult()

    plural = snake[: -len("policy")] + "policies"
    handlers = {
        f"create_{snake}": create,
        f"get_{snake}": get,
        f"get_{snake}_config": get_config,
        f"list_{plural}": list_,
        f"update_{snake}": update,
        f"delete_{snake}": delete,
    }
    for name, handler in handlers.items():
        handler.__name__ = handler.__qualname__ = name
        setattr(CloudFrontResponse, name, handler)

    cloudfront_urls.url_paths.update(
        {
            f"{{0}}/2020-05-31/{path}$": CloudFrontResponse.dispatch,
            f"{{0}}/2020-05-31/{path}/(?P<policy_id>[^/]+)$": CloudFrontResponse.dispatch,
            f"{{0}}/2020-05-31/{path}/(?P<policy_id>[^/]+)/config$": CloudFrontResponse.dispatch,
        }
    )


def _items(values: list[str]) -> dict[str, Any]:
    return {"Quantity": len(values), "Items": values}


def _managed_cache_policy(
    name: str,
    min_ttl: int,
    default_ttl: int,
    max_ttl: int,
    compressed: bool,
    headers: list[str] | None = None,
    cookies: str = "none",
    query_strings: str = "none",
) -> dict[str, Any]:
    headers_config: dict[str, Any] = {"HeaderBehavior": "whitelist" if headers else "none"}
    if headers:
        headers_config["Headers"] = _items(headers)
    return {
        "Name": name,
        "MinTTL": min_ttl,
        "DefaultTTL": default_ttl,
        "MaxTTL": max_ttl,
        "ParametersInCacheKeyAndForwardedToOrigin": {
            "EnableAcceptEncodingGzip": compressed,
            "EnableAcceptEncodingBrotli": compressed,
            "HeadersConfig": headers_config,
            "CookiesConfig": {"CookieBehavior": cookies},
            "QueryStringsConfig": {"QueryStringBehavior": query_strings},
        },
    }


_ONE_DAY = 86400
_ONE_YEAR = 31536000
_METHOD_OVERRIDE_HEADERS = [
    "Host",
    "Origin",
    "X-HTTP-Method-Override",
    "X-HTTP-Method",
    "X-Method-Override",
]

# "Use managed cache policies", Amazon CloudFront Developer Guide.  Only the
# two UseOriginCacheControlHeaders policies lack the "Managed-" name prefix.
_MANAGED_CACHE_POLICIES: dict[str, dict[str, Any]] = {
    "658327ea-f89d-4fab-a63d-7e88639e58f6": _managed_cache_policy(
        "Managed-CachingOptimized", 1, _ONE_DAY, _ONE_YEAR, compressed=True
    ),
    "4135ea2d-6df8-44a3-9df3-4b5a84be39ad": _managed_cache_policy(
        "Managed-CachingDisabled", 0, 0, 0, compressed=False
    ),
    "b2884449-e4de-46a7-ac36-70bc7f1ddd6d": _managed_cache_policy(
        "Managed-CachingOptimizedForUncompressedObjects", 1, _ONE_DAY, _ONE_YEAR, compressed=False
    ),
    "83da9c7e-98b4-4e11-a168-04f0df8e2c65": _managed_cache_policy(
        "UseOriginCacheControlHeaders",
        0,
        0,
        _ONE_YEAR,
        compressed=True,
        headers=_METHOD_OVERRIDE_HEADERS,
        cookies="all",
    ),
    "4cc15a8a-d715-48a4-82b8-cc0b614638fe": _managed_cache_policy(
        "UseOriginCacheControlHeaders-QueryStrings",
        0,
        0,
        _ONE_YEAR,
        compressed=True,
        headers=_METHOD_OVERRIDE_HEADERS,
        cookies="all",
        query_strings="all",
    ),
}

# "Use managed response headers policies", Amazon CloudFront Developer Guide:
# CloudFront always sets X-Content-Type-Options; every other header here
# yields to the origin's (Override false).
_SECURITY_HEADERS: dict[str, Any] = {
    "XSSProtection": {"Override": False, "Protection": True, "ModeBlock": True},
    "FrameOptions": {"Override": False, "FrameOption": "SAMEORIGIN"},
    "ReferrerPolicy": {"Override": False, "ReferrerPolicy": "strict-origin-when-cross-origin"},
    "ContentTypeOptions": {"Override": True},
    "StrictTransportSecurity": {
        "Override": False,
        "IncludeSubdomains": False,
        "Preload": False,
        "AccessControlMaxAgeSec": _ONE_YEAR,
    },
}
_PREFLIGHT_METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]


def _any_origin_cors(methods: list[str], expose_headers: list[str]) -> dict[str, Any]:
    return {
        "AccessControlAllowOrigins": _items(["*"]),
        "AccessControlAllowHeaders": _items([]),
        "AccessControlAllowMethods": _items(methods),
        "AccessControlAllowCredentials": False,
        "AccessControlExposeHeaders": _items(expose_headers),
        "OriginOverride": False,
    }


def _managed_response_headers_policy(
    name: str, cors: dict[str, Any] | None = None, security: bool = False
) -> dict[str, Any]:
    config: dict[str, Any] = {"Name": name}
    if cors:
        config["CorsConfig"] = cors
    if security:
        config["SecurityHeadersConfig"] = copy.deepcopy(_SECURITY_HEADERS)
    return config


_MANAGED_RESPONSE_HEADERS_POLICIES: dict[str, dict[str, Any]] = {
    "67f7725c-6f97-4210-82d7-5512b31e9d03": _managed_response_headers_policy(
        "Managed-SecurityHeadersPolicy", security=True
    ),
    "60669652-455b-4ae9-85a4-c4c02393f86c": _managed_response_headers_policy(
        "Managed-SimpleCORS", cors=_any_origin_cors([], [])
    ),
    "5cc3b908-e619-4b99-88e5-2cf7f45965bd": _managed_response_headers_policy(
        "Managed-CORS-With-Preflight", cors=_any_origin_cors(_PREFLIGHT_METHODS, ["*"])
    ),
    "e61eb60c-9c35-4d20-a928-2b84e02af89c": _managed_response_headers_policy(
        "Managed-CORS-and-SecurityHeadersPolicy", cors=_any_origin_cors([], []), security=True
    ),
    "eaab4381-ed33-4a86-88ca-d9558dc6cd63": _managed_response_headers_policy(
        "Managed-CORS-with-preflight-and-SecurityHeadersPolicy",
        cors=_any_origin_cors(_PREFLIGHT_METHODS, ["*"]),
        security=True,
    ),
}

_MANAGED_POLICIES: dict[str, dict[str, dict[str, Any]]] = {
    "CachePolicy": _MANAGED_CACHE_POLICIES,
    "ResponseHeadersPolicy": _MANAGED_RESPONSE_HEADERS_POLICIES,
}


# --- S3 bucket policies --------------------------------------------------------


def _skip_bucket_policy_statements_moto_cannot_evaluate() -> None:
    """moto evaluates bucket policies with no request context, so Conditions go wrong.

    FakeBucket.get_permission knows neither the caller nor the request's
    condition keys, and moto's condition check treats operators it does not
    know (Bool, ...) and keys it lacks as met.  So a Deny on
    aws:SecureTransport=false refuses the owner's GetObject/HeadObject, and
    the usual OAC Allow (CloudFront service principal, AWS:SourceArn
    condition) grants every caller, anonymous ones included.  This evaluates
    only what moto can judge: a statement with a Condition, or one naming a
    principal other than everyone, is taken not to match the caller (a Deny
    does not apply, an Allow does not grant).  Unconditional statements for
    "*" are enforced as before.
    """

    def get_permission(self: FakeBucket, action: str, resource: str) -> PermissionResult:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        document = json.loads(self.policy)
        statements = document.get("Statement", [])
        if isinstance(statements, dict):
            statements = [statements]
        document["Statement"] = [s for s in statements if _applies_to_any_caller(s)]
        return IAMPolicy(json.dumps(document)).is_action_permitted(action, resource)

    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]


def _refuse_anonymous_listing() -> None:
    """moto lists any bucket for an anonymous (unsigned) request.

    AWS answers 403 AccessDenied unless the bucket policy lets everyone
    s3:ListBucket (and Block Public Access does not restrict public buckets)
    or the bucket ACL grants AllUsers READ (and public ACLs are not ignored).
    Anonymous object reads moto already refuses by the object's ACL.
    """
    original = S3Response._bucket_response_get

    @functools.wraps(original)
    def _bucket_response_get(self: S3Response, bucket_name: str, querystring: dict[str, Any]) -> Any:
        signed = "Authorization" in self.headers or "Signature=" in (self.uri or "")
        if not signed and not _anonymous_listing_allowed(self.backend.get_bucket(bucket_name)):
            raise BucketAccessDeniedError(bucket_name)
        return original(self, bucket_name, querystring)

    S3Response._bucket_response_get = _bucket_response_get  # type: ignore[method-assign]


def _add_object_retention_read() -> None:
    """moto keeps an object's retention (from PutObjectRetention or the bucket's default rule)
    but has no GetObjectRetention: it answers 500. AWS answers the mode and the until-date,
    NoSuchObjectLockConfiguration for an object without retention and InvalidRequest on a
    bucket without Object Lock."""
    original = S3Response._key_response_get

    @functools.wraps(original)
    def _key_response_get(self: S3Response, query: dict[str, Any], key_name: str) -> Any:
        if "retention" not in query:
            return original(self, query, key_name)
        self.data["Action"] = "GetObjectRetention"
        self._authenticate_and_authorize_s3_action(bucket_name=self.bucket_name, key_name=key_name)
        if not self.backend.get_bucket(self.bucket_name).object_lock_enabled:
            raise S3ClientError("InvalidRequest", "Bucket is missing Object Lock Configuration")
        key, _ = self._get_key()
        if not (key.lock_mode and key.lock_until):
            raise _NoRetention()
        headers = {"Content-Type": "application/xml"}
        if key.version_id and key.version_id != "null":
            headers["x-amz-version-id"] = key.version_id
        return 200, headers, ('<?xml version="1.0" encoding="UTF-8"?>'
                              '<Retention xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                              f"<Mode>{key.lock_mode}</Mode><RetainUntilDate>{key.lock_until}</RetainUntilDate>"
                              "</Retention>")

    S3Response._key_response_get = _key_response_get  # type: ignore[method-assign]


class _NoRetention(S3ClientError):
    code = "NoSuchObjectLockConfiguration"
    message = "The specified object does not have a ObjectLock configuration"


def _anonymous_listing_allowed(bucket: FakeBucket) -> bool:
    block = bucket.public_access_block
    resource = f"arn:{bucket.partition}:s3:::{bucket.name}"
    if not (block and block.restrict_public_buckets):
        if bucket.get_permission("s3:ListBucket", resource) == PermissionResult.PERMITTED:
            return True
    return bool(bucket.acl and bucket.acl.public_read and not (block and block.ignore_public_acls))


def _applies_to_any_caller(statement: dict[str, Any]) -> bool:
    if statement.get("Condition"):
        return False
    principal = statement.get("Principal", "*")
    if principal == "*":
        return True
    if isinstance(principal, dict) and set(principal) == {"AWS"}:
        aws = principal["AWS"]
        return aws == "*" or (isinstance(aws, list) and "*" in aws)
    return False


# --- ACM certificates ----------------------------------------------------------


_acm_issuing = threading.local()  # set while moto makes a requested ACM certificate, in this thread


def _one_key_for_requested_certificates() -> None:
    """moto makes a new RSA-2048 key for every requested ACM certificate, a tenth of a second
    or more each, a quarter of a demo site's build. ACM never hands out a requested
    certificate's key, so nothing reads it: one key, made once, serves them all. Every other
    key this process makes (the demo's own certificates, moto's imports) is made as before."""
    rsa = cryptography.hazmat.primitives.asymmetric.rsa
    original_key, original_cert = rsa.generate_private_key, CertBundle.generate_cert.__func__
    shared: list[Any] = []
    lock = threading.Lock()

    def generate_private_key(*args: Any, **kwargs: Any) -> Any:
        if not getattr(_acm_issuing, "active", False):
            return original_key(*args, **kwargs)
        with lock:
            if not shared:
                shared.append(original_key(*args, **kwargs))
            return shared[0]

    def generate_cert(cls: type[CertBundle], *args: Any, **kwargs: Any) -> CertBundle:
        _acm_issuing.active = True
        try:
            return original_cert(cls, *args, **kwargs)
        finally:
            _acm_issuing.active = False

    rsa.generate_private_key = generate_private_key
    CertBundle.generate_cert = classmethod(generate_cert)  # type: ignore[method-assign,assignment]


def _keep_certificate_validation_and_renewal() -> None:
    """moto reports every requested certificate as DNS-validated, never eligible for renewal,
    and with no renewal summary; and its status follows the wall clock.

    AWS reports the validation method that was requested (EMAIL validation lists the
    addresses instead of a CNAME record), RenewalEligibility ELIGIBLE for an issued
    Amazon-issued certificate, and a RenewalSummary once a managed renewal has run.  A
    status pinned by set_certificate_status() stays as set.
    """
    original_request = AWSCertificateManagerResponse.request_certificate

    @functools.wraps(original_request)
    def request_certificate(self: AWSCertificateManagerResponse) -> ActionResult:
        result = original_request(self)
        arn = result.result["CertificateArn"]  # type: ignore[index]
        bundle = self.acm_backend.get_certificate(arn)
        bundle.validation_method = self._get_param("ValidationMethod") or "DNS"
        return result

    AWSCertificateManagerResponse.request_certificate = request_certificate  # type: ignore[method-assign]

    original_check = CertBundle.check

    def check(self: CertBundle) -> None:
        if self.__dict__.get("pinned_status") is None:
            original_check(self)

    CertBundle.check = check  # type: ignore[method-assign]

    original_describe = CertBundle.describe

    def describe(self: CertBundle) -> dict[str, Any]:
        result = original_describe(self)
        certificate = result["Certificate"]
        if self.type == "AMAZON_ISSUED" and self.status == "ISSUED":
            certificate["RenewalEligibility"] = "ELIGIBLE"
        if self.__dict__.get("validation_method") == "EMAIL":
            for option in certificate.get("DomainValidationOptions", []):
                option["ValidationMethod"] = "EMAIL"
                option.pop("ResourceRecord", None)
                option["ValidationEmails"] = [f"{box}@{option['ValidationDomain']}"
                                              for box in ("admin", "hostmaster", "webmaster")]
        summary = self.__dict__.get("renewal_summary")
        if summary:
            certificate["RenewalSummary"] = {
                **summary, "DomainValidationOptions": copy.deepcopy(certificate.get("DomainValidationOptions", []))}
        return result

    CertBundle.describe = describe  # type: ignore[method-assign]


# --- Cost Explorer forecasts ---------------------------------------------------


def _filter_key(cost_filter: dict[str, Any] | None) -> str:
    return json.dumps(cost_filter, sort_keys=True)


def _add_cost_forecast() -> None:
    """moto 5.2.5 has no GetCostForecast (it raises NotImplementedError).

    Answers from the daily amounts seeded by set_cost_forecast(), per Filter: Total for
    the requested period and one ForecastResultsByTime entry per DAILY or MONTHLY
    period.  A Filter with nothing seeded gets AWS's DataUnavailableException.
    """

    def get_cost_forecast(self: CostExplorerResponse) -> str:
        params = json.loads(self.body)
        forecasts = self.ce_backend.__dict__.get("motoext_forecasts", {})
        key = _filter_key(params.get("Filter"))
        if key not in forecasts:
            raise JsonRESTError("DataUnavailableException",
                                "Insufficient amount of historical data to generate forecast.")
        start = datetime.strptime(params["TimePeriod"]["Start"], "%Y-%m-%d").date()
        end = datetime.strptime(params["TimePeriod"]["End"], "%Y-%m-%d").date()
        if end <= start:
            raise JsonRESTError("ValidationException", "Start date must be before end date.")
        periods, cursor = [], start
        while cursor < end:
            if params["Granularity"] == "DAILY":
                upto = cursor + timedelta(days=1)
            else:
                upto = (cursor.replace(day=28) + timedelta(days=4)).replace(day=1)
            upto = min(upto, end)
            periods.append((cursor, upto))
            cursor = upto
        daily = forecasts[key]

        def amount(first: date, last: date) -> str:
            return f"{daily * (last - first).days:.10f}"

        return json.dumps({
            "Total": {"Amount": amount(start, end), "Unit": "USD"},
            "ForecastResultsByTime": [
                {"TimePeriod": {"Start": a.isoformat(), "End": b.isoformat()}, "MeanValue": amount(a, b)}
                for a, b in periods
            ],
        })

    CostExplorerResponse.get_cost_forecast = get_cost_forecast  # type: ignore[attr-defined]


# --- WAF managed rule groups ----------------------------------------------------

# The rules of the AWS managed rule groups the demo uses, each with its default action (Block), as
# DescribeManagedRuleGroup lists them.
MANAGED_RULE_GROUPS = {
    ("AWS", "AWSManagedRulesCommonRuleSet"): (
        "NoUserAgent_HEADER", "UserAgent_BadBots_HEADER", "SizeRestrictions_QUERYSTRING",
        "SizeRestrictions_Cookie_HEADER", "SizeRestrictions_BODY", "SizeRestrictions_URIPATH",
        "EC2MetaDataSSRF_BODY", "EC2MetaDataSSRF_COOKIE", "EC2MetaDataSSRF_URIPATH",
        "EC2MetaDataSSRF_QUERYARGUMENTS", "GenericLFI_QUERYARGUMENTS", "GenericLFI_URIPATH", "GenericLFI_BODY",
        "RestrictedExtensions_URIPATH", "RestrictedExtensions_QUERYARGUMENTS", "GenericRFI_QUERYARGUMENTS",
        "GenericRFI_BODY", "GenericRFI_URIPATH", "CrossSiteScripting_COOKIE", "CrossSiteScripting_QUERYARGUMENTS",
        "CrossSiteScripting_BODY", "CrossSiteScripting_URIPATH"),
    ("AWS", "AWSManagedRulesKnownBadInputsRuleSet"): (
        "JavaDeserializationRCE_HEADER", "JavaDeserializationRCE_BODY", "JavaDeserializationRCE_URIPATH",
        "JavaDeserializationRCE_QUERYSTRING", "Host_localhost_HEADER", "PROPFIND_METHOD", "ExploitablePaths_URIPATH",
        "Log4JRCE_HEADER", "Log4JRCE_QUERYSTRING", "Log4JRCE_BODY", "Log4JRCE_URIPATH"),
}


def _add_managed_rule_group_descriptions() -> None:
    """moto 5.2.6 has no DescribeManagedRuleGroup: answer for MANAGED_RULE_GROUPS, each rule with
    its default action, and AWS's WAFNonexistentItemException for any other group."""
    def describe_managed_rule_group(self: WAFV2Response) -> str:
        params = json.loads(self.body)
        rules = MANAGED_RULE_GROUPS.get((params.get("VendorName"), params.get("Name")))
        if rules is None:
            raise WAFNonexistentItemException()
        return json.dumps({"VersionName": params.get("VersionName") or "Version_1.0", "Capacity": 700,
                           "LabelNamespace": f"awswaf:managed:{params['VendorName'].lower()}:{params['Name']}:",
                           "Rules": [{"Name": name, "Action": {"Block": {}}} for name in rules]})

    WAFV2Response.describe_managed_rule_group = describe_managed_rule_group  # type: ignore[attr-defined]


# --- CloudFormation drift detection ---------------------------------------------


# --- CloudTrail event selectors ----------------------------------------------


_DEFAULT_EVENT_SELECTOR = {"ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": [],
                           "ExcludeManagementEventSources": []}


def _event_selectors_as_aws_keeps_them() -> None:
    """A new trail records every management event (AWS's default basic selector; moto starts
    with none), and basic and advanced selectors replace each other (moto keeps advanced
    selectors beside later basic ones). GetEventSelectors answers with the kind in use."""

    def default(trail: Trail, *_: Any, **__: Any) -> None:
        trail.event_selectors = [copy.deepcopy(_DEFAULT_EVENT_SELECTOR)]

    def put_event_selectors(trail: Trail, event_selectors: list[dict[str, Any]] | None,
                            advanced_event_selectors: list[dict[str, Any]] | None) -> None:
        trail.event_selectors = [{"ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": [],
                                  "ExcludeManagementEventSources": [], **s} for s in event_selectors or []]
        trail.advanced_event_selectors = [] if event_selectors else list(advanced_event_selectors or [])

    _after_init(Trail, default)
    Trail.put_event_selectors = put_event_selectors  # type: ignore[method-assign]


def set_stack_drift(stack_name: str, drifts: list[dict[str, Any]] | None, region: str = "us-east-1",
                    account_id: str = "123456789012") -> None:
    """What drift detection finds for a stack: None or [] is IN_SYNC; else one entry per drifted
    resource: {"LogicalResourceId", "ResourceType", "PhysicalResourceId", "PropertyDifferences":
    [{"PropertyPath", "ExpectedValue", "ActualValue"}]}. moto has no drift detection at all."""
    backend = cloudformation_backends[account_id][region]
    backend.describe_stacks(stack_name)  # the stack must exist
    backend.__dict__.setdefault("motoext_drift", {})[stack_name] = list(drifts or [])


def _add_stack_drift_detection() -> None:
    """DetectStackDrift, DescribeStackDriftDetectionStatus and DescribeStackResourceDrifts with
    AWS's shapes; detection completes at once with what set_stack_drift() seeded (IN_SYNC when
    nothing was)."""

    def _stack(self: CloudFormationResponse, name: str) -> Any:
        return self.cloudformation_backend.describe_stacks(name)[0]

    def _drifts(self: CloudFormationResponse, stack: Any) -> list[dict[str, Any]]:
        seeded = self.cloudformation_backend.__dict__.get("motoext_drift", {})
        return seeded.get(stack.name, seeded.get(stack.stack_id, []))

    def detect_stack_drift(self: CloudFormationResponse) -> ActionResult:
        stack = _stack(self, self._get_param("StackName"))
        detection = str(uuid.uuid4())
        self.cloudformation_backend.__dict__.setdefault("motoext_detections", {})[detection] = (stack.name, utcnow())
        return ActionResult({"StackDriftDetectionId": detection})

    def describe_stack_drift_detection_status(self: CloudFormationResponse) -> ActionResult:
        detection = self._get_param("StackDriftDetectionId")
        detections = self.cloudformation_backend.__dict__.get("motoext_detections", {})
        if detection not in detections:
            raise ValidationError(message=f"Drift detection with ID {detection} does not exist")
        name, when = detections[detection]
        stack = _stack(self, name)
        drifted = _drifts(self, stack)
        return ActionResult({
            "StackId": stack.stack_id, "StackDriftDetectionId": detection,
            "StackDriftStatus": "DRIFTED" if drifted else "IN_SYNC", "DetectionStatus": "DETECTION_COMPLETE",
            "DriftedStackResourceCount": len(drifted), "Timestamp": when})

    def describe_stack_resource_drifts(self: CloudFormationResponse) -> ActionResult:
        stack = _stack(self, self._get_param("StackName"))
        now = utcnow()
        drifts = [{
            "StackId": stack.stack_id, "LogicalResourceId": d["LogicalResourceId"],
            "PhysicalResourceId": d.get("PhysicalResourceId", d["LogicalResourceId"]),
            "ResourceType": d["ResourceType"], "StackResourceDriftStatus": "MODIFIED", "Timestamp": now,
            "PropertyDifferences": [{**p, "DifferenceType": p.get("DifferenceType", "NOT_EQUAL")}
                                    for p in d.get("PropertyDifferences", [])],
        } for d in _drifts(self, stack)]
        return ActionResult({"StackResourceDrifts": drifts})

    CloudFormationResponse.detect_stack_drift = detect_stack_drift  # type: ignore[attr-defined]
    CloudFormationResponse.describe_stack_drift_detection_status = (  # type: ignore[attr-defined]
        describe_stack_drift_detection_status)
    CloudFormationResponse.describe_stack_resource_drifts = describe_stack_resource_drifts  # type: ignore[attr-defined]


# --- CloudFormation resource import ------------------------------------------------


def _bucket_exists(account_id: str, name: str) -> bool:
    return name in s3_backends[account_id]["aws"].buckets


def _distribution_exists(account_id: str, distribution_id: str) -> bool:
    return distribution_id in cloudfront_backends[account_id]["aws"].distributions


# resource type -> (the property ResourceIdentifier names it by, does it exist?)
_IMPORTABLE: dict[str, tuple[str, Callable[[str, str], bool]]] = {
    "AWS::S3::Bucket": ("BucketName", _bucket_exists),
    "AWS::CloudFront::Distribution": ("Id", _distribution_exists),
}


class _ImportedResource:
    """A resource a stack adopted by import: the stack declares it, CloudFormation did not make it."""

    def __init__(self, logical_id: str, physical_id: str, resource_type: str) -> None:
        self.logical_resource_id = logical_id
        self.physical_resource_id = physical_id
        self.cf_resource_type = resource_type


def _add_resource_import() -> None:
    """moto takes ChangeSetType=IMPORT for a new stack whose template it then creates, and knows
    no AWS::CloudFront::Distribution, so no stack can declare a site that was built by hand.

    AWS imports existing resources into an existing stack: ResourcesToImport names each by its
    identifier, the template declares each (with a DeletionPolicy) beside the stack's present
    resources, and executing the change set adds them to the stack without creating anything
    (IMPORT_COMPLETE).  Here for S3 buckets and CloudFront distributions.
    """
    original_create = CloudFormationResponse.create_change_set
    original_execute = CloudFormationResponse.execute_change_set

    def create_change_set(self: CloudFormationResponse) -> ActionResult:
        if self._get_param("ChangeSetType") != "IMPORT":
            return original_create(self)
        backend = self.cloudformation_backend
        stack = backend.get_stack(self._get_param("StackName"))
        change_set_id, stack_id = backend.create_change_set(  # parses the template, JSON or YAML
            stack_name=stack.name, change_set_name=self._get_param("ChangeSetName"),
            template=self._get_param("TemplateBody"), parameters={},
            description=self._get_param("Description"), change_set_type="UPDATE")
        change_set = backend.change_sets.pop(change_set_id)
        declared = change_set.template_dict.get("Resources") or {}
        imported = []
        for item in self._get_param("ResourcesToImport", []):
            logical, kind = item["LogicalResourceId"], item["ResourceType"]
            if kind not in _IMPORTABLE:
                raise ValidationError(message=f"ResourceType {kind} does not support import here")
            key, exists = _IMPORTABLE[kind]
            physical = (item.get("ResourceIdentifier") or {}).get(key, "")
            if (declared.get(logical) or {}).get("Type") != kind:
                raise ValidationError(message=f"Resource {logical} of type {kind} is not in the template")
            if not declared[logical].get("DeletionPolicy"):
                raise ValidationError(message=f"The following resources to import [{logical}] must have "
                                              "DeletionPolicy attribute specified in the template.")
            if not exists(backend.account_id, physical):
                raise ValidationError(message=f"Resources [{logical}] to import do not exist: {key}={physical}")
            imported.append((logical, physical, kind))
        change_set.change_set_type = "IMPORT"
        backend.change_sets[change_set_id] = change_set
        backend.__dict__.setdefault("motoext_imports", {})[change_set_id] = imported
        return ActionResult({"Id": change_set_id, "StackId": stack_id})

    def execute_change_set(self: CloudFormationResponse) -> Any:
        backend = self.cloudformation_backend
        change_set = backend.describe_change_set(self._get_param("ChangeSetName"))
        imports = backend.__dict__.get("motoext_imports", {})
        if change_set.change_set_id not in imports:
            return original_execute(self)
        stack = backend.get_stack(change_set.stack_id)
        resources = stack.resource_map
        for logical, physical, kind in imports.pop(change_set.change_set_id):
            resources._resource_json_map[logical] = change_set.template_dict["Resources"][logical]
            resources._parsed_resources[logical] = _ImportedResource(logical, physical, kind)
        stack.template = change_set.template
        stack.template_dict = change_set.template_dict
        stack.status = "IMPORT_COMPLETE"
        stack._add_stack_event("IMPORT_COMPLETE")
        change_set.execution_status = "EXECUTE_COMPLETE"
        return EmptyResult()

    CloudFormationResponse.create_change_set = create_change_set  # type: ignore[method-assign]
    CloudFormationResponse.execute_change_set = execute_change_set  # type: ignore[method-assign]


# --- IAM enforcement (settings.INITIAL_NO_AUTH_ACTION_COUNT) ---------------------


class _RestXmlError(_RESTError):
    """An error in the REST-XML protocol's shape: <ErrorResponse><Error>...</Error>."""

    def __init__(self, error: _RESTError) -> None:
        super().__init__(error.error_type, error.message)
        self.code = error.code
        self.description = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse><Error><Type>Sender</Type>'
            f"<Code>{error.error_type}</Code><Message>{error.message}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        )


# Signing names whose IAM actions have another prefix.
_IAM_PREFIXES = {"monitoring": "cloudwatch"}


@functools.lru_cache(maxsize=None)
def _protocol(service_name: str) -> str:
    try:
        return botocore.session.get_session().get_service_model(service_name).protocol
    except Exception:  # a name botocore does not know: leave moto's answer as it is
        return ""


def _authorization_as_aws_does_it() -> None:
    """moto's IAM enforcement signs a request without a body over its parsed parameters (for
    CloudFront: the headers), so every CloudFront GET fails with SignatureDoesNotMatch; and it
    answers every refusal in the query protocol's XML, which botocore cannot read for JSON and
    REST-XML services (no error code, the XML as the message).

    AWS signs the empty payload, and answers in the service's own protocol: e.g.
    AccessDeniedException in JSON, <ErrorResponse><Error> in REST-XML.  moto also names the
    action it checks after the signing name ("monitoring:GetMetricData"); the IAM action is
    cloudwatch:GetMetricData, and every read of AWS Budgets is budgets:ViewBudget.
    """

    def rename(request: IAMRequestBase, *_: Any, **__: Any) -> None:
        service, _, operation = request._action.partition(":")
        if service == "budgets" and operation.startswith("Describe"):
            request._action = "budgets:ViewBudget"
        else:
            request._action = f"{_IAM_PREFIXES.get(service, service)}:{operation}"

    _after_init(IAMRequestBase, rename)

    original_create = IAMRequestBase._create_aws_request

    def create_aws_request(self: IAMRequestBase) -> Any:
        request = original_create(self)
        if self._method in ("GET", "HEAD", "DELETE") and not self._body:
            request.data = b""
        return request

    IAMRequestBase._create_aws_request = create_aws_request  # type: ignore[method-assign]

    original_authorize = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action

    def authorize(self: Any, resource: str = "*") -> None:
        try:
            original_authorize(self, resource)
        except _RESTError as error:
            protocol = _protocol(getattr(self, "service_name", "") or "")
            if protocol in ("json", "rest-json"):
                converted = error.to_json()
                if converted.error_type == "AccessDenied":
                    converted = JsonRESTError("AccessDeniedException", error.message)
                    converted.code = error.code
                raise converted from None
            if protocol == "rest-xml":
                raise _RestXmlError(error) from None
            raise

    ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = authorize  # type: ignore[method-assign]
