"""The audit role as code: the documented policy (docs/iam-policy.md), the CloudFormation template and the Terraform
module's policy are what the generator writes from the controls' reads; the policy grants every
read the guard lets through and no write outside `_edgeaudit/` of the scratch bucket, judged by
the project's own IAM evaluator (the one behind EA-S3-02 and EA-IAM-*)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
import botocore.session
import pytest

from edgeaudit import cli
from edgeaudit.aws import auditrole, guard
from edgeaudit.aws.clients import iam_action
from edgeaudit.checks import policy
from edgeaudit.rules.config import load as load_config

REPO = Path(__file__).resolve().parents[1]
DOCS_SCRATCH = "example-www-drills"
SCRATCH = "www-drills"
TERRAFORM_MODULE = REPO / "deploy/terraform/edgeaudit-audit-role"
REGENERATE = {
    "policy": f"{auditrole.COMMAND} --format policy --scratch-bucket {DOCS_SCRATCH} (into docs/iam-policy.md's "
              "'## The read-only IAM policy' block)",
    "cloudformation": f"{auditrole.COMMAND} --format cloudformation > {auditrole.CLOUDFORMATION_FILE}",
    "terraform-policy": f"{auditrole.COMMAND} --format terraform-policy > {auditrole.TERRAFORM_POLICY_FILE}",
}
# Actions not named Get*/List*/Describe*/View* that the read statement grants, and why each is a read.
READ_NAMED_OTHERWISE = {
    # starts a drift detection: compares the stack with its resources and changes neither
    "cloudformation:DetectStackDrift",
    # judges a policy document handed to it (is it public?) and keeps nothing
    "access-analyzer:CheckNoPublicAccess",
    # asks IAM to refresh the credential report it keeps (IAM's access level for it: Read)
    "iam:GenerateCredentialReport",
}
# On guard.READS, made by no part of the suite: ListObjects, the first version of ListObjectsV2
# (its IAM action, s3:ListBucket, is granted for ListObjectsV2).
NOT_MADE = {"s3:ListObjects"}
READ_PREFIXES = ("Get", "List", "Describe", "View")
# The policy's own services, and a sample of others an account holds.
SERVICES = ("accessanalyzer", "acm", "budgets", "ce", "cloudformation", "cloudfront", "cloudtrail", "cloudwatch",
            "iam", "kms", "route53", "s3", "s3control", "sts", "wafv2", "ec2", "lambda", "dynamodb", "sns", "sqs",
            "organizations", "secretsmanager", "ssm", "logs", "events")


def documented_policy() -> str:
    page = (REPO / "docs" / "iam-policy.md").read_text(encoding="utf-8")
    return page.split("## The read-only IAM policy", 1)[1].split("```json\n", 1)[1].split("```", 1)[0]


def allows(document: dict[str, Any], action: str, resource: str) -> list[policy.Statement]:
    """The Allow statements that grant `action` on `resource` (no Deny in these policies)."""
    statements = policy.parse(document, "audit role")
    assert all(s.allow and not s.not_action and not s.not_resource for s in statements)
    return [s for s in statements if s.matches_action(action) and any(policy.matches(r, resource) for r in s.resources)]


def mutating_actions(service: str) -> set[str]:
    """The IAM action of every operation of the service that is not named like a read."""
    model = botocore.session.get_session().get_service_model(service)
    actions = {iam_action(service, operation) for operation in model.operation_names}
    return {a for a in actions if not a.split(":", 1)[1].startswith(READ_PREFIXES)} - READ_NAMED_OTHERWISE


# --- the generated files are the generator's ------------------------------------------------------

def test_the_documented_policy_is_the_generated_one():
    assert documented_policy() == auditrole.policy_json(DOCS_SCRATCH), f"regenerate: {REGENERATE['policy']}"


@pytest.mark.parametrize("form, path", [("cloudformation", auditrole.CLOUDFORMATION_FILE),
                                        ("terraform-policy", auditrole.TERRAFORM_POLICY_FILE)])
def test_the_deploy_files_are_the_generated_ones(form, path):
    written = (REPO / path).read_text(encoding="utf-8")
    assert written == auditrole.render(form), f"{path} is out of date; regenerate: {REGENERATE[form]}"


def test_the_command_prints_what_the_generator_writes(capsys):
    assert cli.main(["audit-role", "--format", "policy", "--scratch-bucket", DOCS_SCRATCH]) == 0
    assert capsys.readouterr().out == documented_policy()
    assert cli.main(["audit-role", "--format", "cloudformation"]) == 0
    assert capsys.readouterr().out == (REPO / auditrole.CLOUDFORMATION_FILE).read_text(encoding="utf-8")
    with pytest.raises(SystemExit) as exited, contextlib.redirect_stderr(io.StringIO()) as err:
        cli.main(["audit-role", "--format", "cloudformation", "--scratch-bucket", SCRATCH])
    assert exited.value.code == 2 and "--scratch-bucket goes with --format policy" in err.getvalue()


def test_a_generated_file_says_so_and_by_which_command():
    template = (REPO / auditrole.CLOUDFORMATION_FILE).read_text(encoding="utf-8")
    assert template.startswith(f"# Generated by `{auditrole.COMMAND} --format cloudformation`")
    main_tf = (TERRAFORM_MODULE / "main.tf").read_text(encoding="utf-8")
    assert f"`{auditrole.COMMAND} --format terraform-policy > policy.json`" in main_tf.split("\n\n", 1)[0]


# --- what the policy grants ------------------------------------------------------------------------

def test_the_read_statement_is_every_read_the_guard_lets_through_and_nothing_else():
    """Each read on guard.READS is a control's declared read, a probe's, a read made ahead, one of
    the few made outside the controls, or one made by the caller's credential provider; the
    policy grants the IAM action of each of them but those of the credential provider."""
    reads = {f"{service}:{operation}" for service, operations in guard.READS.items() for operation in operations}
    placed = auditrole.suite_reads() | set(auditrole.CREDENTIAL_READS) | NOT_MADE
    assert reads == placed, (f"on guard.READS but not placed by edgeaudit.aws.auditrole: {sorted(reads - placed)}; "
                             f"placed but not a read the guard allows: {sorted(placed - reads)}")
    wanted = ({iam_action(*r.split(":", 1)) for r in reads - set(auditrole.CREDENTIAL_READS) - NOT_MADE}
              | set(auditrole.IMPLIED))
    assert set(auditrole.read_actions()) == wanted
    assert not any(c in action for action in wanted for c in "*?"), "no wildcard: a wildcard grants future writes"


def test_every_read_is_allowed_on_any_resource():
    document = auditrole.policy(SCRATCH)
    for action in auditrole.read_actions():
        assert allows(document, action, "arn:aws:s3:::www-origin/index.html") or allows(document, action, "*"), action


@pytest.mark.parametrize("service", SERVICES)
def test_no_mutating_action_is_allowed_anywhere_outside_the_scratch_prefix(service):
    """Every operation of the service whose IAM action is not named like a read, on the target's
    bucket and objects, the scratch bucket outside `_edgeaudit/`, another bucket, any resource."""
    document = auditrole.policy(SCRATCH)
    actions = mutating_actions(service)
    if service == "s3":
        actions |= set(policy.OBJECT_WRITE_ACTIONS) | {"s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:PutObjectTagging",
                                                      "s3:PutBucketAcl", "s3:PutLifecycleConfiguration"}
    assert len(actions) > 3, actions
    outside = ["*", "arn:aws:s3:::www-origin", "arn:aws:s3:::www-origin/index.html",
               "arn:aws:s3:::www-origin/_edgeaudit/run/index.html", f"arn:aws:s3:::{SCRATCH}",
               f"arn:aws:s3:::{SCRATCH}/index.html", f"arn:aws:s3:::{SCRATCH}/_edgeaudit",
               f"arn:aws:s3:::{SCRATCH}/edgeaudit/run/index.html", f"arn:aws:s3:::{SCRATCH}-2/_edgeaudit/run/x",
               "arn:aws:cloudfront::123456789012:distribution/E2EXAMPLE", "arn:aws:iam::123456789012:role/deploy-www"]
    granted = {(a, r): allows(document, a, r) for a in sorted(actions) for r in outside}
    assert not any(granted.values()), sorted(k for k, v in granted.items() if v)


def test_inside_the_scratch_prefix_only_the_drills_writes_are_allowed():
    document = auditrole.policy(SCRATCH)
    inside = f"arn:aws:s3:::{SCRATCH}/_edgeaudit/20261201T000000Z-1a2b3c4d/index.html"
    drill = {iam_action("s3", operation) for operation in guard.SCRATCH_OPERATIONS}
    writes = mutating_actions("s3") | set(policy.OBJECT_WRITE_ACTIONS)
    assert {a for a in writes if allows(document, a, inside)} == drill == {
        "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}
    assert all(s.sid == auditrole.SCRATCH_SID for a in drill for s in allows(document, a, inside))
    # the project's check of who can write a bucket's objects agrees
    statements = policy.parse(document, "audit role")
    assert [s.sid for s in policy.write_grants(statements, SCRATCH)] == [auditrole.SCRATCH_SID]
    assert policy.write_grants(statements, "www-origin") == []


def test_listing_the_scratch_bucket_is_bound_to_the_prefix_and_no_scratch_bucket_means_no_writes():
    listing = auditrole.policy(SCRATCH)["Statement"][2]
    assert listing["Sid"] == auditrole.SCRATCH_LIST_SID and listing["Action"] == ["s3:ListBucket"]
    assert listing["Resource"] == f"arn:aws:s3:::{SCRATCH}"
    assert listing["Condition"] == {"StringLike": {"s3:prefix": "_edgeaudit/*"}}
    without = auditrole.policy()
    assert [s["Sid"] for s in without["Statement"]] == [auditrole.READ_SID]
    for action in policy.OBJECT_WRITE_ACTIONS:
        assert not allows(without, action, f"arn:aws:s3:::{SCRATCH}/_edgeaudit/run/index.html"), action


# --- the CloudFormation template ---------------------------------------------------------------------

def load_template() -> dict[str, Any]:
    """The template with CloudFormation's short forms (!Ref, !Sub, !If, ...) as their long forms."""
    yaml = pytest.importorskip("yaml")

    class Loader(yaml.SafeLoader):
        pass

    def construct(loader: Any, suffix: str, node: Any) -> Any:
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {"Ref": value} if suffix == "Ref" else {"Condition": value} if suffix == "Condition" else {f"Fn::{suffix}": value}

    Loader.add_multi_constructor("!", construct)
    return yaml.load((REPO / auditrole.CLOUDFORMATION_FILE).read_text(encoding="utf-8"), Loader=Loader)


