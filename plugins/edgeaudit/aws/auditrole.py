"""The audit role as code: the IAM policy the suite needs, built from what the suite reads, and
the deployable forms of it (the README's policy, a CloudFormation template, the policy file of
the Terraform module under deploy/).

The read statement grants the IAM action of every read the controls declare (`reads=` on their
control markers), of the preflight's probes and of the reads made ahead, and of the few reads
the suite makes outside any control's declaration (OUTSIDE_CONTROLS, each with its reason), and
the actions some reads imply (IMPLIED). A read the guard lets through that none of these places
is a test failure (tests/test_audit_role.py), so the policy cannot silently fall behind the suite.
The optional scratch statements let the disaster-recovery drills write under `_edgeaudit/` of
one scratch bucket, and nowhere else.

Without a config the read statement is account-wide (`Resource: "*"`: every object of every
bucket). With one, `scoped_policy` names the resources: bucket reads on the config's buckets,
distribution reads on its distributions, stack reads on its stacks, health-check reads on the
health checks its targets name, other reads on their resource type, and `Resource: "*"` only
for the reads AWS gives no resource type.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from edgeaudit.aws import guard, prefetch, preflight
from edgeaudit.aws.clients import iam_action
from edgeaudit.aws.scratch import ROOT
from edgeaudit.rules import catalog
from edgeaudit.rules.config import Config
from edgeaudit.rules.location import is_s3, split

READ_SID = "EdgeauditReadOnly"
SCRATCH_SID = "EdgeauditDrillScratch"
SCRATCH_LIST_SID = "EdgeauditDrillScratchList"
# Reads the suite makes that no control declares: EA-DR-06's configuration snapshot
# (checks/drift.py) reads the distribution's origin access controls and origin request
# policies; EA-DR-02 asks the replica bucket's region (suites/test_dr.py); the archive of the
# report set ([report] archive, reporting/archive.py) reads the archive bucket's Object Lock
# configuration and each archived object's retention; the incident log ([incidents] log =
# "s3://...", checks/incident_log.py) is read with GetObject, whatever the controls declare.
OUTSIDE_CONTROLS = ("cloudfront:GetOriginAccessControl", "cloudfront:GetOriginRequestPolicy", "s3:GetBucketLocation",
                    "s3:GetObject", "s3:GetObjectLockConfiguration", "s3:GetObjectRetention")
# Reads botocore's credential providers make with the caller's own identity, before the audit
# role is in use (assuming it, a CI web identity, an SSO profile): the role needs none of them.
CREDENTIAL_READS = ("sts:AssumeRole", "sts:AssumeRoleWithWebIdentity", "sso:GetRoleCredentials", "sso-oidc:CreateToken")
# IAM actions a read needs besides the one its operation maps to: reading an object's earlier
# version (GetObject/HeadObject with a VersionId, and CopyObject from one, by the rollback check
# and the drills) needs s3:GetObjectVersion.
IMPLIED = ("s3:GetObjectVersion",)
# The Terraform module puts its scratch_bucket variable where this name stands.
TERRAFORM_BUCKET = "SCRATCH_BUCKET"
COMMAND = "edgeaudit audit-role"
CLOUDFORMATION_FILE = Path("deploy/cloudformation/edgeaudit-audit-role.yaml")
TERRAFORM_POLICY_FILE = Path("deploy/terraform/edgeaudit-audit-role/policy.json")
GITHUB_OIDC = "token.actions.githubusercontent.com"
# GitHub's OIDC certificate thumbprints (IAM no longer checks them for GitHub; older APIs ask for one)
GITHUB_THUMBPRINTS = ("6938fd4d98bab03faadb97b34396831e3780aea1", "1c58a3a8518e8759bf075b76b750d4f2df264fcd")


def suite_reads(folder: Path | None = None) -> set[str]:
    """Every "service:Operation" the suite reads with the audit role's identity."""
    declared = {read for control in catalog.controls(folder).values() for read in control.reads}
    probes = {f"{p.service}:{p.operation}" for p in preflight.PROBES}
    ahead = {read.name for read in prefetch.READS}
    return declared | probes | ahead | set(OUTSIDE_CONTROLS)


