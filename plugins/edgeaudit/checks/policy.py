"""IAM policy evaluation for the access controls: who can write the origin bucket, who can
read it from outside, and how broad the grants are.

It reads bucket policies and identity policies (inline and managed, of users, groups and
roles, as `iam:GetAccountAuthorizationDetails` returns them) and evaluates Allow and Deny,
`Action`/`NotAction`, `Resource`/`NotResource` with `*` and `?` wildcards, principals, and
the conditions that bind a statement to particular callers (`aws:SourceArn`,
`aws:PrincipalArn`, ...). A conditional Allow still counts as a grant and a conditional Deny
does not count as a refusal, unless the condition only names principals: an audit must not
miss a grant because of a condition it cannot judge.

A condition binds the caller the way S3's Block Public Access judges "public": a fixed value
(no wildcard, no policy variable) of a caller key under a positive operator, or aws:SourceIp
ranges that together stay within a /8 (IPv4) or /32 (IPv6) of public addresses. `...IfExists`
and `Null` forms let a request without the key through; negated operators let in everyone
but the named.

Permission boundaries, session policies and organization SCPs are not evaluated; they can
only narrow what is reported here.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import botocore.exceptions

EVERYONE = "*"
# Actions that change or delete an object of a bucket.
OBJECT_WRITE_ACTIONS = ("s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion",
                        "s3:PutObjectAcl", "s3:PutObjectVersionAcl")
# A name no literal pattern contains: a pattern that matches it has a wildcard in that place.
ANY_NAME = "~"

# Condition keys that restrict a statement to known callers.
_BINDING_KEYS = frozenset({
    "aws:sourcearn", "aws:sourceaccount", "aws:sourceowner", "aws:sourcevpc", "aws:sourcevpce",
    "aws:principalarn", "aws:principalaccount", "aws:principalorgid", "aws:userid", "aws:sourceip",
})
_POSITIVE_OPERATORS = frozenset({"stringequals", "stringequalsignorecase", "stringlike", "arnequals", "arnlike",
                                 "ipaddress"})
_NEGATIVE_OPERATORS = frozenset({"stringnotequals", "stringnotlike", "arnnotequals", "arnnotlike"})
# RFC 1918: no request from the internet comes from these, so S3 leaves them out of the count.
_PRIVATE_NETWORKS = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
# S3's own limits of a "non-public" aws:SourceIp condition (the thresholds' defaults).
DEFAULT_IP_PREFIXES = (8, 32)
# aws:userid "<role id>:*" names the sessions of one role (S3 accepts it as fixed).
_ROLE_SESSIONS = re.compile(r"^[A-Z0-9]+:\*$")


# --- wildcards --------------------------------------------------------------------------------

def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _states_after(pattern: str, text: str, fold: bool) -> set[int]:
    """Positions in `pattern` that reading `text` can reach (`*` any run, `?` one character)."""
    if fold:
        pattern, text = pattern.lower(), text.lower()

    def closure(states: set[int]) -> set[int]:
        todo, seen = list(states), set(states)
        while todo:
            i = todo.pop()
            if i < len(pattern) and pattern[i] == "*" and i + 1 not in seen:
                seen.add(i + 1)
                todo.append(i + 1)
        return seen

    states = closure({0})
    for char in text:
        step = set()
        for i in states:
            if i < len(pattern):
                if pattern[i] == "*":
                    step.add(i)
                elif pattern[i] in ("?", char):
                    step.add(i + 1)
        states = closure(step)
        if not states:
            break
    return states


def matches(pattern: str, value: str, fold: bool = False) -> bool:
    """IAM wildcard match of the whole value (`fold`: case-insensitive, as for actions)."""
    return len(pattern) in _states_after(pattern, value, fold)


def matches_some_under(pattern: str, prefix: str, fold: bool = False) -> bool:
    """Some value that starts with `prefix` matches the pattern."""
    return bool(_states_after(pattern, prefix, fold))


def matches_all_under(pattern: str, prefix: str, fold: bool = False) -> bool:
    """Every value that starts with `prefix` matches (the rest of the pattern is only `*`)."""
    rest = [pattern[i:] for i in _states_after(pattern, prefix, fold)]
    return any(r and set(r) == {"*"} for r in rest)


# --- statements -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Statement:
    """One statement of a policy, and where it came from (for the evidence)."""

    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    source: str
    sid: str = ""
    index: int = 0                              # position in its document, for statements without a Sid
    not_action: bool = False
    not_resource: bool = False
    principals: tuple[str, ...] | None = None   # None in identity policies
    not_principal: bool = False
    conditions: Mapping[str, Any] = field(default_factory=dict)

    @property
    def allow(self) -> bool:
        return self.effect == "Allow"

    def label(self) -> str:
        return f"{self.source} ({self.sid or f'statement {self.index + 1}'})"

    def matches_action(self, action: str) -> bool:
        hit = any(matches(a, action, fold=True) for a in self.actions)
        return hit != self.not_action

    def touches(self, prefix: str) -> bool:
        """The statement's resources include some ARN under `prefix`."""
        if self.not_resource:
            return not any(matches_all_under(r, prefix) for r in self.resources)
        return any(matches_some_under(r, prefix) for r in self.resources)

    def covers(self, prefix: str) -> bool:
        """The statement's resources include every ARN under `prefix`."""
        if self.not_resource:
            return not any(matches_some_under(r, prefix) for r in self.resources)
        return any(matches_all_under(r, prefix) for r in self.resources)

    def condition_values(self, key: str, operators: frozenset[str]) -> list[str] | None:
        """Values of condition `key` under one of `operators`, None when it has no such condition."""
        found = None
        for operator, block in self.conditions.items():
            if operator.lower() not in operators or not isinstance(block, dict):
                continue
            for name, values in block.items():
                if name.lower() == key.lower():
                    found = (found or []) + [str(v) for v in _as_list(values)]
        return found

    def only_principal_conditions(self) -> bool:
        return all(isinstance(block, dict) and all(name.lower() == "aws:principalarn" for name in block)
                   for block in self.conditions.values())

    def applies_to(self, principal_arn: str) -> bool | None:
        """Whether the statement applies to a caller: True, False, or None (a condition decides
        that cannot be judged here). Principal-ARN conditions are judged."""
        if self.principals is not None:
            named = any(p == EVERYONE or _same_principal(p, principal_arn) for p in self.principals)
            if named == self.not_principal:
                return False
        if not self.conditions:
            return True
        if not self.only_principal_conditions():
            return None
        positive = self.condition_values("aws:PrincipalArn", _POSITIVE_OPERATORS)
        negative = self.condition_values("aws:PrincipalArn", _NEGATIVE_OPERATORS)
        if positive is not None and not any(matches(v, principal_arn) for v in positive):
            return False
        if negative is not None and any(matches(v, principal_arn) for v in negative):
            return False
        return True


