"""Manual controls (seed: the monthly audit, quarterly security review and DR checklists).

A person does these; the config's [[attestations]] prove it. Each passes only with a live
attestation whose status is passed (`edgeaudit attest` records one).
"""

import pytest


@pytest.mark.control("EA-MAN-01", severity="P4")
@pytest.mark.monthly
def test_documentation_reviewed(attestation):
    """Documentation (procedures, runbooks) was reviewed and updated this month.

    Remediation: review the operational procedures and runbooks, then record it with
    `edgeaudit attest EA-MAN-01 --by NAME --evidence URL`.
    """
    assert attestation.ok, attestation.problem


@pytest.mark.control("EA-MAN-02", severity="P4")
@pytest.mark.monthly
def test_training_needs_assessed(attestation):
    """The team's training needs were assessed this month.

    Remediation: assess the team's training needs, then record it with
    `edgeaudit attest EA-MAN-02 --by NAME --evidence URL`.
    """
    assert attestation.ok, attestation.problem


@pytest.mark.control("EA-MAN-03", severity="P4")
@pytest.mark.monthly
@pytest.mark.cost
def test_cost_recommendations_reviewed(attestation):
    """Cost optimisation recommendations were reviewed this month.

    Remediation: review the month's cost report and its recommendations, then record it with
    `edgeaudit attest EA-MAN-03 --by NAME --evidence URL`.
    """
    assert attestation.ok, attestation.problem


@pytest.mark.control("EA-MAN-04", severity="P3")
@pytest.mark.quarterly
@pytest.mark.security
def test_incident_response_tested(attestation):
    """Incident response procedures were tested this quarter.

    Remediation: run an incident response exercise (detection, escalation by severity,
    resolution, post-mortem), then record it with `edgeaudit attest EA-MAN-04 --by NAME --evidence URL`.
    """
    assert attestation.ok, attestation.problem


@pytest.mark.control("EA-MAN-05", severity="P4")
@pytest.mark.quarterly
@pytest.mark.security
def test_security_training_completed(attestation):
    """Security training was completed this quarter.

    Remediation: have the team complete the security training, then record it with
    `edgeaudit attest EA-MAN-05 --by NAME --evidence URL`.
    """
    assert attestation.ok, attestation.problem


@pytest.mark.control("EA-MAN-06", severity="P3")
@pytest.mark.quarterly
@pytest.mark.security
def test_compliance_requirements_verified(attestation):
    """Compliance requirements were verified this quarter.

    Remediation: verify the compliance requirements that apply to the site, then record it
    with `edgeaudit attest EA-MAN-06 --by NAME --evidence URL`.
    """
    assert attestation.ok, attestation.problem


@pytest.mark.control("EA-MAN-07", severity="P3")
@pytest.mark.quarterly
@pytest.mark.dr
def test_dr_communication_practised(attestation):
    """DR communication procedures were practised and the team trained this quarter.

    Remediation: practise the DR communication procedures during the quarterly drill and train
    the team, then record it with `edgeaudit attest EA-MAN-07 --by NAME --evidence URL`.
    """
    assert attestation.ok, attestation.problem
