"""Round trips through boto3 against a patched ThreadedMotoServer.

Each test covers one gap edgeaudit.demo.motoext fills in moto 5.2.5, and
asserts the fields come back exactly as AWS would report them.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from edgeaudit.demo import motoext

ACM_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
DISTRIBUTION_ARN = "arn:aws:cloudfront::123456789012:distribution/EDFDVBD6EXAMPLE"
SECURITY_HEADERS_POLICY_ID = "67f7725c-6f97-4210-82d7-5512b31e9d03"
CACHING_OPTIMIZED_ID = "658327ea-f89d-4fab-a63d-7e88639e58f6"
CACHING_DISABLED_ID = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
CORS_S3_ORIGIN_REQUEST_POLICY_ID = "88a5eaf4-2fd4-4709-b370-b4c650ea3fcf"

ClientFactory = Callable[..., Any]
_unique = itertools.count()


@pytest.fixture(scope="module")
def client() -> Iterator[ClientFactory]:
    """Yield a boto3 client factory bound to a patched moto server on a free port."""
    motoext.install()
    motoext.install()  # idempotent: a second call must change nothing
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()

    def make(service: str, **kwargs: Any) -> Any:
        return boto3.client(
            service,
            endpoint_url=f"http://{host}:{port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            **kwargs,
        )

    yield make
    server.stop()


@pytest.fixture(scope="module")
def cloudfront(client: ClientFactory) -> Any:
    """A CloudFront client on the patched server."""
    return client("cloudfront")


@pytest.fixture(scope="module")
def s3(client: ClientFactory) -> Any:
    """An S3 client signing as the bucket owner."""
    return client("s3")


def _name(prefix: str) -> str:
    return f"{prefix}-{next(_unique)}"


def _behaviour(**fields: Any) -> dict[str, Any]:
    return {
        "TargetOriginId": "site",
        "ViewerProtocolPolicy": "redirect-to-https",
        "AllowedMethods": {
            "Quantity": 3,
            "Items": ["GET", "HEAD", "OPTIONS"],
            "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]},
        },
        "Compress": True,
        "CachePolicyId": CACHING_OPTIMIZED_ID,
        **fields,
    }


def _distribution_config(origin: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "CallerReference": _name("ref"),
        "Comment": "motoext test",
        "Enabled": True,
        "Origins": {
            "Quantity": 1,
            "Items": [
                origin
                or {
                    "Id": "site",
                    "DomainName": "site.s3.us-east-1.amazonaws.com",
                    "S3OriginConfig": {"OriginAccessIdentity": ""},
                }
            ],
        },
        "DefaultCacheBehavior": _behaviour(),
        **fields,
    }


def _oac_origin(cloudfront: Any) -> dict[str, Any]:
    oac = cloudfront.create_origin_access_control(
        OriginAccessControlConfig={
            "Name": _name("oac"),
            "SigningProtocol": "sigv4",
            "SigningBehavior": "always",
            "OriginAccessControlOriginType": "s3",
        }
    )["OriginAccessControl"]
    return {
        "Id": "site",
        "DomainName": "site.s3.us-east-1.amazonaws.com",
        "OriginAccessControlId": oac["Id"],
        "S3OriginConfig": {"OriginAccessIdentity": ""},
    }


def _subset(returned: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The fields of returned that were given, for an exact comparison."""
    return {key: returned.get(key) for key in given}


def _listed(cloudfront: Any, distribution_id: str) -> dict[str, Any]:
    """The distribution as ListDistributions shows it (every page: moto's state is per process,
    and a demo environment in the same worker holds distributions of its own)."""
    pages = cloudfront.get_paginator("list_distributions").paginate()
    items = [item for page in pages for item in page["DistributionList"].get("Items", [])]
    return next(item for item in items if item["Id"] == distribution_id)


def test_s3_origin_keeps_origin_access_control(cloudfront: Any) -> None:
    """The OAC id and the (empty) OAI are what the origin-access controls read."""
    origin = _oac_origin(cloudfront)
    created = cloudfront.create_distribution(DistributionConfig=_distribution_config(origin))
    distribution_id = created["Distribution"]["Id"]

    fetched = cloudfront.get_distribution(Id=distribution_id)["Distribution"]["DistributionConfig"]
    config_response = cloudfront.get_distribution_config(Id=distribution_id)
    updated = cloudfront.update_distribution(
        Id=distribution_id,
        IfMatch=config_response["ETag"],
        DistributionConfig=config_response["DistributionConfig"],
    )["Distribution"]["DistributionConfig"]
    listed = _listed(cloudfront, distribution_id)

    for config in (
        created["Distribution"]["DistributionConfig"],
        fetched,
        config_response["DistributionConfig"],
        updated,
        listed,
    ):
        returned = config["Origins"]["Items"][0]
        assert returned["OriginAccessControlId"] == origin["OriginAccessControlId"]
        assert returned["S3OriginConfig"] == {"OriginAccessIdentity": ""}