@dataclass
class CallerBinding:
    """What a statement's conditions say about the caller: fixed callers they name, the
    aws:SourceIp ranges they allow, and why the other caller conditions name nobody."""

    fixed: list[str] = field(default_factory=list)
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(default_factory=list)
    open: list[str] = field(default_factory=list)


def _fixed(key: str, value: str) -> bool:
    """A value that names one caller: no wildcard, no policy variable."""
    if key == "aws:userid" and _ROLE_SESSIONS.match(value):
        return True
    return value != "" and not any(mark in value for mark in ("*", "?", "${"))


def caller_binding(statement: Statement) -> CallerBinding:
    """Judge each condition on a caller key (`_BINDING_KEYS`) of the statement."""
    binding = CallerBinding()
    for operator, block in statement.conditions.items():
        if not isinstance(block, dict):
            continue
        op = operator.lower()
        for name, raw in block.items():
            key = name.lower()
            if key not in _BINDING_KEYS:
                continue
            values = [str(v) for v in _as_list(raw)]
            where = f"{operator} {name} {', '.join(values)}"
            if op.endswith("ifexists") or op == "null":
                binding.open.append(f"{where}: a request without {name} passes")
            elif op in _NEGATIVE_OPERATORS or op == "notipaddress":
                binding.open.append(f"{where}: lets in every caller but the ones named")
            elif op not in _POSITIVE_OPERATORS:
                binding.open.append(f"{where}: not an operator that names callers")
            elif key == "aws:sourceip":
                if op != "ipaddress":
                    binding.open.append(f"{where}: not an IpAddress condition")
                    continue
                try:
                    binding.networks += [ipaddress.ip_network(v, strict=False) for v in values]
                except ValueError:
                    binding.open.append(f"{where}: not a list of address ranges")
            elif values and all(_fixed(key, v) for v in values):
                binding.fixed.append(where)
            else:
                binding.open.append(f"{where}: a wildcard or policy variable matches callers not named")
    return binding


