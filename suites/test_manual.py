"""Manual controls (seed: the monthly audit, quarterly security review and DR checklists).

A person does these; the config's [[attestations]] prove it (`edgeaudit attest` records one).
Each passes only with an attestation whose status is passed and that still counts: until the
control's cadence is next due, and until its `expires`. The seven share one body; each control's
cadence marker comes from the catalog's table of manual controls, which the attestations read too.
"""

from typing import Callable

import pytest

from edgeaudit.catalog import MANUAL_CADENCES


def manual_control(control: str, severity: str, title: str, remediation: str,
                   *categories: str) -> Callable[..., None]:
    """A manual control: passes on a counting attestation, else fails with what is missing."""
    def test(attestation):
        assert attestation.ok, attestation.problem

    test.__doc__ = f"{title}\n\nRemediation: {remediation}, then record it with " \
                   f"`edgeaudit attest {control} --by NAME --evidence URL`.\n"
    for mark in (pytest.mark.control(control, severity=severity), getattr(pytest.mark, MANUAL_CADENCES[control]),
                 *(getattr(pytest.mark, category) for category in categories)):
        test = mark(test)
    return test


test_documentation_reviewed = manual_control(
    "EA-MAN-01", "P4", "Documentation (procedures, runbooks) was reviewed and updated this month.",
    "review the operational procedures and runbooks")
test_training_needs_assessed = manual_control(
    "EA-MAN-02", "P4", "The team's training needs were assessed this month.",
    "assess the team's training needs")
test_cost_recommendations_reviewed = manual_control(
    "EA-MAN-03", "P4", "Cost optimisation recommendations were reviewed this month.",
    "review the month's cost report and its recommendations", "cost")
test_incident_response_tested = manual_control(
    "EA-MAN-04", "P3", "Incident response procedures were tested this quarter.",
    "run an incident response exercise (detection, escalation by severity, resolution, post-mortem)",
    "security")
test_security_training_completed = manual_control(
    "EA-MAN-05", "P4", "Security training was completed this quarter.",
    "have the team complete the security training", "security")
test_compliance_requirements_verified = manual_control(
    "EA-MAN-06", "P3", "Compliance requirements were verified this quarter.",
    "verify the compliance requirements that apply to the site", "security")
test_dr_communication_practised = manual_control(
    "EA-MAN-07", "P3", "DR communication procedures were practised and the team trained this quarter.",
    "practise the DR communication procedures during the quarterly drill and train the team", "dr")
