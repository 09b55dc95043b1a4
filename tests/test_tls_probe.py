"""TLS controls against real TLS servers on loopback, one made for each case: old protocols, weak
suites, an expired certificate, a wrong host name, an untrusted root, a SHA-1 signature, an
RSA-1024 key, a 400-day lifetime, and a compliant one. The probe is also checked on its own."""

from __future__ import annotations

import socket
import ssl
import threading
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import Run, run_suite
from edgeaudit.demo.pki import CertificateAuthority
from edgeaudit.rules import tomlwrite
from edgeaudit.rules.config import Target
from edgeaudit.web.tls import TlsProbe

MODERN = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256"


@dataclass
class Case:
    """How to make one server: its certificate and what it offers."""

    hostnames: tuple[str, ...] = ("localhost", "127.0.0.1")
    key: str = "ec-p256"
    hash_name: str = "sha256"
    days_valid: int = 90
    age_days: int = 0                  # how long ago the certificate's validity began
    untrusted: bool = False            # issued by a CA the client does not trust
    minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    maximum: ssl.TLSVersion | None = None
    ciphers: str = MODERN


# target -> (the server, {control: outcome}); every other TLS control passes.
CASES = {
    "compliant": (Case(), {}),
    "legacy": (Case(key="rsa-2048", minimum=ssl.TLSVersion.TLSv1, ciphers="ECDHE-RSA-AES128-SHA:" + MODERN),
               # a CBC suite is what TLS 1.0 needs, and TLS 1.2 then accepts it too
               {"EA-TLS-04": "failed", "EA-TLS-05": "failed"}),
    "cbc": (Case(ciphers=MODERN + ":ECDHE-ECDSA-AES128-SHA256"), {"EA-TLS-05": "failed"}),
    "rsa-kx": (Case(key="rsa-2048", ciphers=MODERN + ":AES128-GCM-SHA256"), {"EA-TLS-05": "failed"}),
    "no-tls13": (Case(maximum=ssl.TLSVersion.TLSv1_2), {"EA-TLS-04": "warned"}),
    "expired": (Case(days_valid=30, age_days=40), {"EA-TLS-01": "failed", "EA-TLS-02": "failed"}),
    "wrong-host": (Case(hostnames=("www.example.test",)), {"EA-TLS-02": "failed"}),
    "untrusted": (Case(untrusted=True), {"EA-TLS-02": "failed"}),
    "sha1": (Case(key="rsa-2048", hash_name="sha1"), {"EA-TLS-03": "failed"}),
    "rsa-1024": (Case(key="rsa-1024"), {"EA-TLS-03": "failed"}),
    "long-lived": (Case(days_valid=400), {"EA-TLS-03": "failed"}),
}
SEVERITIES = {"EA-TLS-01": "P2", "EA-TLS-02": "P1", "EA-TLS-03": "P3", "EA-TLS-04": "P2", "EA-TLS-05": "P3"}