def resolve(template: dict[str, Any], node: Any, parameters: dict[str, str]) -> Any:
    """`node` as CloudFormation would deploy it with these parameters (for the functions the
    template uses); AWS::NoValue list items are dropped."""
    values = {name: spec.get("Default", "") for name, spec in template["Parameters"].items()}
    values |= parameters | {"AWS::Partition": "aws", "AWS::AccountId": "123456789012"}

    def condition(name: str) -> bool:
        return bool(go(template["Conditions"][name]))

    def go(n: Any) -> Any:
        if isinstance(n, list):
            return [v for v in (go(i) for i in n) if v is not NO_VALUE]
        if not isinstance(n, dict):
            return n
        if len(n) == 1:
            (key, value), = n.items()
            if key == "Ref":
                return NO_VALUE if value == "AWS::NoValue" else values.get(value, f"<{value}>")
            if key == "Condition":
                return condition(value)
            if key == "Fn::Sub":
                out = value
                for name, v in values.items():
                    out = out.replace("${" + name + "}", v)
                return out
            if key == "Fn::If":
                return go(value[1] if condition(value[0]) else value[2])
            if key == "Fn::Equals":
                return go(value[0]) == go(value[1])
            if key == "Fn::Not":
                return not go(value[0])
            if key == "Fn::And":
                return all(go(v) for v in value)
            if key == "Fn::Or":
                return any(go(v) for v in value)
        return {k: go(v) for k, v in n.items()}

    return go(node)


