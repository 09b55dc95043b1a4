"""Access control and audit trail (seed: validate-access-control-audit, governance).

Who can write the origin bucket is read from the bucket policy and from every identity policy
of the account (users with their groups' policies, and roles), evaluated by edgeaudit.checks.policy.
"""

import datetime as dt

import pytest
from botocore.exceptions import ClientError

from edgeaudit.checks import policy, trails

WRITES = "write or delete objects"


def _identities(aws) -> list[policy.Identity]:
    """Users and roles of the account with every policy statement that applies to each."""
    details: dict = {}
    for page in aws.iam.paginate("get_account_authorization_details"):
        for key in ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies"):
            details.setdefault(key, []).extend(page.get(key, []))
    managed = policy.managed_documents(details)
    for arn in sorted(policy.attached_policy_arns(details) - set(managed)):  # e.g. AWS managed policies
        version = aws.iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        managed[arn] = aws.iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    return policy.identities(details, managed)


def _writers(aws, target) -> dict[str, list[policy.Statement]]:
    """Principal ARN (or "*") -> the statements that let it write objects of the bucket."""
    bucket_policy = policy.bucket_statements(aws.s3, target.bucket)
    denies = [s for s in bucket_policy if not s.allow]
    found = {}
    for identity in _identities(aws):
        grants = policy.write_grants([*identity.statements, *denies], target.bucket, identity.arn)
        if grants:
            found[identity.arn] = grants
    for principal, grants in policy.resource_writers(bucket_policy, target.bucket, aws.account_id).items():
        found.setdefault(principal, []).extend(grants)
    return found


def _labels(statements) -> list[str]:
    return sorted({s.label() for s in statements})


@pytest.mark.control("EA-IAM-01", severity="P1",
                     reads=("sts:GetCallerIdentity", "s3:GetBucketPolicy", "iam:GetAccountAuthorizationDetails",
                            "iam:GetPolicy", "iam:GetPolicyVersion"))
@pytest.mark.quarterly
@pytest.mark.security
def test_only_allowed_writers(aws, target, evidence):
    """Only the allowed writers can write or delete objects of the origin bucket.

    Remediation: remove the write permissions of every other principal (identity policies of
    users, groups and roles, and bucket policy statements), or, if it should deploy the site,
    list its ARN in the target's allowed_writers.
    """
    evidence.resource = f"s3://{target.bucket}"
    writers = _writers(aws, target)
    offenders = {arn: _labels(grants) for arn, grants in writers.items() if arn not in target.allowed_writers}
    evidence.record("allowed_writers", list(target.allowed_writers))
    evidence.record("writers", {arn: _labels(grants) for arn, grants in writers.items()})
    evidence.require_none(offenders, f"principals that can {WRITES} of {target.bucket} but are not allowed writers: "
                          + "; ".join(f"{arn} (through {', '.join(labels)})" for arn, labels in offenders.items()))


@pytest.mark.control("EA-IAM-02", severity="P2", frameworks={"CIS": "1.14"},
                     reads=("sts:GetCallerIdentity", "s3:GetBucketPolicy", "iam:GetAccountAuthorizationDetails",
                            "iam:GetPolicy", "iam:GetPolicyVersion", "iam:ListAccessKeys"))
@pytest.mark.quarterly
@pytest.mark.security
def test_writer_keys_rotated(aws, target, thresholds, evidence):
    """No principal that can write the bucket has an active access key older than access_key_max_age_days.

    Remediation: rotate the key (create a new one, deploy it, deactivate and delete the old
    one), or better, deploy through a role with short-lived credentials (e.g. OIDC from CI).
    """
    evidence.resource = f"s3://{target.bucket}"
    account = aws.account_id
    users = [arn for arn in _writers(aws, target) if arn.startswith(f"arn:aws:iam::{account}:user/")]
    now = dt.datetime.now(dt.timezone.utc)
    keys, offenders = {}, []
    for arn in users:
        name = arn.rsplit("/", 1)[1]
        for page in aws.iam.paginate("list_access_keys", UserName=name):
            for key in page["AccessKeyMetadata"]:
                age = (now - key["CreateDate"]).days
                keys[key["AccessKeyId"]] = {"user": arn, "status": key["Status"], "age_days": age}
                if key["Status"] == "Active" and age > thresholds.access_key_max_age_days:
                    offenders.append(f"{key['AccessKeyId']} of {arn} ({age} days)")
    evidence.record("writer_users", users)
    evidence.record("access_keys", keys)
    evidence.record("max_age_days", thresholds.access_key_max_age_days)
    active = [k["age_days"] for k in keys.values() if k["status"] == "Active"]
    if active:
        evidence.measure("oldest_active_key_days", max(active), thresholds.access_key_max_age_days, unit="days")
    evidence.require_none(offenders, f"active access keys older than {thresholds.access_key_max_age_days} days "
                                     "on writers: " + ", ".join(offenders))


@pytest.mark.control("EA-IAM-03", severity="P2", frameworks={"FSBP": "IAM.5"},
                     reads=("sts:GetCallerIdentity", "iam:ListUsers", "iam:GetLoginProfile", "iam:ListMFADevices"))
