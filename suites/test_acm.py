"""The distribution's ACM certificate (seed: ssl-certificate-validator)."""

import pytest


def covers(name: str, host: str) -> bool:
    """A certificate name covers a host: the same name, or a wildcard for exactly one label."""
    name, host = name.lower().rstrip("."), host.lower().rstrip(".")
    if name.startswith("*."):
        return "." in host and host.split(".", 1)[1] == name[2:]
    return name == host


@pytest.mark.control("EA-TLS-06", severity="P2", frameworks={"FSBP": "ACM.1"})
@pytest.mark.monthly
@pytest.mark.security
def test_acm_certificate_renews(aws, target, evidence):
    """The distribution's ACM certificate is issued, renews by itself and covers every alias.

    Remediation: request a public ACM certificate in us-east-1 with DNS validation for every
    alternate domain name of the distribution, keep its validation CNAME records in DNS (ACM
    renews from them), and attach it; an imported or e-mail-validated certificate needs a
    person before every expiry.
    """
    config = aws.cloudfront.get_distribution_config(Id=target.distribution_id)["DistributionConfig"]
    arn = config["ViewerCertificate"].get("ACMCertificateArn")
    if not arn:
        pytest.skip("the distribution has no ACM certificate (EA-CF-04 checks its viewer certificate)")
    evidence.resource = arn
    certificate = aws.client("acm", arn.split(":")[3]).describe_certificate(CertificateArn=arn)["Certificate"]
    names = list(dict.fromkeys([certificate["DomainName"], *certificate.get("SubjectAlternativeNames", [])]))
    hosts = list((config.get("Aliases") or {}).get("Items") or [])
    if target.host not in hosts and not target.host.endswith(".cloudfront.net"):
        hosts.append(target.host)
    methods = sorted({o.get("ValidationMethod", "") for o in certificate.get("DomainValidationOptions", [])})
    renewal = certificate.get("RenewalSummary") or {}
    evidence.record("status", certificate["Status"])
    evidence.record("type", certificate.get("Type"))
    evidence.record("validation", methods)
    evidence.record("renewal_eligibility", certificate.get("RenewalEligibility"))
    evidence.record("renewal_status", renewal.get("RenewalStatus"))
    evidence.record("not_after", certificate.get("NotAfter"))
    evidence.record("names", names)
    evidence.record("hosts", hosts)

    problems = []
    if certificate["Status"] != "ISSUED":
        problems.append(f"status {certificate['Status']}, not ISSUED")
    if certificate.get("Type") == "IMPORTED":
        problems.append("imported: ACM does not renew it")
    elif certificate.get("Type") == "AMAZON_ISSUED" and methods != ["DNS"]:
        problems.append(f"validated by {', '.join(methods) or 'nothing'}, not DNS: renewal waits for a person")
    if renewal.get("RenewalStatus") == "FAILED":
        problems.append(f"its last renewal FAILED ({renewal.get('RenewalStatusReason', 'no reason given')})")
    uncovered = [h for h in hosts if not any(covers(n, h) for n in names)]
    if uncovered:
        problems.append(f"does not cover {', '.join(uncovered)}")
    evidence.record("uncovered", uncovered)
    assert not problems, f"certificate {arn}: " + "; ".join(problems)
