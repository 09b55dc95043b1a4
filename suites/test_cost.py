"""Cost (seed: cost-analysis-optimizer): the site's S3 and CloudFront spend against its budget."""

import datetime as dt

import pytest
from botocore.exceptions import ClientError

from edgeaudit.checks import cost, declared
from edgeaudit.errors import NotEvaluated


def _daily_costs(aws, target, evidence, day: dt.date) -> dict[dt.date, float]:
    """Day -> USD of the site's S3 and CloudFront spend (one Cost Explorer call per run)."""
    return _daily_answer(aws, target, evidence, day)[0]


def _daily_answer(aws, target, evidence, day: dt.date) -> tuple[dict[dt.date, float], set[dt.date]]:
    """(day -> USD, the days whose figure is still estimated)."""
    evidence.resource = f"ce:{target.cost_tag[0]}={target.cost_tag[1]}" if target.cost_tag else "ce:account"
    evidence.record("scope", {"services": list(cost.SERVICES),
                              "tag": dict(zip(("key", "value"), target.cost_tag)) if target.cost_tag else None})
    request = cost.daily_costs_request(day, target.cost_tag)
    answer = aws.client("ce", "us-east-1").get_cost_and_usage(**request)
    amounts = cost.daily_amounts(answer)
    period = f"{request['TimePeriod']['Start']} to {request['TimePeriod']['End']} (exclusive)"
    if not amounts:
        raise NotEvaluated(f"Cost Explorer returned no daily costs from {period} for "
                           f"{cost.describe_filter(target.cost_tag)}: is Cost Explorer enabled for the account, "
                           "and the cost allocation tag activated?")
    if not any(amounts.values()):
        # A tag key or value that matches nothing is not an error to Cost Explorer: it answers 0 USD a day.
        raise NotEvaluated(f"Cost Explorer answered 0 USD for every day from {period} for "
                           f"{cost.describe_filter(target.cost_tag)}: a site that serves has some spend, so the "
                           "filter matches nothing; check the target's cost_tag against the tag on its bucket and "
                           "distribution, and that it is activated as a cost allocation tag (Billing > Cost "
                           "allocation tags; it applies from activation on)")
    return amounts, cost.estimated_days(answer)


def _daily_requests(aws, target, day: dt.date) -> dict[dt.date, float]:
    """CloudFront requests per day (CloudWatch) over the same days, to tell a traffic surge from
    a change of configuration."""
    start = dt.datetime.combine(day - dt.timedelta(days=cost.HISTORY_DAYS), dt.time(), dt.timezone.utc)
    metric = {"Namespace": "AWS/CloudFront", "MetricName": "Requests",
              "Dimensions": [{"Name": "DistributionId", "Value": target.distribution_id},
                             {"Name": "Region", "Value": "Global"}]}
    answer = aws.client("cloudwatch", "us-east-1").get_metric_data(
        MetricDataQueries=[{"Id": "requests", "MetricStat": {"Metric": metric, "Period": 86400, "Stat": "Sum"}}],
        StartTime=start, EndTime=dt.datetime.combine(day, dt.time(), dt.timezone.utc))
    [result] = answer["MetricDataResults"]
    return {stamp.date(): value for stamp, value in zip(result.get("Timestamps", []), result.get("Values", []))}


