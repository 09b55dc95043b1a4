"""Field data: the Chrome UX Report API's p75 of real Chrome users for the target's origin,
over the last 28 days. It is what Google assesses, so LCP, CLS and INP are judged on it beside
each critical page's lab values; being origin-wide and 28 days old, it never replaces them.

The key is read from the environment variable the target names (`crux_api_key_env`), never
from the config. An origin without enough traffic is a 404 from the API: field data is then
skipped with that reason, and the lab alone judges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

ENDPOINT = "https://chromeuxreport.googleapis.com/v1/records:queryRecord"
TIMEOUT_S = (5.0, 20.0)
# metric -> divisor into the thresholds' unit (LCP and FCP in seconds; INP and TTFB in ms; CLS as is)
METRICS = {"largest_contentful_paint": 1000, "interaction_to_next_paint": 1, "cumulative_layout_shift": 1,
           "first_contentful_paint": 1000, "experimental_time_to_first_byte": 1}
FORM_FACTORS = {"mobile": "PHONE", "desktop": "DESKTOP"}


class FieldUnavailable(Exception):
    """No field data: `skipped` when CrUX has none for the origin, else the query failed."""

    def __init__(self, reason: str, skipped: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.skipped = reason, skipped


@dataclass
class FieldData:
    """The p75 of each metric for one origin and form factor."""

    scope: str
    form_factor: str
    p75s: dict[str, float] = field(default_factory=dict)
    period: str = ""

    def p75(self, metric: str) -> float | None:
        """The p75 in the thresholds' unit (seconds for LCP/FCP), None if CrUX has no value."""
        value = self.p75s.get(metric)
        return None if value is None else round(value / METRICS[metric], 4)

    def evidence(self) -> dict[str, Any]:
        return {"origin": self.scope, "form_factor": self.form_factor, "collection_period": self.period,
                "p75": dict(self.p75s)}


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def query(url: str, api_key: str, form_factor: str = "PHONE", session: requests.Session | None = None) -> FieldData:
    """The origin's record; FieldUnavailable (skipped on 404) when there is none or the call fails."""
    scope = origin(url)
    body = {"origin": scope, "formFactor": form_factor, "metrics": list(METRICS)}
    try:
        answer = (session or requests).post(ENDPOINT, params={"key": api_key}, json=body, timeout=TIMEOUT_S)
    except requests.RequestException as exc:
        raise FieldUnavailable(f"Chrome UX Report API unreachable: {type(exc).__name__}") from None
    if answer.status_code == 404:
        raise FieldUnavailable(f"CrUX has no {form_factor} data for {scope} (404: not enough Chrome traffic); "
                               "the lab decides", skipped=True)
    if answer.status_code != 200:
        raise FieldUnavailable(f"Chrome UX Report API answered {answer.status_code}: {_message(answer)}")
    record = answer.json().get("record", {})
    p75s = {}
    for metric, data in record.get("metrics", {}).items():
        value = (data.get("percentiles") or {}).get("p75")
        if metric in METRICS and value is not None:
            p75s[metric] = float(value)  # CLS comes as a string, e.g. "0.05"
    return FieldData(scope, form_factor, p75s, _period(record.get("collectionPeriod", {})))


def _message(answer: requests.Response) -> str:
    try:
        return str(answer.json()["error"]["message"])[:200]
    except (ValueError, KeyError, TypeError):
        return answer.reason or ""


def _period(period: dict[str, Any]) -> str:
    def day(d: dict[str, int]) -> str:
        return f"{d.get('year', 0):04d}-{d.get('month', 0):02d}-{d.get('day', 0):02d}"

    if not period:
        return ""
    return f"{day(period.get('firstDate', {}))}..{day(period.get('lastDate', {}))}"
