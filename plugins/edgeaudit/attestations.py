"""Manual controls (EA-MAN-*): the checklist items a person does, proven by attestation.

An attestation in the config says who did the item, when, where the evidence is, and until
when that holds. A control passes only with a live attestation whose status is passed.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import config as config_module
from .config import Attestation, ConfigError
from .tomlwrite import dumps

# control -> (cadence, checklist item of the seed's procedures)
MANUAL_CONTROLS = {
    "EA-MAN-01": ("monthly", "documentation (procedures, runbooks) reviewed and updated"),
    "EA-MAN-02": ("monthly", "team training needs assessed"),
    "EA-MAN-03": ("monthly", "cost optimisation recommendations reviewed"),
    "EA-MAN-04": ("quarterly", "incident response procedures tested"),
    "EA-MAN-05": ("quarterly", "security training completed"),
    "EA-MAN-06": ("quarterly", "compliance requirements verified"),
    "EA-MAN-07": ("quarterly", "DR: communication procedures practised, team trained"),
}
# How long an attestation holds by default: the cadence's window (as EA-OPS-02 counts it).
VALIDITY_DAYS = {"monthly": 32, "quarterly": 93}


def expiry_state(expires: dt.date, today: dt.date, warn_days: int) -> str:
    """live, expiring (within warn_days) or expired: for attestations and waivers alike."""
    if expires < today:
        return "expired"
    return "expiring" if (expires - today).days < warn_days else "live"


@dataclass(frozen=True)
class Verdict:
    """What the attestations say of one manual control on one target."""

    ok: bool
    problem: str
    expiring: bool
    evidence: dict[str, Any]


def evaluate(attestations: tuple[Attestation, ...], control: str, target: str, today: dt.date,
             warn_days: int) -> Verdict:
    """The newest attestation of `control` that applies to `target` decides."""
    applicable = [a for a in attestations if a.control == control and a.target in (None, target)]
    if not applicable:
        return Verdict(False, f"{control} was never attested for target {target}: record it with "
                       f"`edgeaudit attest {control} --by NAME --evidence URL`", False, {"attestation": None})
    latest = max(applicable, key=lambda a: (a.date, a.expires))
    days_left = (latest.expires - today).days
    evidence = {"attested_by": latest.attested_by, "date": latest.date.isoformat(), "status": latest.status,
                "evidence_url": latest.evidence_url, "expires": latest.expires.isoformat(),
                "days_until_expiry": days_left, "note": latest.note}
    if latest.expires < today:
        return Verdict(False, f"not attested since {latest.date.isoformat()} (by {latest.attested_by}; "
                       f"expired {latest.expires.isoformat()})", False, evidence)
    if latest.status != "passed":
        return Verdict(False, f"attested as failed on {latest.date.isoformat()} by {latest.attested_by}",
                       False, evidence)
    return Verdict(True, "", days_left < warn_days, evidence)


def entry(control: str, attested_by: str, evidence_url: str, *, status: str = "passed", date: dt.date | None = None,
          expires: dt.date | None = None, target: str | None = None, note: str | None = None) -> dict[str, Any]:
    """A well-formed [[attestations]] entry; the expiry defaults to the control's cadence window."""
    date = date or dt.date.today()
    cadence = MANUAL_CONTROLS.get(control, ("quarterly", ""))[0]
    expires = expires or date + dt.timedelta(days=VALIDITY_DAYS[cadence])
    values = {"control": control, "status": status, "attested_by": attested_by, "date": date,
              "evidence_url": evidence_url, "expires": expires, "target": target, "note": note}
    return {k: v for k, v in values.items() if v is not None}


def append(config_path: Path, new: dict[str, Any]) -> Path:
    """Append one attestation to the config (or to its attestations_file), keeping the file as
    the user wrote it. Nothing is written unless the config and the new entry are valid."""
    current = config_module.load(config_path)
    loaded = tomllib.loads(config_path.read_text(encoding="utf-8"))
    destination = config_path
    if "attestations_file" in loaded:
        destination = (config_path.parent / loaded["attestations_file"]).resolve()
    config_module.check_attestations(destination, {"attestations": [new]}, current.targets)
    before = destination.read_text(encoding="utf-8")
    text = before + ("" if before.endswith("\n") else "\n") + "\n" + dumps({"attestations": [new]})
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(destination, "attestations", f"cannot append to this file ({exc})",
                          "write the attestations as [[attestations]] tables, not an inline array") from None
    destination.write_text(text, encoding="utf-8")
    return destination