@pytest.mark.control("EA-COST-01", severity="P3", reads=("ce:GetCostAndUsage", "ce:GetCostForecast"))
@pytest.mark.daily
@pytest.mark.cost
def test_month_within_budget(aws, target, thresholds, evidence):
    """The month's S3 and CloudFront spend, spent and forecast, stays within the site's budget.

    Remediation: find what drives the spend (requests and bytes served, invalidations, storage
    of old versions), then cache more, invalidate less, expire old versions or raise the budget.
    """
    declared.require(target, evidence, "monthly_budget_usd", record=False)
    day = cost.today()
    spent = sum(v for d, v in _daily_costs(aws, target, evidence, day).items() if d >= day.replace(day=1))
    try:
        answer = aws.client("ce", "us-east-1").get_cost_forecast(**cost.forecast_request(day, target.cost_tag))
        forecast = float(answer["Total"]["Amount"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "DataUnavailableException":
            raise
        forecast = None
    budget = target.monthly_budget_usd
    month = spent + (forecast or 0.0)
    ratio = month / budget if budget else float("inf")
    evidence.record("month_to_date_usd", round(spent, 2))
    evidence.record("forecast_rest_of_month_usd", None if forecast is None else round(forecast, 2))
    evidence.measure("month_usd", round(month, 2), budget, unit="USD")
    evidence.record("budget_usd", budget)
    evidence.record("ratio", round(ratio, 3))
    evidence.record("warn_ratio", thresholds.budget_warn_ratio)
    assert month <= budget, (f"the month's S3 + CloudFront spend ({spent:.2f} USD so far, {month:.2f} USD with the "
                             f"forecast) is over the budget of {budget:.2f} USD ({ratio:.0%})")
    if forecast is None:
        evidence.warn("Cost Explorer has no forecast yet (too little history): only the spend so far was checked")
    elif ratio > thresholds.budget_warn_ratio:
        evidence.warn(f"the month's spend is forecast at {month:.2f} USD, {ratio:.0%} of the {budget:.2f} USD budget")


@pytest.mark.control("EA-COST-02", severity="P3", reads=("ce:GetCostAndUsage", "cloudwatch:GetMetricData"))
@pytest.mark.daily
@pytest.mark.cost
def test_no_cost_spike(aws, target, thresholds, evidence):
    """The newest complete day's spend is at most cost_spike_factor times the mean of the seven
    complete days before it.

    Remediation: look for what changed that day: a traffic surge or bot (WAF rate limits), a
    deployment that invalidated everything or stopped caching, a bulk upload.
    """
    day = cost.today()
    amounts, estimated = _daily_answer(aws, target, evidence, day)
    complete = cost.complete_days(amounts, estimated)
    evidence.record("left_out", {d.isoformat(): "Estimated" for d in sorted(estimated)})
    if len(complete) < cost.BASELINE_DAYS + 1:
        raise NotEvaluated(f"Cost Explorer has {len(complete)} complete days (not Estimated) from "
                           f"{min(amounts)} to {max(amounts)}, fewer than the newest and the {cost.BASELINE_DAYS} "
                           "before it: run again when the estimated days are final")
    newest, before = complete[0], complete[1:cost.BASELINE_DAYS + 1]
    spent = amounts[newest]
    mean = sum(amounts[d] for d in before) / len(before)
    evidence.record("day", newest.isoformat())
    evidence.record("day_usd", round(spent, 2))
    evidence.record("days_before", [d.isoformat() for d in before])
    evidence.record("mean_of_7_days_before_usd", round(mean, 2))
    evidence.record("factor", round(spent / mean, 2) if mean else None)
    evidence.record("spike_factor", thresholds.cost_spike_factor)
    requests = _daily_requests(aws, target, day)
    evidence.record("requests_on_day", requests.get(newest, 0))
    evidence.record("requests_mean_of_7_days_before", sum(requests.get(d, 0) for d in before) / len(before))
    if not spent and not mean:
        raise NotEvaluated(f"Cost Explorer answered 0 USD for {newest} and the {len(before)} complete days before it "
                           f"({before[-1]} to {before[0]}) for {cost.describe_filter(target.cost_tag)}: with no "
                           "spend there is nothing to compare; check the target's cost_tag, and that the site "
                           "still serves")
    if mean:
        evidence.measure("day_usd", round(spent, 2), round(thresholds.cost_spike_factor * mean, 2), unit="USD")
    if not mean:
        evidence.warn(f"spend started on {newest} ({spent:.2f} USD) after seven days without any")
        return
    assert spent <= thresholds.cost_spike_factor * mean, (
        f"the spend of {newest} (the newest complete day) {spent:.2f} USD is {spent / mean:.1f} times the mean of "
        f"the seven complete days before ({mean:.2f} USD), over the factor of {thresholds.cost_spike_factor}")


@pytest.mark.control("EA-COST-03", severity="P4",
                     reads=("sts:GetCallerIdentity", "budgets:DescribeBudgets",
                            "budgets:DescribeNotificationsForBudget"))
@pytest.mark.monthly
@pytest.mark.cost
def test_budget_with_notification(aws, target, evidence):
    """An AWS Budget with at least one notification covers the site's spend.

    Remediation: create a monthly cost budget, for the whole account, for Amazon S3 and Amazon
    CloudFront, or for the site's cost allocation tag, with a notification (e.g. forecast above
    80 %) to a mailbox or SNS topic someone reads.
    """
    budgets = aws.client("budgets", "us-east-1")
    account = aws.account_id
    evidence.resource = f"budgets:{account}"
    listed = [b for page in budgets.paginate("describe_budgets", AccountId=account) for b in page.get("Budgets", [])]
    covering = {}
    for budget in listed:
        if budget.get("BudgetType") == "COST" and _covers_site(budget.get("CostFilters") or {}, target.cost_tag):
            notifications = [n for page in budgets.paginate("describe_notifications_for_budget", AccountId=account,
                                                            BudgetName=budget["BudgetName"])
                             for n in page.get("Notifications", [])]
            covering[budget["BudgetName"]] = {"limit": budget.get("BudgetLimit"), "notifications": len(notifications)}
    evidence.record("budgets", len(listed))
    evidence.record("covering", covering)
    assert covering, "no AWS cost budget covers the site's spend (account-wide, S3 and CloudFront, or its cost tag)"
    assert any(b["notifications"] for b in covering.values()), (
        "the budgets that cover the site's spend notify nobody: " + ", ".join(covering))


def _covers_site(filters: dict, tag: tuple[str, str] | None) -> bool:
    """A budget's CostFilters take in the site's spend: none, the site's services, or its tag."""
    if not filters:
        return True
    if set(filters.get("Service", [])) & set(cost.SERVICES):
        return True
    return bool(tag) and f"user:{tag[0]}${tag[1]}" in filters.get("TagKeyValue", [])


@pytest.mark.control("EA-COST-04", severity="P4", reads=("cloudfront:GetDistributionConfig",))
@pytest.mark.weekly
@pytest.mark.cost
def test_price_class(aws, target, evidence):
    """The distribution uses the configured price class and no dedicated-IP SSL.

    Remediation: set the distribution's PriceClass to the target's price_class (default
    PriceClass_100: North America and Europe), and SSLSupportMethod to sni-only (a dedicated-IP
    certificate costs 600 USD a month).
    """
    evidence.resource = f"cloudfront:distribution/{target.distribution_id}"
    config = aws.cloudfront.get_distribution_config(Id=target.distribution_id)["DistributionConfig"]
    wanted = target.price_class or "PriceClass_100"
    evidence.record("price_class", config.get("PriceClass"))
    evidence.record("configured", wanted)
    evidence.record("ssl_support_method", config["ViewerCertificate"].get("SSLSupportMethod"))
    problems = [f"PriceClass {config.get('PriceClass')}, not {wanted}"] if config.get("PriceClass") != wanted else []
    if config["ViewerCertificate"].get("SSLSupportMethod") == "vip":
        problems.append("dedicated-IP SSL (vip)")
    assert not problems, "distribution pricing: " + "; ".join(problems)
