"""The fixed control ids of the catalog (CONTROLS.md), so that waivers and attestations naming
a control outside the current selection are still recognised."""

from __future__ import annotations

import re

ID_PATTERN = re.compile(r"^EA-[A-Z0-9]+-\d{2}$")
SEVERITIES = ("P1", "P2", "P3", "P4")

# family -> number of controls (ids run 01..N)
_FAMILIES = {
    "DEP": 4, "SITE": 7, "HDR": 9, "TLS": 6, "S3": 10, "CF": 11, "CACHE": 5, "PERF": 7,
    "COST": 4, "IAM": 6, "PEN": 9, "DR": 7, "OPS": 4, "MAN": 7,
}

CATALOG_IDS: frozenset[str] = frozenset(
    f"EA-{family}-{n:02d}" for family, count in _FAMILIES.items() for n in range(1, count + 1)
)

# The seed's incident table (operational-procedures.md, "Incident Classification").
INCIDENT_LEVELS = {
    "P1": {"name": "Critical", "description": "Complete service outage", "response": "5 minutes", "escalation": "All hands"},
    "P2": {"name": "High", "description": "Significant degradation", "response": "15 minutes", "escalation": "Senior team"},
    "P3": {"name": "Medium", "description": "Minor issues", "response": "1 hour", "escalation": "Team lead"},
    "P4": {"name": "Low", "description": "Cosmetic/non-urgent", "response": "4 hours", "escalation": "Standard"},
}

CADENCES = ("daily", "weekly", "monthly", "quarterly", "deploy")
CATEGORIES = ("security", "dr", "performance", "cost", "availability", "infrastructure")

# The manual controls (EA-MAN-*, proven by attestation) and their cadence: suites/test_manual.py
# marks each control with it, and an attestation holds until the cadence is next due.
MANUAL_CADENCES = {
    "EA-MAN-01": "monthly", "EA-MAN-02": "monthly", "EA-MAN-03": "monthly",
    "EA-MAN-04": "quarterly", "EA-MAN-05": "quarterly", "EA-MAN-06": "quarterly", "EA-MAN-07": "quarterly",
}