def read_actions(folder: Path | None = None) -> list[str]:
    """The read statement's IAM actions, sorted."""
    return sorted({iam_action(*read.split(":", 1)) for read in suite_reads(folder)} | set(IMPLIED))


def scratch_actions() -> list[str]:
    """What a drill does inside its scratch prefix (the guard's scratch operations), and reading
    its copies back."""
    writes = {iam_action("s3", operation) for operation in guard.SCRATCH_OPERATIONS}
    return sorted(writes | {iam_action("s3", "GetObject")})


def scratch_statements(bucket: str) -> list[dict[str, Any]]:
    """Writes under the scratch prefix only, and the listing of that prefix only."""
    return [
        {"Sid": SCRATCH_SID, "Effect": "Allow", "Action": scratch_actions(),
         "Resource": f"arn:aws:s3:::{bucket}/{ROOT}*"},
        {"Sid": SCRATCH_LIST_SID, "Effect": "Allow", "Action": ["s3:ListBucket"],
         "Resource": f"arn:aws:s3:::{bucket}",
         "Condition": {"StringLike": {"s3:prefix": f"{ROOT}*"}}},
    ]


def policy(scratch_bucket: str | None = None, folder: Path | None = None) -> dict[str, Any]:
    """The policy document: the read statement, and the scratch statements for `scratch_bucket`."""
    statements = [{"Sid": READ_SID, "Effect": "Allow", "Action": read_actions(folder), "Resource": "*"}]
    if scratch_bucket:
        statements += scratch_statements(scratch_bucket)
    return {"Version": "2012-10-17", "Statement": statements}


BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
ACCOUNT_WIDE_NOTE = ("this policy is account-wide (Resource \"*\": every bucket's objects, every distribution); "
                     "pass --config to scope it to the config's buckets and distributions")


def bucket_name_problem(name: str) -> str | None:
    """Why `name` is not one S3 bucket name (wildcards included), or None."""
    if not BUCKET_NAME.match(name) or ".." in name or re.match(r"^\d+\.\d+\.\d+\.\d+$", name):
        return (f"{name!r} is not an S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens, "
                "starting and ending with a letter or digit (no wildcards)")
    return None


