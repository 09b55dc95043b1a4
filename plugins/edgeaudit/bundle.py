"""The signed evidence bundle: one zip that holds what a run produced and what it read, with a
manifest of SHA-256 digests signed with Ed25519, so that an auditor can check later that the
files are the ones the run wrote (`edgeaudit verify`)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .report import write_atomic_bytes

MANIFEST = "MANIFEST.json"
SIGNATURE = "MANIFEST.sig"
SCHEMA = "edgeaudit.bundle/1"


class BundleError(ValueError):
    """A key or bundle that cannot be used, phrased for the operator."""


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise BundleError(f"cannot read the signing key {path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"{path} is not an Ed25519 private key (make one with "
                          "`openssl genpkey -algorithm ed25519 -out edgeaudit-signing.pem`)")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise BundleError(f"cannot read the public key {path}: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError(f"{path} is not an Ed25519 public key")
    return key


def _key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + _digest(raw)


def write_bundle(path: Path, members: dict[str, bytes], sign_key: Path | None = None) -> Path:
    """Zip the members with a manifest of their digests, signed when a key is given."""
    private = load_private_key(sign_key) if sign_key else None
    manifest = {
        "schema": SCHEMA, "created": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": {name: {"sha256": _digest(data), "bytes": len(data)} for name, data in sorted(members.items())},
        "signature": {"algorithm": "Ed25519", "key_id": _key_id(private.public_key())} if private else None,
    }
    manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(members.items()):
            archive.writestr(name, data)
        archive.writestr(MANIFEST, manifest_bytes)
        if private:
            archive.writestr(SIGNATURE, base64.b64encode(private.sign(manifest_bytes)) + b"\n")
    write_atomic_bytes(path, buffer.getvalue())
    return path


def verify_bundle(path: Path, public_key: Path | None = None) -> tuple[list[str], dict[str, Any]]:
    """Problems found (empty when every digest and the signature hold) and the manifest."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        return [f"not a readable bundle: {exc}"], {}
    problems: list[str] = []
    with archive:
        names = set(archive.namelist())
        if MANIFEST not in names:
            return [f"no {MANIFEST} in the bundle"], {}
        manifest_bytes = archive.read(MANIFEST)
        try:
            manifest = json.loads(manifest_bytes)
            files = manifest["files"]
        except (ValueError, KeyError, TypeError):
            return [f"{MANIFEST} is not a bundle manifest"], {}
        for name, expected in sorted(files.items()):
            if name not in names:
                problems.append(f"{name}: missing")
                continue
            try:
                data = archive.read(name)
            except (zipfile.BadZipFile, OSError) as exc:  # a damaged member fails its CRC check
                problems.append(f"{name}: unreadable ({exc})")
                continue
            if _digest(data) != expected.get("sha256"):
                problems.append(f"{name}: changed (SHA-256 differs from the manifest)")
        for extra in sorted(names - set(files) - {MANIFEST, SIGNATURE}):
            problems.append(f"{extra}: not in the manifest")
        if public_key is not None:
            key = load_public_key(public_key)
            if SIGNATURE not in names:
                problems.append("the bundle is not signed")
            else:
                try:
                    key.verify(base64.b64decode(archive.read(SIGNATURE).strip()), manifest_bytes)
                except (InvalidSignature, ValueError, zipfile.BadZipFile):
                    problems.append("the signature does not match this public key and manifest")
    return problems, manifest
