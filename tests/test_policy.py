"""The IAM policy evaluation behind EA-S3-02/03/10 and EA-IAM-01/04: wildcards, NotAction, Deny
overriding Allow, and the conditions that bind a statement to particular callers; EA-S3-02's
ACL sample and Access Analyzer's second opinion, and the thresholds these controls read."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from edgeaudit.aws.clients import Breaker, CachedClient, ReadCache
from edgeaudit.checks import policy, publicaccess
from edgeaudit.rules.config import ConfigError, parse
from edgeaudit.rules.thresholds import DEFAULTS

BUCKET = "www-origin"
ACCOUNT = "123456789012"
DISTRIBUTION = f"arn:aws:cloudfront::{ACCOUNT}:distribution/E2EXAMPLE"
DEPLOY = f"arn:aws:iam::{ACCOUNT}:role/deploy-www"


def statements(*raw: dict, source: str = "test") -> list[policy.Statement]:
    return policy.parse({"Version": "2012-10-17", "Statement": list(raw)}, source)


def allow(action, resource=f"arn:aws:s3:::{BUCKET}/*", **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource=f"arn:aws:s3:::{BUCKET}/*", **extra) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


@pytest.mark.parametrize("pattern, value, fold, expected", [
    ("s3:*", "s3:PutObject", True, True),
    ("s3:put*", "s3:PutObject", True, True),        # actions are case-insensitive
    ("s3:put*", "s3:PutObject", False, False),      # resources are not
    ("s3:Get*", "s3:PutObject", True, False),
    ("s3:?utObject", "s3:PutObject", True, True),
    ("*", "anything", False, True),
    ("arn:aws:s3:::www-*/*", "arn:aws:s3:::www-origin/index.html", False, True),
    ("arn:aws:s3:::www-origin", "arn:aws:s3:::www-origin/index.html", False, False),
])
def test_wildcard_match(pattern, value, fold, expected):
    assert policy.matches(pattern, value, fold=fold) is expected


def test_some_and_all_under_a_prefix():
    prefix = policy.objects_prefix(BUCKET)
    assert policy.matches_some_under(f"arn:aws:s3:::{BUCKET}/assets/*", prefix)
    assert not policy.matches_all_under(f"arn:aws:s3:::{BUCKET}/assets/*", prefix)
    assert policy.matches_all_under(f"arn:aws:s3:::{BUCKET}/*", prefix)
    assert policy.matches_all_under("*", prefix)
    assert not policy.matches_some_under(f"arn:aws:s3:::{BUCKET}", prefix)  # the bucket, not its objects
    assert not policy.matches_some_under("arn:aws:s3:::other-*", prefix)
    assert policy.has_wildcard_name("arn:aws:s3:::*/*", "arn:aws:s3:::")
    assert not policy.has_wildcard_name("arn:aws:s3:::www-*", "arn:aws:s3:::")


def test_allow_on_objects_grants_writes_and_bucket_only_resource_does_not():
    assert policy.write_grants(statements(allow("s3:PutObject")), BUCKET)
    assert policy.write_grants(statements(allow("s3:*", "*")), BUCKET)
    assert not policy.write_grants(statements(allow("s3:PutObject", f"arn:aws:s3:::{BUCKET}")), BUCKET)
    assert not policy.write_grants(statements(allow("s3:GetObject")), BUCKET)
    assert not policy.write_grants(statements(allow("s3:PutObject", "arn:aws:s3:::other/*")), BUCKET)


def test_not_action_and_not_resource():
    assert policy.write_grants(statements({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}), BUCKET)
    assert not policy.write_grants(statements({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}), BUCKET)
    assert not policy.write_grants(statements({"Effect": "Allow", "Action": "s3:PutObject",
                                               "NotResource": f"arn:aws:s3:::{BUCKET}/*"}), BUCKET)
    assert policy.write_grants(statements({"Effect": "Allow", "Action": "s3:PutObject",
                                           "NotResource": "arn:aws:s3:::other/*"}), BUCKET)


def test_deny_overrides_allow_only_where_it_certainly_applies():
    everything = allow("s3:*", "*")
    assert not policy.write_grants(statements(everything, deny("s3:*")), BUCKET)
    # a Deny on part of the bucket leaves the rest writable
    assert policy.write_grants(statements(everything, deny("s3:*", f"arn:aws:s3:::{BUCKET}/assets/*")), BUCKET)
    # a Deny of some write actions leaves the others
    grants = policy.write_grants(statements(everything, deny("s3:PutObject")), BUCKET)
    assert grants and grants[0].actions == ("s3:*",)
    # a conditional Deny may not apply, so it does not take a grant away
    conditional = deny("s3:*", Condition={"Bool": {"aws:SecureTransport": "false"}})
    assert policy.write_grants(statements(everything, conditional), BUCKET)


def test_principal_conditions_are_judged():
    lockdown = deny("s3:PutObject", Principal="*", Condition={"ArnNotEquals": {"aws:PrincipalArn": DEPLOY}})
    everything = allow("s3:PutObject")
    other = f"arn:aws:iam::{ACCOUNT}:user/intern"
    assert policy.write_grants(statements(everything, lockdown), BUCKET, principal_arn=DEPLOY)
    assert not policy.write_grants(statements(everything, lockdown), BUCKET, principal_arn=other)
    named = deny("s3:PutObject", Principal={"AWS": other})
    assert not policy.write_grants(statements(everything, named), BUCKET, principal_arn=other)
    assert policy.write_grants(statements(everything, named), BUCKET, principal_arn=DEPLOY)
    account_wide = deny("s3:PutObject", Principal={"AWS": ACCOUNT})
    assert not policy.write_grants(statements(everything, account_wide), BUCKET, principal_arn=DEPLOY)


OAC_GRANT = allow("s3:GetObject", Sid="AllowCloudFront", Principal={"Service": "cloudfront.amazonaws.com"},
                  Condition={"StringEquals": {"AWS:SourceArn": DISTRIBUTION}})


@pytest.mark.parametrize("statement, reason", [
    (OAC_GRANT, None),
    ({**OAC_GRANT, "Condition": {"ArnLike": {"aws:SourceArn": DISTRIBUTION}}}, None),
    ({k: v for k, v in OAC_GRANT.items() if k != "Condition"}, "no AWS:SourceArn condition"),
    ({**OAC_GRANT, "Condition": {"StringEquals": {"AWS:SourceArn": DISTRIBUTION.replace("E2EXAMPLE", "EOTHER")}}},
     "EOTHER"),
    ({**OAC_GRANT, "Condition": {"StringEquals": {"AWS:SourceAccount": ACCOUNT}}}, "no AWS:SourceArn condition"),
    (allow("s3:GetObject", Principal="*"), "everyone"),
    (allow("s3:GetObject", Principal={"AWS": "*"}), "everyone"),
    (allow("s3:GetObject", Principal="*", Condition={"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c"}}), None),
    (allow("s3:GetObject", Principal="*", Condition={"StringEquals": {"aws:SourceVpce": "*"}}), "everyone"),
    (allow("s3:GetObject", Principal="*", Condition={"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}), "everyone"),
    (allow("s3:GetObject", NotPrincipal={"AWS": DEPLOY}), "NotPrincipal"),
    (deny("s3:*", Principal="*"), None),                               # a Deny never grants
    (deny("s3:*", Principal={"Service": "cloudfront.amazonaws.com"}), None),
])
def test_public_grants(statement, reason):
    found = policy.public_grants(statements(statement), DISTRIBUTION)
    if reason is None:
        assert found == []
    else:
        assert len(found) == 1 and reason in found[0][1]


def test_foreign_and_resource_writers():
    partner = "arn:aws:iam::210987654321:role/partner"
    bucket_policy = statements(
        allow("s3:GetObject", Principal={"AWS": "210987654321"}, Sid="PartnerRead"),
        allow("s3:PutObject", Principal={"AWS": partner}, Sid="PartnerWrite"),
        allow("s3:PutObject", Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, Sid="Delegate"),
        allow("s3:PutObject", Principal="*", Sid="Bound",
              Condition={"StringEquals": {"aws:PrincipalArn": DEPLOY}}),
        OAC_GRANT,
    )
    foreign = policy.foreign_grants(bucket_policy, ACCOUNT)
    assert [(p, s.sid) for p, s in foreign] == [("arn:aws:iam::210987654321:root", "PartnerRead"),
                                                (partner, "PartnerWrite")]
    writers = policy.resource_writers(bucket_policy, BUCKET, ACCOUNT)
    assert sorted(writers) == sorted([partner, DEPLOY])
    assert [s.sid for s in writers[partner]] == ["PartnerWrite"]


def test_resource_writers_respect_bucket_policy_denies():
    bucket_policy = statements(
        allow("s3:PutObject", Principal="*", Sid="Open"),
        deny("s3:PutObject", Principal="*", Condition={"StringNotEquals": {"aws:PrincipalArn": DEPLOY}}),
    )
    assert policy.resource_writers(bucket_policy, BUCKET, ACCOUNT) == {}  # "*" itself is denied
    open_policy = statements(allow("s3:PutObject", Principal="*", Sid="Open"))
    assert list(policy.resource_writers(open_policy, BUCKET, ACCOUNT)) == ["*"]


def test_identities_collect_inline_group_and_managed_policies():
    managed_arn = f"arn:aws:iam::{ACCOUNT}:policy/site-writer"
    details = {
        "UserDetailList": [{"UserName": "alice", "Arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
                            "UserPolicyList": [], "GroupList": ["web"], "AttachedManagedPolicies": []}],
        "GroupDetailList": [{"GroupName": "web", "GroupPolicyList": [], "AttachedManagedPolicies": [
            {"PolicyName": "site-writer", "PolicyArn": managed_arn}]}],
        "RoleDetailList": [{"RoleName": "deploy-www", "Arn": DEPLOY, "AttachedManagedPolicies": [],
                            "RolePolicyList": [{"PolicyName": "deploy", "PolicyDocument": json.dumps(
                                {"Statement": [allow(["s3:PutObject", "s3:DeleteObject"])]})}]}],
        "Policies": [{"Arn": managed_arn, "PolicyVersionList": [
            {"IsDefaultVersion": False, "Document": {"Statement": []}},
            {"IsDefaultVersion": True, "Document": {"Statement": [allow("s3:Put*")]}}]}],
    }
    assert policy.attached_policy_arns(details) == {managed_arn}
    found = {i.name: i for i in policy.identities(details, policy.managed_documents(details))}
    alice = policy.write_grants(found["alice"].statements, BUCKET, found["alice"].arn)
    assert [s.source for s in alice] == [f"group/web managed policy {managed_arn}"]
    role = policy.write_grants(found["deploy-www"].statements, BUCKET, DEPLOY)
    assert [s.label() for s in role] == ["role/deploy-www inline policy deploy (statement 1)"]


@pytest.mark.parametrize("raw, wild_action, wild_resource", [
    (allow("s3:PutObject"), False, False),
    (allow("s3:*"), True, False),
    (allow("*", "*"), True, True),
    (allow("s3:Put*", "arn:aws:s3:::*/*"), False, True),
    (allow("s3:PutObject", "arn:aws:s3:::www-*/*"), False, False),
    ({"Effect": "Allow", "NotAction": "iam:*", "Resource": f"arn:aws:s3:::{BUCKET}/*"}, True, False),
])
def test_wildcards_of_a_grant(raw, wild_action, wild_resource):
    [statement] = statements(raw)
    assert policy.wildcard_action(statement, "s3") is wild_action
    assert policy.wildcard_resource(statement, "arn:aws:s3:::") is wild_resource


# --- conditions that name nobody (EA-S3-02) ---------------------------------------------------------

def everyone(condition: dict, sid: str = "Open") -> dict:
    return allow("s3:GetObject", Principal="*", Sid=sid, Condition=condition)


@pytest.mark.parametrize("condition, reason", [
    ({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, None),
    ({"IpAddress": {"aws:SourceIp": "1.0.0.0/8"}}, None),                          # exactly a /8: S3's limit
    ({"IpAddress": {"aws:SourceIp": ["0.0.0.0/1", "128.0.0.0/1"]}}, "0.0.0.0/1, 128.0.0.0/1 cover"),
    ({"IpAddress": {"aws:SourceIp": ["1.0.0.0/8", "2.0.0.0/24"]}}, "more than one /8"),  # the sum counts
    ({"IpAddress": {"aws:SourceIp": ["1.0.0.0/8", "1.0.0.0/9"]}}, None),           # overlaps count once
    ({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "1.0.0.0/8"]}}, None),          # RFC 1918 is not counted
    ({"IpAddress": {"aws:SourceIp": "2001:db8::/32"}}, None),
    ({"IpAddress": {"aws:SourceIp": "2001:db8::/31"}}, "IPv6 addresses, more than one /32"),
    ({"IpAddress": {"aws:SourceIp": "::/0"}}, "IPv6"),
    ({"StringLike": {"aws:SourceArn": "arn:aws:cloudfront::*:distribution/*"}}, "a wildcard"),
    ({"StringEquals": {"aws:SourceAccount": "12345678901?"}}, "a wildcard"),
    ({"StringEquals": {"aws:PrincipalOrgID": "${aws:PrincipalOrgID}"}}, "policy variable"),
    ({"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}, None),
    ({"StringLike": {"aws:userid": "AROAEXAMPLEID:*"}}, None),                     # one role's sessions
    ({"StringLike": {"aws:userid": "*:alice"}}, "a wildcard"),
    ({"StringEqualsIfExists": {"aws:SourceVpce": "vpce-1a2b3c"}}, "a request without aws:SourceVpce passes"),
    ({"Null": {"aws:SourceVpce": "false"}}, "a request without aws:SourceVpce passes"),
    ({"StringNotEquals": {"aws:SourceAccount": ACCOUNT}}, "every caller but the ones named"),
    ({"ArnNotLike": {"aws:PrincipalArn": DEPLOY}}, "every caller but the ones named"),
    ({"NotIpAddress": {"aws:SourceIp": "198.51.100.0/24"}}, "every caller but the ones named"),
    # conditions add up: one that names a fixed caller is enough
    ({"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c"}, "NotIpAddress": {"aws:SourceIp": "198.51.100.0/24"}}, None),
    ({"Bool": {"aws:SecureTransport": "true"}}, "no condition that binds the caller"),
])
def test_conditions_bind_the_caller_only_with_fixed_values_and_few_addresses(condition, reason):
    found = policy.public_grants(statements(everyone(condition)), DISTRIBUTION)
    if reason is None:
        assert found == []
    else:
        [(statement, why)] = found
        assert statement.sid == "Open" and reason in why and "everyone (*)" in why


def test_source_ip_ranges_of_all_statements_count_together():
    three = [everyone({"IpAddress": {"aws:SourceIp": f"{n}.0.0.0/9"}}, sid=f"Net{n}") for n in (1, 2, 3)]
    found = policy.public_grants(statements(*three), DISTRIBUTION)
    assert [s.sid for s, _ in found] == ["Net1", "Net2", "Net3"]
    assert all("together cover 25,165,824 public IPv4 addresses, more than one /8" in why for _, why in found)
    assert policy.public_grants(statements(*three[:2]), DISTRIBUTION) == []      # two /9 make one /8
    bound = everyone({"IpAddress": {"aws:SourceIp": "4.0.0.0/9"},
                      "StringEquals": {"aws:SourceVpce": "vpce-1a2b3c"}}, sid="Vpce")
    assert policy.public_grants(statements(*three[:2], bound), DISTRIBUTION) == []  # bound by its endpoint


def test_the_source_ip_limit_is_configurable():
    office = statements(everyone({"IpAddress": {"aws:SourceIp": "1.0.0.0/8"}}))
    assert policy.public_grants(office, DISTRIBUTION) == []
    [(_, why)] = policy.public_grants(office, DISTRIBUTION, ip_prefixes=(16, 48))
    assert "16,777,216 public IPv4 addresses, more than one /16 (65,536)" in why


# --- the Deny of plain HTTP (EA-S3-03) -----------------------------------------------------------------

@pytest.mark.parametrize("raw, every_action", [
    (deny("s3:*"), True),
    (deny("*"), True),
    (deny("S3:*"), True),
    (deny(["s3:GetObject", "s3:PutObject"]), False),
    (deny("s3:Get*"), False),
    ({"Effect": "Deny", "NotAction": "iam:*", "Resource": "*"}, True),
    ({"Effect": "Deny", "NotAction": "s3:GetObject", "Resource": "*"}, False),
])
def test_a_deny_covers_every_s3_action(raw, every_action):
    [statement] = statements(raw)
    assert policy.covers_every_action(statement, "s3") is every_action


def test_a_deny_covers_the_bucket_itself_only_when_it_names_it():
    bucket = f"arn:aws:s3:::{BUCKET}"
    [objects_only] = statements(deny("s3:*"))
    [both] = statements(deny("s3:*", [bucket, f"{bucket}/*"]))
    [wildcard] = statements(deny("s3:*", "arn:aws:s3:::www-*"))
    assert not policy.covers_resource(objects_only, bucket) and policy.covers_resource(both, bucket)
    assert policy.covers_resource(wildcard, bucket) and wildcard.covers(policy.objects_prefix(BUCKET))  # * spans "/"


# --- ACLs and Access Analyzer's second opinion (EA-S3-02) ------------------------------------------------

def test_object_acl_sample_spreads_over_the_sorted_keys():
    keys = [f"k{n:03d}" for n in range(100)]
    assert publicaccess.sample(list(reversed(keys)), 4) == ["k000", "k025", "k050", "k075"]
    assert publicaccess.sample(keys[:3], 20) == keys[:3]


def test_public_acl_grants_name_the_group():
    grants = [{"Grantee": {"Type": "CanonicalUser", "ID": "owner"}, "Permission": "FULL_CONTROL"},
              {"Grantee": {"Type": "Group", "URI": publicaccess.PUBLIC_GROUPS[0]}, "Permission": "READ"}]
    assert publicaccess.public_acl_grants(grants) == [f"READ to {publicaccess.PUBLIC_GROUPS[0]}"]


def test_access_analyzer_not_offered_by_moto_is_not_asked(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("accessanalyzer", region_name="eu-west-1")
        opinion = publicaccess.ask_access_analyzer(client, json.dumps({"Statement": [OAC_GRANT]}))
    assert not opinion.asked
    assert opinion.summary() == "not asked: accessanalyzer:CheckNoPublicAccess answered 404 (Not yet implemented)"
    assert publicaccess.ask_access_analyzer(client, None).summary() == "not asked: the bucket has no policy"


def test_access_analyzer_refused_or_unreachable_is_not_asked(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    breaker = Breaker()
    breaker.trip("audit", "the AWS credentials were refused (ExpiredToken from sts:GetCallerIdentity)")
    with mock_aws():
        client = CachedClient(boto3.client("accessanalyzer", region_name="eu-west-1"), ReadCache(), "audit", breaker)
        opinion = publicaccess.ask_access_analyzer(client, json.dumps({"Statement": [OAC_GRANT]}))
    assert opinion.summary() == ("not asked: the AWS credentials were refused (ExpiredToken from "
                                 "sts:GetCallerIdentity) (not asked again)")


def test_access_analyzer_disagreeing_is_a_finding_with_both_reasons():
    fail = publicaccess.Opinion(True, "FAIL", ["grants public access (statement OfficeRead)"])
    own = ["bucket policy (Open): Allow to everyone (*) with no condition that binds the caller"]
    why = publicaccess.disagreement([], fail)
    assert why and "Access Analyzer says FAIL (grants public access (statement OfficeRead))" in why
    assert "this control says no statement grants public access" in why
    assert own[0] in publicaccess.disagreement(own, publicaccess.Opinion(True, "PASS"))
    assert publicaccess.disagreement(own, fail) is None                         # both say public
    assert publicaccess.disagreement([], publicaccess.Opinion(True, "PASS")) is None
    assert publicaccess.disagreement(own, publicaccess.Opinion(False, why_not="AccessDenied")) is None


@pytest.mark.parametrize("name, value", [
    ("public_ip_prefix_v4", 33), ("public_ip_prefix_v6", 7.5), ("public_acl_sample_objects", 0),
    ("rollback_window_days", 0), ("rollback_window_days", "30"),
])
def test_the_new_thresholds_refuse_values_out_of_range(name, value):
    target = {"name": "www", "url": "https://www.example.com/", "bucket": "b", "distribution_id": "E1"}
    assert parse(Path("/nowhere/edgeaudit.toml"), {"targets": [target]}).thresholds[name] == DEFAULTS[name]
    with pytest.raises(ConfigError) as raised:
        parse(Path("/nowhere/edgeaudit.toml"), {"thresholds": {name: value}, "targets": [target]})
    assert raised.value.key == f"thresholds.{name}" and raised.value.path == "/nowhere/edgeaudit.toml"
    assert "whole number from" in raised.value.fix