NO_VALUE = object()


def test_the_template_is_valid_yaml_with_the_named_parameters_conditions_resources_and_output():
    template = load_template()
    assert {"ScratchBucket", "TrustedPrincipalArn", "GitHubRepository", "GitHubOidcProviderArn",
            "CreateGitHubOidcProvider"} <= set(template["Parameters"])
    assert all(template["Parameters"][p]["Default"] == "" for p in
               ("ScratchBucket", "TrustedPrincipalArn", "GitHubRepository", "GitHubOidcProviderArn"))
    assert {"HasScratchBucket", "HasGitHubRepository", "CreateGitHubOidcProvider"} <= set(template["Conditions"])
    assert {name: r["Type"] for name, r in template["Resources"].items()} == {
        "AuditRole": "AWS::IAM::Role", "AuditPolicy": "AWS::IAM::ManagedPolicy",
        "GitHubOidcProvider": "AWS::IAM::OIDCProvider"}
    assert template["Resources"]["GitHubOidcProvider"]["Condition"] == "CreateGitHubOidcProvider"
    assert template["Outputs"]["RoleArn"]["Value"] == {"Fn::GetAtt": ["AuditRole", "Arn"]}


@pytest.mark.parametrize("bucket", ["", SCRATCH])
def test_the_template_deploys_the_generated_policy(bucket):
    template = load_template()
    document = resolve(template, template["Resources"]["AuditPolicy"]["Properties"]["PolicyDocument"],
                       {"ScratchBucket": bucket})
    assert document == auditrole.policy(bucket or None)