@pytest.mark.parametrize(
    ("certificate", "source"),
    [
        ({"ACMCertificateArn": ACM_ARN}, "acm"),
        ({"IAMCertificateId": "ASCAEXAMPLEIAMCERTID1"}, "iam"),
    ],
)
def test_custom_certificate_is_not_reported_as_default(
    cloudfront: Any, certificate: dict[str, str], source: str
) -> None:
    """moto said CloudFrontDefaultCertificate=True even with a custom certificate."""
    given = {
        **certificate,
        "SSLSupportMethod": "sni-only",
        "MinimumProtocolVersion": "TLSv1.2_2021",
    }
    created = cloudfront.create_distribution(
        DistributionConfig=_distribution_config(
            Aliases={"Quantity": 1, "Items": [f"{_name('www')}.example.com"]},
            ViewerCertificate=given,
        )
    )
    distribution_id = created["Distribution"]["Id"]
    fetched = cloudfront.get_distribution_config(Id=distribution_id)["DistributionConfig"]

    for config in (
        created["Distribution"]["DistributionConfig"],
        fetched,
        _listed(cloudfront, distribution_id),
    ):
        assert config["ViewerCertificate"] == {
            **given,
            "CloudFrontDefaultCertificate": False,
            "Certificate": next(iter(certificate.values())),
            "CertificateSource": source,
        }


def test_cache_behaviours_keep_every_field(cloudfront: Any) -> None:
    """Policy ids, protocol policy, methods, Compress and path patterns round-trip as given."""
    function_associations = {
        "Quantity": 1,
        "Items": [
            {
                "FunctionARN": "arn:aws:cloudfront::123456789012:function/rewrite",
                "EventType": "viewer-request",
            }
        ],
    }
    default = _behaviour(
        Compress=False,
        ResponseHeadersPolicyId=SECURITY_HEADERS_POLICY_ID,
        OriginRequestPolicyId=CORS_S3_ORIGIN_REQUEST_POLICY_ID,
        FunctionAssociations=function_associations,
    )
    assets = _behaviour(
        PathPattern="/assets/*",
        ViewerProtocolPolicy="https-only",
        CachePolicyId=CACHING_DISABLED_ID,
        ResponseHeadersPolicyId=SECURITY_HEADERS_POLICY_ID,
        OriginRequestPolicyId=CORS_S3_ORIGIN_REQUEST_POLICY_ID,
        AllowedMethods={
            "Quantity": 2,
            "Items": ["GET", "HEAD"],
            "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]},
        },
    )
    uncompressed = _behaviour(PathPattern="/raw/*")
    del uncompressed["Compress"]
    created = cloudfront.create_distribution(
        DistributionConfig=_distribution_config(
            DefaultCacheBehavior=default,
            CacheBehaviors={"Quantity": 2, "Items": [assets, uncompressed]},
        )
    )
    fetched = cloudfront.get_distribution_config(Id=created["Distribution"]["Id"])[
        "DistributionConfig"
    ]

    for config in (created["Distribution"]["DistributionConfig"], fetched):
        assert _subset(config["DefaultCacheBehavior"], default) == default
        first, second = config["CacheBehaviors"]["Items"]
        assert _subset(first, assets) == assets
        assert second["PathPattern"] == "/raw/*"
        assert second["Compress"] is False  # AWS's default when omitted


def _failover_config(**fields: Any) -> dict[str, Any]:
    """Two S3 origins, the second a replica, and an origin group failing over between them."""
    replica = {
        "Id": "replica",
        "DomainName": "replica.s3.eu-central-1.amazonaws.com",
        "S3OriginConfig": {"OriginAccessIdentity": ""},
    }
    config = _distribution_config(**fields)
    config["Origins"] = {"Quantity": 2, "Items": [*config["Origins"]["Items"], replica]}
    config["OriginGroups"] = {
        "Quantity": 1,
        "Items": [
            {
                "Id": "failover",
                "FailoverCriteria": {"StatusCodes": {"Quantity": 4, "Items": [500, 502, 503, 504]}},
                "Members": {"Quantity": 2, "Items": [{"OriginId": "site"}, {"OriginId": "replica"}]},
            }
        ],
    }
    return config


def test_cache_behaviours_may_target_an_origin_group(cloudfront: Any) -> None:
    """Every behaviour, the default included, may name an origin group; responses name the
    group, on create, read and update alike."""
    config = _failover_config(
        DefaultCacheBehavior=_behaviour(TargetOriginId="failover"),
        CacheBehaviors={"Quantity": 1, "Items": [_behaviour(PathPattern="/assets/*", TargetOriginId="failover")]},
    )
    created = cloudfront.create_distribution(DistributionConfig=config)
    distribution_id = created["Distribution"]["Id"]
    fetched = cloudfront.get_distribution_config(Id=distribution_id)
    for returned in (created["Distribution"]["DistributionConfig"], fetched["DistributionConfig"]):
        assert returned["DefaultCacheBehavior"]["TargetOriginId"] == "failover"
        assert returned["CacheBehaviors"]["Items"][0]["TargetOriginId"] == "failover"
        assert returned["OriginGroups"] == config["OriginGroups"]

    back = {**fetched["DistributionConfig"], "DefaultCacheBehavior": _behaviour(TargetOriginId="site")}
    updated = cloudfront.update_distribution(Id=distribution_id, IfMatch=fetched["ETag"], DistributionConfig=back)
    assert updated["Distribution"]["DistributionConfig"]["DefaultCacheBehavior"]["TargetOriginId"] == "site"
    again = cloudfront.get_distribution_config(Id=distribution_id)
    to_group = {**again["DistributionConfig"], "DefaultCacheBehavior": _behaviour(TargetOriginId="failover")}
    cloudfront.update_distribution(Id=distribution_id, IfMatch=again["ETag"], DistributionConfig=to_group)
    final = cloudfront.get_distribution_config(Id=distribution_id)["DistributionConfig"]
    assert final["DefaultCacheBehavior"]["TargetOriginId"] == "failover"


