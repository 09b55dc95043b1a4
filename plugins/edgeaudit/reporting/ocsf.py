"""The report as OCSF Detection Findings (`<stem>.ocsf.json`): what Prowler writes and what AWS
Security Hub, Security Lake and SIEMs ingest, so a run's results can join a security team's
other findings without a converter.

One finding per evaluated result (OCSF 1.1.0, class Detection Finding 2004, activity Create),
as Prowler writes one per check result. The outcome maps onto OCSF's enums:

| outcome | status_code | status_id (finding status) | severity_id |
|---------|-------------|----------------------------|-------------|
| passed  | PASS        | 4 Resolved                 | 1 Informational |
| warned  | WARN        | 1 New                      | 2 Low |
| failed  | FAIL        | 1 New                      | the control's |
| error   | ERROR       | 99 Other (Not Evaluated)   | 0 Unknown |
| waived  | FAIL        | 3 Suppressed               | the control's |

Why: a pass is a control finding that holds, which Security Hub shows as RESOLVED and
INFORMATIONAL; a warning is below its failure threshold but near it ("Low: the user decides if
action is needed"); a failure keeps the control's incident level; a result that could not be
evaluated found nothing: no finding status fits it (it is neither New nor Resolved), so it is
OCSF's Other with status "Not Evaluated" and status_detail "not evaluated: <why>", and its
severity is Unknown ("the event/finding severity is unknown"), not the control's (an unreachable
P1 site is no Critical finding) nor Informational ("no action required": someone must still fix
the access). The control's own severity stays in unmapped.control_severity. It is not a FAIL
either, and Prowler's MANUAL would read as one of our manual (attested) controls; a waived
failure is a FAIL someone accepted, which OCSF calls Suppressed.
Skipped results (not applicable) were not evaluated and are not findings: they are left out.
The incident levels map P1 -> 5 Critical (all hands, action now, broad scope), P2 -> 4 High
(action now), P3 -> 3 Medium, P4 -> 2 Low.

Detection Finding has no `compliance` attribute (that is Compliance Finding's, class 2003), so
the framework ids go to `unmapped.compliance` ({standards, requirements}), as Prowler does; the
class stays valid for strict consumers.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Iterator
from urllib.parse import urlsplit

from edgeaudit.redact import redact
from edgeaudit.reporting.jsonparts import array_parts

OCSF_VERSION = "1.1.0"
CLASS_UID, CATEGORY_UID, ACTIVITY_CREATE = 2004, 2, 1
SEVERITY = {"P1": (5, "Critical"), "P2": (4, "High"), "P3": (3, "Medium"), "P4": (2, "Low")}
INFORMATIONAL, LOW, UNKNOWN_SEVERITY = (1, "Informational"), (2, "Low"), (0, "Unknown")
# outcome -> (status_code, (status_id, status)); skipped is not a finding
STATUS = {
    "passed": ("PASS", (4, "Resolved")),
    "warned": ("WARN", (1, "New")),
    "failed": ("FAIL", (1, "New")),
    "error": ("ERROR", (99, "Not Evaluated")),
    "waived": ("FAIL", (3, "Suppressed")),
}
AWS_ACCOUNT_TYPE = (10, "AWS Account")
# (service, resource type in the ARN) -> CloudFormation-style type, as Security Hub names resources
ARN_TYPES = {("s3", ""): "AWS::S3::Bucket", ("cloudfront", "distribution"): "AWS::CloudFront::Distribution",
             ("acm", "certificate"): "AWS::ACM::Certificate", ("wafv2", "global"): "AWS::WAFv2::WebACL",
             ("wafv2", "regional"): "AWS::WAFv2::WebACL", ("iam", "role"): "AWS::IAM::Role",
             ("cloudformation", "stack"): "AWS::CloudFormation::Stack",
             ("route53", "hostedzone"): "AWS::Route53::HostedZone",
             ("cloudtrail", "trail"): "AWS::CloudTrail::Trail", ("lambda", "function"): "AWS::Lambda::Function"}


def finding_uid(run_id: str, control: str, target: str) -> str:
    """Stable for one run: the same in each shard's view and in the merged report."""
    return f"edgeaudit:{run_id}:{control}:{target}"


def _ms(iso_time: str) -> int:
    return int(dt.datetime.fromisoformat(iso_time.replace("Z", "+00:00")).timestamp() * 1000)


def _resource(text: str, account: str | None, target: str) -> dict[str, Any]:
    """One OCSF resource from what a control named: an ARN, s3://bucket, cloudfront:distribution/ID
    or a URL keep their identity; anything else is named as the control named it."""
    text = text.strip()
    bucket = re.fullmatch(r"s3://([^/\s]+)/?", text)
    distribution = re.fullmatch(r"cloudfront:distribution/(\w+)", text)
    if bucket:
        text = f"arn:aws:s3:::{bucket.group(1)}"
    elif distribution and account:
        text = f"arn:aws:cloudfront::{account}:distribution/{distribution.group(1)}"
    arn = text.split(":", 5)
    if text.startswith("arn:") and len(arn) == 6:
        service, region, rest = arn[2], arn[3], arn[5]
        path = re.split(r"[/:]", rest)  # "distribution/E123" -> type "distribution"; a bucket has none
        found = {"uid": text, "type": ARN_TYPES.get((service, path[0] if len(path) > 1 else ""), f"AWS::{service}"),
                 "name": path[-1]}
        if region:
            found["region"] = region
        return found
    if distribution:
        return {"uid": text, "type": "AWS::CloudFront::Distribution", "name": distribution.group(1)}
    if text.startswith(("http://", "https://")):
        return {"uid": text, "type": "URL", "name": urlsplit(text).hostname or text}
    return {"uid": text or target, "type": "Other", "name": target}