# IAM action -> what it is granted on with a config: "bucket", "object", "distribution", "stack",
# "healthcheck" (the config's own), or its resource type's ARN pattern. Actions absent here have no resource
# type in AWS's service authorization reference (ListBuckets, DescribeTrails, GetMetricData, ...).
BUCKET, OBJECT, DISTRIBUTION, STACK, HEALTH_CHECK = "bucket", "object", "distribution", "stack", "healthcheck"
SCOPES = {
    **dict.fromkeys(("s3:GetBucketAcl", "s3:GetBucketLocation", "s3:GetBucketLogging",
                     "s3:GetBucketObjectLockConfiguration", "s3:GetBucketOwnershipControls", "s3:GetBucketPolicy",
                     "s3:GetBucketPublicAccessBlock", "s3:GetBucketVersioning", "s3:GetBucketWebsite",
                     "s3:GetEncryptionConfiguration", "s3:GetLifecycleConfiguration",
                     "s3:GetReplicationConfiguration", "s3:ListBucket", "s3:ListBucketVersions"), BUCKET),
    **dict.fromkeys(("s3:GetObject", "s3:GetObjectAcl", "s3:GetObjectVersion", "s3:GetObjectRetention"), OBJECT),
    **dict.fromkeys(("cloudfront:GetDistribution", "cloudfront:GetDistributionConfig", "cloudfront:GetInvalidation",
                     "cloudfront:ListInvalidations"), DISTRIBUTION),
    **dict.fromkeys(("cloudformation:DetectStackDrift", "cloudformation:DescribeStackResourceDrifts",
                     "cloudformation:ListStackResources"), STACK),
    "route53:GetHealthCheck": HEALTH_CHECK,
    "acm:DescribeCertificate": "arn:aws:acm:*:*:certificate/*",
    "budgets:ViewBudget": "arn:aws:budgets::*:budget/*",
    "cloudfront:GetCachePolicy": "arn:aws:cloudfront::*:cache-policy/*",
    "cloudfront:GetFunction": "arn:aws:cloudfront::*:function/*",
    "cloudfront:GetOriginAccessControl": "arn:aws:cloudfront::*:origin-access-control/*",
    "cloudfront:GetOriginRequestPolicy": "arn:aws:cloudfront::*:origin-request-policy/*",
    "cloudfront:GetResponseHeadersPolicy": "arn:aws:cloudfront::*:response-headers-policy/*",
    "cloudtrail:GetEventSelectors": "arn:aws:cloudtrail:*:*:trail/*",
    "cloudtrail:GetTrailStatus": "arn:aws:cloudtrail:*:*:trail/*",
    "iam:GetLoginProfile": "arn:aws:iam::*:user/*",
    "iam:ListAccessKeys": "arn:aws:iam::*:user/*",
    "iam:ListMFADevices": "arn:aws:iam::*:user/*",
    "iam:GetPolicy": "arn:aws:iam::*:policy/*",
    "iam:GetPolicyVersion": "arn:aws:iam::*:policy/*",
    "kms:DescribeKey": "arn:aws:kms:*:*:key/*",
    "kms:GetKeyPolicy": "arn:aws:kms:*:*:key/*",
    "route53:ListResourceRecordSets": "arn:aws:route53:::hostedzone/*",
    "wafv2:GetRuleGroup": "arn:aws:wafv2:*:*:global/rulegroup/*/*",
    "wafv2:GetWebACL": "arn:aws:wafv2:*:*:global/webacl/*/*",
}


def config_buckets(config: Config) -> list[str]:
    """Every bucket the config names: targets', replicas', scratch buckets, release manifests',
    the report history's and archive's, and the incident log's."""
    names = {name for t in config.targets for name in (t.bucket, t.replica_bucket, t.scratch_bucket) if name}
    locations = [t.release_manifest for t in config.targets] + [config.history, config.archive]
    locations.append(config.incidents.log if config.incidents else None)
    names |= {split(location)[0] for location in locations if location and is_s3(location)}
    return sorted(names)


