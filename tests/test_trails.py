"""CloudTrail event selectors as the audit-trail controls judge them, each form put to moto
(with AWS's selector behaviour, demo/motoext.py) and read back through GetEventSelectors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from edgeaudit.checks import trails
from edgeaudit.demo import motoext

BUCKET = "site-origin"
OBJECTS = f"arn:aws:s3:::{BUCKET}/"
WRITES, READS = set(trails.OBJECT_EVENTS[trails.WRITE]), set(trails.OBJECT_EVENTS[trails.READ])
S3_DATA = [{"Field": "eventCategory", "Equals": ["Data"]}, {"Field": "resources.type", "Equals": ["AWS::S3::Object"]}]


@pytest.fixture(scope="module")
def cloudtrail() -> Iterator[Any]:
    motoext.install()
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="trail-logs")
        yield boto3.client("cloudtrail", region_name="us-east-1")


def _answer(cloudtrail: Any, name: str, **selectors: Any) -> dict[str, Any]:
    cloudtrail.create_trail(Name=name, S3BucketName="trail-logs", IsMultiRegionTrail=True)
    if selectors:
        cloudtrail.put_event_selectors(TrailName=name, **selectors)
    return cloudtrail.get_event_selectors(TrailName=name)


def _advanced(*fields: dict[str, Any]) -> dict[str, Any]:
    return {"AdvancedEventSelectors": [{"Name": "s", "FieldSelectors": list(fields)}]}


def test_a_new_trail_records_every_management_event_as_on_aws(cloudtrail):
    answer = _answer(cloudtrail, "default")
    assert answer["EventSelectors"] == [{"ReadWriteType": "All", "IncludeManagementEvents": True,
                                         "DataResources": [], "ExcludeManagementEventSources": []}]
    assert trails.management_events(answer) == {trails.READ, trails.WRITE}
    assert trails.recorded_object_events(answer, BUCKET) == set()


@pytest.mark.parametrize(("name", "selectors", "kinds"), [
    ("no-management", {"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": False}]}, set()),
    ("management-writes", {"EventSelectors": [{"ReadWriteType": "WriteOnly"}]}, {trails.WRITE}),
    ("management-no-kms", {"EventSelectors": [{"ReadWriteType": "All",
                                               "ExcludeManagementEventSources": ["kms.amazonaws.com"]}]}, set()),
    ("advanced-management", _advanced({"Field": "eventCategory", "Equals": ["Management"]}),
     {trails.READ, trails.WRITE}),
    ("advanced-management-reads", _advanced({"Field": "eventCategory", "Equals": ["Management"]},
                                            {"Field": "readOnly", "Equals": ["true"]}), {trails.READ}),
    ("advanced-data-only", _advanced(*S3_DATA), set()),
])
def test_management_events_of_each_selector_form(cloudtrail, name, selectors, kinds):
    assert trails.management_events(_answer(cloudtrail, name, **selectors)) == kinds


def test_basic_selectors_replace_advanced_ones(cloudtrail):
    _answer(cloudtrail, "replaced", **_advanced(*S3_DATA))
    cloudtrail.put_event_selectors(TrailName="replaced", EventSelectors=[{"ReadWriteType": "ReadOnly"}])
    answer = cloudtrail.get_event_selectors(TrailName="replaced")
    assert not answer.get("AdvancedEventSelectors")
    assert trails.management_events(answer) == {trails.READ}


@pytest.mark.parametrize(("name", "selectors", "recorded"), [
    ("basic-all", {"EventSelectors": [{"ReadWriteType": "All", "DataResources": [
        {"Type": "AWS::S3::Object", "Values": [OBJECTS]}]}]}, WRITES | READS),
    ("basic-every-bucket", {"EventSelectors": [{"ReadWriteType": "WriteOnly", "DataResources": [
        {"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}]}]}, WRITES),
    ("basic-prefix", {"EventSelectors": [{"ReadWriteType": "All", "DataResources": [
        {"Type": "AWS::S3::Object", "Values": [OBJECTS + "assets/"]}]}]}, set()),
    ("basic-other-bucket", {"EventSelectors": [{"ReadWriteType": "All", "DataResources": [
        {"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::other/"]}]}]}, set()),
    ("advanced-every-bucket", _advanced(*S3_DATA), WRITES | READS),
    ("advanced-bucket", _advanced(*S3_DATA, {"Field": "resources.ARN", "StartsWith": [OBJECTS]}), WRITES | READS),
    ("advanced-writes", _advanced(*S3_DATA, {"Field": "readOnly", "Equals": ["false"]}), WRITES),
    ("advanced-reads", _advanced(*S3_DATA, {"Field": "readOnly", "Equals": ["true"]}), READS),
    ("advanced-get-object", _advanced(*S3_DATA, {"Field": "eventName", "Equals": ["GetObject"]}), {"GetObject"}),
    ("advanced-put-delete", _advanced(*S3_DATA, {"Field": "eventName", "Equals": ["PutObject", "DeleteObject"]}),
     {"PutObject", "DeleteObject"}),
    ("advanced-not-get", _advanced(*S3_DATA, {"Field": "eventName", "NotStartsWith": ["Get", "Head"]}),
     WRITES | READS - {n for n in READS if n.startswith(("Get", "Head"))}),
    ("advanced-other-bucket", _advanced(*S3_DATA, {"Field": "resources.ARN", "StartsWith": ["arn:aws:s3:::other/"]}),
     set()),
    ("advanced-prefix", _advanced(*S3_DATA, {"Field": "resources.ARN", "StartsWith": [OBJECTS + "assets/"]}), set()),
    ("advanced-one-object", _advanced(*S3_DATA, {"Field": "resources.ARN", "Equals": [OBJECTS + "index.html"]}),
     set()),
    ("advanced-bar-a-prefix", _advanced(*S3_DATA, {"Field": "resources.ARN", "NotStartsWith": [OBJECTS + "tmp/"]}),
     set()),
    ("advanced-bar-other-bucket", _advanced(*S3_DATA, {"Field": "resources.ARN",
                                                       "NotStartsWith": ["arn:aws:s3:::other/"]}), WRITES | READS),
    ("advanced-bar-suffix", _advanced(*S3_DATA, {"Field": "resources.ARN", "NotEndsWith": [".log"]}), set()),
    ("advanced-one-caller", _advanced(*S3_DATA, {"Field": "userIdentity.arn", "StartsWith": ["arn:aws:iam::1:"]}),
     set()),
    ("advanced-lambda", _advanced({"Field": "eventCategory", "Equals": ["Data"]},
                                  {"Field": "resources.type", "Equals": ["AWS::Lambda::Function"]}), set()),
])
def test_object_events_of_each_selector_form(cloudtrail, name, selectors, recorded):
    assert trails.recorded_object_events(_answer(cloudtrail, name, **selectors), BUCKET) == recorded
