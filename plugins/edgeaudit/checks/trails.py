"""CloudTrail, as the audit-trail controls read it: which trails cover a region, whether they are
logging, and which of them record the object-level events of a bucket (data events).

A trail's status and selectors are read in its home region, where CloudTrail keeps them.
"""

from __future__ import annotations

from typing import Any

READ, WRITE = "read", "write"
_READ_WRITE = {"All": {READ, WRITE}, "ReadOnly": {READ}, "WriteOnly": {WRITE}}


def trails(aws: Any, region: str) -> list[dict[str, Any]]:
    """The trails that apply to `region`: its own and every multi-region trail."""
    return aws.client("cloudtrail", region).describe_trails(includeShadowTrails=True)["trailList"]


def is_logging(aws: Any, trail: dict[str, Any]) -> bool:
    return bool(aws.client("cloudtrail", trail["HomeRegion"]).get_trail_status(Name=trail["TrailARN"])["IsLogging"])


def _basic_events(selector: dict[str, Any], bucket: str) -> set[str]:
    """Every bucket ("arn:aws:s3", "arn:aws:s3:::") or this one ("arn:aws:s3:::<bucket>/")."""
    kinds: set[str] = set()
    covering = ("arn:aws:s3", "arn:aws:s3:::", f"arn:aws:s3:::{bucket}/")
    for resource in selector.get("DataResources", []):
        if resource.get("Type") == "AWS::S3::Object" and set(resource.get("Values", [])) & set(covering):
            kinds |= _READ_WRITE.get(selector.get("ReadWriteType", "All"), set())
    return kinds


def _advanced_events(selector: dict[str, Any], bucket: str) -> set[str]:
    fields = {f["Field"]: f for f in selector.get("FieldSelectors", [])}

    def equals(name: str) -> list[str] | None:
        return fields[name].get("Equals") if name in fields else None

    if equals("eventCategory") != ["Data"] or equals("resources.type") != ["AWS::S3::Object"]:
        return set()
    arn = fields.get("resources.ARN")
    if arn is not None and f"arn:aws:s3:::{bucket}/" not in arn.get("StartsWith", []) + arn.get("Equals", []):
        return set()
    read_only = equals("readOnly")
    return {READ} if read_only == ["true"] else {WRITE} if read_only == ["false"] else {READ, WRITE}


def object_events(aws: Any, bucket: str, region: str) -> dict[str, list[str]]:
    """Trail name -> the kinds of object events ("read", "write") of `bucket` it records, for
    every logging trail that records any (events of every bucket included)."""
    found = {}
    for trail in trails(aws, region):
        selectors = aws.client("cloudtrail", trail["HomeRegion"]).get_event_selectors(TrailName=trail["TrailARN"])
        kinds: set[str] = set()
        for selector in selectors.get("EventSelectors") or []:
            kinds |= _basic_events(selector, bucket)
        for selector in selectors.get("AdvancedEventSelectors") or []:
            kinds |= _advanced_events(selector, bucket)
        if kinds and is_logging(aws, trail):
            found[trail["Name"]] = sorted(kinds)
    return found


def unlogged_bucket_events(aws: Any, target: Any, evidence: Any) -> dict[str, list[str]] | None:
    """What records the target bucket's requests, as evidence: None when server access logging
    is on (it records every request); else the logging trails' object events of the bucket,
    for the caller to judge (EA-S3-07 wants reads recorded, EA-IAM-06 writes)."""
    evidence.resource = f"s3://{target.bucket}"
    logging = aws.s3.get_bucket_logging(Bucket=target.bucket).get("LoggingEnabled")
    evidence.record("server_access_logging", logging)
    if logging:
        return None
    events = object_events(aws, target.bucket, target.region or "us-east-1")
    evidence.record("data_event_trails", events)
    return events
