"""Manual controls (seed: the monthly audit, quarterly security review and DR checklists).

A person does these; the config's [[attestations]] prove it (`edgeaudit attest` records one).
Each passes only with an attestation whose status is passed and that still counts: until the
control's cadence is next due, and until its `expires`. The nine share one body; each one's
marks are written beside it, as on any control: the attestations take its cadence from its
cadence marker (edgeaudit.rules.catalog reads it there).
"""

from typing import Callable

import pytest


def manual_control(title: str, remediation: str, control: pytest.MarkDecorator,
                   *marks: pytest.MarkDecorator) -> Callable[..., None]:
    """A manual control: passes on a counting attestation, else fails with what is missing."""
    def test(attestation):
        assert attestation.ok, attestation.problem

    test.__doc__ = f"{title}\n\nRemediation: {remediation}, then record it with " \
                   f"`edgeaudit attest {control.args[0]} --by NAME --evidence URL`.\n"
    for mark in (control, *marks):
        test = mark(test)
    return test


test_documentation_reviewed = manual_control(
    "Documentation (procedures, runbooks) was reviewed and updated this month.",
    "review the operational procedures and runbooks",
    pytest.mark.control("EA-MAN-01", severity="P4"), pytest.mark.monthly)
test_training_needs_assessed = manual_control(
    "The team's training needs were assessed this month.",
    "assess the team's training needs",
    pytest.mark.control("EA-MAN-02", severity="P4"), pytest.mark.monthly)
test_cost_recommendations_reviewed = manual_control(
    "Cost optimisation recommendations were reviewed this month.",
    "review the month's cost report and its recommendations",
    pytest.mark.control("EA-MAN-03", severity="P4"), pytest.mark.monthly, pytest.mark.cost)
test_incident_response_tested = manual_control(
    "Incident response procedures were tested this quarter.",
    "run an incident response exercise (detection, escalation by severity, resolution, post-mortem)",
    pytest.mark.control("EA-MAN-04", severity="P3"), pytest.mark.quarterly, pytest.mark.security)
test_security_training_completed = manual_control(
    "Security training was completed this quarter.",
    "have the team complete the security training",
    pytest.mark.control("EA-MAN-05", severity="P4"), pytest.mark.quarterly, pytest.mark.security)
test_compliance_requirements_verified = manual_control(
    "Compliance requirements were verified this quarter.",
    "verify the compliance requirements that apply to the site",
    pytest.mark.control("EA-MAN-06", severity="P3"), pytest.mark.quarterly, pytest.mark.security)
test_dr_communication_practised = manual_control(
    "DR communication procedures were practised and the team trained this quarter.",
    "practise the DR communication procedures during the quarterly drill and train the team",
    pytest.mark.control("EA-MAN-07", severity="P3"), pytest.mark.quarterly, pytest.mark.dr)
test_knowledge_audited = manual_control(
    "The annual knowledge audit was done this year.",
    "audit the team's knowledge of the site and its procedures (who can run each runbook, what is "
    "written down, what lives in one head) and plan the gaps",
    pytest.mark.control("EA-MAN-08", severity="P4"), pytest.mark.annually)
test_processes_overhauled = manual_control(
    "The annual process overhaul was done this year.",
    "review every operational procedure against the year's incidents, metrics and changes, and "
    "rewrite what no longer fits",
    pytest.mark.control("EA-MAN-09", severity="P4"), pytest.mark.annually)
