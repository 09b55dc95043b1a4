"""A Route 53 health check as the measure of a site's availability (EA-MET-02 with
`health_check_id`). Route 53 publishes each check's HealthCheckStatus to CloudWatch in us-east-1,
one sample a minute, 1 healthy and 0 unhealthy. That status proves the site was up only when the
check probes the site: an enabled, not inverted HTTP(S) check of the target's own host name, its
scheme (an https site needs an HTTPS check: HTTP's redirect is healthy) and its port. A
check that cannot prove it is NotEvaluated naming why and the fix, never counted as healthy."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

import botocore.exceptions

from edgeaudit.checks.metrics import datapoints
from edgeaudit.errors import NotEvaluated
from edgeaudit.rules.config import Target

NAMESPACE = "AWS/Route53"
METRIC = "HealthCheckStatus"
PROBING_TYPES = ("HTTP", "HTTPS", "HTTP_STR_MATCH", "HTTPS_STR_MATCH")  # those that request a page of the site
MIN_COVERAGE = 0.9  # a pass needs this share of the period's hours measured


def described(aws: Any, target: Target) -> dict[str, Any]:
    """What the target's health check probes (route53:GetHealthCheck), as the evidence shows it."""
    check_id = target.health_check_id or ""
    try:
        config = aws.route53.get_health_check(HealthCheckId=check_id)["HealthCheck"]["HealthCheckConfig"]
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code not in ("NoSuchHealthCheck", "InvalidInput"):
            raise NotEvaluated(f"route53:GetHealthCheck of health check {check_id} failed ({code}): {exc}") from None
        raise NotEvaluated(f"Route 53 has no health check {check_id} ({code}) for target {target.name}: correct "
                           "health_check_id (`aws route53 list-health-checks` lists the account's), or remove it "
                           "to measure the distribution's 5xx answers") from None
    return {"id": check_id, "type": config.get("Type"), "host": config.get("FullyQualifiedDomainName"),
            "ip_address": config.get("IPAddress"), "path": config.get("ResourcePath"), "port": config.get("Port"),
            "regions": config.get("Regions") or "Route 53's default checker regions",
            "failure_threshold": config.get("FailureThreshold"), "request_interval_s": config.get("RequestInterval"),
            "disabled": bool(config.get("Disabled")), "inverted": bool(config.get("Inverted"))}


def why_not_proof(check: dict[str, Any], target: Target) -> str | None:
    """Why the check's status cannot stand for the target's availability, with the fix; None when it can."""
    name = f"health check {check['id']}"
    if check["type"] not in PROBING_TYPES:
        return (f"{name} is of type {check['type']}: it does not request the site's pages, so its status does not "
                f"prove {target.host} answered. Fix: name an HTTP, HTTPS, HTTP_STR_MATCH or HTTPS_STR_MATCH health "
                f"check of {target.host} in health_check_id")
    if check["disabled"]:
        return (f"{name} is disabled: Route 53 then reports it healthy without probing anything. Fix: enable it "
                "(and wait for a month of data) or remove health_check_id")
    if check["inverted"]:
        return (f"{name} is inverted: its status is healthy while the site fails. Fix: name a check that is not "
                "inverted in health_check_id")
    if check["ip_address"]:
        return (f"{name} probes the IP address {check['ip_address']}: an address cannot prove it is {target.host} "
                "(a CloudFront distribution's addresses change). Fix: name a check of the domain name "
                f"{target.host}, with no IP address, in health_check_id")
    host = (check["host"] or "").rstrip(".").lower()
    if host != target.host.lower():
        return (f"{name} probes {check['host'] or 'no host name'}, not {target.host}, the host of the target's url. "
                f"Fix: name a check of {target.host} in health_check_id")
    url = urlsplit(target.url)
    secure = str(check["type"]).startswith("HTTPS")
    if url.scheme == "https" and not secure:
        return (f"{name} is of type {check['type']}: it asks over plain HTTP, while viewers reach {target.url} over "
                "HTTPS (Route 53 counts the redirect to HTTPS as healthy, whatever HTTPS answers). Fix: name an "
                "HTTPS or HTTPS_STR_MATCH health check in health_check_id")
    port = check["port"] or (443 if secure else 80)
    expected = url.port or (443 if url.scheme == "https" else 80)
    if port != expected:
        return (f"{name} probes port {port}, not port {expected} of {target.url}. Fix: name a check of the port "
                "viewers use in health_check_id")
    return None


def availability(aws: Any, health_check_id: str, days: int, now: dt.datetime | None = None) -> dict[str, Any]:
    """The share of the last `days` (whole hours up to the current one) the check found the site
    healthy: each hour's samples (SampleCount) weighed by its status (Average). Hours without a
    sample are unmeasured, never counted as healthy."""
    end = (now or dt.datetime.now(dt.timezone.utc)).replace(minute=0, second=0, microsecond=0)
    start = end - dt.timedelta(days=days)
    points = datapoints(aws, NAMESPACE, {"HealthCheckId": health_check_id}, METRIC, start, end, 3600,
                        ["Average", "SampleCount"])
    hours = [(p["Timestamp"], p["SampleCount"], p["Average"] * p["SampleCount"]) for p in points if p.get("SampleCount")]
    measured = sum(count for _, count, _ in hours)
    healthy = sum(up for _, _, up in hours)
    worst = sorted(hours, key=lambda h: h[1] - h[2], reverse=True)[:5]
    return {
        "availability": None if not measured else round(healthy / measured, 6),
        "measured_minutes": measured, "unhealthy_minutes": round(measured - healthy, 1),
        "hours_measured": len(hours), "hours_in_period": days * 24,
        "worst_periods": [{"start": moment.isoformat(), "minutes": count, "unhealthy_minutes": round(count - up, 1)}
                          for moment, count, up in worst if count - up > 0],
    }
