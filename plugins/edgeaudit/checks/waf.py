"""What a WAF web ACL's rules do to the requests they match (EA-CF-05).

A rule acts by its Action; a rule group statement by its OverrideAction, where Count makes every
rule of the group count and None lets the group's rules act, as the statement's own
RuleActionOverrides (and the older ExcludedRules, which count) leave them. So a group blocks only
when one of its rules still blocks after those overrides: a group of one's own is read
(wafv2:GetRuleGroup); a managed group whose overrides could have turned every rule to Count is
described (wafv2:DescribeManagedRuleGroup) to see whether a blocking rule is left.
"""

from __future__ import annotations

from typing import Any

from edgeaudit.aws.preflight import RULE_GROUP_ARN
from edgeaudit.errors import NotEvaluated

BLOCK = "Block"
REGION = "us-east-1"  # a CLOUDFRONT-scoped web ACL and its rule groups live there


def rule_action(aws: Any, rule: dict[str, Any]) -> str:
    """What the rule does to a request it matches: Block, Count, Allow, Captcha, Challenge, or for a
    rule group Block when at least one of its rules blocks, else Count."""
    override = rule.get("OverrideAction")
    if not override:
        return next(iter(rule.get("Action") or {}), "none")
    if "None" not in override:
        return next(iter(override))
    statement = rule.get("Statement") or {}
    if "RuleGroupReferenceStatement" in statement:
        reference = statement["RuleGroupReferenceStatement"]
        return _group_action(rule_group(aws, reference["ARN"]).get("Rules") or [], reference)
    if "ManagedRuleGroupStatement" in statement:
        managed = statement["ManagedRuleGroupStatement"]
        overridden = _overrides(managed)
        if not overridden or BLOCK in overridden.values():
            return BLOCK  # no rule's action changed (a managed group's rules act), or one made to block
        asked = {key: managed[key] for key in ("VendorName", "Name", "VersionName") if managed.get(key)}
        described = aws.client("wafv2", REGION).describe_managed_rule_group(Scope="CLOUDFRONT", **asked)
        return _group_action(described.get("Rules") or [], managed)
    return BLOCK  # a statement that is no group takes no OverrideAction: AWS refuses it


def rule_group(aws: Any, arn: str) -> dict[str, Any]:
    """A CLOUDFRONT-scoped rule group of the account's own, asked by name, scope and id (the
    parts of its ARN: AWS takes either form, moto only this one)."""
    found = RULE_GROUP_ARN.match(arn)
    if not found:
        raise NotEvaluated(f"cannot read the rule group ARN {arn} (expected .../global/rulegroup/NAME/ID)")
    return aws.client("wafv2", REGION).get_rule_group(Name=found["name"], Id=found["id"],
                                                      Scope="CLOUDFRONT")["RuleGroup"]


def _overrides(statement: dict[str, Any]) -> dict[str, str]:
    """Rule name -> the action the statement makes it take instead of its own."""
    found = {excluded["Name"]: "Count" for excluded in statement.get("ExcludedRules") or []}
    for override in statement.get("RuleActionOverrides") or []:
        found[override["Name"]] = next(iter(override.get("ActionToUse") or {}), "none")
    return found


def _group_action(rules: list[dict[str, Any]], statement: dict[str, Any]) -> str:
    """Block when a rule of the group still blocks after the statement's overrides, else Count."""
    overridden = _overrides(statement)
    actions = [overridden.get(rule.get("Name", ""), next(iter(rule.get("Action") or {}), "none")) for rule in rules]
    return BLOCK if BLOCK in actions else "Count"
