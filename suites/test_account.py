"""The account's own credentials (seed: validate-access-control-audit, the quarterly security
review): the root user locked away, and no IAM user or access key left unused or unrotated.

Both read account-level facts, so every target of one account shows the same answer."""

import csv
import datetime as dt
import io
import time

import pytest
from botocore.exceptions import ClientError

from edgeaudit.errors import NotEvaluated

ROOT_ROW = "<root_account>"  # the credential report's line for the root user
REPORT_WAIT_S = 20  # how long IAM may take to build a credential report before the control gives up


@pytest.mark.control("EA-IAM-07", severity="P1", frameworks={"FSBP": "IAM.4, IAM.9"},
                     reads=("sts:GetCallerIdentity", "iam:GetAccountSummary"))
@pytest.mark.quarterly
@pytest.mark.security
def test_root_user_has_mfa_and_no_keys(aws, evidence):
    """The root user has MFA and no access keys.

    Remediation: sign in as the root user once, assign it an MFA device (a hardware key for a
    production account), delete its access keys, and keep its credentials in a safe; day-to-day
    work goes through IAM roles or IAM Identity Center.
    """
    evidence.resource = f"iam:{aws.account_id}:root"
    summary = aws.iam.get_account_summary()["SummaryMap"]
    if "AccountMFAEnabled" not in summary or "AccountAccessKeysPresent" not in summary:
        raise NotEvaluated("GetAccountSummary did not report AccountMFAEnabled and AccountAccessKeysPresent")
    mfa, keys = summary["AccountMFAEnabled"] == 1, summary["AccountAccessKeysPresent"] != 0
    evidence.record("root_mfa_enabled", mfa)
    evidence.record("root_access_keys_present", keys)
    problems = (["the root user has no MFA device"] if not mfa else []) + (
        ["the root user has access keys"] if keys else [])
    evidence.require_none(problems, "; ".join(problems))


def _credential_report(aws) -> list[dict[str, str]]:
    """The rows of IAM's credential report, after asking IAM to bring it up to date; a report
    IAM is still building after REPORT_WAIT_S is not evaluated."""
    aws.iam.generate_credential_report()
    deadline = time.monotonic() + REPORT_WAIT_S
    while True:
        try:
            content = aws.iam.raw.get_credential_report()["Content"]  # read afresh, not from the read cache
            break
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in ("ReportInProgress", "ReportNotPresent", "ReportExpired") or time.monotonic() > deadline:
                raise NotEvaluated(f"IAM's credential report could not be read: {code} from iam:GetCredentialReport"
                                   + (" (run the control again)" if code.startswith("Report") else ""))
            time.sleep(2)
            aws.iam.raw.generate_credential_report()
    return list(csv.DictReader(io.StringIO(content.decode("utf-8") if isinstance(content, bytes) else content)))


def _moment(value: str) -> dt.datetime | None:
    """A report's time, or None for N/A, no_information, not_supported."""
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


def _stale(row: dict[str, str], now: dt.datetime, days: int) -> list[str]:
    """Why this user's console password or access keys count as unused or unrotated."""
    limit = dt.timedelta(days=days)
    created = _moment(row["user_creation_time"])
    found = []
    if row["password_enabled"] == "true":
        used = _moment(row["password_last_used"]) or created
        if used and now - used > limit:
            found.append(f"console password unused for {(now - used).days} days")
    for n in ("1", "2"):
        if row[f"access_key_{n}_active"] != "true":
            continue
        rotated = _moment(row[f"access_key_{n}_last_rotated"])
        used = _moment(row[f"access_key_{n}_last_used_date"]) or rotated
        if rotated and now - rotated > limit:
            found.append(f"access key {n} not rotated for {(now - rotated).days} days")
        if used and now - used > limit:
            found.append(f"access key {n} unused for {(now - used).days} days")
    return found


@pytest.mark.control("EA-IAM-08", severity="P2", frameworks={"FSBP": "IAM.3, IAM.22", "CIS": "1.12, 1.14"},
                     reads=("sts:GetCallerIdentity", "iam:GenerateCredentialReport", "iam:GetCredentialReport"))
@pytest.mark.quarterly
@pytest.mark.security
def test_no_stale_user_credentials(aws, thresholds, evidence):
    """No IAM user's console password or access key is unused, or a key unrotated, for more than access_key_max_age_days.

    Remediation: remove the console password of a user who no longer signs in, deactivate and
    delete unused access keys, and rotate the rest (create a new key, deploy it, delete the old);
    better, replace long-lived user keys with roles (OIDC from CI, IAM Identity Center for people).
    """
    evidence.resource = f"iam:{aws.account_id}:users"
    rows = [row for row in _credential_report(aws) if row["user"] != ROOT_ROW]
    now = dt.datetime.now(dt.timezone.utc)
    days = thresholds.access_key_max_age_days
    offenders = {row["user"]: why for row in rows if (why := _stale(row, now, days))}
    evidence.record("users", len(rows))
    evidence.record("max_days", days)
    evidence.record("stale", offenders)
    evidence.require_none(offenders, f"credentials unused or unrotated for more than {days} days: "
                          + "; ".join(f"{user} ({', '.join(why)})" for user, why in offenders.items()))
