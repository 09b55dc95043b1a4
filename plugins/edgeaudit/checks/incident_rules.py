"""How EA-INC-01 and EA-INC-02 judge incidents, whichever source they come from (GitHub issues,
checks/incidents.py; the incident log, checks/incident_log.py): each source gives Incident
records, and one set of rules judges them, so that the two sources cannot drift apart.

An incident counts in the period when it was detected on or after the period's first day
(EA-INC-01), or resolved on or after it (EA-INC-02). One not yet acknowledged, or a P1/P2 not yet
given its post-mortem, is pending while its limit has not passed (a warning), late after.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol

LEVELS = ("P1", "P2", "P3", "P4")
POSTMORTEM_LEVELS = ("P1", "P2")


@dataclass(frozen=True)
class Incident:
    """One incident as the controls judge it; `id` is how messages name it (#12 for an issue)."""

    id: str
    level: str | None
    detected: dt.datetime
    acknowledged: dt.datetime | None = None
    acknowledged_by: str | None = None
    resolved: dt.datetime | None = None
    postmortem: str | None = None
    postmortem_at: dt.datetime | None = None
    url: str | None = None
    title: str | None = None
    target: str | None = None


class Source(Protocol):
    """Where a control reads incidents: `where` names it in the report; `unlevelled` says what an
    incident without a level lacks, in the source's words."""

    where: str
    unlevelled: str

    def opened(self, since: dt.date) -> list[Incident]:
        """The incidents detected on or after `since`, with their acknowledgement."""

    def closed(self, since: dt.date, max_days: float) -> list[Incident]:
        """The P1/P2 incidents resolved on or after `since`, with their post-mortem."""


@dataclass
class Judged:
    offenders: list[str] = field(default_factory=list)
    seen: list[dict[str, Any]] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)


def acknowledgements(incidents: list[Incident], limits: dict[str, float], since: dt.date, now: dt.datetime,
                     unlevelled: str = "has no level (P1..P4)") -> Judged:
    """EA-INC-01: each incident of the period has a level (`unlevelled`: what one without lacks)
    and was acknowledged within its level's response time (`limits`, minutes); one
    unacknowledged within it is pending."""
    judged = Judged()
    for incident in incidents:
        if incident.detected.date() < since:
            continue
        if incident.level is None:
            judged.offenders.append(f"{incident.id} {unlevelled}")
            continue
        minutes = ((incident.acknowledged or now) - incident.detected).total_seconds() / 60
        judged.seen.append({"incident": incident.id, "level": incident.level, "detected": incident.detected,
                            "acknowledged": incident.acknowledged, "by": incident.acknowledged_by,
                            "minutes": round(minutes, 1), "url": incident.url})
        if minutes > limits[incident.level]:
            judged.offenders.append(f"{incident.id} ({incident.level}) "
                                    f"{'acknowledged after' if incident.acknowledged else 'unacknowledged for'} "
                                    f"{minutes:.0f} min, over {limits[incident.level]:g} min")
        elif incident.acknowledged is None:
            judged.pending.append(incident.id)
    return judged


def postmortems(incidents: list[Incident], max_days: float, since: dt.date, now: dt.datetime) -> Judged:
    """EA-INC-02: each P1/P2 incident resolved in the period links a post-mortem no later than
    max_days after its resolution; one without, still within max_days, is pending."""
    judged = Judged()
    for incident in incidents:
        if (incident.level not in POSTMORTEM_LEVELS or incident.resolved is None
                or incident.resolved.date() < since):
            continue
        deadline = incident.resolved + dt.timedelta(days=max_days)
        linked = incident.postmortem is not None and incident.postmortem_at is not None
        judged.seen.append({"incident": incident.id, "level": incident.level, "resolved": incident.resolved,
                            "postmortem": incident.postmortem, "linked": incident.postmortem_at,
                            "url": incident.url})
        name = f"{incident.id} ({incident.level})"
        if linked and incident.postmortem_at <= deadline:  # type: ignore[operator]
            continue
        if linked:
            days = (incident.postmortem_at - incident.resolved).total_seconds() / 86400  # type: ignore[operator]
            judged.offenders.append(f"{name} linked {days:.1f} days after resolution")
        elif now > deadline:
            judged.offenders.append(name)
        else:
            judged.pending.append(name)
    return judged