def trust(parameters: dict[str, str]) -> list[dict[str, Any]]:
    template = load_template()
    return resolve(template, template["Resources"]["AuditRole"]["Properties"]["AssumeRolePolicyDocument"],
                   parameters)["Statement"]


def test_the_template_trusts_the_account_a_principal_or_github_actions_of_one_repository():
    assert trust({}) == [{"Sid": "TrustedPrincipal", "Effect": "Allow", "Action": "sts:AssumeRole",
                          "Principal": {"AWS": "arn:aws:iam::123456789012:root"}}]
    auditor = "arn:aws:iam::123456789012:role/auditor"
    assert [s["Principal"] for s in trust({"TrustedPrincipalArn": auditor})] == [{"AWS": auditor}]
    github = trust({"GitHubRepository": "example/www"})
    assert github == [{
        "Sid": "GitHubActions", "Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
        "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},
        "Condition": {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
                      "StringLike": {"token.actions.githubusercontent.com:sub": "repo:example/www:*"}}}]
    given = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com/x"
    both = trust({"GitHubRepository": "example/www", "GitHubOidcProviderArn": given, "TrustedPrincipalArn": auditor})
    assert [s["Principal"] for s in both] == [{"AWS": auditor}, {"Federated": given}]
    created = trust({"GitHubRepository": "example/www", "CreateGitHubOidcProvider": "true"})
    assert created[0]["Principal"] == {"Federated": "<GitHubOidcProvider>"}  # the provider the stack creates


