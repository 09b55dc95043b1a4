"""TLS probing with the standard library: the certificates a server presents (read with
`cryptography`, whether or not they verify), whether the chain verifies, which protocol versions
it accepts, and which TLS 1.2 cipher suites.

The probes lower the client's OpenSSL security level to 0, and only for the probe, so that an old
protocol or a weak suite the server offers is seen rather than refused by our own side. SSLv3,
which OpenSSL 3 cannot speak at all, is probed with a hand-made ClientHello: the server's first
answer says whether it would go on. Each result is kept for the run; a server that cannot be
reached is asked once, and every later probe fails at once with the same cause.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import ssl
import threading
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from edgeaudit.errors import NotEvaluated
from edgeaudit.rules import limits
from edgeaudit.rules.config import Target

PROTOCOLS = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_VERSIONS = {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1,
             "TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
# Refusals raised by our own OpenSSL before anything is sent: the version was not tested.
_LOCAL_REFUSALS = ("NO_PROTOCOLS_AVAILABLE", "NO_CIPHERS_AVAILABLE", "UNSUPPORTED_PROTOCOL_FOR_CLIENT")
# An SSLv3 ClientHello offers these: ECDHE/RSA with AES, 3DES, RC4, and the renegotiation SCSV.
_SSLV3_SUITES = bytes.fromhex("c014c013c00ac009003900330035002f000a0005000400ff")


def handshake_timeout() -> float:
    """Seconds for one TCP connect plus TLS handshake: 10, or EDGEAUDIT_TLS_TIMEOUT_S."""
    return limits.tls_timeout()


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


@dataclass(frozen=True)
class Certificate:
    """One certificate of the served chain, as the controls judge it."""

    subject: str
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    sans: tuple[str, ...]
    key_type: str          # "RSA", "EC", "Ed25519", ...
    key_size: int          # bits (RSA, DSA) or curve size (EC)
    curve: str | None      # "secp256r1", "secp384r1", ...
    signature_hash: str | None
    self_signed: bool

    @property
    def lifetime_days(self) -> float:
        return (self.not_after - self.not_before).total_seconds() / 86400

    def as_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "issuer": self.issuer, "not_before": self.not_before,
                "not_after": self.not_after, "lifetime_days": round(self.lifetime_days, 1), "sans": list(self.sans),
                "key": f"{self.key_type}-{self.key_size}" + (f" ({self.curve})" if self.curve else ""),
                "signature_hash": self.signature_hash, "self_signed": self.self_signed}


@dataclass(frozen=True)
class Verification:
    """Did the chain verify to a trusted root for the host name? `error` says why not."""

    ok: bool
    error: str | None = None
    code: int | None = None


def describe(der: bytes) -> Certificate:
    cert = x509.load_der_x509_certificate(der)
    key = cert.public_key()
    curve = None
    if isinstance(key, rsa.RSAPublicKey):
        key_type, size = "RSA", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key_type, size, curve = "EC", key.curve.key_size, key.curve.name
    elif isinstance(key, dsa.DSAPublicKey):
        key_type, size = "DSA", key.key_size
    elif isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        key_type, size = type(key).__name__.removesuffix("PublicKey"), 0
    else:
        key_type, size = type(key).__name__, 0
    try:
        sans = tuple(str(n.value) for n in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        sans = ()
    try:
        signature_hash = cert.signature_hash_algorithm.name if cert.signature_hash_algorithm else None
    except Exception:  # an algorithm cryptography does not know still names itself by OID
        signature_hash = cert.signature_algorithm_oid.dotted_string
    return Certificate(cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(), cert.not_valid_before_utc,
                       cert.not_valid_after_utc, sans, key_type, size, curve, signature_hash,
                       cert.subject == cert.issuer)


def _client(version: ssl.TLSVersion | None = None, ciphers: str = "ALL:COMPLEMENTOFALL") -> ssl.SSLContext:
    """A probing client: no verification, security level 0, pinned to `version` if given."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if version is not None:
            context.minimum_version = version
            context.maximum_version = version
        context.set_ciphers(f"{ciphers}:@SECLEVEL=0")
    return context


def _served_chain(tls: ssl.SSLSocket) -> list[bytes]:
    """The chain as the server sent it, leaf first (the leaf alone where Python cannot tell)."""
    getter = getattr(tls, "get_unverified_chain", None) or getattr(getattr(tls, "_sslobj", None),
                                                                   "get_unverified_chain", None)
    if getter is not None:
        chain = getter() or []
        der = ssl._ssl.ENCODING_DER  # type: ignore[attr-defined]
        return [c if isinstance(c, bytes) else c.public_bytes(der) for c in chain]
    return [tls.getpeercert(binary_form=True) or b""]


