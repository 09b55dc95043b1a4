"""The distribution (seed: security-validation-suite, cloudfront-security-validator)."""

import re

import pytest
from botocore.exceptions import ClientError

from edgeaudit.aws.preflight import WEB_ACL_ARN
from edgeaudit.checks import waf
from edgeaudit.errors import AccessDeniedError, NotEvaluated

HTTPS_POLICIES = ("redirect-to-https", "https-only")
# S3 origin domains: website endpoints, and the REST endpoint in its regional, global and
# legacy dash-region forms (bucket.s3.<region>, bucket.s3, bucket.s3-<region>).
S3_WEBSITE = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9.-]*?)\.s3-website[.-][a-z0-9-]+\.amazonaws\.com(\.cn)?$")
S3_REST = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9.-]*?)\.s3(?:[.-](?:dualstack\.)?[a-z0-9-]+)?"
                     r"\.amazonaws\.com(\.cn)?$")
MODERN_TLS_POLICIES = ("TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025")
SECURITY_HEADERS = {"StrictTransportSecurity": "Strict-Transport-Security",
                    "ContentTypeOptions": "X-Content-Type-Options", "FrameOptions": "X-Frame-Options",
                    "ReferrerPolicy": "Referrer-Policy"}
WEAK_ORIGIN_PROTOCOLS = ("SSLv3", "TLSv1", "TLSv1.1")
MODERN_HTTP = ("http2", "http2and3", "http3")
READ_METHODS = {"GET", "HEAD", "OPTIONS"}


def behaviours(config):
    """(path pattern, behaviour) for the default behaviour and every other one."""
    yield "(default)", config["DefaultCacheBehavior"]
    for behaviour in config.get("CacheBehaviors", {}).get("Items", []) or []:
        yield behaviour["PathPattern"], behaviour


@pytest.mark.control("EA-CF-01", severity="P2", frameworks={"FSBP": "CloudFront.3"},
                     reads=("cloudfront:GetDistributionConfig",))
@pytest.mark.weekly
@pytest.mark.quarterly
@pytest.mark.security
@pytest.mark.infrastructure
def test_viewers_use_https(aws, target, evidence):
    """Every cache behaviour sends viewers to HTTPS.

    Remediation: set ViewerProtocolPolicy to redirect-to-https (or https-only) on the default
    cache behaviour and on every other cache behaviour of the distribution.
    """
    config = aws.cloudfront.get_distribution_config(Id=target.distribution_id)["DistributionConfig"]
    evidence.resource = f"cloudfront:distribution/{target.distribution_id}"
    policies = {pattern: b["ViewerProtocolPolicy"] for pattern, b in behaviours(config)}
    offenders = [pattern for pattern, policy in policies.items() if policy not in HTTPS_POLICIES]
    evidence.record("behaviours", policies)
    evidence.require_none(offenders, "cache behaviours that let viewers use plain HTTP: " + ", ".join(
        f"{p} ({policies[p]})" for p in offenders))


def _config(aws, target, evidence):
    evidence.resource = f"cloudfront:distribution/{target.distribution_id}"
    return aws.cloudfront.get_distribution_config(Id=target.distribution_id)["DistributionConfig"]


def s3_origin(origin) -> tuple[str | None, str | None]:
    """("website" or "rest", bucket) for an S3 origin, (None, None) for any other."""
    domain = origin["DomainName"].lower().rstrip(".")
    for kind, pattern in (("website", S3_WEBSITE), ("rest", S3_REST)):
        match = pattern.match(domain)
        if match:
            return kind, match["bucket"]
    return None, None


def _s3_origins(config) -> list:
    """(origin, endpoint kind, bucket) for every S3 origin of the distribution."""
    found = [(origin, *s3_origin(origin)) for origin in config["Origins"]["Items"]]
    return [(origin, kind, bucket) for origin, kind, bucket in found if kind]


@pytest.mark.control("EA-CF-02", severity="P2", frameworks={"FSBP": "CloudFront.13"},
                     reads=("cloudfront:GetDistributionConfig",))
