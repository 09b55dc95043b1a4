"""Which history lines count: anyone with PutObject on the history's prefix can add one, so a
line is signed with the run's signing key (the evidence bundle's, `--sign-key`) when one is
configured, and read back only if it verifies. Whatever the key, a line dated in the future
(which would keep every cadence "within" for ever) or malformed is ignored with a warning
naming the object it came from. Reading the history never stops a report: the lines that
do not count are left out, not fatal."""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edgeaudit.redact import redact, redact_text
from edgeaudit.reporting.bundle import key_id, load_private_key

SEAL = "seal"  # the signature's field (not "signature": redaction blanks values of fields so named)
CLOCK_SKEW = dt.timedelta(minutes=5)  # a line started later than now plus this is dated in the future
_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def _payload(entry: dict[str, Any]) -> bytes:
    body = {k: v for k, v in entry.items() if k != SEAL}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sign(entry: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """The line as the history will hold it (redacted), with an Ed25519 signature over its
    canonical JSON."""
    entry = json.loads(redact_text(json.dumps(redact(entry), sort_keys=True)))
    signature = base64.b64encode(key.sign(_payload(entry))).decode()
    return {**entry, SEAL: {"algorithm": "Ed25519", "key_id": key_id(key.public_key()), "value": signature}}


def verifies(entry: dict[str, Any], key: Ed25519PublicKey) -> bool:
    """Whether the line carries a signature by `key` over exactly its content."""
    signature = entry.get(SEAL)
    if not isinstance(signature, dict) or not isinstance(signature.get("value"), str):
        return False
    try:
        key.verify(base64.b64decode(signature["value"], validate=True), _payload(entry))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def signer(sign_key: Path | None) -> Ed25519PrivateKey | None:
    """The run's signing key, if one is configured (checked when the run started)."""
    return load_private_key(sign_key) if sign_key else None


@dataclass
class Vetted:
    """The lines that count, and what the report says about the others."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    signed_by: str | None = None          # the key id lines had to verify with (None: no key configured)
    verified: list[str] = field(default_factory=list)   # `started` of each line whose signature verified
    ignored: list[str] = field(default_factory=list)    # one warning per line left out, naming its object

    def evidence(self) -> dict[str, Any]:
        return {"lines_counted": len(self.entries), "signing_key": self.signed_by,
                "verified": self.verified if self.signed_by else "no signing key configured: lines are not verified",
                "ignored": self.ignored}


def _started(entry: dict[str, Any]) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(str(entry.get("started")), _FORMAT).replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return None


def _malformed(entry: dict[str, Any]) -> str | None:
    if _started(entry) is None:
        return f"its started {str(entry.get('started'))[:40]!r} is not a UTC time (YYYY-MM-DDTHH:MM:SSZ)"
    for key in ("cadences", "targets"):
        if key in entry and not (isinstance(entry[key], list) and all(isinstance(v, str) for v in entry[key])):
            return f"its {key} is not a list of names"
    cover = entry.get("coverage")
    if cover is not None and not (isinstance(cover, dict) and all(
            isinstance(v, list) and all(isinstance(c, str) for c in v) for v in cover.values())):
        return "its coverage is not a table of target: cadences"
    measures = entry.get("measures")
    if measures is not None and not (isinstance(measures, dict) and all(
            isinstance(k, str) and k.count("|") >= 2 and isinstance(v, (int, float)) and not isinstance(v, bool)
            for k, v in measures.items())):
        return "its measures are not a table of control|target|name: number"
    return None


def vet(lines: list[tuple[str, dict[str, Any]]], now: dt.datetime, key: Ed25519PrivateKey | None = None,
        warnings: list[str] | None = None) -> Vetted:
    """The lines that count, oldest first: well-formed, not dated after `now`, and signed by
    `key` when given. `lines` are (the object read, the line); `warnings` are the read's own."""
    public = key.public_key() if key else None
    out = Vetted(signed_by=key_id(public) if public else None, ignored=list(warnings or []))
    for where, entry in lines:
        line = f"the line started {str(entry.get('started'))[:40]} in {where}"
        if problem := _malformed(entry):
            out.ignored.append(f"{line} is ignored: {problem}")
        elif (started := _started(entry)) and started > now + CLOCK_SKEW:
            out.ignored.append(f"{line} is ignored: it is dated in the future")
        elif public is not None and not verifies(entry, public):
            out.ignored.append(f"{line} is ignored: it is not signed by the run's signing key ({out.signed_by})")
        else:
            if public is not None:
                out.verified.append(str(entry["started"]))
            out.entries.append(entry)
    return out


def read(store: Any, now: dt.datetime, key: Ed25519PrivateKey | None = None) -> Vetted:
    """The lines of a history store (reporting/store.py) that count. Raises HistoryUnavailable
    when the store cannot be read at all."""
    warnings: list[str] = []
    lines = store.read_sourced(warnings, now=now)
    return vet(lines, now, key, warnings)
