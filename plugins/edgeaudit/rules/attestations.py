"""Manual controls (EA-MAN-*): the checklist items a person does, proven by attestation.

An attestation in the config says who did the item, when, where the evidence is, and until
when that holds. It counts only until its control's cadence is next due (schedule.py: a monthly
item done on any day holds until the next first Monday), whatever its `expires`; `expires` may
shorten that, never lengthen it. A control passes only with a counting attestation whose
status is passed.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeaudit.rules import config as config_module
from edgeaudit.rules.catalog import manual_cadences
from edgeaudit.rules.config import Attestation, ConfigError
from edgeaudit.rules.schedule import SCHEDULES, holds_until
from edgeaudit.rules.tomlwrite import append_entries


def __getattr__(name: str) -> Any:
    """MANUAL_CONTROLS: control -> cadence, as the manual controls in suites/ declare them."""
    if name == "MANUAL_CONTROLS":
        return manual_cadences()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def expiry_state(expires: dt.date, today: dt.date, warn_days: int) -> str:
    """live, expiring (within warn_days) or expired: for attestations and waivers alike."""
    if expires < today:
        return "expired"
    return "expiring" if (expires - today).days < warn_days else "live"


def counts_until(attestation: Attestation, cadence: str | None = None) -> dt.date:
    """The last day the attestation counts: its `expires`, or the end of the cadence's next
    scheduled window, whichever comes first."""
    cadence = cadence or manual_cadences()[attestation.control]
    return min(attestation.expires, holds_until(cadence, attestation.date))


def state(attestation: Attestation, today: dt.date, warn_days: int) -> str:
    """live, expiring or expired, counting the cadence window as well as `expires` (the report)."""
    end = counts_until(attestation)
    if end < today:
        return "expired"
    early = attestation.expires < holds_until(manual_cadences()[attestation.control], attestation.date)
    return "expiring" if early and (end - today).days < warn_days else "live"


@dataclass(frozen=True)
class Verdict:
    """What the attestations say of one manual control on one target."""

    ok: bool
    problem: str
    expiring: bool
    evidence: dict[str, Any]


def evaluate(attestations: tuple[Attestation, ...], control: str, cadence: str, target: str, today: dt.date,
             warn_days: int) -> Verdict:
    """The newest attestation of `control` that applies to `target` decides; it counts only
    until `cadence` is next due after its date, and only until its `expires`. It warns when its
    `expires` ends it before the cadence would, within warn_days."""
    applicable = [a for a in attestations if a.control == control and a.target in (None, target)]
    if not applicable:
        return Verdict(False, f"{control} was never attested for target {target}: record it with "
                       f"`edgeaudit attest {control} --by NAME --evidence URL`", False, {"attestation": None})
    latest = max(applicable, key=lambda a: (a.date, a.expires))
    due = holds_until(cadence, latest.date)
    end = min(latest.expires, due)
    days_left = (end - today).days
    evidence = {"attested_by": latest.attested_by, "date": latest.date.isoformat(), "status": latest.status,
                "evidence_url": latest.evidence_url, "expires": latest.expires.isoformat(),
                "cadence": cadence, "cadence_due": due.isoformat(), "counts_until": end.isoformat(),
                "days_until_expiry": days_left, "note": latest.note}
    if end < today:
        why = (f"its {cadence} window closed on {due.isoformat()} ({cadence} = {SCHEDULES[cadence]})"
               if due <= latest.expires else f"expired {latest.expires.isoformat()}")
        return Verdict(False, f"not attested since {latest.date.isoformat()} (by {latest.attested_by}; {why})",
                       False, evidence)
    if latest.status != "passed":
        return Verdict(False, f"attested as failed on {latest.date.isoformat()} by {latest.attested_by}",
                       False, evidence)
    return Verdict(True, "", latest.expires < due and days_left < warn_days, evidence)


def entry(control: str, attested_by: str, evidence_url: str, *, status: str = "passed", date: dt.date | None = None,
          expires: dt.date | None = None, target: str | None = None, note: str | None = None) -> dict[str, Any]:
    """A well-formed [[attestations]] entry; the expiry defaults to the end of the control's
    next scheduled window (the longest it may be)."""
    date = date or dt.date.today()
    cadence = manual_cadences().get(control)
    if expires is None and cadence:
        expires = holds_until(cadence, date)
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
    try:
        text = append_entries(before, "attestations", [new])
        tomllib.loads(text)
    except (ValueError, AttributeError) as exc:  # not TOML, or attestations not an array of tables
        raise ConfigError(destination, "attestations", f"cannot append to this file ({exc})",
                          "write the attestations as [[attestations]] tables") from None
    destination.write_text(text, encoding="utf-8")
    return destination