@pytest.mark.weekly
@pytest.mark.quarterly
@pytest.mark.security
@pytest.mark.infrastructure
def test_s3_origins_use_oac(aws, target, evidence):
    """Every S3 origin is read through Origin Access Control.

    Remediation: point each S3 origin at the bucket's REST endpoint
    (<bucket>.s3.<region>.amazonaws.com) with an Origin Access Control, and remove the legacy
    origin access identity; never use the website endpoint or a public bucket.
    """
    config = _config(aws, target, evidence)
    seen, offenders = {}, []
    for origin, kind, bucket in _s3_origins(config):
        oac = origin.get("OriginAccessControlId") or ""
        oai = (origin.get("S3OriginConfig") or {}).get("OriginAccessIdentity") or ""
        seen[origin["Id"]] = {"domain": origin["DomainName"], "bucket": bucket, "endpoint": kind,
                              "origin_access_control": oac or None, "origin_access_identity": oai or None}
        if kind == "website":
            problem = "the S3 website endpoint (public bucket, plain HTTP, no origin access control possible)"
        elif "S3OriginConfig" not in origin:
            problem = "the bucket's REST endpoint as a custom origin (the bucket must be public)"
        elif oai:
            problem = f"a legacy origin access identity ({oai})"
        elif not oac:
            problem = "no origin access control (the bucket must be public for CloudFront to read it)"
        else:
            continue
        offenders.append(f"{origin['Id']} ({origin['DomainName']}): {problem}")
    evidence.record("s3_origins", seen)
    evidence.record("offenders", offenders)
    if not seen:
        domains = ", ".join(o["DomainName"] for o in config["Origins"]["Items"])
        raise NotEvaluated(f"the distribution has no origin recognised as an S3 bucket (origins: {domains}), yet "
                           f"the target's bucket is {target.bucket}: check the target's distribution_id, or the "
                           "origin's domain form (bucket.s3.<region>.amazonaws.com)")
    assert not offenders, "S3 origins not read through origin access control: " + "; ".join(offenders)


@pytest.mark.control("EA-CF-03", severity="P1", frameworks={"FSBP": "CloudFront.12"},
                     reads=("cloudfront:GetDistributionConfig", "s3:ListBuckets", "s3:HeadBucket"))
@pytest.mark.weekly
@pytest.mark.quarterly
@pytest.mark.security
@pytest.mark.infrastructure
def test_s3_origins_exist_and_are_ours(aws, target, evidence):
    """Every S3 origin points at a bucket that exists and that this account owns.

    Remediation: remove origins whose bucket was deleted, or re-create the bucket in this
    account at once: anyone who creates a bucket of that name serves content on your domain.
    """
    config = _config(aws, target, evidence)
    owned = {b["Name"] for page in aws.s3.paginate("list_buckets") for b in page.get("Buckets", [])}
    buckets, offenders = {}, []
    for origin, _, bucket in _s3_origins(config):
        buckets[origin["Id"]] = bucket
        if bucket in owned:
            continue
        try:
            aws.s3.head_bucket(Bucket=bucket)
            problem = "exists but is not listed in this account"
        except AccessDeniedError:  # another account's, or a scoped audit role may not ask: not ours either way
            problem = "is not a bucket of this account (HeadBucket refused: another account's, or not asked)"
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            problem = ("does not exist: anyone can create it" if code in ("404", "NoSuchBucket")
                       else "belongs to another account")
        offenders.append(f"{origin['Id']}: bucket {bucket} {problem}")
    evidence.record("origin_buckets", buckets)
    evidence.require_none(offenders, "S3 origins open to takeover: " + "; ".join(offenders))


@pytest.mark.control("EA-CF-04", severity="P2", frameworks={"FSBP": "CloudFront.7, CloudFront.8, CloudFront.15"},
                     reads=("cloudfront:GetDistributionConfig",))
@pytest.mark.weekly
@pytest.mark.quarterly
@pytest.mark.security
@pytest.mark.infrastructure
def test_viewer_certificate(aws, target, evidence):
    """Viewers get a custom ACM certificate over SNI with a modern TLS security policy.

    Remediation: attach an ACM certificate (us-east-1) for the site's names, set
    SSLSupportMethod to sni-only and MinimumProtocolVersion to TLSv1.2_2021 or newer.
    """
    viewer = _config(aws, target, evidence)["ViewerCertificate"]
    evidence.record("viewer_certificate", {k: viewer.get(k) for k in (
        "ACMCertificateArn", "IAMCertificateId", "CloudFrontDefaultCertificate", "SSLSupportMethod",
        "MinimumProtocolVersion")})
    problems = []
    if not viewer.get("ACMCertificateArn"):
        problems.append("an IAM server certificate instead of ACM" if viewer.get("IAMCertificateId")
                        else "the default *.cloudfront.net certificate")
    if viewer.get("SSLSupportMethod") != "sni-only":
        problems.append(f"SSLSupportMethod {viewer.get('SSLSupportMethod')}, not sni-only")
    if viewer.get("MinimumProtocolVersion") not in MODERN_TLS_POLICIES:
        problems.append(f"MinimumProtocolVersion {viewer.get('MinimumProtocolVersion')}, "
                        f"not one of {', '.join(MODERN_TLS_POLICIES)}")
    assert not problems, "viewer certificate: " + "; ".join(problems)


@pytest.mark.control("EA-CF-05", severity="P3", frameworks={"FSBP": "CloudFront.6"},
                     reads=("cloudfront:GetDistributionConfig", "wafv2:GetWebACL", "wafv2:GetRuleGroup",
                            "wafv2:DescribeManagedRuleGroup"))
@pytest.mark.weekly
@pytest.mark.quarterly
@pytest.mark.security
@pytest.mark.infrastructure
def test_waf_attached(aws, target, evidence):
    """A WAF web ACL that blocks something protects the distribution.

    Remediation: create an AWS WAF web ACL (scope CLOUDFRONT, us-east-1) with rules, e.g. the
    AWS managed common rule set and a rate limit, and attach it to the distribution; at least
    one rule must block (Action Block, or a rule group with OverrideAction None one of whose
    rules still blocks after the rule action overrides), not only count.
    """
    web_acl = _config(aws, target, evidence).get("WebACLId") or ""
    evidence.record("web_acl", web_acl or None)
    assert web_acl, "no WAF web ACL is attached to the distribution"
    assert web_acl.startswith("arn:"), (f"WAF Classic web ACL {web_acl}: WAF Classic is out of support since "
                                        "30 September 2025; move to AWS WAF")
    match = WEB_ACL_ARN.match(web_acl)
    if not match:
        raise NotEvaluated(f"cannot read the web ACL ARN {web_acl}")
    acl = aws.client("wafv2", "us-east-1").get_web_acl(Name=match["name"], Id=match["id"], Scope="CLOUDFRONT")["WebACL"]
    rules = {rule["Name"]: waf.rule_action(aws, rule) for rule in acl.get("Rules", [])}
    default = next(iter(acl.get("DefaultAction") or {}), None)
    counting = [name for name, action in rules.items() if action == "Count"]
    blocking = [name for name, action in rules.items() if action == waf.BLOCK]
    evidence.record("rules", rules)
    evidence.record("default_action", default)
    evidence.record("counting_rules", counting)
    evidence.record("blocking_rules", blocking)
    assert rules, f"web ACL {match['name']} has no rules: it lets every request through"
    assert blocking or default == "Block", (
        f"web ACL {match['name']} blocks nothing: no rule blocks and its default action is {default}"
        + (f"; these rules only count: {', '.join(counting)}" if counting else ""))


@pytest.mark.control("EA-CF-06", severity="P3", frameworks={"FSBP": "CloudFront.5"},
                     reads=("cloudfront:GetDistributionConfig",))
@pytest.mark.weekly
@pytest.mark.quarterly
@pytest.mark.security
@pytest.mark.infrastructure
def test_access_logging(aws, target, evidence):
    """The distribution writes access logs.

    Remediation: turn on standard logging of the distribution into a log bucket (ACLs enabled
    on that bucket, as CloudFront's standard logging needs).
    """
    logging = _config(aws, target, evidence).get("Logging") or {}
    evidence.record("logging", {k: logging.get(k) for k in ("Enabled", "Bucket", "Prefix")})
    assert logging.get("Enabled") and logging.get("Bucket"), "standard access logging is off"


@pytest.mark.control("EA-CF-07", severity="P3", frameworks={"FSBP": "CloudFront.1"},
                     reads=("cloudfront:GetDistributionConfig",))
@pytest.mark.weekly
@pytest.mark.quarterly
@pytest.mark.security
@pytest.mark.infrastructure
def test_default_root_object(aws, target, evidence):
    """A default root object is set, so "/" serves the home page, not the origin's root.

    Remediation: set DefaultRootObject to index.html.
    """
    root = _config(aws, target, evidence).get("DefaultRootObject") or ""
    evidence.record("default_root_object", root or None)
    assert root, "no default root object: a request for / goes to the origin's root"


@pytest.mark.control("EA-CF-08", severity="P3",
                     reads=("cloudfront:GetDistributionConfig", "cloudfront:GetResponseHeadersPolicy"))
@pytest.mark.weekly
@pytest.mark.quarterly
@pytest.mark.security
@pytest.mark.infrastructure
def test_security_headers_policy(aws, target, evidence):
    """Every cache behaviour has a response headers policy with the security headers.

    Remediation: attach a response headers policy whose SecurityHeadersConfig sets
    Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options (or a CSP with
    frame-ancestors) and Referrer-Policy to the default and every other cache behaviour.
    """
    config = _config(aws, target, evidence)
    policies, offenders = {}, []
    for pattern, behaviour in behaviours(config):
        policy_id = behaviour.get("ResponseHeadersPolicyId")
        if not policy_id:
            policies[pattern] = None
            offenders.append(f"{pattern}: no response headers policy")
            continue
        headers = aws.cloudfront.get_response_headers_policy(Id=policy_id)["ResponseHeadersPolicy"][
            "ResponseHeadersPolicyConfig"].get("SecurityHeadersConfig") or {}
        csp = (headers.get("ContentSecurityPolicy") or {}).get("ContentSecurityPolicy", "")
        missing = [name for key, name in SECURITY_HEADERS.items() if key not in headers
                   and not (key == "FrameOptions" and "frame-ancestors" in csp)]
        policies[pattern] = {"policy": policy_id, "missing": missing}
        if missing:
            offenders.append(f"{pattern}: policy {policy_id} lacks {', '.join(missing)}")
    evidence.record("behaviours", policies)
    evidence.require_none(offenders, "cache behaviours without the security headers: " + "; ".join(offenders))


@pytest.mark.control("EA-CF-09", severity="P2", frameworks={"FSBP": "CloudFront.9, CloudFront.10"},
                     reads=("cloudfront:GetDistributionConfig",))
@pytest.mark.weekly
@pytest.mark.quarterly
@pytest.mark.security
@pytest.mark.infrastructure
def test_custom_origins_use_tls(aws, target, evidence):
    """Custom origins are reached over HTTPS with TLS 1.2 only.

    Remediation: set OriginProtocolPolicy to https-only and OriginSslProtocols to TLSv1.2 on
    every custom origin (an S3 website endpoint cannot do either: use the REST endpoint and OAC).
    """
    config = _config(aws, target, evidence)
    seen, offenders = {}, []
    for origin in config["Origins"]["Items"]:
        custom = origin.get("CustomOriginConfig")
        if not custom:
            continue
        protocol = custom.get("OriginProtocolPolicy")
        versions = (custom.get("OriginSslProtocols") or {}).get("Items") or []
        weak = [v for v in versions if v in WEAK_ORIGIN_PROTOCOLS]
        seen[origin["Id"]] = {"domain": origin["DomainName"], "protocol_policy": protocol, "ssl_protocols": versions}
        problems = ([f"OriginProtocolPolicy {protocol}"] if protocol != "https-only" else []) + (
            [f"allows {', '.join(weak)}"] if weak else [])
        if problems:
            offenders.append(f"{origin['Id']} ({origin['DomainName']}): {', '.join(problems)}")
    evidence.record("custom_origins", seen)
    evidence.require_none(offenders, "custom origins reached without modern TLS: " + "; ".join(offenders))