class TlsProbe:
    """What the `tls_probe` fixture gives a control: the served chain, its verification, the
    protocol versions and TLS 1.2 suites the target's HTTPS endpoint accepts."""

    def __init__(self, target: Target, timeout: float | None = None) -> None:
        parts = urlsplit(target.url)
        self.name = target.name
        self.host = parts.hostname or ""
        self.port = parts.port or 443
        self.timeout = timeout if timeout is not None else handshake_timeout()
        self._results: dict[str, Any] = {}
        self._dead: str | None = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"<TlsProbe {self.name} {self.host}:{self.port}>"

    # --- plumbing

    def _once(self, name: str, compute: Any) -> Any:
        with self._lock:
            if name not in self._results:
                try:
                    self._results[name] = compute()
                except NotEvaluated as exc:
                    self._results[name] = exc
            value = self._results[name]
        if isinstance(value, NotEvaluated):
            raise NotEvaluated(str(value))
        return value

    def _connect(self) -> socket.socket:
        if self._dead:
            raise NotEvaluated(self._dead)
        try:
            return socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            self._dead = f"TLS handshake with {self.host}:{self.port} failed: cannot connect: {exc}"
            raise NotEvaluated(self._dead) from None

    def _handshake(self, context: ssl.SSLContext, hostname: str | None) -> tuple[ssl.SSLSocket | None, str]:
        """(the TLS socket, "") after a completed handshake, or (None, why the server refused).
        A verification failure propagates; an unreachable or silent server is NotEvaluated."""
        raw = self._connect()
        try:
            return context.wrap_socket(raw, server_hostname=hostname), ""
        except ssl.SSLCertVerificationError:
            raw.close()
            raise
        except (socket.timeout, TimeoutError):
            raw.close()
            self._dead = (f"TLS handshake with {self.host}:{self.port} failed: no answer within "
                          f"{self.timeout:g}s")
            raise NotEvaluated(self._dead) from None
        except ssl.SSLError as exc:
            raw.close()
            return None, f"{exc.reason or exc}"
        except OSError as exc:  # reset or closed in the middle of the handshake: a refusal
            raw.close()
            return None, f"{type(exc).__name__}: {exc}"

    # --- certificates

    def _chain(self) -> list[Certificate]:
        tls, why = self._handshake(_client(), self.host)
        if tls is None:
            raise NotEvaluated(f"TLS handshake with {self.host}:{self.port} failed: {why}")
        with tls:
            return [describe(der) for der in _served_chain(tls) if der]

    def chain(self) -> list[Certificate]:
        """The served chain, leaf first, read without verifying it (expired ones included)."""
        return self._once("chain", self._chain)

    def leaf(self) -> LeafCertificate:
        """The served leaf certificate, read without verifying it (expired ones included)."""
        first = self.chain()[0]
        return LeafCertificate(first.subject, first.issuer, first.not_before, first.not_after, first.sans)

    def verify(self, cafile: str) -> Verification:
        """Does the chain verify to a root in `cafile` and name the host? (Security level 0: weak
        keys and hashes are EA-TLS-03's finding, not a trust failure.)"""
        def compute() -> Verification:
            context = ssl.create_default_context(cafile=cafile)
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
            try:
                tls, why = self._handshake(context, self.host)
            except ssl.SSLCertVerificationError as exc:
                return Verification(False, exc.verify_message or str(exc), exc.verify_code)
            if tls is None:
                raise NotEvaluated(f"TLS handshake with {self.host}:{self.port} failed: {why}")
            tls.close()
            return Verification(True)
        return self._once(f"verify:{cafile}", compute)

    # --- protocols and suites

    def _protocol(self, name: str) -> str:
        if name == "SSLv3":
            return self._sslv3()
        try:
            context = _client(_VERSIONS[name])
        except (ValueError, ssl.SSLError) as exc:
            return f"untested: the local OpenSSL cannot offer {name}: {exc}"
        tls, why = self._handshake(context, self.host)
        if tls is None:
            if any(marker in why.upper() for marker in _LOCAL_REFUSALS):
                return f"untested: the local OpenSSL cannot offer {name}: {why}"
            return f"refused ({why})"
        with tls:
            version = tls.version()
        return "accepted" if version == name else f"refused (negotiated {version})"

    def protocols(self) -> dict[str, str]:
        """Each protocol version -> "accepted", "refused (...)" or "untested: <why>"."""
        def compute() -> dict[str, str]:
            self.chain()  # a server that completes no handshake at all refuses nothing: NotEvaluated
            found = {name: self._protocol(name) for name in PROTOCOLS if name != "SSLv3"}
            found["SSLv3"] = self._sslv3()
            return {name: found[name] for name in PROTOCOLS}
        return self._once("protocols", compute)

    def _sslv3(self) -> str:
        suites = len(_SSLV3_SUITES).to_bytes(2, "big") + _SSLV3_SUITES
        # client_version 3.0, random, no session id, the suites, null compression only
        body = b"\x03\x00" + os.urandom(32) + b"\x00" + suites + b"\x01\x00"
        hello = b"\x01" + len(body).to_bytes(3, "big") + body
        record = b"\x16\x03\x00" + len(hello).to_bytes(2, "big") + hello
        with self._connect() as sock:
            try:
                sock.sendall(record)
                answer = _read(sock, 11)
            except (socket.timeout, TimeoutError):
                return f"refused (no answer to an SSLv3 ClientHello within {self.timeout:g}s)"
            except OSError as exc:
                return f"refused ({type(exc).__name__})"
        if len(answer) >= 11 and answer[0] == 0x16 and answer[5] == 0x02 and answer[9:11] == b"\x03\x00":
            return "accepted"
        if answer[:1] == b"\x15":
            return "refused (alert)"
        return "refused (no SSLv3 ServerHello)"

    def tls12_suites(self) -> list[str]:
        """Every TLS 1.2 cipher suite the server accepts, found by offering all we know and
        removing the one it picks until it refuses the rest."""
        def compute() -> list[str]:
            self.chain()
            offered = [c["name"] for c in _client(ssl.TLSVersion.TLSv1_2).get_ciphers()
                       if c.get("protocol") != "TLSv1.3"]
            accepted: list[str] = []
            while offered:
                try:
                    context = _client(ssl.TLSVersion.TLSv1_2, ":".join(offered))
                except ssl.SSLError:
                    break
                tls, _ = self._handshake(context, self.host)
                if tls is None:
                    break
                with tls:
                    chosen = (tls.cipher() or ("",))[0]
                if not chosen or chosen not in offered:
                    break
                accepted.append(chosen)
                offered.remove(chosen)
            return accepted
        return self._once("tls12_suites", compute)


def _read(sock: socket.socket, size: int) -> bytes:
    """Up to `size` bytes, fewer if the server closes first."""
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data
