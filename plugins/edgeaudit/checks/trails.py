"""CloudTrail, as the audit-trail controls read it: which trails cover a region, whether they are
logging, and which events their selectors record: management events (read and write), and the
object-level events (data events) of a bucket.

A trail's status and selectors are read in its home region, where CloudTrail keeps them. Basic
selectors (EventSelectors) and advanced ones (AdvancedEventSelectors, whose field selectors are
ANDed; Equals/StartsWith/EndsWith values ORed, NotEquals/NotStartsWith/NotEndsWith all applying)
are both judged. A selector counts only for what it records on every object of the bucket: a
prefix, an eventName list or a filter on a field we cannot evaluate makes it partial.
"""

from __future__ import annotations

from typing import Any

READ, WRITE = "read", "write"
_READ_WRITE = {"All": {READ, WRITE}, "ReadOnly": {READ}, "WriteOnly": {WRITE}}
# The object-level S3 API calls a trail records as data events, by kind.
OBJECT_EVENTS = {
    WRITE: ("PutObject", "DeleteObject", "DeleteObjects", "CopyObject", "CreateMultipartUpload", "UploadPart",
            "UploadPartCopy", "CompleteMultipartUpload", "AbortMultipartUpload", "PutObjectAcl",
            "PutObjectTagging", "DeleteObjectTagging", "PutObjectRetention", "PutObjectLegalHold",
            "RestoreObject"),
    READ: ("GetObject", "HeadObject", "GetObjectAcl", "GetObjectTagging", "GetObjectAttributes",
           "GetObjectRetention", "GetObjectLegalHold", "ListParts", "SelectObjectContent"),
}
_POSITIVE = {"Equals": str.__eq__, "StartsWith": str.startswith, "EndsWith": str.endswith}
_NEGATIVE = {"NotEquals": str.__eq__, "NotStartsWith": str.startswith, "NotEndsWith": str.endswith}


def trails(aws: Any, region: str) -> list[dict[str, Any]]:
    """The trails that apply to `region`: its own and every multi-region trail."""
    return aws.client("cloudtrail", region).describe_trails(includeShadowTrails=True)["trailList"]


def is_logging(aws: Any, trail: dict[str, Any]) -> bool:
    return bool(aws.client("cloudtrail", trail["HomeRegion"]).get_trail_status(Name=trail["TrailARN"])["IsLogging"])


def selectors(aws: Any, trail: dict[str, Any]) -> dict[str, Any]:
    """The trail's GetEventSelectors answer (basic or advanced selectors)."""
    return aws.client("cloudtrail", trail["HomeRegion"]).get_event_selectors(TrailName=trail["TrailARN"])


def _matches(field: dict[str, Any], value: str) -> bool:
    """One field selector's verdict on one value."""
    positive = [(test, v) for op, test in _POSITIVE.items() for v in field.get(op) or []]
    if positive and not any(test(value, v) for test, v in positive):
        return False
    return not any(test(value, v) for op, test in _NEGATIVE.items() for v in field.get(op) or [])


def _every_object(field: dict[str, Any], bucket: str) -> bool:
    """A resources.ARN field selector takes every object of the bucket (not some of them)."""
    objects = f"arn:aws:s3:::{bucket}/"
    if any(field.get(op) for op in _POSITIVE) and not any(objects.startswith(p) for p in field.get("StartsWith") or []):
        return False
    if any(v.startswith(objects) for v in field.get("NotEquals") or []) or field.get("NotEndsWith"):
        return False
    return not any(p.startswith(objects) or objects.startswith(p) for p in field.get("NotStartsWith") or [])


def _advanced(selector: dict[str, Any], known: dict[str, str], bucket: str | None = None) -> bool:
    """An advanced selector records the event whose fields are `known` (every object of `bucket`
    when given); a field it filters on that the event does not name makes it partial."""
    for field in selector.get("FieldSelectors", []):
        name = field["Field"]
        if name == "resources.ARN" and bucket is not None:
            if not _every_object(field, bucket):
                return False
        elif name not in known or not _matches(field, known[name]):
            return False
    return True


def management_events(answer: dict[str, Any]) -> set[str]:
    """The kinds of management events ("read", "write") the selectors record, all of them
    (a selector that leaves out event sources counts for none)."""
    kinds: set[str] = set()
    for selector in answer.get("EventSelectors") or []:
        if selector.get("IncludeManagementEvents", True) and not selector.get("ExcludeManagementEventSources"):
            kinds |= _READ_WRITE.get(selector.get("ReadWriteType", "All"), set())
    for selector in answer.get("AdvancedEventSelectors") or []:
        for kind, read_only in ((READ, "true"), (WRITE, "false")):
            if _advanced(selector, {"eventCategory": "Management", "readOnly": read_only}):
                kinds.add(kind)
    return kinds


def _basic_object_events(selector: dict[str, Any], bucket: str) -> set[str]:
    """Every bucket ("arn:aws:s3", "arn:aws:s3:::") or all of this one ("arn:aws:s3:::<bucket>/")."""
    covering = {"arn:aws:s3", "arn:aws:s3:::", f"arn:aws:s3:::{bucket}/"}
    for resource in selector.get("DataResources") or []:
        if resource.get("Type") == "AWS::S3::Object" and covering & set(resource.get("Values") or []):
            kinds = _READ_WRITE.get(selector.get("ReadWriteType", "All"), set())
            return {name for kind in kinds for name in OBJECT_EVENTS[kind]}
    return set()


def _advanced_object_events(selector: dict[str, Any], bucket: str) -> set[str]:
    return {name for kind, names in OBJECT_EVENTS.items() for name in names
            if _advanced(selector, {"eventCategory": "Data", "resources.type": "AWS::S3::Object",
                                    "eventSource": "s3.amazonaws.com", "eventName": name,
                                    "readOnly": "true" if kind == READ else "false"}, bucket)}


def recorded_object_events(answer: dict[str, Any], bucket: str) -> set[str]:
    """The object-level API calls the selectors record on every object of `bucket`."""
    names: set[str] = set()
    for selector in answer.get("EventSelectors") or []:
        names |= _basic_object_events(selector, bucket)
    for selector in answer.get("AdvancedEventSelectors") or []:
        names |= _advanced_object_events(selector, bucket)
    return names


def object_events(aws: Any, bucket: str, region: str) -> dict[str, dict[str, Any]]:
    """Trail name -> the kinds of object events of `bucket` it records in full ("read", "write")
    and the calls of each kind it leaves out, for every logging trail that records any."""
    found = {}
    for trail in trails(aws, region):
        names = recorded_object_events(selectors(aws, trail), bucket)
        if names and is_logging(aws, trail):
            missing = {kind: sorted(set(calls) - names) for kind, calls in OBJECT_EVENTS.items()}
            found[trail["Name"]] = {"kinds": sorted(kind for kind in OBJECT_EVENTS if not missing[kind]),
                                    "left_out": {kind: calls for kind, calls in missing.items() if calls}}
    return found


def unlogged_bucket_events(aws: Any, target: Any, evidence: Any) -> dict[str, dict[str, Any]] | None:
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