class TlsServer:
    """Accepts connections on 127.0.0.1, completes (or refuses) the handshake, and closes."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handshake, args=(connection,), daemon=True).start()

    def _handshake(self, connection: socket.socket) -> None:
        connection.settimeout(5)
        try:
            with self.context.wrap_socket(connection, server_side=True) as tls:
                tls.recv(1)  # wait for the client to hang up
        except OSError:
            pass
        finally:
            connection.close()

    def close(self) -> None:
        self.listener.close()


def server_context(case: Case, ca: CertificateAuthority, stranger: CertificateAuthority, workdir: Path,
                   name: str) -> ssl.SSLContext:
    issuer = stranger if case.untrusted else ca
    start = datetime.now(timezone.utc) - timedelta(days=case.age_days, hours=1)
    issued = issuer.issue(list(case.hostnames), key=case.key, hash_name=case.hash_name,
                          days_valid=case.days_valid, not_before=start)
    cert_file, key_file = issued.write(workdir, name)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = case.minimum
        if case.maximum:
            context.maximum_version = case.maximum
    context.set_ciphers(case.ciphers + ":@SECLEVEL=0")  # so that weak keys and old protocols load
    context.load_cert_chain(cert_file, key_file)
    return context


def legacy_unavailable(port: int) -> str | None:
    """Why this machine cannot make a TLS 1.0 handshake with itself, or None if it can."""
    try:
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            client.minimum_version = client.maximum_version = ssl.TLSVersion.TLSv1
        client.set_ciphers("ALL:@SECLEVEL=0")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, client.wrap_socket(raw) as tls:
            return None if tls.version() == "TLSv1" else f"negotiated {tls.version()}"
    except (OSError, ValueError) as exc:
        return f"the local OpenSSL cannot offer TLS 1.0 even at security level 0: {exc}"


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tls")
    ca, stranger = CertificateAuthority.create(), CertificateAuthority.create("a CA nobody trusts")
    made, unavailable = {}, None
    for name, (case, _) in CASES.items():
        try:
            made[name] = TlsServer(server_context(case, ca, stranger, workdir, name))
        except (ValueError, ssl.SSLError) as exc:  # only the legacy server asks for what OpenSSL may lack
            unavailable = f"the local OpenSSL cannot serve TLS 1.0 even at security level 0: {exc}"
    yield {"servers": made, "ca_file": ca.write_ca(workdir / "ca.pem"), "workdir": workdir,
           "legacy_unavailable": unavailable or legacy_unavailable(made["legacy"].port)}
    for server in made.values():
        server.close()


def target_for(servers, name: str) -> dict:
    port = servers["servers"][name].port
    return {"name": name, "url": f"https://localhost:{port}/", "bucket": "tls-cases", "distribution_id": "ETLSCASES",
            "ca_bundle": str(servers["ca_file"])}


@pytest.fixture(scope="module")
def tls_run(servers, world) -> Run:
    """One run of the TLS controls over every server."""
    config = servers["workdir"] / "edgeaudit.toml"
    config.write_text(tomlwrite.dumps({"targets": [target_for(servers, name) for name in servers["servers"]]}))
    return run_suite("suites/test_tls.py", "--edgeaudit-config", str(config), env=world.aws_env,
                     report_dir=servers["workdir"] / "reports")


@pytest.mark.parametrize("name", list(CASES))
def test_each_server_fails_exactly_its_controls(tls_run, servers, name):
    if name == "legacy" and servers["legacy_unavailable"]:
        pytest.skip(servers["legacy_unavailable"])
    outcomes = {c: o for c, o in tls_run.outcomes(name).items() if c in SEVERITIES}
    assert set(outcomes) == set(SEVERITIES), tls_run.output
    assert {c: o for c, o in outcomes.items() if o != "passed"} == CASES[name][1], tls_run.output
    for control in SEVERITIES:
        result = tls_run.result(control, name)
        assert result["severity"] == SEVERITIES[control]
        assert result["evidence"], result


def test_compliant_server_evidence(tls_run):
    assert tls_run.result("EA-TLS-02", "compliant")["evidence"]["verified"] is True
    chain = tls_run.result("EA-TLS-03", "compliant")["evidence"]["chain"]
    assert chain[0]["key"] == "EC-256 (secp256r1)" and chain[0]["signature_hash"] == "sha256"
    protocols = tls_run.result("EA-TLS-04", "compliant")["evidence"]["protocols"]
    assert protocols["TLSv1.2"] == protocols["TLSv1.3"] == "accepted"
    assert all(protocols[p].startswith("refused") for p in ("SSLv3", "TLSv1", "TLSv1.1"))
    assert tls_run.result("EA-TLS-05", "compliant")["evidence"]["accepted"] == [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384"]


def test_legacy_protocols_are_named(tls_run, servers):
    if servers["legacy_unavailable"]:
        pytest.skip(servers["legacy_unavailable"])
    result = tls_run.result("EA-TLS-04", "legacy")
    assert result["evidence"]["offenders"] == ["TLSv1", "TLSv1.1"]
    assert result["message"] == "the server accepts TLSv1, TLSv1.1"
    assert "ECDHE-RSA-AES128-SHA" in tls_run.result("EA-TLS-05", "legacy")["evidence"]["offenders"]


def test_weak_suites_are_named(tls_run):
    assert tls_run.result("EA-TLS-05", "cbc")["evidence"]["offenders"] == ["ECDHE-ECDSA-AES128-SHA256"]
    assert tls_run.result("EA-TLS-05", "rsa-kx")["evidence"]["offenders"] == ["AES128-GCM-SHA256"]
    assert "TLS 1.3 is not offered" in tls_run.result("EA-TLS-04", "no-tls13")["message"]


def test_trust_failures_say_why(tls_run):
    assert "expired" in tls_run.result("EA-TLS-02", "expired")["message"]
    assert "expired" in tls_run.result("EA-TLS-01", "expired")["message"]
    wrong = tls_run.result("EA-TLS-02", "wrong-host")
    assert "mismatch" in wrong["message"].lower() and wrong["evidence"]["sans"] == ["www.example.test"]
    untrusted = tls_run.result("EA-TLS-02", "untrusted")
    assert "issuer" in untrusted["message"] and "a CA nobody trusts" in untrusted["evidence"]["chain"][0]["issuer"]


def test_strength_failures_name_the_offender(tls_run):
    assert tls_run.result("EA-TLS-03", "sha1")["evidence"]["offenders"] == ["CN=localhost is signed with sha1"]
    assert tls_run.result("EA-TLS-03", "rsa-1024")["evidence"]["offenders"] == [
        "leaf key RSA-1024 (needs 2048 or more)"]
    assert tls_run.result("EA-TLS-03", "long-lived")["evidence"]["offenders"] == [
        "leaf lifetime 400 days (at most 398)"]


def probe(servers, name: str) -> TlsProbe:
    return TlsProbe(Target(**{k: v for k, v in target_for(servers, name).items()}), timeout=5)


def test_probe_reports_what_it_saw_on_an_old_protocol_server(servers):
    """The probe lowers only its own security level; where the local OpenSSL cannot offer TLS 1.0
    the test says so and skips, and the probe still reports what it saw."""
    if "legacy" not in servers["servers"]:
        pytest.skip(servers["legacy_unavailable"])
    protocols = probe(servers, "legacy").protocols()
    assert protocols["SSLv3"].startswith("refused") and protocols["TLSv1.2"] == "accepted"
    if servers["legacy_unavailable"]:
        assert protocols["TLSv1"] != "accepted"
        pytest.skip(servers["legacy_unavailable"])
    assert protocols["TLSv1"] == protocols["TLSv1.1"] == "accepted"


def test_probe_keeps_its_answers_and_reads_the_chain(servers):
    tls = probe(servers, "sha1")
    first = tls.chain()
    assert tls.chain() is first
    assert first[0].key_type == "RSA" and first[0].key_size == 2048 and first[0].signature_hash == "sha1"
    assert tls.leaf().sans == ("localhost", "127.0.0.1")


def test_unreachable_server_is_not_evaluated_once(servers):
    from edgeaudit.errors import NotEvaluated

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    tls = TlsProbe(Target(name="gone", url=f"https://localhost:{port}/", bucket="b", distribution_id="d"), timeout=2)
    with pytest.raises(NotEvaluated, match="cannot connect"):
        tls.protocols()
    with pytest.raises(NotEvaluated, match="cannot connect"):
        tls.tls12_suites()
