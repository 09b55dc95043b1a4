"""TLS probing with the standard library: the certificate a server presents, read with
`cryptography`, whether or not it verifies."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509

from .aws import NotEvaluated
from .config import Target

HANDSHAKE_TIMEOUT_S = 10


@dataclass(frozen=True)
class LeafCertificate:
    subject: str
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    sans: tuple[str, ...]

    def days_left(self, now: dt.datetime | None = None) -> int:
        now = now or dt.datetime.now(dt.timezone.utc)
        return (self.not_after - now).days


class TlsProbe:
    """What the `tls_probe` fixture gives a control: the served leaf of the target's URL."""

    def __init__(self, target: Target) -> None:
        parts = urlsplit(target.url)
        self.host = parts.hostname or ""
        self.port = parts.port or 443
        self._leaf: LeafCertificate | None = None

    def _handshake(self, context: ssl.SSLContext) -> bytes:
        try:
            with socket.create_connection((self.host, self.port), timeout=HANDSHAKE_TIMEOUT_S) as raw:
                with context.wrap_socket(raw, server_hostname=self.host) as tls:
                    return tls.getpeercert(binary_form=True) or b""
        except (OSError, ssl.SSLError) as exc:
            raise NotEvaluated(f"TLS handshake with {self.host}:{self.port} failed: {exc}") from None

    def leaf(self) -> LeafCertificate:
        """The served leaf certificate, read without verifying it (expired ones included)."""
        if self._leaf is None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            cert = x509.load_der_x509_certificate(self._handshake(context))
            try:
                san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                sans = tuple(str(n.value) for n in san)
            except x509.ExtensionNotFound:
                sans = ()
            self._leaf = LeafCertificate(cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(),
                                         cert.not_valid_before_utc, cert.not_valid_after_utc, sans)
        return self._leaf
