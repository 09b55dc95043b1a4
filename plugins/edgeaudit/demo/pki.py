"""A throwaway certificate authority for the demo environment.

The local edge speaks real TLS, so the suite's certificate controls (chain, SANs,
expiry, key size, signature hash) run against real certificates rather than
mocks. Tests make a CA, issue a leaf for ``localhost``/``127.0.0.1``, and trust
only that CA. To exercise the failing side of a control they issue deliberately
bad certificates: expired (an old ``not_before``), ``rsa-1024`` keys, or SHA-1
signatures.

``cryptography`` removed SHA-1 from its X.509 builders in version 39 and offers
no switch to turn it back on. SHA-1 certificates are therefore built with SHA-256
first and then re-signed here: the signature algorithm inside the to-be-signed
part is swapped for the SHA-1 one and the result signed with the key directly,
which ``cryptography`` still allows for raw signatures.

Files: ``IssuedCert.write`` writes the leaf alone (``<stem>.pem``) and its key
(``<stem>.key``). The CA is a root, so a server has no intermediate to send;
clients get the CA separately through ``CertificateAuthority.write_ca``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_TYPES = ("ec-p256", "ec-p384", "rsa-1024", "rsa-2048", "rsa-3072")
HASH_NAMES = ("sha256", "sha384", "sha1")

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

# DER AlgorithmIdentifiers: sha1WithRSAEncryption (with NULL parameters) and ecdsa-with-SHA1.
_SHA1_RSA_ALGORITHM = bytes.fromhex("300d06092a864886f70d0101050500")
_SHA1_ECDSA_ALGORITHM = bytes.fromhex("300906072a8648ce3d0401")


@dataclass
class IssuedCert:
    """A leaf certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """Write ``<stem>.pem`` (the leaf only) and ``<stem>.key``; return both paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        cert_path = directory / f"{stem}.pem"
        key_path = directory / f"{stem}.key"
        cert_path.write_bytes(self.cert_pem)
        key_path.write_bytes(self.key_pem)
        key_path.chmod(0o600)
        return cert_path, key_path


class CertificateAuthority:
    """A self-signed root that issues server certificates."""

    def __init__(self, certificate: x509.Certificate, key: PrivateKey) -> None:
        self.certificate = certificate
        self._key = key

    @classmethod
    def create(
        cls,
        name: str = "edgeaudit demo CA",
        *,
        key: str = "ec-p256",
        hash_name: str = "sha256",
        days: int = 3650,
    ) -> CertificateAuthority:
        private_key = _generate_key(key)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edgeaudit demo"),
                x509.NameAttribute(NameOID.COMMON_NAME, name[:64]),
            ]
        )
        not_before = _utcnow() - timedelta(hours=1)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(private_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_before + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                _key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(private_key.public_key()),
                critical=False,
            )
        )
        return cls(_sign(builder, private_key, hash_name), private_key)

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def write_ca(self, path: Path) -> Path:
        """Write the CA certificate (PEM) to ``path``, e.g. for ``requests(verify=...)``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.cert_pem)
        return path

    def issue(
        self,
        hostnames: list[str],
        *,
        days_valid: int = 90,
        not_before: datetime | None = None,
        key: str = "ec-p256",
        hash_name: str = "sha256",
    ) -> IssuedCert:
        """Issue a server certificate for ``hostnames`` (IP addresses become IP SANs).

        The validity runs from ``not_before`` (default: an hour ago) for ``days_valid``
        days; for an expired certificate pass an old ``not_before``.
        """
        if not hostnames:
            raise ValueError("issue() needs at least one hostname")
        if days_valid <= 0:
            raise ValueError(
                "days_valid must be positive; for an expired certificate pass an old not_before"
            )
        private_key = _generate_key(key)
        start = _as_utc(not_before) if not_before else _utcnow() - timedelta(hours=1)
        if isinstance(private_key, rsa.RSAPrivateKey):
            usage = _key_usage(digital_signature=True, key_encipherment=True)
        else:
            usage = _key_usage(digital_signature=True)
        ca_ski = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0][:64])]))
            .issuer_name(self.certificate.subject)
            .public_key(private_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=days_valid))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(_general_names(hostnames)), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(private_key.public_key()),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski.value),
                critical=False,
            )
        )
        certificate = _sign(builder, self._key, hash_name)
        return IssuedCert(
            cert_pem=certificate.public_bytes(serialization.Encoding.PEM),
            key_pem=private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )


def _generate_key(key: str) -> PrivateKey:
    if key == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if key in ("rsa-1024", "rsa-2048", "rsa-3072"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key[4:]))
    raise ValueError(f"unknown key type {key!r}; expected one of {', '.join(KEY_TYPES)}")


def _sign(builder: x509.CertificateBuilder, key: PrivateKey, hash_name: str) -> x509.Certificate:
    if hash_name == "sha256":
        return builder.sign(key, hashes.SHA256())
    if hash_name == "sha384":
        return builder.sign(key, hashes.SHA384())
    if hash_name == "sha1":
        return _resign_with_sha1(builder.sign(key, hashes.SHA256()), key)
    raise ValueError(f"unknown hash {hash_name!r}; expected one of {', '.join(HASH_NAMES)}")


def _resign_with_sha1(certificate: x509.Certificate, key: PrivateKey) -> x509.Certificate:
    """Return ``certificate`` re-signed with SHA-1 (see the module docstring for why)."""
    if isinstance(key, rsa.RSAPrivateKey):
        algorithm = _SHA1_RSA_ALGORITHM
    else:
        algorithm = _SHA1_ECDSA_ALGORITHM
    fields = _der_children(certificate.tbs_certificate_bytes)
    # TBSCertificate: [0] version, serialNumber, signature (the AlgorithmIdentifier), ...
    fields[2] = algorithm
    tbs = _der(0x30, b"".join(fields))
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    else:
        signature = key.sign(tbs, ec.ECDSA(hashes.SHA1()))
    der = _der(0x30, tbs + algorithm + _der(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)


def _der(tag: int, content: bytes) -> bytes:
    """Encode one DER element."""
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _der_children(element: bytes) -> list[bytes]:
    """Split a DER constructed element into its children, each kept whole."""
    start, end = _der_content(element, 0)
    children = []
    while start < end:
        content_start, content_end = _der_content(element, start)
        children.append(element[start:content_end])
        start = content_end
    return children


def _der_content(data: bytes, offset: int) -> tuple[int, int]:
    """Return (content start, content end) of the DER element at ``offset``."""
    first = data[offset + 1]
    if first < 0x80:
        return offset + 2, offset + 2 + first
    count = first & 0x7F
    size = int.from_bytes(data[offset + 2 : offset + 2 + count], "big")
    start = offset + 2 + count
    return start, start + size


def _key_usage(
    *,
    digital_signature: bool = False,
    key_encipherment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _general_names(hostnames: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for hostname in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(hostname)))
        except ValueError:
            names.append(x509.DNSName(hostname))
    return names


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment
