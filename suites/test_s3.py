"""The origin bucket (seed: validate-s3-infrastructure, security-validation-suite)."""

import pytest
from botocore.exceptions import ClientError

from edgeaudit.checks import policy, publicaccess, trails

BLOCK_SETTINGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
SECURE_TRANSPORT = frozenset({"bool", "boolifexists"})


def _public_access_block(client, **params):
    """The four settings, all off when no configuration exists."""
    try:
        return client.get_public_access_block(**params)["PublicAccessBlockConfiguration"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchPublicAccessBlockConfiguration":
            return {name: False for name in BLOCK_SETTINGS}
        raise


@pytest.mark.control("EA-S3-01", severity="P1", frameworks={"FSBP": "S3.8, S3.1"},
                     reads=("sts:GetCallerIdentity", "s3:GetPublicAccessBlock", "s3control:GetPublicAccessBlock"))
@pytest.mark.weekly
@pytest.mark.monthly
@pytest.mark.security
@pytest.mark.infrastructure
def test_block_public_access(aws, target, evidence):
    """Block Public Access is fully on for the origin bucket.

    Remediation: turn on all four Block Public Access settings for the bucket (and for the
    account); CloudFront reads through Origin Access Control and needs no public access.
    """
    evidence.resource = f"s3://{target.bucket}"
    bucket_settings = _public_access_block(aws.s3, Bucket=target.bucket)
    evidence.record("bucket", bucket_settings)
    off = [name for name in BLOCK_SETTINGS if not bucket_settings.get(name)]
    assert not off, f"Block Public Access settings off on bucket {target.bucket}: {', '.join(off)}"
    account_settings = _public_access_block(aws.client("s3control", target.region), AccountId=aws.account_id)
    evidence.record("account", account_settings)
    account_off = [name for name in BLOCK_SETTINGS if not account_settings.get(name)]
    if account_off:
        evidence.warn(f"account-level Block Public Access off: {', '.join(account_off)}")


@pytest.mark.control("EA-S3-05", severity="P2", frameworks={"FSBP": "S3.14"},
                     reads=("s3:GetBucketVersioning",))
@pytest.mark.weekly
@pytest.mark.monthly
@pytest.mark.security
@pytest.mark.infrastructure
@pytest.mark.dr
def test_bucket_versioning(aws, target, evidence):
    """The origin bucket keeps every version of every object.

    Remediation: enable versioning on the bucket; rollback and restore drills need it.
    """
    evidence.resource = f"s3://{target.bucket}"
    status = aws.s3.get_bucket_versioning(Bucket=target.bucket).get("Status", "Disabled")
    evidence.record("versioning", status)
    assert status == "Enabled", f"versioning is {status}, not Enabled"


def _bucket_error(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _distribution_arn(aws, target) -> str:
    return f"arn:aws:cloudfront::{aws.account_id}:distribution/{target.distribution_id}"


@pytest.mark.control("EA-S3-02", severity="P1", frameworks={"FSBP": "S3.2, S3.3"},
                     reads=("sts:GetCallerIdentity", "s3:GetBucketPolicy", "s3:GetBucketAcl", "s3:ListObjectsV2",
                            "s3:GetObjectAcl", "accessanalyzer:CheckNoPublicAccess"))
@pytest.mark.weekly
@pytest.mark.monthly
@pytest.mark.security
@pytest.mark.infrastructure
def test_no_public_access(aws, target, thresholds, evidence):
    """Nobody can read or write the origin bucket except through this distribution.

    Remediation: remove ACL grants to AllUsers and AuthenticatedUsers (of the bucket and of its
    objects), and bucket policy statements that allow "*" unless a condition names fixed callers
    (no wildcard, no IfExists, Null or negated form) or a few networks; give the
    cloudfront.amazonaws.com service principal s3:GetObject only with a condition
    {"StringEquals": {"AWS:SourceArn": "<this distribution's ARN>"}}. Without it any CloudFront
    distribution, in any account, can read the bucket.
    """
    evidence.resource = f"s3://{target.bucket}"
    grants = aws.s3.get_bucket_acl(Bucket=target.bucket)["Grants"]
    acl = [f"ACL grant {grant}" for grant in publicaccess.public_acl_grants(grants)]
    keys = [o["Key"] for page in aws.s3.paginate("list_objects_v2", Bucket=target.bucket)
            for o in page.get("Contents", [])]
    sampled = publicaccess.sample(keys, int(thresholds.public_acl_sample_objects))
    objects = publicaccess.public_object_grants(aws.s3, target.bucket, sampled)
    acl += [f"object ACL grant {grant} on {key}" for key, found in objects.items() for grant in found]
    document = policy.bucket_policy_document(aws.s3, target.bucket)
    statements = policy.parse(document, "bucket policy") if document else []
    ip_prefixes = (int(thresholds.public_ip_prefix_v4), int(thresholds.public_ip_prefix_v6))
    found = policy.public_grants(statements, _distribution_arn(aws, target), ip_prefixes)
    own = [f"{statement.label()}: {reason}" for statement, reason in found]
    opinion = publicaccess.ask_access_analyzer(aws.client("accessanalyzer", target.region), document)
    disagreement = publicaccess.disagreement(own, opinion)
    offenders = acl + own + ([disagreement] if disagreement else [])
    evidence.record("acl_grantees", [g["Grantee"].get("URI") or g["Grantee"].get("ID") for g in grants])
    evidence.record("object_acls_read", f"{len(sampled)} of {len(keys)} objects")
    evidence.record("distribution", _distribution_arn(aws, target))
    evidence.record("source_ip_limits", f"IPv4 /{ip_prefixes[0]}, IPv6 /{ip_prefixes[1]}")
    evidence.record("policy_verdict", "; ".join(own) if own else ("not public" if document else "no bucket policy"))
    evidence.record("access_analyzer_verdict", opinion.summary())
    evidence.require_none(offenders, "public access to the bucket: " + "; ".join(offenders))


@pytest.mark.control("EA-S3-03", severity="P3", frameworks={"FSBP": "S3.5"},
                     reads=("s3:GetBucketPolicy",))
@pytest.mark.weekly
@pytest.mark.monthly
@pytest.mark.security
@pytest.mark.infrastructure
def test_bucket_refuses_plain_http(aws, target, evidence):
    """The bucket policy refuses every request that does not use TLS.

    Remediation: add a Deny statement for Principal "*", Action "s3:*", on the bucket and its
    objects, with the condition {"Bool": {"aws:SecureTransport": "false"}}.
    """
    evidence.resource = f"s3://{target.bucket}"
    denies = [s for s in policy.bucket_statements(aws.s3, target.bucket)
              if not s.allow and policy.EVERYONE in (s.principals or ())
              and "false" in [v.lower() for v in s.condition_values("aws:SecureTransport", SECURE_TRANSPORT) or []]
              and all(name.lower() == "aws:securetransport" for block in s.conditions.values() for name in block)]
    every_action = [s for s in denies if policy.covers_every_action(s, "s3")]
    bucket_arn, objects = f"arn:aws:s3:::{target.bucket}", policy.objects_prefix(target.bucket)
    if not denies:
        uncovered = ["every S3 action, on the bucket and its objects"]
    elif not every_action:
        named = ", ".join(sorted({a for s in denies for a in s.actions}))
        uncovered = [f"the S3 actions other than {named} (deletes, listings, ...)"]
    else:
        uncovered = [f"{what} ({arn})" for what, arn, covered in (
            ("the bucket", bucket_arn, any(policy.covers_resource(s, bucket_arn) for s in every_action)),
            ("its objects", f"{bucket_arn}/*", any(s.covers(objects) for s in every_action)),
        ) if not covered]
    evidence.record("insecure_transport_denies", {s.label(): list(s.actions) for s in denies})
    evidence.record("covering_every_action", [s.label() for s in every_action])
    evidence.require_none(uncovered, "no Deny of aws:SecureTransport = false for everyone covers "
                          + "; ".join(uncovered) + ": plain HTTP is still allowed there")


@pytest.mark.control("EA-S3-04", severity="P3",
                     reads=("s3:GetBucketEncryption", "kms:DescribeKey", "kms:GetKeyPolicy"))
@pytest.mark.weekly
@pytest.mark.monthly
@pytest.mark.security
@pytest.mark.infrastructure
def test_default_encryption(aws, target, evidence):
    """Objects are encrypted at rest by default, with a key CloudFront can use.

    Remediation: set the bucket's default encryption to SSE-S3 (AES256), or to SSE-KMS with a
    customer managed key whose key policy allows the cloudfront.amazonaws.com service principal
    kms:Decrypt (the AWS managed key aws/s3 cannot allow it).
    """
    evidence.resource = f"s3://{target.bucket}"
    try:
        rules = aws.s3.get_bucket_encryption(Bucket=target.bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except ClientError as exc:
        if _bucket_error(exc) != "ServerSideEncryptionConfigurationNotFoundError":
            raise
        rules = []
    defaults = [r["ApplyServerSideEncryptionByDefault"] for r in rules if "ApplyServerSideEncryptionByDefault" in r]
    evidence.record("default_encryption", defaults)
    assert defaults, "the bucket has no default encryption"
    algorithm, key = defaults[0]["SSEAlgorithm"], defaults[0].get("KMSMasterKeyID")
    assert algorithm in ("AES256", "aws:kms", "aws:kms:dsse"), f"unknown default encryption {algorithm}"
    if algorithm == "AES256":
        return
    assert key, "SSE-KMS with the AWS managed key aws/s3, whose key policy cannot let CloudFront decrypt"
    kms = aws.client("kms", key.split(":")[3] if key.startswith("arn:") else target.region)
    if not key.startswith("arn:") or ":alias/" in key:
        key = kms.describe_key(KeyId=key)["KeyMetadata"]["Arn"]
    statements = policy.parse(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"], f"key policy of {key}")
    decrypt = [s.label() for s in statements if s.allow and "service:cloudfront.amazonaws.com" in (s.principals or ())
               and s.matches_action("kms:Decrypt")]
    evidence.record("kms_key", key)
    evidence.record("cloudfront_may_decrypt", decrypt)
    assert decrypt, f"the key policy of {key} does not allow CloudFront kms:Decrypt: viewers would get errors"


@pytest.mark.control("EA-S3-06", severity="P4", frameworks={"FSBP": "S3.10, S3.13"},
                     reads=("s3:GetBucketLifecycleConfiguration",))
@pytest.mark.weekly
@pytest.mark.monthly
@pytest.mark.security
@pytest.mark.infrastructure
@pytest.mark.cost
def test_lifecycle_cleans_up(aws, target, thresholds, evidence):
    """Old versions expire, after the rollback window, and incomplete multipart uploads are aborted.

    Remediation: add an enabled lifecycle rule for the whole bucket with
    NoncurrentVersionExpiration (NoncurrentDays at least rollback_window_days, so that rollback
    and restore drills find the previous release) and AbortIncompleteMultipartUpload (e.g. 7 days).
    """
    evidence.resource = f"s3://{target.bucket}"
    try:
        rules = aws.s3.get_bucket_lifecycle_configuration(Bucket=target.bucket)["Rules"]
    except ClientError as exc:
        if _bucket_error(exc) != "NoSuchLifecycleConfiguration":
            raise
        rules = []
    window = int(thresholds.rollback_window_days)
    enabled = [r for r in rules if r.get("Status") == "Enabled"]
    whole = [r for r in enabled if _whole_bucket(r)]
    expiring = [r.get("ID", "") for r in whole if r.get("NoncurrentVersionExpiration")]
    aborting = [r.get("ID", "") for r in whole if r.get("AbortIncompleteMultipartUpload")]
    kept = {r.get("ID", ""): r["NoncurrentVersionExpiration"].get("NoncurrentDays")
            for r in enabled if r.get("NoncurrentVersionExpiration")}
    early = {rule: days for rule, days in kept.items() if days is None or days < window}
    evidence.record("rules", {r.get("ID", ""): r.get("Status") for r in rules})
    evidence.record("expire_noncurrent_versions", expiring)
    evidence.record("abort_incomplete_uploads", aborting)
    evidence.record("rollback_window_days", window)
    evidence.record("noncurrent_days", kept)
    assert not early, ("noncurrent versions expire before the rollback window of "
                       f"{window} days, so rollback finds nothing to restore: "
                       + ", ".join(f"rule {rule!r} " + (f"after {days} day{'s' * (days != 1)}" if days is not None else
                                                        "with no NoncurrentDays") for rule, days in early.items()))
    missing = [what for what, ids in (("expiry of noncurrent versions", expiring),
                                      ("abort of incomplete multipart uploads", aborting)) if not ids]
    assert not missing, "no enabled whole-bucket lifecycle rule for: " + ", ".join(missing)


def _whole_bucket(rule) -> bool:
    """The rule applies to every object (no prefix, tag or size filter)."""
    scope = rule.get("Filter", {"Prefix": rule.get("Prefix", "")})
    return scope in ({}, {"Prefix": ""})


@pytest.mark.control("EA-S3-07", severity="P3", frameworks={"FSBP": "S3.9, S3.22"},
                     reads=("s3:GetBucketLogging", "cloudtrail:DescribeTrails", "cloudtrail:GetEventSelectors"))
@pytest.mark.weekly
@pytest.mark.monthly
@pytest.mark.security
@pytest.mark.infrastructure
def test_access_is_logged(aws, target, evidence):
    """Requests to the bucket are logged: server access logging, or CloudTrail data events.

    Remediation: turn on server access logging into a log bucket of the same region, or record
    the bucket's S3 data events (reads included) with a CloudTrail trail that is logging.
    """
    events = trails.unlogged_bucket_events(aws, target, evidence)
    if events is None:
        return
    assert any(trails.READ in trail["kinds"] for trail in events.values()), (
        "no server access logging, and no logging trail records all of the bucket's object reads"
        + (" (" + "; ".join(f"{name} leaves out {', '.join(trail['left_out'][trails.READ])}"
                            for name, trail in events.items()) + ")" if events else ""))


@pytest.mark.control("EA-S3-08", severity="P3", frameworks={"FSBP": "S3.12"},
                     reads=("s3:GetBucketOwnershipControls",))
@pytest.mark.weekly
@pytest.mark.monthly
@pytest.mark.security
@pytest.mark.infrastructure
def test_acls_disabled(aws, target, evidence):
    """ACLs are off: the bucket owner owns every object.

    Remediation: set Object Ownership to BucketOwnerEnforced; grant access with policies only.
    """
    evidence.resource = f"s3://{target.bucket}"
    try:
        rules = aws.s3.get_bucket_ownership_controls(Bucket=target.bucket)["OwnershipControls"]["Rules"]
    except ClientError as exc:
        if _bucket_error(exc) != "OwnershipControlsNotFoundError":
            raise
        rules = []
    ownership = rules[0]["ObjectOwnership"] if rules else "ObjectWriter (no ownership controls)"
    evidence.record("object_ownership", ownership)
    assert ownership == "BucketOwnerEnforced", f"object ownership is {ownership}: ACLs still apply"


@pytest.mark.control("EA-S3-09", severity="P2", reads=("s3:GetBucketWebsite",))
@pytest.mark.weekly
@pytest.mark.monthly
@pytest.mark.security
@pytest.mark.infrastructure
def test_website_hosting_off(aws, target, evidence):
    """Static website hosting is off on the origin bucket.

    Remediation: delete the bucket's website configuration; CloudFront reads the bucket through
    Origin Access Control, and the website endpoint only serves plain HTTP around it.
    """
    evidence.resource = f"s3://{target.bucket}"
    try:
        website = aws.s3.get_bucket_website(Bucket=target.bucket)
    except ClientError as exc:
        if _bucket_error(exc) != "NoSuchWebsiteConfiguration":
            raise
        website = None
    evidence.record("website", {k: v for k, v in (website or {}).items() if k != "ResponseMetadata"} or None)
    assert website is None, (f"static website hosting is on: http://{target.bucket}.s3-website-{target.region}"
                             ".amazonaws.com/ serves the site without CloudFront")


@pytest.mark.control("EA-S3-10", severity="P3", frameworks={"FSBP": "S3.6"},
                     reads=("sts:GetCallerIdentity", "s3:GetBucketPolicy"))
@pytest.mark.weekly
@pytest.mark.monthly
@pytest.mark.security
@pytest.mark.infrastructure
def test_no_other_accounts(aws, target, evidence):
    """The bucket policy grants no other AWS account, except the allowed writers.

    Remediation: remove statements naming principals of other accounts, or, for a deliberate
    cross-account deployer, list its ARN in the target's allowed_writers.
    """
    evidence.resource = f"s3://{target.bucket}"
    foreign = policy.foreign_grants(policy.bucket_statements(aws.s3, target.bucket), aws.account_id)
    offenders = [f"{principal} ({statement.label()})" for principal, statement in foreign
                 if principal not in target.allowed_writers]
    evidence.record("other_accounts", [f"{p} ({s.label()})" for p, s in foreign])
    evidence.record("allowed_writers", list(target.allowed_writers))
    evidence.require_none(offenders, "the bucket policy grants other accounts: " + "; ".join(offenders))
