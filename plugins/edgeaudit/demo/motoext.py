"""Fill moto 5.2.5's gaps so the demo environment answers like AWS.

The demo environment and our tests run the controls against moto (a
``ThreadedMotoServer`` or ``mock_aws``) instead of a real account.  Out of the
box moto 5.2.5 drops or misreports several fields the controls read, has no
CloudFront cache policy or response headers policy API at all, and lets a
bucket policy's ``Condition`` block the bucket owner's own reads.  A control
would then pass or fail for moto's reasons rather than the site's.

``install()`` patches moto's models and response handlers in this process.
Nothing here touches boto3: botocore still validates every request and parses
every response into the documented shapes.  Call ``install()`` before the
first CloudFront request reaches the server (in practice: before starting
``ThreadedMotoServer``), since moto builds its URL routes on that request.

moto has no API to move a distribution or an invalidation between states, so
``set_distribution_status()`` and ``set_invalidation_status()`` change the
in-process backend directly (the threaded server shares it).
"""

from __future__ import annotations

import copy
import functools
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from moto.cloudfront import urls as cloudfront_urls
from moto.cloudfront.exceptions import CloudFrontException
from moto.cloudfront.models import (
    CloudFrontBackend,
    DefaultCacheBehaviour,
    Distribution,
    Invalidation,
    Origin,
    ViewerCertificate,
    cloudfront_backends,
    random_id,
)
from moto.cloudfront.responses import CloudFrontResponse
from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import camelcase_to_underscores, utcnow
from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.moto_api import state_manager
from moto.moto_api._internal.managed_state_model import ManagedState
from moto.s3.models import FakeBucket

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
    _track_distribution_status_and_time()
    _report_invalidations_as_aws_does()
    _add_policy_api("CachePolicy", "cache-policy")
    _add_policy_api("ResponseHeadersPolicy", "response-headers-policy")
    _skip_bucket_policy_statements_moto_cannot_evaluate()
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
) -> None:
    """Set an invalidation's Status ("InProgress" or "Completed")."""
    if status not in _INVALIDATION_STATUSES:
        raise ValueError(f"status must be one of {_INVALIDATION_STATUSES}, not {status!r}")
    _distribution(distribution_id, account_id)
    backend = cloudfront_backends[account_id]["aws"]
    for invalidation in backend.invalidations.get(distribution_id, []):
        if invalidation.id == invalidation_id:
            invalidation.status = status
            return
    raise KeyError(f"no invalidation {invalidation_id} on distribution {distribution_id}")


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
    """One account's CachePolicy or ResponseHeadersPolicy objects, managed ones included."""

    def __init__(self, kind: str, managed: dict[str, dict[str, Any]]) -> None:
        self.kind = kind
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
            for policy in self.policies.values()
            if policy_type is None or policy.managed == (policy_type == "managed")
        ]

    def create(self, config: dict[str, Any]) -> _Policy:
        self._check_name_is_free(config["Name"], policy_id=None)
        policy = _Policy(config)
        self.policies[policy.id] = policy
        return policy

    def update(self, policy_id: str, config: dict[str, Any], if_match: str | None) -> _Policy:
        policy = self._changeable(policy_id, if_match, "IllegalUpdate")
        self._check_name_is_free(config["Name"], policy_id)
        policy.config = config
        policy.etag = random_id()
        policy.last_modified_time = utcnow()
        return policy

    def delete(self, policy_id: str, if_match: str | None, in_use: bool) -> None:
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