@pytest.mark.parametrize(
    "fields",
    [
        {"DefaultCacheBehavior": _behaviour(TargetOriginId="nowhere")},
        {"CacheBehaviors": {"Quantity": 1, "Items": [_behaviour(PathPattern="/a/*", TargetOriginId="nowhere")]}},
    ],
    ids=["default", "path-pattern"],
)
def test_a_behaviour_naming_no_origin_or_group_is_refused(cloudfront: Any, fields: dict[str, Any]) -> None:
    """AWS answers NoSuchOrigin for any behaviour whose target is neither; moto checked only the default."""
    with pytest.raises(ClientError) as refused:
        cloudfront.create_distribution(DistributionConfig=_failover_config(**fields))
    assert refused.value.response["Error"]["Code"] == "NoSuchOrigin"


def test_an_origin_group_naming_a_missing_origin_is_refused(cloudfront: Any) -> None:
    config = _failover_config()
    config["OriginGroups"]["Items"][0]["Members"]["Items"][1] = {"OriginId": "gone"}
    with pytest.raises(ClientError) as refused:
        cloudfront.create_distribution(DistributionConfig=config)
    assert refused.value.response["Error"]["Code"] == "NoSuchOrigin"


def test_response_headers_policies(cloudfront: Any) -> None:
    """Managed policies exist from the start; custom ones go through the full lifecycle."""
    managed = cloudfront.get_response_headers_policy(Id=SECURITY_HEADERS_POLICY_ID)[
        "ResponseHeadersPolicy"
    ]
    assert managed["ResponseHeadersPolicyConfig"]["Name"] == "Managed-SecurityHeadersPolicy"
    assert managed["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"] == {
        "StrictTransportSecurity": {
            "Override": False,
            "IncludeSubdomains": False,
            "Preload": False,
            "AccessControlMaxAgeSec": 31536000,
        },
        "ContentTypeOptions": {"Override": True},
        "FrameOptions": {"Override": False, "FrameOption": "SAMEORIGIN"},
        "ReferrerPolicy": {"Override": False, "ReferrerPolicy": "strict-origin-when-cross-origin"},
        "XSSProtection": {"Override": False, "Protection": True, "ModeBlock": True},
    }
    managed_list = cloudfront.list_response_headers_policies(Type="managed")[
        "ResponseHeadersPolicyList"
    ]
    assert {
        item["ResponseHeadersPolicy"]["Id"]: item["ResponseHeadersPolicy"][
            "ResponseHeadersPolicyConfig"
        ]["Name"]
        for item in managed_list["Items"]
    } == {
        "67f7725c-6f97-4210-82d7-5512b31e9d03": "Managed-SecurityHeadersPolicy",
        "5cc3b908-e619-4b99-88e5-2cf7f45965bd": "Managed-CORS-With-Preflight",
        "e61eb60c-9c35-4d20-a928-2b84e02af89c": "Managed-CORS-and-SecurityHeadersPolicy",
        "60669652-455b-4ae9-85a4-c4c02393f86c": "Managed-SimpleCORS",
        "eaab4381-ed33-4a86-88ca-d9558dc6cd63": "Managed-CORS-with-preflight-and-SecurityHeadersPolicy",
    }
    assert {item["Type"] for item in managed_list["Items"]} == {"managed"}

    config = {
        "Name": _name("site-headers"),
        "Comment": "strict",
        "SecurityHeadersConfig": {
            "StrictTransportSecurity": {
                "Override": True,
                "IncludeSubdomains": True,
                "Preload": True,
                "AccessControlMaxAgeSec": 63072000,
            },
            "ContentSecurityPolicy": {
                "Override": True,
                "ContentSecurityPolicy": "default-src 'self'",
            },
        },
        "CustomHeadersConfig": {
            "Quantity": 1,
            "Items": [{"Header": "X-Demo", "Value": "1", "Override": False}],
        },
    }
    created = cloudfront.create_response_headers_policy(ResponseHeadersPolicyConfig=config)
    policy_id = created["ResponseHeadersPolicy"]["Id"]
    assert created["ResponseHeadersPolicy"]["ResponseHeadersPolicyConfig"] == config
    assert (
        cloudfront.get_response_headers_policy_config(Id=policy_id)["ResponseHeadersPolicyConfig"]
        == config
    )
    custom_ids = [
        item["ResponseHeadersPolicy"]["Id"]
        for item in cloudfront.list_response_headers_policies(Type="custom")[
            "ResponseHeadersPolicyList"
        ]["Items"]
    ]
    assert policy_id in custom_ids
    assert SECURITY_HEADERS_POLICY_ID not in custom_ids

    changed = {**config, "Comment": "stricter"}
    updated = cloudfront.update_response_headers_policy(
        Id=policy_id, IfMatch=created["ETag"], ResponseHeadersPolicyConfig=changed
    )
    assert updated["ResponseHeadersPolicy"]["ResponseHeadersPolicyConfig"]["Comment"] == "stricter"
    assert updated["ETag"] != created["ETag"]
    got = cloudfront.get_response_headers_policy(Id=policy_id)
    assert got["ResponseHeadersPolicy"]["ResponseHeadersPolicyConfig"] == changed

    with pytest.raises(ClientError, match="PreconditionFailed"):
        cloudfront.delete_response_headers_policy(Id=policy_id, IfMatch=created["ETag"])
    with pytest.raises(ClientError, match="IllegalDelete"):
        cloudfront.delete_response_headers_policy(Id=SECURITY_HEADERS_POLICY_ID, IfMatch="any")
    cloudfront.delete_response_headers_policy(Id=policy_id, IfMatch=updated["ETag"])
    with pytest.raises(ClientError, match="NoSuchResponseHeadersPolicy"):
        cloudfront.get_response_headers_policy(Id=policy_id)


