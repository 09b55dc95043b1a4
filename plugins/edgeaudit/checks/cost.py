"""The Cost Explorer questions of the cost controls: the site's S3 and CloudFront spend, day by
day, and the month's forecast. They are built here, in one place, so that the demo seeds
exactly the requests the controls make.

Cost Explorer works in UTC days; `End` is exclusive, so the latest full day is yesterday. Its
newest figures are incomplete and marked `Estimated`: the spike check judges complete days only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

SERVICES = ("Amazon Simple Storage Service", "Amazon CloudFront")
# Days of history asked for: the newest complete day and the seven before it, with up to six
# newer days still estimated.
HISTORY_DAYS = 14
BASELINE_DAYS = 7


def today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def cost_filter(tag: tuple[str, str] | None) -> dict[str, Any]:
    """S3 and CloudFront, and the site's cost allocation tag when it has one."""
    services = {"Dimensions": {"Key": "SERVICE", "Values": list(SERVICES)}}
    if not tag:
        return services
    return {"And": [services, {"Tags": {"Key": tag[0], "Values": [tag[1]]}}]}


def describe_filter(tag: tuple[str, str] | None) -> str:
    """The filter of cost_filter() in words, for messages that must say what was asked."""
    services = " and ".join(SERVICES)
    return f"services {services}, tag {tag[0]}={tag[1]}" if tag else f"services {services}, no tag (whole account)"


def daily_costs_request(day: dt.date, tag: tuple[str, str] | None) -> dict[str, Any]:
    """GetCostAndUsage parameters: every full day of this month and of the last HISTORY_DAYS."""
    start = min(day.replace(day=1), day - dt.timedelta(days=HISTORY_DAYS))
    return {"TimePeriod": {"Start": start.isoformat(), "End": day.isoformat()}, "Granularity": "DAILY",
            "Metrics": ["UnblendedCost"], "Filter": cost_filter(tag)}


def forecast_request(day: dt.date, tag: tuple[str, str] | None) -> dict[str, Any]:
    """GetCostForecast parameters: from today to the end of the month."""
    return {"TimePeriod": {"Start": day.isoformat(), "End": next_month(day).isoformat()},
            "Metric": "UNBLENDED_COST", "Granularity": "MONTHLY", "Filter": cost_filter(tag)}


def daily_amounts(response: dict[str, Any]) -> dict[dt.date, float]:
    """Day -> USD from a DAILY GetCostAndUsage answer."""
    return {dt.date.fromisoformat(r["TimePeriod"]["Start"]): float(r["Total"]["UnblendedCost"]["Amount"])
            for r in response.get("ResultsByTime", [])}


def estimated_days(response: dict[str, Any]) -> set[dt.date]:
    """The days of a DAILY GetCostAndUsage answer whose figures are not final yet."""
    return {dt.date.fromisoformat(r["TimePeriod"]["Start"]) for r in response.get("ResultsByTime", [])
            if r.get("Estimated")}


def complete_days(amounts: dict[dt.date, float], estimated: set[dt.date]) -> list[dt.date]:
    """The days with a final figure, newest first."""
    return sorted((d for d in amounts if d not in estimated), reverse=True)


def daily_results(request: dict[str, Any], amounts: dict[dt.date, float]) -> dict[str, Any]:
    """A GetCostAndUsage answer to `request` with the given amounts (zero on other days):
    what the demo seeds."""
    start = dt.date.fromisoformat(request["TimePeriod"]["Start"])
    end = dt.date.fromisoformat(request["TimePeriod"]["End"])
    days = [start + dt.timedelta(days=n) for n in range((end - start).days)]
    return {"ResultsByTime": [
        {"TimePeriod": {"Start": d.isoformat(), "End": (d + dt.timedelta(days=1)).isoformat()},
         "Total": {"UnblendedCost": {"Amount": f"{amounts.get(d, 0.0):.10f}", "Unit": "USD"}},
         "Groups": [], "Estimated": d >= end - dt.timedelta(days=1)}
        for d in days], "DimensionValueAttributes": []}