@pytest.mark.control("EA-CF-10", severity="P4", reads=("cloudfront:GetDistributionConfig",))
@pytest.mark.weekly
@pytest.mark.quarterly
@pytest.mark.security
@pytest.mark.infrastructure
@pytest.mark.performance
def test_modern_protocols(aws, target, evidence):
    """HTTP/2 (or HTTP/3) and IPv6 are on.

    Remediation: set HttpVersion to http2and3 (or http2) and turn on IPv6.
    """
    config = _config(aws, target, evidence)
    version, ipv6 = config.get("HttpVersion"), bool(config.get("IsIPV6Enabled"))
    evidence.record("http_version", version)
    evidence.record("ipv6", ipv6)
    problems = ([f"HttpVersion {version}"] if version not in MODERN_HTTP else []) + ([] if ipv6 else ["IPv6 off"])
    assert not problems, "older protocols only: " + ", ".join(problems)


@pytest.mark.control("EA-CF-11", severity="P2", reads=("cloudfront:GetDistributionConfig",))
@pytest.mark.weekly
@pytest.mark.quarterly
@pytest.mark.security
@pytest.mark.infrastructure
def test_read_only_methods(aws, target, evidence):
    """Every cache behaviour allows only GET and HEAD (and OPTIONS).

    Remediation: set AllowedMethods to GET, HEAD (or GET, HEAD, OPTIONS for CORS) on every cache
    behaviour; a static site takes no writes through its edge.
    """
    config = _config(aws, target, evidence)
    methods = {pattern: (b.get("AllowedMethods") or {}).get("Items") or [] for pattern, b in behaviours(config)}
    offenders = [f"{p} ({', '.join(m for m in items if m not in READ_METHODS)})"
                 for p, items in methods.items() if set(items) - READ_METHODS]
    evidence.record("allowed_methods", methods)
    evidence.require_none(offenders, "cache behaviours that pass writes to the origin: " + "; ".join(offenders))


@pytest.mark.control("EA-CACHE-03", severity="P4",
                     reads=("cloudfront:GetDistributionConfig", "cloudfront:GetCachePolicy"))
@pytest.mark.weekly
@pytest.mark.performance
def test_minimal_cache_key(aws, target, evidence):
    """Cache keys hold no cookies, and headers and query strings only where named.

    Remediation: use a cache policy (e.g. Managed-CachingOptimized) whose cache key has no
    cookies and at most a named list of headers and query strings on every cache behaviour.
    """
    config = _config(aws, target, evidence)
    keys, offenders = {}, []
    for pattern, behaviour in behaviours(config):
        key = _cache_key(aws, behaviour)
        keys[pattern] = key
        problems = ([f"cookies {key['cookies']}"] if key["cookies"] != "none" else []) + (
            [f"query strings {key['query_strings']}"] if key["query_strings"] in ("all", "allExcept") else []) + (
            ["every header"] if key["headers"] == "all" else [])
        if problems:
            offenders.append(f"{pattern} ({key['policy']}): {', '.join(problems)}")
    evidence.record("cache_keys", keys)
    evidence.require_none(offenders, "cache keys wider than needed (lower hit ratio): " + "; ".join(offenders))


def _cache_key(aws, behaviour) -> dict:
    """What varies the cache key of a behaviour: from its cache policy, or the legacy ForwardedValues."""
    if behaviour.get("CachePolicyId"):
        config = aws.cloudfront.get_cache_policy(Id=behaviour["CachePolicyId"])["CachePolicy"]["CachePolicyConfig"]
        params = config["ParametersInCacheKeyAndForwardedToOrigin"]
        return {"policy": config["Name"], "cookies": params["CookiesConfig"]["CookieBehavior"],
                "headers": params["HeadersConfig"]["HeaderBehavior"],
                "query_strings": params["QueryStringsConfig"]["QueryStringBehavior"]}
    forwarded = behaviour.get("ForwardedValues") or {}
    headers = (forwarded.get("Headers") or {}).get("Items") or []
    named_queries = (forwarded.get("QueryStringCacheKeys") or {}).get("Items") or []
    return {"policy": "legacy ForwardedValues", "cookies": (forwarded.get("Cookies") or {}).get("Forward", "none"),
            "headers": "all" if "*" in headers else "whitelist" if headers else "none",
            "query_strings": ("none" if not forwarded.get("QueryString") else "whitelist" if named_queries else "all")}