def _compliance(frameworks: dict[str, Any]) -> dict[str, list[str]]:
    """{"FSBP": "S3.8, S3.1"} -> standards ["FSBP"], requirements ["FSBP S3.8", "FSBP S3.1"]."""
    requirements = [f"{name} {part.strip()}" for name, ids in frameworks.items()
                    for part in str(ids).split(",") if part.strip()]
    return {"standards": sorted(frameworks), "requirements": requirements}


def finding(result: dict[str, Any], run: dict[str, Any]) -> dict[str, Any] | None:
    """The Detection Finding of one result, or None for a result that was not evaluated (skipped)."""
    outcome = result["outcome"]
    if outcome not in STATUS:
        return None
    status_code, (status_id, status) = STATUS[outcome]
    severity_id, severity = (INFORMATIONAL if outcome == "passed" else LOW if outcome == "warned"
                             else UNKNOWN_SEVERITY if outcome == "error"
                             else SEVERITY.get(result["severity"], UNKNOWN_SEVERITY))
    account = run.get("aws_account")
    time = _ms(run["finished"])
    detail = result["message"] or result["title"]
    if outcome == "error":
        detail = f"not evaluated: {detail}"
    waiver = result.get("waiver")
    if outcome == "waived" and waiver:
        detail = f"waived until {waiver.get('expires')} ({waiver.get('reason', '')}): {detail}"
    info: dict[str, Any] = {
        "uid": finding_uid(run.get("run_id") or run["started"], result["control"], result["target"]),
        "title": f"{result['control']} {result['title']}", "desc": result["title"],
        "types": list(result.get("categories") or []) or ["edgeaudit"], "created_time": time,
    }
    if result.get("failing_since"):
        info["first_seen_time"] = _ms(result["failing_since"])
    resources = [_resource(part, account, result["target"]) for part in (result["resource"] or "").split(" -> ")]
    cloud: dict[str, Any] = {"provider": "AWS"}
    if account:
        # name is required by Prowler's models (py-ocsf-models): the account's alias, else its id
        cloud["account"] = {"uid": account, "name": run.get("aws_account_alias") or account,
                            "type_id": AWS_ACCOUNT_TYPE[0],
                            "type": AWS_ACCOUNT_TYPE[1]}
    regions = [r["region"] for r in resources if r.get("region")]
    if regions:
        cloud["region"] = regions[0]
    document: dict[str, Any] = {
        "class_uid": CLASS_UID, "class_name": "Detection Finding",
        "category_uid": CATEGORY_UID, "category_name": "Findings",
        "activity_id": ACTIVITY_CREATE, "activity_name": "Create",
        "type_uid": CLASS_UID * 100 + ACTIVITY_CREATE, "type_name": "Detection Finding: Create",
        "time": time, "severity_id": severity_id, "severity": severity,
        "status_id": status_id, "status": status, "status_code": status_code, "status_detail": detail,
        "message": detail, "finding_info": info,
        "metadata": {"version": OCSF_VERSION, "event_code": result["control"], "profiles": ["cloud"],
                     "correlation_uid": run.get("run_id") or run["started"],
                     "product": {"name": "edgeaudit", "vendor_name": "edgeaudit", "uid": "edgeaudit",
                                 "version": run.get("tool_version", "")}},
        "cloud": cloud, "resources": resources,
        "unmapped": {"outcome": outcome, "control_severity": result["severity"], "target": result["target"],
                     "nodeid": result["nodeid"], "evidence": result.get("evidence", {}),
                     "margins": result.get("margins", {}), "frameworks": result.get("frameworks", {}),
                     "waiver": waiver, "demo": bool(run.get("demo"))},
    }
    if result.get("frameworks"):
        document["unmapped"]["compliance"] = _compliance(result["frameworks"])
    if result.get("remediation"):
        document["remediation"] = {"desc": result["remediation"]}
    return document


def _evaluated(report: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The report's evaluated results as Detection Findings, one at a time."""
    found = (finding(result, report["run"]) for result in report["results"])
    return (f for f in found if f is not None)


def findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's evaluated results as Detection Findings, redacted."""
    return redact(list(_evaluated(report)))


def ocsf_parts(report: dict[str, Any]) -> Iterator[str]:
    """<stem>.ocsf.json: a JSON array of findings, as Prowler's json-ocsf output is, made one
    redacted finding at a time (a fleet's findings are many)."""
    yield from array_parts(_evaluated(report))
    yield "\n"