def public_addresses(networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> tuple[int, int]:
    """(IPv4, IPv6) public addresses the ranges cover together, overlaps counted once."""
    networks = list(networks)
    v4 = list(ipaddress.collapse_addresses(n for n in networks if n.version == 4))
    v6 = list(ipaddress.collapse_addresses(n for n in networks if n.version == 6))
    private = sum(min(n.num_addresses, p.num_addresses) for n in v4 for p in _PRIVATE_NETWORKS if n.overlaps(p))
    return sum(n.num_addresses for n in v4) - private, sum(n.num_addresses for n in v6)


def too_broad(networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network],
              ip_prefixes: tuple[int, int] = DEFAULT_IP_PREFIXES) -> str:
    """Why the ranges together are too broad to name a network ("" when they are not)."""
    v4, v6 = public_addresses(networks)
    broad = [f"{count:,} public IPv{version} addresses, more than one /{prefix} ({2 ** (bits - prefix):,})"
             for version, count, prefix, bits in ((4, v4, ip_prefixes[0], 32), (6, v6, ip_prefixes[1], 128))
             if count > 2 ** (bits - prefix)]
    return " and ".join(broad)


def _same_principal(principal: str, arn: str) -> bool:
    """`principal` names the caller `arn`: the same ARN, or the root of the caller's account."""
    return principal == arn or (principal.endswith(":root") and account_of(principal) == account_of(arn) != "")


def account_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 else ""


def _principals(raw: Any) -> tuple[str, ...]:
    """Principal element -> ("*",) or ARNs and "service:<name>", "federated:<name>", ...
    A bare account id becomes the account's root ARN."""
    if raw == EVERYONE:
        return (EVERYONE,)
    out: list[str] = []
    for kind, values in (raw or {}).items():
        for value in _as_list(values):
            value = str(value)
            if kind == "AWS":
                if value == EVERYONE:
                    out.append(EVERYONE)
                elif re.fullmatch(r"\d{12}", value):
                    out.append(f"arn:aws:iam::{value}:root")
                else:
                    out.append(value)
            else:
                out.append(f"{kind.lower()}:{value}")
    return tuple(out)


def parse(document: Any, source: str) -> list[Statement]:
    """The statements of a policy document (a dict, or its JSON text, URL-decoded)."""
    if isinstance(document, str):
        document = json.loads(document)
    out = []
    for index, raw in enumerate(_as_list((document or {}).get("Statement"))):
        principal_key = "NotPrincipal" if "NotPrincipal" in raw else "Principal"
        out.append(Statement(
            effect=raw.get("Effect", ""), sid=str(raw.get("Sid", "")), source=source, index=index,
            actions=tuple(_as_list(raw.get("NotAction", raw.get("Action")))),
            not_action="NotAction" in raw,
            resources=tuple(_as_list(raw.get("NotResource", raw.get("Resource", EVERYONE)))),
            not_resource="NotResource" in raw,
            principals=_principals(raw[principal_key]) if principal_key in raw else None,
            not_principal=principal_key == "NotPrincipal",
            conditions=raw.get("Condition") or {},
        ))
    return out


# --- questions the controls ask ------------------------------------------------------------------

def objects_prefix(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}/"


def write_grants(statements: Iterable[Statement], bucket: str, principal_arn: str | None = None,
                 actions: Iterable[str] = OBJECT_WRITE_ACTIONS) -> list[Statement]:
    """The Allow statements that let the principal write objects of the bucket, once the Deny
    statements that certainly apply (to every object, unconditionally or by principal) are
    taken into account. Empty when it cannot write."""
    statements = list(statements)
    prefix = objects_prefix(bucket)
    grants: list[Statement] = []
    for action in actions:
        allowing = [s for s in statements if s.allow and s.matches_action(action) and s.touches(prefix)
                    and (principal_arn is None or s.applies_to(principal_arn) is not False)]
        denied = any(not s.allow and s.matches_action(action) and s.covers(prefix)
                     and s.applies_to(principal_arn or "") is True for s in statements)
        if allowing and not denied:
            grants.extend(s for s in allowing if s not in grants)
    return grants