def test_cache_policies(cloudfront: Any) -> None:
    """Managed cache policies carry AWS's documented TTLs and cache keys; custom ones round-trip."""
    optimized = cloudfront.get_cache_policy(Id=CACHING_OPTIMIZED_ID)["CachePolicy"][
        "CachePolicyConfig"
    ]
    assert optimized == {
        "Name": "Managed-CachingOptimized",
        "MinTTL": 1,
        "DefaultTTL": 86400,
        "MaxTTL": 31536000,
        "ParametersInCacheKeyAndForwardedToOrigin": {
            "EnableAcceptEncodingGzip": True,
            "EnableAcceptEncodingBrotli": True,
            "HeadersConfig": {"HeaderBehavior": "none"},
            "CookiesConfig": {"CookieBehavior": "none"},
            "QueryStringsConfig": {"QueryStringBehavior": "none"},
        },
    }
    disabled = cloudfront.get_cache_policy_config(Id=CACHING_DISABLED_ID)["CachePolicyConfig"]
    assert (disabled["MinTTL"], disabled["DefaultTTL"], disabled["MaxTTL"]) == (0, 0, 0)
    assert disabled["ParametersInCacheKeyAndForwardedToOrigin"]["EnableAcceptEncodingGzip"] is False
    managed = cloudfront.list_cache_policies(Type="managed")["CachePolicyList"]["Items"]
    assert {
        item["CachePolicy"]["Id"]: item["CachePolicy"]["CachePolicyConfig"]["Name"]
        for item in managed
    } == {
        "658327ea-f89d-4fab-a63d-7e88639e58f6": "Managed-CachingOptimized",
        "4135ea2d-6df8-44a3-9df3-4b5a84be39ad": "Managed-CachingDisabled",
        "b2884449-e4de-46a7-ac36-70bc7f1ddd6d": "Managed-CachingOptimizedForUncompressedObjects",
        "83da9c7e-98b4-4e11-a168-04f0df8e2c65": "UseOriginCacheControlHeaders",
        "4cc15a8a-d715-48a4-82b8-cc0b614638fe": "UseOriginCacheControlHeaders-QueryStrings",
    }
    query_strings = next(
        item["CachePolicy"]["CachePolicyConfig"]
        for item in managed
        if item["CachePolicy"]["Id"] == "4cc15a8a-d715-48a4-82b8-cc0b614638fe"
    )
    parameters = query_strings["ParametersInCacheKeyAndForwardedToOrigin"]
    ttls = (query_strings["MinTTL"], query_strings["DefaultTTL"], query_strings["MaxTTL"])
    assert ttls == (0, 0, 31536000)
    assert parameters["HeadersConfig"]["Headers"]["Items"] == [
        "Host",
        "Origin",
        "X-HTTP-Method-Override",
        "X-HTTP-Method",
        "X-Method-Override",
    ]
    assert parameters["CookiesConfig"] == {"CookieBehavior": "all"}
    assert parameters["QueryStringsConfig"] == {"QueryStringBehavior": "all"}

    config = {
        "Name": _name("site-cache"),
        "MinTTL": 0,
        "DefaultTTL": 3600,
        "MaxTTL": 86400,
        "ParametersInCacheKeyAndForwardedToOrigin": {
            "EnableAcceptEncodingGzip": True,
            "EnableAcceptEncodingBrotli": False,
            "HeadersConfig": {"HeaderBehavior": "none"},
            "CookiesConfig": {"CookieBehavior": "none"},
            "QueryStringsConfig": {
                "QueryStringBehavior": "whitelist",
                "QueryStrings": {"Quantity": 1, "Items": ["v"]},
            },
        },
    }
    created = cloudfront.create_cache_policy(CachePolicyConfig=config)
    policy_id = created["CachePolicy"]["Id"]
    assert created["CachePolicy"]["CachePolicyConfig"] == config
    assert cloudfront.get_cache_policy_config(Id=policy_id)["CachePolicyConfig"] == config
    custom = cloudfront.list_cache_policies(Type="custom")["CachePolicyList"]["Items"]
    assert [item["Type"] for item in custom if item["CachePolicy"]["Id"] == policy_id] == ["custom"]
    assert CACHING_OPTIMIZED_ID not in {item["CachePolicy"]["Id"] for item in custom}
    with pytest.raises(ClientError, match="CachePolicyAlreadyExists"):
        cloudfront.create_cache_policy(CachePolicyConfig=config)

    cloudfront.delete_cache_policy(Id=policy_id, IfMatch=created["ETag"])
    with pytest.raises(ClientError, match="NoSuchCachePolicy"):
        cloudfront.get_cache_policy(Id=policy_id)


