"""The origin bucket (seed: validate-s3-infrastructure, security-validation-suite)."""

import pytest
from botocore.exceptions import ClientError

BLOCK_SETTINGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def _public_access_block(client, **params):
    """The four settings, all off when no configuration exists."""
    try:
        return client.get_public_access_block(**params)["PublicAccessBlockConfiguration"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchPublicAccessBlockConfiguration":
            return {name: False for name in BLOCK_SETTINGS}
        raise


@pytest.mark.control("EA-S3-01", severity="P1", frameworks={"FSBP": "S3.8, S3.1"})
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


@pytest.mark.control("EA-S3-05", severity="P2", frameworks={"FSBP": "S3.14"})
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