@pytest.mark.quarterly
@pytest.mark.security
def test_console_users_have_mfa(aws, evidence):
    """Every IAM user with a console password has an MFA device.

    Remediation: assign an MFA device to each such user (or remove the console password of
    users who only need programmatic access); prefer IAM Identity Center for people.
    """
    evidence.resource = f"iam:{aws.account_id}"
    users = [u["UserName"] for page in aws.iam.paginate("list_users") for u in page["Users"]]
    console, offenders = [], []
    for name in users:
        try:
            aws.iam.get_login_profile(UserName=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchEntity":
                raise
            continue
        console.append(name)
        devices = [d for page in aws.iam.paginate("list_mfa_devices", UserName=name) for d in page["MFADevices"]]
        if not devices:
            offenders.append(name)
    evidence.record("users", len(users))
    evidence.record("console_users", console)
    evidence.require_none(offenders, "IAM users with a console password and no MFA: " + ", ".join(offenders))


@pytest.mark.control("EA-IAM-04", severity="P3",
                     reads=("sts:GetCallerIdentity", "s3:GetBucketPolicy", "iam:GetAccountAuthorizationDetails",
                            "iam:GetPolicy", "iam:GetPolicyVersion"))
@pytest.mark.quarterly
@pytest.mark.security
def test_writers_least_privilege(aws, target, evidence):
    """Writers get only what a deployment needs: named S3 actions on this bucket, and
    invalidations of this distribution only.

    Remediation: grant writers s3:PutObject, s3:DeleteObject (and reads) on
    arn:aws:s3:::<bucket>/* instead of s3:* or *, and cloudfront:CreateInvalidation on the
    distribution's ARN instead of *.
    """
    evidence.resource = f"s3://{target.bucket}"
    writers = _writers(aws, target)
    identities = {identity.arn: identity for identity in _identities(aws)}
    distributions = f"arn:aws:cloudfront::{aws.account_id}:distribution/"
    offenders = []
    for arn, grants in writers.items():
        for statement in grants:
            if policy.wildcard_action(statement, "s3"):
                offenders.append(f"{arn}: {statement.label()} grants every S3 action ({', '.join(statement.actions)})")
            if policy.wildcard_resource(statement, "arn:aws:s3:::"):
                offenders.append(f"{arn}: {statement.label()} writes to any bucket ({', '.join(statement.resources)})")
        for statement in identities[arn].statements if arn in identities else ():
            if (statement.allow and statement.matches_action("cloudfront:CreateInvalidation")
                    and policy.wildcard_resource(statement, distributions)):
                offenders.append(f"{arn}: {statement.label()} may invalidate any distribution "
                                 f"({', '.join(statement.resources)})")
    evidence.record("writers", {arn: _labels(grants) for arn, grants in writers.items()})
    evidence.require_none(offenders, "writers with more than they need: " + "; ".join(offenders))


@pytest.mark.control("EA-IAM-05", severity="P2", frameworks={"FSBP": "CloudTrail.1, CloudTrail.4"},
                     reads=("cloudtrail:DescribeTrails", "cloudtrail:GetTrailStatus", "cloudtrail:GetEventSelectors"))
@pytest.mark.quarterly
@pytest.mark.security
def test_trail_logging(aws, target, evidence):
    """A multi-region CloudTrail trail is logging every management event, read and write, with
    log file validation on.

    Remediation: create (or fix) a multi-region trail with log file validation, record all
    management events (read and write, no event source left out) and start its logging; an
    organization trail from the management account counts.
    """
    region = target.region or "us-east-1"
    evidence.resource = f"cloudtrail:{region}"
    candidates = {t["Name"]: t for t in trails.trails(aws, region) if t.get("IsMultiRegionTrail")}
    seen = {name: {"log_file_validation": bool(t.get("LogFileValidationEnabled")),
                   "logging": trails.is_logging(aws, t),
                   "management_events": sorted(trails.management_events(trails.selectors(aws, t)))}
            for name, t in candidates.items()}
    evidence.record("multi_region_trails", seen)
    good = [name for name, state in seen.items() if state["log_file_validation"] and state["logging"]
            and state["management_events"] == [trails.READ, trails.WRITE]]
    assert good, ("no multi-region trail is logging read and write management events with log file validation"
                  + (": " + "; ".join(f"{n} (validation {s['log_file_validation']}, logging {s['logging']}, "
                                      f"management events {', '.join(s['management_events']) or 'none'})"
                                      for n, s in seen.items()) if seen else ""))


@pytest.mark.control("EA-IAM-06", severity="P3", frameworks={"FSBP": "S3.22"},
                     reads=("s3:GetBucketLogging", "cloudtrail:DescribeTrails", "cloudtrail:GetEventSelectors"))
@pytest.mark.quarterly
@pytest.mark.security
def test_object_writes_recorded(aws, target, evidence):
    """Every object write to the bucket is recorded: CloudTrail data events or S3 access logs.

    Remediation: record the bucket's S3 data events (write events at least) with a trail that
    is logging, or turn on server access logging of the bucket.
    """
    events = trails.unlogged_bucket_events(aws, target, evidence)
    if events is None:
        return
    assert any(trails.WRITE in trail["kinds"] for trail in events.values()), (
        "no server access logging, and no logging trail records all of the bucket's object writes"
        + (" (" + "; ".join(f"{name} leaves out {', '.join(trail['left_out'][trails.WRITE])}"
                            for name, trail in events.items()) + ")" if events else ""))
