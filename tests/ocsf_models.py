"""OCSF findings checked against Prowler's OCSF models (py-ocsf-models), not by hand: each
finding must build the library's Detection Finding, and every attribute written must be one the
class knows (pydantic drops unknown ones: a finding that comes back smaller misspelt something)."""

from __future__ import annotations

from typing import Any

from py_ocsf_models.events.findings.detection_finding import DetectionFinding


def validate(finding: dict[str, Any]) -> DetectionFinding:
    model = DetectionFinding.model_validate(finding)
    assert model.model_dump(mode="json", exclude_unset=True) == finding, "attributes the OCSF class does not know"
    return model
