"""The distribution's ACM certificate (seed: ssl-certificate-validator)."""

import pytest


def covers(name: str, host: str) -> bool:
    """A certificate name covers a host: the same name, or a wildcard for exactly one label."""
    name, host = name.lower().rstrip("."), host.lower().rstrip(".")
    if name.startswith("*."):
        return "." in host and host.split(".", 1)[1] == name[2:]
    return name == host


@pytest.mark.control("EA-TLS-06", severity="P2", frameworks={"FSBP": "ACM.1"},
                     reads=("cloudfront:GetDistributionConfig", "acm:DescribeCertificate"))
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
    viewer = config["ViewerCertificate"]
    arn = viewer.get("ACMCertificateArn")
    if not arn:
        problem = _without_acm(viewer, target, evidence)
        assert not problem, problem
        return
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


def _without_acm(viewer, target, evidence) -> str:
    """Why a distribution without an ACM certificate needs a person; skips only where the config
    names the distribution's own cloudfront.net host, which CloudFront's certificate covers."""
    evidence.resource = f"cloudfront:distribution/{target.distribution_id}"
    evidence.record("viewer_certificate", {k: viewer.get(k) for k in
                                           ("CloudFrontDefaultCertificate", "IAMCertificateId", "CertificateSource")})
    if viewer.get("IAMCertificateId"):
        return (f"the distribution serves an IAM server certificate ({viewer['IAMCertificateId']}), not an ACM "
                "one: nothing renews it, a person must upload a new one before every expiry")
    if viewer.get("CloudFrontDefaultCertificate") and target.host.endswith(".cloudfront.net"):
        pytest.skip(f"the target's url names the distribution's own host {target.host}: CloudFront's default "
                    "certificate covers it and there is no ACM certificate to renew")
    return f"the distribution has no ACM certificate, and CloudFront's default certificate does not cover {target.host}"
