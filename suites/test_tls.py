"""Certificates and TLS (seed: ssl-certificate-validator, comprehensive-tls-validator)."""

import re

import certifi
import pytest

from edgeaudit.errors import NotEvaluated
from edgeaudit.web.site import trust_store

LEGACY_PROTOCOLS = ("SSLv3", "TLSv1", "TLSv1.1")
STRONG_SUITE = re.compile(r"^ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$")
STRONG_CURVES = ("secp256r1", "secp384r1")
WEAK_HASHES = ("sha1", "md5")


@pytest.mark.control("EA-TLS-01", severity="P2", frameworks={"FSBP": "ACM.1"})
@pytest.mark.daily
@pytest.mark.monthly
@pytest.mark.security
def test_certificate_not_expiring(tls_probe, target, thresholds, evidence):
    """The served certificate is valid for at least cert_warn_days more days.

    Remediation: renew the certificate (ACM renews DNS-validated certificates by itself when the
    validation CNAME is still in place) and check the distribution serves the renewed one.
    """
    leaf = tls_probe.leaf()
    days = leaf.days_left()
    evidence.record("subject", leaf.subject)
    evidence.record("not_after", leaf.not_after)
    evidence.measure("days_left", days, thresholds.cert_fail_days, better="higher", unit="days")
    evidence.record("warn_days", thresholds.cert_warn_days)
    evidence.record("fail_days", thresholds.cert_fail_days)
    assert days >= thresholds.cert_fail_days, (
        f"certificate expires in {days} days (fail below {thresholds.cert_fail_days})" if days >= 0
        else f"certificate expired {-days} days ago")
    if days < thresholds.cert_warn_days:
        evidence.warn(f"certificate expires in {days} days")


@pytest.mark.control("EA-TLS-02", severity="P1")
@pytest.mark.monthly
@pytest.mark.security
def test_chain_is_trusted_for_the_host(tls_probe, target, evidence):
    """The served chain verifies to a trusted root, and the certificate names the host.

    Remediation: serve a certificate issued for the site's host name (an ACM certificate that
    covers every alias of the distribution), with the full chain of its public CA.
    """
    trust = trust_store(target.ca_bundle)
    cafile = trust if isinstance(trust, str) else certifi.where()
    verification = tls_probe.verify(cafile)
    chain = tls_probe.chain()
    evidence.record("host", target.host)
    evidence.record("chain", [{"subject": c.subject, "issuer": c.issuer} for c in chain])
    evidence.record("sans", list(chain[0].sans))
    evidence.record("trust", "system roots plus ca_bundle" if target.ca_bundle else "system roots")
    evidence.record("verified", verification.ok)
    evidence.record("error", verification.error)
    assert verification.ok, f"the certificate served for {target.host} does not verify: {verification.error}"


@pytest.mark.control("EA-TLS-03", severity="P3", frameworks={"FSBP": "ACM.2"})
@pytest.mark.monthly
@pytest.mark.security
def test_certificate_strength(tls_probe, thresholds, evidence):
    """The certificate is strong: an RSA-2048+ or ECDSA P-256/P-384 key, no SHA-1, a short lifetime.

    The leaf key is RSA >= 2048 or ECDSA P-256/P-384, no certificate of the chain (roots aside) is
    signed with SHA-1, and the leaf lives at most cert_max_lifetime_days.

    Remediation: request a new ACM certificate (RSA 2048 or ECDSA P-256) and attach it to the
    distribution; imported certificates must meet the same bar and the CA/B Forum's 398 days.
    """
    chain = tls_probe.chain()
    leaf = chain[0]
    problems = []
    if leaf.key_type == "RSA":
        if leaf.key_size < 2048:
            problems.append(f"leaf key RSA-{leaf.key_size} (needs 2048 or more)")
    elif leaf.key_type == "EC":
        if leaf.curve not in STRONG_CURVES:
            problems.append(f"leaf key on curve {leaf.curve} (needs P-256 or P-384)")
    else:
        problems.append(f"leaf key {leaf.key_type} (needs RSA or ECDSA)")
    for cert in chain:
        if not cert.self_signed and (cert.signature_hash or "").lower() in WEAK_HASHES:
            problems.append(f"{cert.subject} is signed with {cert.signature_hash}")
    if leaf.lifetime_days > thresholds.cert_max_lifetime_days:
        problems.append(f"leaf lifetime {leaf.lifetime_days:.0f} days (at most {thresholds.cert_max_lifetime_days})")
    evidence.record("chain", [cert.as_dict() for cert in chain])
    evidence.record("max_lifetime_days", thresholds.cert_max_lifetime_days)
    evidence.measure("lifetime_days", round(leaf.lifetime_days), thresholds.cert_max_lifetime_days, unit="days")
    evidence.require_none(problems, "weak certificate: " + "; ".join(problems))


@pytest.mark.control("EA-TLS-04", severity="P2", frameworks={"MOZ-TLS": "intermediate"})
@pytest.mark.quarterly
@pytest.mark.security
def test_protocol_versions(tls_probe, evidence):
    """SSLv3, TLS 1.0 and TLS 1.1 are refused and TLS 1.2 is accepted; TLS 1.3 not offered warns.

    Remediation: set the distribution's security policy (MinimumProtocolVersion) to TLSv1.2_2021
    or newer; CloudFront then offers TLS 1.2 and 1.3 only.
    """
    protocols = tls_probe.protocols()
    evidence.record("protocols", protocols)
    accepted = [name for name in LEGACY_PROTOCOLS if protocols[name] == "accepted"]
    evidence.require_none(accepted, "the server accepts " + ", ".join(accepted))
    untested = {name: protocols[name] for name in LEGACY_PROTOCOLS if protocols[name].startswith("untested")}
    if untested:
        raise NotEvaluated("; ".join(f"{name} {why}" for name, why in untested.items()))
    assert protocols["TLSv1.2"] == "accepted", f"TLS 1.2 is not accepted: {protocols['TLSv1.2']}"
    if protocols["TLSv1.3"] != "accepted":
        evidence.warn(f"TLS 1.3 is not offered: {protocols['TLSv1.3']}")


@pytest.mark.control("EA-TLS-05", severity="P3", frameworks={"MOZ-TLS": "intermediate (CloudFront TLSv1.2_2021)"})
@pytest.mark.quarterly
@pytest.mark.security
def test_tls12_cipher_suites(tls_probe, evidence):
    """Every TLS 1.2 cipher suite the server accepts is ECDHE with AES-GCM or ChaCha20-Poly1305.

    Remediation: set the distribution's security policy to TLSv1.2_2021 (or TLSv1.2_2025), which
    offers only forward-secret AEAD suites; older policies accept CBC and RSA key exchange.
    """
    suites = tls_probe.tls12_suites()
    weak = [suite for suite in suites if not STRONG_SUITE.match(suite)]
    evidence.record("accepted", suites)
    evidence.require_none(weak, f"{len(weak)} weak TLS 1.2 suite(s) accepted: " + ", ".join(weak))