def test_conditioned_bucket_policy_does_not_block_the_owner(s3: Any, client: ClientFactory) -> None:
    """The usual OAC bucket policy must let the owner work and still keep anonymous callers out."""
    bucket = _name("site-bucket")
    s3.create_bucket(Bucket=bucket)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowCloudFrontServicePrincipal",
                "Effect": "Allow",
                "Principal": {"Service": "cloudfront.amazonaws.com"},
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
                "Condition": {"StringEquals": {"AWS:SourceArn": DISTRIBUTION_ARN}},
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))

    s3.put_object(Bucket=bucket, Key="index.html", Body=b"<h1>hi</h1>")
    s3.put_object(Bucket=bucket, Key="index.html", Body=b"<h1>hello</h1>")
    assert s3.get_object(Bucket=bucket, Key="index.html")["Body"].read() == b"<h1>hello</h1>"
    assert s3.head_object(Bucket=bucket, Key="index.html")["ContentLength"] == len(
        b"<h1>hello</h1>"
    )
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["index.html"]
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == policy

    anonymous = client("s3", config=Config(signature_version=UNSIGNED))
    with pytest.raises(ClientError, match="403"):
        anonymous.get_object(Bucket=bucket, Key="index.html")


def test_unconditioned_deny_is_still_enforced(s3: Any) -> None:
    """The patch only skips what moto cannot evaluate; a plain Deny for everyone still bites."""
    bucket = _name("locked-bucket")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="secret.txt", Body=b"x")
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": f"arn:aws:s3:::{bucket}/*",
                    }
                ],
            }
        ),
    )
    with pytest.raises(ClientError, match="403"):
        s3.get_object(Bucket=bucket, Key="secret.txt")


def test_distribution_and_invalidation_status(cloudfront: Any) -> None:
    """New distributions are Deployed; tests can pin Status, LastModifiedTime and invalidations."""
    before = datetime.now(UTC).replace(microsecond=0)
    created = cloudfront.create_distribution(DistributionConfig=_distribution_config())[
        "Distribution"
    ]
    distribution_id = created["Id"]
    assert created["Status"] == "Deployed"
    assert created["LastModifiedTime"] >= before

    last_modified = datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
    motoext.set_distribution_status(distribution_id, "InProgress", last_modified)
    for _ in range(2):  # reads must not move a pinned status on
        fetched = cloudfront.get_distribution(Id=distribution_id)["Distribution"]
        assert (fetched["Status"], fetched["LastModifiedTime"]) == ("InProgress", last_modified)
    listed = _listed(cloudfront, distribution_id)
    assert (listed["Status"], listed["LastModifiedTime"]) == ("InProgress", last_modified)

    motoext.set_distribution_status(distribution_id, "Deployed")
    fetched = cloudfront.get_distribution(Id=distribution_id)["Distribution"]
    assert (fetched["Status"], fetched["LastModifiedTime"]) == ("Deployed", last_modified)

    invalidation = cloudfront.create_invalidation(
        DistributionId=distribution_id,
        InvalidationBatch={
            "Paths": {"Quantity": 1, "Items": ["/*"]},
            "CallerReference": _name("inv"),
        },
    )["Invalidation"]
    assert invalidation["Status"] == "Completed"
    motoext.set_invalidation_status(distribution_id, invalidation["Id"], "InProgress")
    got = cloudfront.get_invalidation(DistributionId=distribution_id, Id=invalidation["Id"])[
        "Invalidation"
    ]
    assert got["Status"] == "InProgress"
    summaries = cloudfront.list_invalidations(DistributionId=distribution_id)["InvalidationList"][
        "Items"
    ]
    assert [summary["Status"] for summary in summaries] == ["InProgress"]

    with pytest.raises(ValueError):
        motoext.set_distribution_status(distribution_id, "Done")


def test_invalidation_create_time_can_be_backdated(cloudfront: Any) -> None:
    """A stuck invalidation is an old one: CreateTime comes back as pinned, in both reads."""
    distribution_id = cloudfront.create_distribution(DistributionConfig=_distribution_config())[
        "Distribution"
    ]["Id"]
    invalidation_id = cloudfront.create_invalidation(
        DistributionId=distribution_id,
        InvalidationBatch={"Paths": {"Quantity": 1, "Items": ["/index.html"]}, "CallerReference": _name("inv")},
    )["Invalidation"]["Id"]
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    motoext.set_invalidation_status(distribution_id, invalidation_id, "InProgress", create_time=created)
    got = cloudfront.get_invalidation(DistributionId=distribution_id, Id=invalidation_id)["Invalidation"]
    assert (got["Status"], got["CreateTime"]) == ("InProgress", created)
    assert got["InvalidationBatch"]["Paths"] == {"Quantity": 1, "Items": ["/index.html"]}
    [summary] = cloudfront.list_invalidations(DistributionId=distribution_id)["InvalidationList"]["Items"]
    assert (summary["Id"], summary["Status"], summary["CreateTime"]) == (invalidation_id, "InProgress", created)


def test_acm_certificate_validation_and_renewal(client: ClientFactory) -> None:
    """Requested certificates keep their validation method; pinned statuses and renewal
    summaries come back as AWS reports them."""
    acm = client("acm")
    dns = acm.request_certificate(DomainName="www.example.com", ValidationMethod="DNS",
                                  SubjectAlternativeNames=["www.example.com", "example.com"])["CertificateArn"]
    pending = acm.describe_certificate(CertificateArn=dns)["Certificate"]
    assert (pending["Status"], pending["RenewalEligibility"]) == ("PENDING_VALIDATION", "INELIGIBLE")
    assert "RenewalSummary" not in pending

    motoext.set_certificate_status(dns, "ISSUED")
    issued = acm.describe_certificate(CertificateArn=dns)["Certificate"]
    assert (issued["Status"], issued["Type"], issued["RenewalEligibility"]) == ("ISSUED", "AMAZON_ISSUED", "ELIGIBLE")
    options = issued["DomainValidationOptions"]
    assert {(o["DomainName"], o["ValidationMethod"], o["ValidationStatus"]) for o in options} == {
        ("www.example.com", "DNS", "SUCCESS"), ("example.com", "DNS", "SUCCESS")}
    assert all(o["ResourceRecord"]["Type"] == "CNAME" for o in issued["DomainValidationOptions"])

    motoext.set_certificate_status(dns, "ISSUED", renewal_status="FAILED", renewal_reason="CAA_ERROR")
    renewal = acm.describe_certificate(CertificateArn=dns)["Certificate"]["RenewalSummary"]
    assert (renewal["RenewalStatus"], renewal["RenewalStatusReason"]) == ("FAILED", "CAA_ERROR")
    assert isinstance(renewal["UpdatedAt"], datetime) and len(renewal["DomainValidationOptions"]) == 2

    email = acm.request_certificate(DomainName="shop.example.com", ValidationMethod="EMAIL")["CertificateArn"]
    motoext.set_certificate_status(email, "ISSUED")
    [option] = acm.describe_certificate(CertificateArn=email)["Certificate"]["DomainValidationOptions"]
    assert option["ValidationMethod"] == "EMAIL" and "ResourceRecord" not in option
    assert "admin@shop.example.com" in option["ValidationEmails"]

    motoext.set_certificate_status(email, "EXPIRED")
    assert acm.describe_certificate(CertificateArn=email)["Certificate"]["Status"] == "EXPIRED"


def test_access_key_create_date_can_be_backdated(client: ClientFactory) -> None:
    iam = client("iam")
    user = _name("deployer")
    iam.create_user(UserName=user)
    key_id = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    created = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
    motoext.set_access_key_create_date(user, key_id, created)
    [key] = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    assert (key["AccessKeyId"], key["Status"], key["CreateDate"]) == (key_id, "Active", created)
    with pytest.raises(KeyError):
        motoext.set_access_key_create_date(user, "AKIANOSUCHKEY0000000", created)


def test_cost_forecast(client: ClientFactory) -> None:
    """GetCostForecast answers per Filter; an unseeded Filter has no data, as on a new account."""
    ce = client("ce")
    services = {"Dimensions": {"Key": "SERVICE", "Values": ["Amazon CloudFront"]}}
    tagged = {"And": [services, {"Tags": {"Key": "site", "Values": [_name("www")]}}]}
    motoext.set_cost_forecast(tagged, daily_usd=0.5)
    period = {"Start": "2026-11-20", "End": "2026-12-03"}
    monthly = ce.get_cost_forecast(TimePeriod=period, Metric="UNBLENDED_COST", Granularity="MONTHLY", Filter=tagged)
    assert monthly["Total"] == {"Amount": "6.5000000000", "Unit": "USD"}
    assert [(r["TimePeriod"]["Start"], r["TimePeriod"]["End"], float(r["MeanValue"]))
            for r in monthly["ForecastResultsByTime"]] == [("2026-11-20", "2026-12-01", 5.5),
                                                            ("2026-12-01", "2026-12-03", 1.0)]
    daily = ce.get_cost_forecast(TimePeriod=period, Metric="UNBLENDED_COST", Granularity="DAILY", Filter=tagged)
    assert len(daily["ForecastResultsByTime"]) == 13
    with pytest.raises(ClientError, match="DataUnavailableException"):
        ce.get_cost_forecast(TimePeriod=period, Metric="UNBLENDED_COST", Granularity="MONTHLY", Filter=services)


def test_anonymous_listing_needs_a_public_grant(s3: Any, client: ClientFactory) -> None:
    """An unsigned ListObjects is refused (403 AccessDenied) unless the bucket is public."""
    private, public = _name("private-bucket"), _name("public-bucket")
    for bucket in (private, public):
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="index.html", Body=b"hi")
    s3.put_bucket_policy(Bucket=public, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"],
        "Resource": [f"arn:aws:s3:::{public}", f"arn:aws:s3:::{public}/*"]}]}))
    anonymous = client("s3", config=Config(signature_version=UNSIGNED))
    with pytest.raises(ClientError) as refused:
        anonymous.list_objects_v2(Bucket=private)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=private)["Contents"]] == ["index.html"]  # the owner may
    assert [o["Key"] for o in anonymous.list_objects_v2(Bucket=public)["Contents"]] == ["index.html"]
    assert anonymous.get_object(Bucket=public, Key="index.html")["Body"].read() == b"hi"
    s3.put_public_access_block(Bucket=public, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    with pytest.raises(ClientError, match="AccessDenied"):
        anonymous.list_objects_v2(Bucket=public)


def test_iam_enforcement_signs_and_refuses_as_aws_does(client: ClientFactory) -> None:
    """With IAM enforced, a GET without a body verifies, and refusals come in the service's own
    protocol: botocore reads AccessDenied (REST-XML) and AccessDeniedException (JSON)."""
    from moto import settings
    from moto.core.responses import ActionAuthenticatorMixin

    iam = client("iam")
    user = _name("auditor")
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="audit", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": ["cloudfront:ListInvalidations", "ce:GetCostForecast"], "Resource": "*"}]}))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    before = settings.INITIAL_NO_AUTH_ACTION_COUNT
    settings.INITIAL_NO_AUTH_ACTION_COUNT = ActionAuthenticatorMixin.request_count
    try:
        auditor = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
        cloudfront = boto3.client("cloudfront", endpoint_url=client("s3").meta.endpoint_url,
                                  region_name="us-east-1", **auditor)
        assert "DistributionList" in cloudfront.list_distributions()
        with pytest.raises(ClientError) as refused:
            cloudfront.list_invalidations(DistributionId="EDFDVBD6EXAMPLE")
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
        assert "cloudfront:ListInvalidations" in refused.value.response["Error"]["Message"]
        ce = boto3.client("ce", endpoint_url=client("s3").meta.endpoint_url, region_name="us-east-1", **auditor)
        with pytest.raises(ClientError) as refused:
            ce.get_cost_forecast(TimePeriod={"Start": "2026-11-20", "End": "2026-12-01"},
                                 Metric="UNBLENDED_COST", Granularity="MONTHLY")
        assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = before


def test_object_versions_can_be_backdated(s3: Any) -> None:
    bucket = _name("history")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=bucket, Key="index.html", Body=b"release 1")["VersionId"]
    s3.put_object(Bucket=bucket, Key="index.html", Body=b"release 2")
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    motoext.set_object_last_modified(bucket, "index.html", moment, version_id=first)
    motoext.set_object_last_modified(bucket, "index.html", moment + timedelta(days=1))
    versions = {v["VersionId"]: v for v in s3.list_object_versions(Bucket=bucket)["Versions"]}
    assert versions[first]["LastModified"] == moment and not versions[first]["IsLatest"]
    latest = next(v for v in versions.values() if v["IsLatest"])
    assert latest["LastModified"] == moment + timedelta(days=1)
    assert s3.head_object(Bucket=bucket, Key="index.html")["LastModified"] == moment + timedelta(days=1)
    with pytest.raises(KeyError):
        motoext.set_object_last_modified(bucket, "index.html", moment, version_id="no-such-version")


def test_stack_drift_detection(client: ClientFactory) -> None:
    cloudformation = client("cloudformation")
    name = _name("site-stack")
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps({
        "Resources": {"Marker": {"Type": "AWS::SSM::Parameter", "Properties": {
            "Name": f"/{name}/release", "Type": "String", "Value": "3"}}}}))

    def detect() -> dict[str, Any]:
        detection = cloudformation.detect_stack_drift(StackName=name)["StackDriftDetectionId"]
        return cloudformation.describe_stack_drift_detection_status(StackDriftDetectionId=detection)

    status = detect()
    assert (status["DetectionStatus"], status["StackDriftStatus"], status["DriftedStackResourceCount"]) == (
        "DETECTION_COMPLETE", "IN_SYNC", 0)
    assert cloudformation.describe_stack_resource_drifts(StackName=name)["StackResourceDrifts"] == []
    motoext.set_stack_drift(name, [{"LogicalResourceId": "Distribution", "ResourceType": "AWS::CloudFront::Distribution",
                                    "PropertyDifferences": [{"PropertyPath": "/DistributionConfig/PriceClass",
                                                             "ExpectedValue": "PriceClass_100",
                                                             "ActualValue": "PriceClass_All"}]}])
    status = detect()
    assert (status["StackDriftStatus"], status["DriftedStackResourceCount"]) == ("DRIFTED", 1)
    drift = cloudformation.describe_stack_resource_drifts(StackName=name)["StackResourceDrifts"][0]
    assert drift["StackResourceDriftStatus"] == "MODIFIED" and drift["LogicalResourceId"] == "Distribution"
    assert drift["PropertyDifferences"][0]["DifferenceType"] == "NOT_EQUAL"
    with pytest.raises(ClientError, match="ValidationError"):
        cloudformation.describe_stack_drift_detection_status(StackDriftDetectionId="no-such-detection")


def _import_template(name: str, bucket: str, **policies: str) -> str:
    retain = {"DeletionPolicy": "Retain", **policies}
    return json.dumps({"Resources": {
        "Marker": {"Type": "AWS::SSM::Parameter", "Properties": {"Name": f"/{name}/release", "Type": "String",
                                                                  "Value": "3"}},
        "Bucket": {"Type": "AWS::S3::Bucket", **retain, "Properties": {"BucketName": bucket}},
        "Distribution": {"Type": "AWS::CloudFront::Distribution", **retain,
                         "Properties": {"DistributionConfig": {"Enabled": True}}}}})


def test_a_stack_imports_a_bucket_and_a_distribution_made_by_hand(client: ClientFactory) -> None:
    """ChangeSetType=IMPORT adds existing resources to an existing stack, creating nothing."""
    cloudformation, s3, cloudfront = client("cloudformation"), client("s3"), client("cloudfront")
    name, bucket = _name("import-stack"), _name("import-bucket")
    s3.create_bucket(Bucket=bucket)
    distribution_id = cloudfront.create_distribution(DistributionConfig=_distribution_config())["Distribution"]["Id"]
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps({"Resources": {"Marker": {
        "Type": "AWS::SSM::Parameter", "Properties": {"Name": f"/{name}/release", "Type": "String", "Value": "3"}}}}))
    buckets = len(s3.list_buckets()["Buckets"])
    distributions = cloudfront.list_distributions()["DistributionList"]["Quantity"]

    change_set = cloudformation.create_change_set(
        StackName=name, ChangeSetName="adopt", ChangeSetType="IMPORT", TemplateBody=_import_template(name, bucket),
        ResourcesToImport=[
            {"ResourceType": "AWS::S3::Bucket", "LogicalResourceId": "Bucket",
             "ResourceIdentifier": {"BucketName": bucket}},
            {"ResourceType": "AWS::CloudFront::Distribution", "LogicalResourceId": "Distribution",
             "ResourceIdentifier": {"Id": distribution_id}}])
    assert cloudformation.describe_change_set(ChangeSetName=change_set["Id"])["ExecutionStatus"] == "AVAILABLE"
    cloudformation.execute_change_set(ChangeSetName=change_set["Id"])

    summaries = cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]
    assert {(r["LogicalResourceId"], r["ResourceType"], r["PhysicalResourceId"]) for r in summaries} >= {
        ("Bucket", "AWS::S3::Bucket", bucket), ("Distribution", "AWS::CloudFront::Distribution", distribution_id)}
    assert cloudformation.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "IMPORT_COMPLETE"
    assert len(s3.list_buckets()["Buckets"]) == buckets
    assert cloudfront.list_distributions()["DistributionList"]["Quantity"] == distributions


@pytest.mark.parametrize("problem", ["no-deletion-policy", "no-such-bucket"])
def test_an_import_aws_would_refuse_is_refused(client: ClientFactory, problem: str) -> None:
    cloudformation, s3 = client("cloudformation"), client("s3")
    name, bucket = _name("import-stack"), _name("import-bucket")
    if problem != "no-such-bucket":
        s3.create_bucket(Bucket=bucket)
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps({"Resources": {"Marker": {
        "Type": "AWS::SSM::Parameter", "Properties": {"Name": f"/{name}/release", "Type": "String", "Value": "3"}}}}))
    template = _import_template(name, bucket)
    if problem == "no-deletion-policy":
        document = json.loads(template)
        del document["Resources"]["Bucket"]["DeletionPolicy"]
        template = json.dumps(document)
    with pytest.raises(ClientError) as refused:
        cloudformation.create_change_set(
            StackName=name, ChangeSetName="adopt", ChangeSetType="IMPORT", TemplateBody=template,
            ResourcesToImport=[{"ResourceType": "AWS::S3::Bucket", "LogicalResourceId": "Bucket",
                                "ResourceIdentifier": {"BucketName": bucket}}])
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert ("DeletionPolicy" if problem == "no-deletion-policy" else "do not exist") in str(refused.value)
