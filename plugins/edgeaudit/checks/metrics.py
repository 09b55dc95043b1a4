"""CloudFront's CloudWatch metrics of a distribution: they live in us-east-1, namespace
AWS/CloudFront, dimensions DistributionId and Region=Global. Rates are percentages there;
this module returns them as fractions, the unit of the thresholds. Route 53 publishes its
health checks' metrics in us-east-1 too, so `datapoints` reads any metric of that region."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from edgeaudit.errors import NotEvaluated

NAMESPACE = "AWS/CloudFront"
REGION = "us-east-1"
AVAILABILITY_DAYS = 30  # EA-MET-02's period, the procedures' monthly review


def datapoints(aws: Any, namespace: str, dimensions: dict[str, str], metric: str, start: dt.datetime,
               end: dt.datetime, period_s: int, statistics: list[str]) -> list[dict[str, Any]]:
    """The datapoints of `metric` in `namespace` with exactly these dimensions, in us-east-1
    (where CloudFront and Route 53 publish theirs): the one CloudWatch read of the controls."""
    return aws.client("cloudwatch", REGION).get_metric_statistics(
        Namespace=namespace, MetricName=metric, StartTime=start, EndTime=end, Period=period_s,
        Statistics=statistics, Dimensions=[{"Name": name, "Value": value} for name, value in dimensions.items()],
    ).get("Datapoints", [])


def _datapoints(aws: Any, distribution_id: str, metric: str, start: dt.datetime, end: dt.datetime,
                period_s: int, statistics: list[str]) -> list[dict[str, Any]]:
    """The distribution's datapoints of `metric` (its namespace and dimensions)."""
    return datapoints(aws, NAMESPACE, {"DistributionId": distribution_id, "Region": "Global"}, metric,
                      start, end, period_s, statistics)


def average_rate(aws: Any, distribution_id: str, metric: str, hours: int,
                 now: dt.datetime | None = None) -> float | None:
    """The mean of `metric` (a percentage) over the last `hours`, as a fraction; None without datapoints."""
    end = now or dt.datetime.now(dt.timezone.utc)
    return rate_between(aws, distribution_id, metric, end - dt.timedelta(hours=hours), end)


def rate_between(aws: Any, distribution_id: str, metric: str, start: dt.datetime,
                 end: dt.datetime) -> float | None:
    """The mean of `metric` (a percentage) from `start` to `end`, as a fraction; None without datapoints.
    One period spans the window: whole minutes, whole hours past 15 days (CloudWatch keeps
    minute data that long)."""
    step = 3600 if end - start > dt.timedelta(days=15) else 60
    period = max(step, math.ceil((end - start).total_seconds() / step) * step)
    points = _datapoints(aws, distribution_id, metric, start, end, period, ["Average", "SampleCount"])
    if not points:
        return None
    count = sum(p.get("SampleCount", 1) for p in points)
    total = sum(p["Average"] * p.get("SampleCount", 1) for p in points)
    return round(total / count / 100, 6) if count else None


def require_rate(aws: Any, distribution_id: str, metric: str, hours: int,
                 fix: str = "check the distribution id and that it served requests") -> float:
    """As average_rate, but no datapoints is NotEvaluated naming the metric and `fix`: a rate
    that was not measured is never assumed."""
    rate = average_rate(aws, distribution_id, metric, hours)
    if rate is None:
        raise NotEvaluated(f"CloudWatch has no {metric} datapoints for distribution {distribution_id} "
                           f"({NAMESPACE}, {REGION}, Region=Global) in the last {hours} h: {fix}")
    return rate


def require_rate_since(aws: Any, distribution_id: str, metric: str, start: dt.datetime, what: str) -> float:
    """As rate_between up to now; no datapoints since `start` (`what` names that moment) is
    NotEvaluated: the traffic since then is not measured yet."""
    rate = rate_between(aws, distribution_id, metric, start, dt.datetime.now(dt.timezone.utc))
    if rate is None:
        raise NotEvaluated(f"CloudWatch has no {metric} datapoints for distribution {distribution_id} "
                           f"({NAMESPACE}, {REGION}, Region=Global) since {start:%Y-%m-%d %H:%M:%S} UTC ({what}): "
                           "run the check again once the site has served traffic since then (CloudWatch "
                           "publishes CloudFront's metrics a few minutes late)")
    return rate


def series(aws: Any, distribution_id: str, metric: str, statistic: str, start: dt.datetime, end: dt.datetime,
           period_s: int) -> dict[dt.datetime, float]:
    """`metric`'s `statistic` per period between start and end: period start -> value."""
    points = _datapoints(aws, distribution_id, metric, start, end, period_s, [statistic])
    return {point["Timestamp"]: point[statistic] for point in points}


def availability(aws: Any, distribution_id: str, days: int, period_s: int = 3600,
                 now: dt.datetime | None = None) -> dict[str, Any]:
    """The share of requests the edge answered without a 5xx over the last `days`: each period's
    requests (Sum) weighed by its 5xx rate (Average). Periods with requests and no rate are
    counted apart (`unmeasured_requests`), never as served."""
    end = now or dt.datetime.now(dt.timezone.utc)
    start = end - dt.timedelta(days=days)
    requests = series(aws, distribution_id, "Requests", "Sum", start, end, period_s)
    rates = series(aws, distribution_id, "5xxErrorRate", "Average", start, end, period_s)
    periods = [(moment, count, rates[moment] / 100) for moment, count in requests.items() if moment in rates]
    total = sum(count for _, count, _ in periods)
    failed = sum(count * rate for _, count, rate in periods)
    worst = sorted(periods, key=lambda p: p[1] * p[2], reverse=True)[:5]
    return {
        "requests": total, "failed_requests": round(failed, 1),
        "availability": None if not total else round(1 - failed / total, 6),
        "periods": len(periods), "unmeasured_requests": sum(c for m, c in requests.items() if m not in rates),
        "worst_periods": [{"start": moment.isoformat(), "requests": count, "error_rate_5xx": round(rate, 6)}
                          for moment, count, rate in worst if rate > 0],
    }