def public_grants(statements: Iterable[Statement], distribution_arn: str,
                  ip_prefixes: tuple[int, int] = DEFAULT_IP_PREFIXES) -> list[tuple[Statement, str]]:
    """Allow statements of a bucket policy that let anyone (or any CloudFront distribution) in,
    with the reason. The CloudFront service principal is private only when an AWS:SourceArn
    condition names this distribution and nothing else. The aws:SourceIp ranges of all the
    statements to everyone bound by address alone count together."""
    found = []
    by_address: list[tuple[Statement, CallerBinding]] = []
    for statement in statements:
        if not statement.allow or statement.principals is None:
            continue
        if statement.not_principal:
            found.append((statement, "Allow with NotPrincipal grants everyone else"))
            continue
        if EVERYONE in statement.principals:
            binding = caller_binding(statement)
            broad = too_broad(binding.networks, ip_prefixes) if binding.networks else ""
            if binding.networks and not binding.fixed and not broad:
                by_address.append((statement, binding))
            elif not binding.fixed:
                ranges = ", ".join(str(n) for n in binding.networks)
                why = binding.open + ([f"aws:SourceIp {ranges} cover {broad}"] if broad else [])
                found.append((statement, "Allow to everyone (*) with no condition that binds the caller"
                                         + (f" ({'; '.join(why)})" if why else "")))
        if "service:cloudfront.amazonaws.com" in statement.principals:
            named = statement.condition_values("aws:SourceArn", _POSITIVE_OPERATORS)
            if not named:
                found.append((statement, "Allow to the CloudFront service with no AWS:SourceArn condition: "
                                         "any distribution, in any account, can read through it"))
            elif any(arn != distribution_arn for arn in named):
                others = ", ".join(arn for arn in named if arn != distribution_arn)
                found.append((statement, f"Allow to the CloudFront service for {others}, "
                                         f"not only this distribution ({distribution_arn})"))
    broad = too_broad([n for _, binding in by_address for n in binding.networks], ip_prefixes)
    if broad:
        labels = ", ".join(statement.label() for statement, _ in by_address)
        found += [(statement, f"Allow to everyone (*) from the aws:SourceIp ranges of {labels}, which together "
                              f"cover {broad}") for statement, _ in by_address]
    return found


def granted_principals(statement: Statement) -> list[str]:
    """Who an Allow statement of a resource policy grants: its principals, narrowed by a
    principal condition (`aws:PrincipalArn`, `aws:PrincipalAccount`) on `*`."""
    principals = list(statement.principals or ())
    if EVERYONE in principals:
        bound = statement.condition_values("aws:PrincipalArn", _POSITIVE_OPERATORS)
        accounts = statement.condition_values("aws:PrincipalAccount", _POSITIVE_OPERATORS)
        if bound or accounts:
            principals.remove(EVERYONE)
            principals += (bound or []) + [f"arn:aws:iam::{a}:root" for a in accounts or []]
    return principals


def foreign_grants(statements: Iterable[Statement], account_id: str) -> list[tuple[str, Statement]]:
    """(principal, statement) for every Allow of a bucket policy to a principal of another account."""
    found = []
    for statement in statements:
        if not statement.allow or statement.principals is None:
            continue
        for principal in granted_principals(statement):
            if principal.startswith("arn:") and account_of(principal) not in ("", account_id):
                found.append((principal, statement))
    return found


def resource_writers(statements: list[Statement], bucket: str, account_id: str) -> dict[str, list[Statement]]:
    """Principals a bucket policy itself lets write objects: every principal it names, except
    the owner account's root, which only delegates to the account's own IAM policies."""
    writers: dict[str, list[Statement]] = {}
    for statement in statements:
        if not statement.allow or statement.principals is None:
            continue
        for principal in granted_principals(statement):
            if principal == f"arn:aws:iam::{account_id}:root":
                continue
            grants = write_grants([statement] + [s for s in statements if not s.allow], bucket,
                                  principal_arn=principal)
            if grants:
                writers.setdefault(principal, []).extend(grants)
    return writers