@pytest.mark.skipif(not shutil.which("cfn-lint"), reason="cfn-lint is not installed")
def test_cfn_lint_accepts_the_template():
    done = subprocess.run(["cfn-lint", str(REPO / auditrole.CLOUDFORMATION_FILE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


# --- the Terraform module -------------------------------------------------------------------------

def test_the_terraform_module_reads_the_generated_policy_and_names_its_inputs():
    main_tf = (TERRAFORM_MODULE / "main.tf").read_text(encoding="utf-8")
    assert 'jsondecode(file("${path.module}/policy.json"))' in main_tf
    assert f'"{auditrole.TERRAFORM_BUCKET}", var.scratch_bucket' in main_tf
    assert f'startswith(statement.Sid, "{auditrole.SCRATCH_SID}")' in main_tf
    assert 'data "aws_iam_openid_connect_provider" "github"' in main_tf
    assert '"repo:${statement.value}:*"' in main_tf and "sts:AssumeRoleWithWebIdentity" in main_tf
    variables = (TERRAFORM_MODULE / "variables.tf").read_text(encoding="utf-8")
    for name in ("scratch_bucket", "trusted_principal_arn", "github_repository", "github_oidc_provider_arn"):
        assert f'variable "{name}"' in variables, name
    assert 'output "role_arn"' in (TERRAFORM_MODULE / "outputs.tf").read_text(encoding="utf-8")
    assert {p.name for p in TERRAFORM_MODULE.iterdir()} >= {"main.tf", "variables.tf", "outputs.tf", "versions.tf",
                                                            "policy.json"}
    generated = json.loads((TERRAFORM_MODULE / "policy.json").read_text(encoding="utf-8"))
    assert generated == auditrole.policy(auditrole.TERRAFORM_BUCKET)


@pytest.mark.skipif(not shutil.which("terraform"), reason="terraform is not installed")
def test_terraform_fmt_accepts_the_module():
    done = subprocess.run(["terraform", "fmt", "-check", "-recursive", "-diff", str(TERRAFORM_MODULE)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def provider_mirror() -> Path | None:
    """A local copy of the hashicorp/aws provider (`terraform init -plugin-dir`: no network)."""
    for folder in (os.environ.get("EDGEAUDIT_TF_PLUGIN_DIR"), "~/.terraform.d/plugins", "/usr/share/terraform/plugins",
                   "/opt/tf-plugins"):
        if folder and (Path(folder).expanduser() / "registry.terraform.io/hashicorp/aws").is_dir():
            return Path(folder).expanduser()
    return None


ROOT_MODULE = """
provider "aws" {{
  region                      = "us-east-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  endpoints {{
    iam = "{url}"
    sts = "{url}"
  }}
}}

module "drills" {{
  source                      = "{module}"
  role_name                   = "edgeaudit-drills"
  scratch_bucket              = "{scratch}"
  github_repository           = "example/www"
  create_github_oidc_provider = true
}}

module "plain" {{
  source    = "{module}"
  role_name = "edgeaudit-plain"
}}
"""


@pytest.mark.skipif(not shutil.which("terraform") or provider_mirror() is None,
                    reason="terraform or a local copy of its aws provider is not installed")
def test_the_terraform_module_deploys_the_generated_policy_and_its_trust(tmp_path):
    """`terraform apply` of the module into a moto server (IAM): the roles hold the generated
    policy, with and without the scratch statements, and the trust each set of inputs asks for."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        (tmp_path / "main.tf").write_text(ROOT_MODULE.format(url=url, module=TERRAFORM_MODULE, scratch=SCRATCH))
        env = dict(os.environ, CHECKPOINT_DISABLE="1", TF_IN_AUTOMATION="1", TF_INPUT="0")
        for command in (["init", f"-plugin-dir={provider_mirror()}", "-backend=false"], ["apply", "-auto-approve"]):
            done = subprocess.run(["terraform", *command], cwd=tmp_path, env=env, capture_output=True, text=True)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        details = iam.get_account_authorization_details()
    finally:
        server.stop()
    managed = policy.managed_documents(details)
    roles = {r["RoleName"]: r for r in details["RoleDetailList"]}
    policies = {name: [managed[p["PolicyArn"]] for p in roles[name]["AttachedManagedPolicies"]]
                for name in ("edgeaudit-drills", "edgeaudit-plain")}
    assert policies == {"edgeaudit-drills": [auditrole.policy(SCRATCH)], "edgeaudit-plain": [auditrole.policy()]}
    trusts = {name: json.loads(unquote(d)) if isinstance(d := roles[name]["AssumeRolePolicyDocument"], str) else d
              for name in policies}
    github, = trusts["edgeaudit-drills"]["Statement"]
    assert github["Principal"] == {"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"}
    assert (github["Action"], github["Condition"]) == ("sts:AssumeRoleWithWebIdentity", {
        "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
        "StringLike": {"token.actions.githubusercontent.com:sub": "repo:example/www:*"}})
    account, = trusts["edgeaudit-plain"]["Statement"]
    assert (account["Action"], account["Principal"]) == ("sts:AssumeRole", {"AWS": "arn:aws:iam::123456789012:root"})


# --- the policy scoped to a config ------------------------------------------------------------------

SCOPED_CONFIG = """
[report]
history = "s3://audit-history/edgeaudit/history.jsonl"

[incidents]
log = "s3://ops-records/incidents/incidents.jsonl"

[[targets]]
name = "www"
url = "https://www.example.com/"
bucket = "www-origin"
distribution_id = "E2ABCDEF123456"
replica_bucket = "www-replica"
scratch_bucket = "www-drills"
stack_name = "www-site"

[[targets]]
name = "docs"
url = "https://docs.example.com/"
bucket = "docs-origin"
distribution_id = "E3ABCDEF654321"
health_check_id = "abcdef11-2222-3333-4444-555555fedcba"
"""


@pytest.fixture
def scoped(tmp_path) -> tuple[Path, dict[str, Any]]:
    from edgeaudit.rules.config import load

    path = tmp_path / "edgeaudit.toml"
    path.write_text(SCOPED_CONFIG)
    return path, auditrole.scoped_policy(load(path))


def test_a_config_scopes_object_reads_to_its_buckets(scoped):
    _, document = scoped
    buckets = ("www-origin", "www-replica", "www-drills", "docs-origin", "audit-history", "ops-records")
    for bucket in buckets:
        assert allows(document, "s3:GetObject", f"arn:aws:s3:::{bucket}/index.html"), bucket
        assert allows(document, "s3:GetBucketPolicy", f"arn:aws:s3:::{bucket}"), bucket
    assert allows(document, "s3:GetObject", "arn:aws:s3:::ops-records/incidents/incidents.jsonl")  # the incident log
    assert not allows(document, "s3:GetObject", "arn:aws:s3:::payroll-exports/2026/salaries.csv")
    assert not allows(document, "s3:ListBucket", "arn:aws:s3:::payroll-exports")
    assert not allows(document, "s3:GetBucketPolicy", "arn:aws:s3:::payroll-exports")


def test_a_config_scopes_distribution_and_stack_reads(scoped):
    _, document = scoped
    for distribution in ("E2ABCDEF123456", "E3ABCDEF654321"):
        assert allows(document, "cloudfront:GetDistributionConfig",
                      f"arn:aws:cloudfront::123456789012:distribution/{distribution}")
    assert not allows(document, "cloudfront:GetDistributionConfig", "arn:aws:cloudfront::123456789012:distribution/EOTHER")
    assert allows(document, "cloudformation:DetectStackDrift",
                  "arn:aws:cloudformation:eu-west-1:123456789012:stack/www-site/0a1b")
    assert not allows(document, "cloudformation:DetectStackDrift",
                      "arn:aws:cloudformation:eu-west-1:123456789012:stack/payroll/0a1b")


def test_a_config_scopes_health_check_reads_to_the_checks_its_targets_name(scoped, tmp_path):
    _, document = scoped
    assert allows(document, "route53:GetHealthCheck", "arn:aws:route53:::healthcheck/abcdef11-2222-3333-4444-555555fedcba")
    assert not allows(document, "route53:GetHealthCheck", "arn:aws:route53:::healthcheck/other")
    from edgeaudit.rules.config import load

    path = tmp_path / "none.toml"
    path.write_text(SCOPED_CONFIG.replace('health_check_id = "abcdef11-2222-3333-4444-555555fedcba"\n', ""))
    without = auditrole.scoped_policy(load(path))
    assert not any("route53:GetHealthCheck" in s["Action"] for s in without["Statement"]), "no check named: no grant"


def test_a_config_keeps_every_read_and_is_account_wide_only_without_a_resource_type(scoped):
    _, document = scoped
    granted = {action for s in document["Statement"] for action in s["Action"]}
    assert set(auditrole.read_actions()) <= granted
    [account] = [s for s in document["Statement"] if s["Resource"] == "*"]
    assert not set(account["Action"]) & set(auditrole.SCOPES), account["Action"]
    assert "s3:GetObject" not in account["Action"]
    assert "iam:ListAccountAliases" in account["Action"]  # the reports name the account by its alias
    scratch = allows(document, "s3:PutObject", "arn:aws:s3:::www-drills/_edgeaudit/drill/x")
    assert scratch and not allows(document, "s3:PutObject", "arn:aws:s3:::www-origin/_edgeaudit/drill/x")


def test_parliament_finds_nothing_in_the_scoped_policy(scoped):
    import parliament

    _, document = scoped
    findings = parliament.analyze_policy_string(json.dumps(document)).findings
    assert not findings, [(f.issue, f.detail, f.location) for f in findings]
    account_wide = parliament.analyze_policy_string(auditrole.policy_json()).findings
    assert "RESOURCE_STAR" in {f.issue for f in account_wide}  # the lint sees what the scoping removes


def test_the_command_scopes_with_a_config_and_says_when_it_is_account_wide(scoped, capsys):
    path, document = scoped
    assert cli.main(["audit-role", "--config", str(path)]) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out) == document and "account-wide" not in printed.err
    assert cli.main(["audit-role"]) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out) == auditrole.policy() and "account-wide" in printed.err


@pytest.mark.skipif(not shutil.which("cfn-lint"), reason="cfn-lint is not installed")
def test_a_config_scopes_the_cloudformation_template_too(scoped, tmp_path):
    """`--config` with `--format cloudformation`: the same scoped statements, in the stack's
    partition, the config's scratch buckets and no ScratchBucket parameter; cfn-lint accepts it."""
    path, document = scoped
    assert cli.main(["audit-role", "--config", str(path), "--format", "cloudformation"]) == 0
    template = auditrole.cloudformation_template(config=load_config(path))
    statements = template["Resources"]["AuditPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert [s["Sid"] for s in statements] == [s["Sid"] for s in document["Statement"]]
    assert "ScratchBucket" not in template["Parameters"] and "HasScratchBucket" not in template["Conditions"]
    rendered = auditrole.render("cloudformation", config=load_config(path))
    assert '!Sub "arn:${AWS::Partition}:s3:::www-drills/_edgeaudit/*"' in rendered
    assert "arn:aws:s3:::" not in rendered and "ScratchBucket" not in rendered
    written = tmp_path / "scoped.yaml"
    written.write_text(rendered, encoding="utf-8")
    done = subprocess.run(["cfn-lint", str(written)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("bucket", ["*", "www-*", "Www-Drills", "a..b", "ab"])
def test_a_wildcard_or_invalid_scratch_bucket_is_refused(bucket):
    with pytest.raises(SystemExit) as exited, contextlib.redirect_stderr(io.StringIO()) as err:
        cli.main(["audit-role", "--scratch-bucket", bucket])
    assert exited.value.code == 2 and "is not an S3 bucket name" in err.getvalue() and "no wildcards" in err.getvalue()
    pattern = auditrole.cloudformation_template()["Parameters"]["ScratchBucket"]["AllowedPattern"]
    assert not re.fullmatch(pattern, bucket)  # CloudFormation refuses the same names
    assert re.fullmatch(pattern, SCRATCH) and re.fullmatch(pattern, "")


@pytest.mark.skipif(not shutil.which("terraform"), reason="terraform is not installed")
def test_the_terraform_module_refuses_a_wildcard_scratch_bucket(tmp_path):
    """The module's own scratch_bucket variable (its validation block) in a root module that needs
    no provider: `terraform plan` refuses a wildcard and takes a bucket name."""
    variables = (TERRAFORM_MODULE / "variables.tf").read_text(encoding="utf-8")
    block = variables[variables.index('variable "scratch_bucket"'):]
    (tmp_path / "main.tf").write_text(block[:block.index("\n}\n") + 3])
    env = dict(os.environ, CHECKPOINT_DISABLE="1", TF_IN_AUTOMATION="1", TF_INPUT="0")

    def plan(bucket: str) -> subprocess.CompletedProcess:
        return subprocess.run(["terraform", "plan", "-var", f"scratch_bucket={bucket}"], cwd=tmp_path, env=env,
                              capture_output=True, text=True)

    assert subprocess.run(["terraform", "init", "-backend=false"], cwd=tmp_path, env=env, capture_output=True).returncode == 0
    for bucket in ("*", "www-*", "a..b"):
        refused = plan(bucket)
        assert refused.returncode != 0 and "no wildcards" in refused.stdout + refused.stderr, bucket
    assert plan(SCRATCH).returncode == 0 and plan("").returncode == 0


def test_a_config_the_command_cannot_read_is_exit_4_naming_the_file(tmp_path):
    path = tmp_path / "edgeaudit.toml"
    path.write_text('[[targets]]\nname = "www"\nurl = "https://www.example.com/"\ndistribution_id = "E1"\n')
    with contextlib.redirect_stderr(io.StringIO()) as err:
        assert cli.main(["audit-role", "--config", str(path)]) == 4
    assert str(path) in err.getvalue() and "bucket" in err.getvalue(), err.getvalue()
