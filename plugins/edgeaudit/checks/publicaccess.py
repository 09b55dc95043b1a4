"""Who outside can reach the origin bucket, beyond its policy: ACL grants of the bucket and of a
sample of its objects, and IAM Access Analyzer's second opinion on the bucket policy.

An object grant to AllUsers or AuthenticatedUsers is as public as a bucket grant, so object ACLs
are read too; every object would cost one call each, so a sample spread evenly over the sorted
keys is read and the evidence says how many. Access Analyzer (CheckNoPublicAccess) judges the
policy with AWS's own reasoning; where it cannot answer (no permission, not offered by the
endpoint, a fault) the control's own analysis decides alone and the evidence says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions

from edgeaudit.errors import NotEvaluated

PUBLIC_GROUPS = ("http://acs.amazonaws.com/groups/global/AllUsers",
                 "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")
S3_BUCKET = "AWS::S3::Bucket"


def public_acl_grants(grants: list[dict[str, Any]]) -> list[str]:
    """"<PERMISSION> to <group URI>" for each grant of an ACL to a public group."""
    return [f"{g['Permission']} to {g['Grantee'].get('URI')}" for g in grants
            if g.get("Grantee", {}).get("URI") in PUBLIC_GROUPS]


def sample(keys: list[str], size: int) -> list[str]:
    """`size` keys spread evenly over the sorted keys (all of them when there are fewer)."""
    keys = sorted(keys)
    if len(keys) <= size:
        return keys
    return [keys[i * len(keys) // size] for i in range(size)]


def public_object_grants(s3: Any, bucket: str, keys: list[str]) -> dict[str, list[str]]:
    """Key -> its public ACL grants, for the keys whose ACL grants a public group anything."""
    found = {}
    for key in keys:
        grants = public_acl_grants(s3.get_object_acl(Bucket=bucket, Key=key)["Grants"])
        if grants:
            found[key] = grants
    return found


@dataclass
class Opinion:
    """Access Analyzer's answer on a policy: asked or not (and why), PASS or FAIL, its reasons."""

    asked: bool
    result: str = ""
    reasons: list[str] = field(default_factory=list)
    why_not: str = ""

    def summary(self) -> str:
        if not self.asked:
            return f"not asked: {self.why_not}"
        return self.result + (f" ({'; '.join(self.reasons)})" if self.reasons else "")


def ask_access_analyzer(client: Any, document: str | None) -> Opinion:
    """CheckNoPublicAccess on the bucket policy; an error becomes `asked=False` with its cause."""
    if document is None:
        return Opinion(False, why_not="the bucket has no policy")
    try:
        answer = client.check_no_public_access(policyDocument=document, resourceType=S3_BUCKET)
    except NotEvaluated as exc:
        return Opinion(False, why_not=str(exc))
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        detail = error.get("Message", "") if "<html" not in error.get("Message", "").lower() else ""
        return Opinion(False, why_not=f"accessanalyzer:CheckNoPublicAccess answered {error.get('Code') or status}"
                                      + (f" ({detail})" if detail else ""))
    except botocore.exceptions.BotoCoreError as exc:
        return Opinion(False, why_not=f"accessanalyzer:CheckNoPublicAccess failed: {exc}")
    reasons = [r.get("description", "") + (f" (statement {r['statementId']})" if r.get("statementId") else "")
               for r in answer.get("reasons", [])]
    return Opinion(True, answer.get("result", ""), [r for r in reasons if r] or [answer.get("message", "")])


def disagreement(policy_offenders: list[str], opinion: Opinion) -> str | None:
    """Why the two verdicts on the bucket policy differ, or None when they agree (or it was not asked)."""
    if not opinion.asked:
        return None
    analyzer_public = opinion.result != "PASS"
    if analyzer_public == bool(policy_offenders):
        return None
    own = "; ".join(policy_offenders) if policy_offenders else "no statement grants public access"
    return (f"Access Analyzer and this control disagree on the bucket policy: Access Analyzer says "
            f"{opinion.summary()}, this control says {own}")
