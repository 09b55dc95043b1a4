"""CloudFront's CloudWatch metrics of a distribution: they live in us-east-1, namespace
AWS/CloudFront, dimensions DistributionId and Region=Global. Rates are percentages there;
this module returns them as fractions, the unit of the thresholds."""

from __future__ import annotations

import datetime as dt
from typing import Any

from edgeaudit.errors import NotEvaluated

NAMESPACE = "AWS/CloudFront"
REGION = "us-east-1"


def average_rate(aws: Any, distribution_id: str, metric: str, hours: int,
                 now: dt.datetime | None = None) -> float | None:
    """The mean of `metric` (a percentage) over the last `hours`, as a fraction; None without datapoints."""
    end = now or dt.datetime.now(dt.timezone.utc)
    start = end - dt.timedelta(hours=hours)
    answer = aws.client("cloudwatch", REGION).get_metric_statistics(
        Namespace=NAMESPACE, MetricName=metric, StartTime=start, EndTime=end, Period=hours * 3600,
        Statistics=["Average", "SampleCount"],
        Dimensions=[{"Name": "DistributionId", "Value": distribution_id}, {"Name": "Region", "Value": "Global"}])
    points = answer.get("Datapoints", [])
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