def _sid(scope: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", scope.split(":")[-1] if scope.startswith("arn:") else scope)
    return READ_SID + "".join(w.capitalize() for w in words if w)


def scoped_policy(config: Config, folder: Path | None = None) -> dict[str, Any]:
    """The policy for the config's targets: each read on the resources it needs, not account-wide."""
    buckets = config_buckets(config)
    for name in buckets:
        problem = bucket_name_problem(name)
        if problem:
            raise ValueError(problem)
    resources = {
        BUCKET: [f"arn:aws:s3:::{b}" for b in buckets],
        OBJECT: [f"arn:aws:s3:::{b}/*" for b in buckets],
        DISTRIBUTION: sorted({f"arn:aws:cloudfront::*:distribution/{t.distribution_id}" for t in config.targets}),
        STACK: sorted({f"arn:aws:cloudformation:*:*:stack/{t.stack_name}/*" for t in config.targets if t.stack_name}),
        HEALTH_CHECK: sorted({f"arn:aws:route53:::healthcheck/{t.health_check_id}" for t in config.targets
                              if t.health_check_id}),
    }
    grouped: dict[str, list[str]] = {}
    for action in read_actions(folder):
        scope = SCOPES.get(action, "*")
        if scope == STACK and not resources[STACK]:
            continue  # no target has a stack: EA-DR-06 has nothing to read
        if scope == HEALTH_CHECK and not resources[HEALTH_CHECK]:
            continue  # no target names a health check: EA-MET-02 reads CloudFront's metrics only
        grouped.setdefault(scope, []).append(action)
    statements = []
    for scope, actions in grouped.items():
        resource: Any = resources.get(scope, scope)
        statements.append({"Sid": READ_SID + "AccountLevel" if scope == "*" else _sid(scope), "Effect": "Allow",
                           "Action": actions, "Resource": resource})
    scratch = sorted({t.scratch_bucket for t in config.targets if t.scratch_bucket})
    for statement in scratch_statements(TERRAFORM_BUCKET) if scratch else []:
        statement["Resource"] = [statement["Resource"].replace(TERRAFORM_BUCKET, b) for b in scratch]
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def policy_json(scratch_bucket: str | None = None, folder: Path | None = None) -> str:
    """The policy document as the README and `--format policy` show it."""
    return json.dumps(policy(scratch_bucket, folder), indent=2) + "\n"


def terraform_policy(folder: Path | None = None) -> str:
    """deploy/terraform/edgeaudit-audit-role/policy.json: the module replaces TERRAFORM_BUCKET
    with its scratch_bucket, or leaves the scratch statements out."""
    return policy_json(TERRAFORM_BUCKET, folder)


# --- CloudFormation ------------------------------------------------------------------------------

class Tag:
    """A CloudFormation short-form function in YAML: !Ref X, !Sub "...", !If [...]."""

    def __init__(self, name: str, value: Any) -> None:
        self.name, self.value = name, value


def _ref(name: str) -> Tag:
    return Tag("Ref", name)


def _sub(text: str) -> Tag:
    return Tag("Sub", text)


def _if(condition: str, then: Any, otherwise: Any) -> Tag:
    return Tag("If", [condition, then, otherwise])


def _not_empty(parameter: str) -> Tag:
    return Tag("Not", [Tag("Equals", [_ref(parameter), ""])])


NO_VALUE = _ref("AWS::NoValue")


def _partitioned(resource: Any) -> Any:
    """A policy's Resource with the partition of the stack's account (arn:aws-cn:..., ...)."""
    if isinstance(resource, list):
        return [_partitioned(item) for item in resource]
    return _sub(resource.replace("arn:aws:", "arn:${AWS::Partition}:")) if resource.startswith("arn:aws:") else resource


def cloudformation_template(folder: Path | None = None, config: Config | None = None) -> dict[str, Any]:
    """The role and its managed policy; the scratch statements and each trust are conditional.
    With a config, the policy is scoped to it (scoped_policy) and its scratch buckets are the
    config's: the template has no ScratchBucket parameter then."""
    if config is not None:
        statements: list[Any] = [dict(s, Resource=_partitioned(s["Resource"]))
                                 for s in scoped_policy(config, folder)["Statement"]]
    else:
        scratch = [dict(s, Resource=_partitioned(s["Resource"].replace(TERRAFORM_BUCKET, "${ScratchBucket}")))
                   for s in scratch_statements(TERRAFORM_BUCKET)]
        statements = [policy(folder=folder)["Statement"][0], *(_if("HasScratchBucket", s, NO_VALUE) for s in scratch)]
    github_provider = _if("CreateGitHubOidcProvider", _ref("GitHubOidcProvider"),
                          _if("HasGitHubOidcProviderArn", _ref("GitHubOidcProviderArn"),
                              _sub(f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:oidc-provider/{GITHUB_OIDC}")))
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "edgeaudit's read-only audit role: the reads the controls declare, and (with "
                       "ScratchBucket) the disaster-recovery drills' writes under _edgeaudit/ of that bucket only",
        "Parameters": {
            "RoleName": {"Type": "String", "Default": "edgeaudit-audit", "Description": "name of the role"},
            "ScratchBucket": {"Type": "String", "Default": "", "AllowedPattern": "^$|^(?!.*[.][.])[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
                              "Description": "the targets' scratch_bucket for pytest -m dr (empty: no drill writes)"},
            "TrustedPrincipalArn": {"Type": "String", "Default": "",
                                    "Description": "who may assume the role (an IAM role or user ARN); empty: "
                                                   "this account's IAM identities, unless GitHubRepository is set"},
            "GitHubRepository": {"Type": "String", "Default": "", "AllowedPattern": "^$|^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$",
                                 "Description": "owner/repo whose GitHub Actions workflows may assume the role (OIDC)"},
            "GitHubOidcProviderArn": {"Type": "String", "Default": "",
                                      "Description": "the account's IAM OIDC provider for GitHub (empty: the one "
                                                     f"named {GITHUB_OIDC} in this account)"},
            "CreateGitHubOidcProvider": {"Type": "String", "Default": "false", "AllowedValues": ["true", "false"],
                                         "Description": "create the GitHub OIDC provider (an account holds one)"},
        },
        "Conditions": {
            "HasScratchBucket": _not_empty("ScratchBucket"),
            "HasTrustedPrincipal": _not_empty("TrustedPrincipalArn"),
            "HasGitHubRepository": _not_empty("GitHubRepository"),
            "HasGitHubOidcProviderArn": _not_empty("GitHubOidcProviderArn"),
            "CreateGitHubOidcProvider": Tag("And", [Tag("Condition", "HasGitHubRepository"),
                                                    Tag("Equals", [_ref("CreateGitHubOidcProvider"), "true"])]),
            "TrustAccount": Tag("And", [Tag("Not", [Tag("Condition", "HasTrustedPrincipal")]),
                                        Tag("Not", [Tag("Condition", "HasGitHubRepository")])]),
            "TrustAws": Tag("Or", [Tag("Condition", "HasTrustedPrincipal"), Tag("Condition", "TrustAccount")]),
        },
        "Resources": {
            "GitHubOidcProvider": {
                "Type": "AWS::IAM::OIDCProvider", "Condition": "CreateGitHubOidcProvider",
                "Properties": {"Url": f"https://{GITHUB_OIDC}", "ClientIdList": ["sts.amazonaws.com"],
                               "ThumbprintList": list(GITHUB_THUMBPRINTS)},
            },
            "AuditRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": _ref("RoleName"),
                    "Description": "edgeaudit: read-only audit of static sites on S3 + CloudFront",
                    "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
                        _if("TrustAws", {"Sid": "TrustedPrincipal", "Effect": "Allow", "Action": "sts:AssumeRole",
                                         "Principal": {"AWS": _if("HasTrustedPrincipal", _ref("TrustedPrincipalArn"),
                                                                  _sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root"))}},
                            NO_VALUE),
                        _if("HasGitHubRepository", {
                            "Sid": "GitHubActions", "Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
                            "Principal": {"Federated": github_provider},
                            "Condition": {"StringEquals": {f"{GITHUB_OIDC}:aud": "sts.amazonaws.com"},
                                          "StringLike": {f"{GITHUB_OIDC}:sub": _sub("repo:${GitHubRepository}:*")}}},
                            NO_VALUE),
                    ]},
                    "ManagedPolicyArns": [_ref("AuditPolicy")],
                },
            },
            "AuditPolicy": {
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": {
                    "ManagedPolicyName": _sub("${RoleName}-policy"),
                    "Description": "edgeaudit: the reads the controls declare; drill writes under _edgeaudit/ only",
                    "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
                },
            },
        },
        "Outputs": {
            "RoleArn": {"Description": "the role to run edgeaudit with", "Value": Tag("GetAtt", "AuditRole.Arn")},
            "PolicyArn": {"Description": "the role's managed policy", "Value": _ref("AuditPolicy")},
        },
    }
    if config is not None:  # the config names the scratch buckets: no parameter, no condition
        del template["Parameters"]["ScratchBucket"], template["Conditions"]["HasScratchBucket"]
        template["Description"] = ("edgeaudit's read-only audit role, scoped to the buckets, distributions, stacks "
                                   f"and health checks of {config.path.name if config.path else 'a config'}; the "
                                   "disaster-recovery drills write under _edgeaudit/ of its scratch buckets only")
    return template


_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


def _scalar(value: Any) -> str:
    """A string plain when it cannot be read as anything else, else JSON-quoted (valid YAML)."""
    text = str(value)
    return text if _PLAIN.match(text) and text.lower() not in _YAML_WORDS else json.dumps(text)


def _yaml(value: Any, indent: int) -> list[str]:
    """Block YAML lines of a value that sits on its own lines at `indent`."""
    pad = " " * indent
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            inline = _inline(item)
            if inline is not None:
                lines.append(f"{pad}{_scalar(key)}: {inline}")
            else:
                head = f"{pad}{_scalar(key)}:" + (f" !{item.name}" if isinstance(item, Tag) else "")
                lines += [head, *_yaml(item.value if isinstance(item, Tag) else item, indent + 2)]
        return lines
    if isinstance(value, list):
        lines = []
        for item in value:
            inline = _inline(item)
            if inline is not None:
                lines.append(f"{pad}- {inline}")
            elif isinstance(item, Tag):
                lines += [f"{pad}- !{item.name}", *_yaml(item.value, indent + 2)]
            else:
                nested = _yaml(item, indent + 2)
                lines += [f"{pad}- {nested[0].lstrip()}", *nested[1:]]
        return lines
    raise TypeError(f"not a block value: {value!r}")


def _inline(value: Any) -> str | None:
    """The value on the key's line, or None when it takes lines of its own."""
    if isinstance(value, Tag):
        return f"!{value.name} {_scalar(value.value)}" if isinstance(value.value, str) else None
    if isinstance(value, (dict, list)):
        return None if value else ("{}" if isinstance(value, dict) else "[]")
    return _scalar(value)


def cloudformation(folder: Path | None = None, config: Config | None = None) -> str:
    """deploy/cloudformation/edgeaudit-audit-role.yaml; with a config, the template scoped to it."""
    if config is not None:
        header = [f"# Generated by `{COMMAND} --config {config.path.name if config.path else 'CONFIG'} --format "
                  "cloudformation` from the reads the controls declare, scoped to the config's buckets,",
                  "# distributions, stacks and health checks: regenerate it when the controls or the config change.",
                  "#   aws cloudformation deploy --stack-name edgeaudit-audit-role --template-file <this file> \\",
                  "#     --capabilities CAPABILITY_NAMED_IAM --parameter-overrides GitHubRepository=<owner/repo>"]
    else:
        header = [f"# Generated by `{COMMAND} --format cloudformation` from the reads the controls declare:",
                  "# do not edit; regenerate it when the controls change. Deploy:",
                  "#   aws cloudformation deploy --stack-name edgeaudit-audit-role \\",
                  f"#     --template-file {CLOUDFORMATION_FILE} --capabilities CAPABILITY_NAMED_IAM \\",
                  "#     --parameter-overrides ScratchBucket=<bucket> GitHubRepository=<owner/repo>"]
    return "\n".join(header + _yaml(cloudformation_template(folder, config), 0)) + "\n"


FORMATS = ("policy", "cloudformation", "terraform-policy")


def render(form: str, scratch_bucket: str | None = None, folder: Path | None = None,
           config: Config | None = None) -> str:
    """One of FORMATS; only `policy` takes a scratch bucket, `policy` and `cloudformation` a config
    (the others take the bucket when deployed)."""
    if config is not None:
        if form == "cloudformation":
            return cloudformation(folder, config)
        if form != "policy":
            raise ValueError(f"a config scopes the policy and the CloudFormation template: not {form}")
        return json.dumps(scoped_policy(config, folder), indent=2) + "\n"
    if form == "cloudformation":
        return cloudformation(folder)
    if form == "terraform-policy":
        return terraform_policy(folder)
    if form == "policy":
        return policy_json(scratch_bucket, folder)
    raise ValueError(f"unknown format {form!r}: one of {', '.join(FORMATS)}")