def has_wildcard_name(pattern: str, prefix: str) -> bool:
    """The pattern matches any name after `prefix` (e.g. every bucket, every distribution)."""
    return matches_some_under(pattern, prefix + ANY_NAME)


def wildcard_action(statement: Statement, service: str) -> bool:
    """The statement grants every action of the service (`*`, `s3:*`, or a NotAction)."""
    return statement.not_action or any(matches(a, f"{service}:{ANY_NAME}", fold=True) for a in statement.actions)


def covers_every_action(statement: Statement, service: str) -> bool:
    """The statement names every action of the service (`*`, `s3:*`, or a NotAction outside it)."""
    if statement.not_action:
        return not any(matches_some_under(a, f"{service}:", fold=True) for a in statement.actions)
    return any(matches(a, f"{service}:{ANY_NAME}", fold=True) for a in statement.actions)


def covers_resource(statement: Statement, arn: str) -> bool:
    """The statement's resources include this one ARN."""
    hit = any(matches(r, arn) for r in statement.resources)
    return hit != statement.not_resource


def wildcard_resource(statement: Statement, prefix: str) -> bool:
    """The statement's resources include any name after `prefix` (or are a NotResource)."""
    return statement.not_resource or any(has_wildcard_name(r, prefix) for r in statement.resources)


def bucket_policy_document(s3: Any, bucket: str) -> str | None:
    """The text of a bucket's policy, None when it has none; `s3` is a client."""
    try:
        return s3.get_bucket_policy(Bucket=bucket)["Policy"]
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucketPolicy":
            return None
        raise


def bucket_statements(s3: Any, bucket: str) -> list[Statement]:
    """The statements of a bucket's policy (none when it has no policy); `s3` is a client."""
    document = bucket_policy_document(s3, bucket)
    return parse(document, "bucket policy") if document else []


# --- identities (users, groups, roles) ---------------------------------------------------------

@dataclass(frozen=True)
class Identity:
    arn: str
    kind: str                       # "user" or "role"
    name: str
    statements: tuple[Statement, ...]


def attached_policy_arns(details: Mapping[str, Any]) -> set[str]:
    """Every managed policy attached to a user, group or role of the account."""
    arns = set()
    for key in ("UserDetailList", "GroupDetailList", "RoleDetailList"):
        for entity in details.get(key, []):
            arns.update(p["PolicyArn"] for p in entity.get("AttachedManagedPolicies", []))
    return arns


def managed_documents(details: Mapping[str, Any]) -> dict[str, Any]:
    """Managed policy ARN -> the document of its default version, as listed in the details."""
    documents = {}
    for policy in details.get("Policies", []):
        for version in policy.get("PolicyVersionList", []):
            if version.get("IsDefaultVersion"):
                documents[policy["Arn"]] = version["Document"]
    return documents


def identities(details: Mapping[str, Any], managed: Mapping[str, Any]) -> list[Identity]:
    """Users (with their groups' policies) and roles, each with every statement that applies to
    it. `managed` maps every attached managed policy ARN to its document."""

    def inline(entity: Mapping[str, Any], list_key: str, where: str) -> list[Statement]:
        return [s for p in entity.get(list_key, [])
                for s in parse(p["PolicyDocument"], f"{where} inline policy {p['PolicyName']}")]

    def attached(entity: Mapping[str, Any], where: str) -> list[Statement]:
        return [s for p in entity.get("AttachedManagedPolicies", [])
                for s in parse(managed[p["PolicyArn"]], f"{where} managed policy {p['PolicyArn']}")]

    groups = {g["GroupName"]: inline(g, "GroupPolicyList", f"group/{g['GroupName']}")
              + attached(g, f"group/{g['GroupName']}") for g in details.get("GroupDetailList", [])}
    found = []
    for user in details.get("UserDetailList", []):
        where = f"user/{user['UserName']}"
        statements = inline(user, "UserPolicyList", where) + attached(user, where)
        for group in user.get("GroupList", []):
            statements += groups.get(group, [])
        found.append(Identity(user["Arn"], "user", user["UserName"], tuple(statements)))
    for role in details.get("RoleDetailList", []):
        where = f"role/{role['RoleName']}"
        statements = inline(role, "RolePolicyList", where) + attached(role, where)
        found.append(Identity(role["Arn"], "role", role["RoleName"], tuple(statements)))
    return found
