"""The signed evidence bundle: one zip that holds what a run produced and what it read, with a
manifest of SHA-256 digests signed with Ed25519, so that an auditor can check later that the
files are the ones the run wrote (`edgeaudit verify`)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import struct
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edgeaudit.reporting.report import write_atomic_bytes

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


def key_id(key: Ed25519PublicKey) -> str:
    """The id of a public key, as manifests and signed history lines name it."""
    return _key_id(key)


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


def check_private_key(path: Path) -> list[str]:
    """Load the signing key now, so that a wrong key stops the run before any control runs;
    warnings for a key that others can read."""
    load_private_key(path)
    mode = path.stat().st_mode & 0o077
    if mode:
        return [f"the signing key {path} can be read or written by others (mode {path.stat().st_mode & 0o777:o}). "
                f"Fix: chmod 600 {path}"]
    return []


def _manifest_problem(manifest: Any) -> str | None:
    """What makes a parsed manifest unusable, if anything."""
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
        return f"not a {SCHEMA} document"
    files = manifest.get("files")
    if not isinstance(files, dict):
        return "`files` is not a table of members"
    for name, entry in files.items():
        if name in (MANIFEST, SIGNATURE) or not isinstance(entry, dict):
            return f"`files.{name}` is not a member entry"
        digest, size = entry.get("sha256"), entry.get("bytes")
        if not (isinstance(digest, str) and len(digest) == 64) or not (isinstance(size, int) and size >= 0):
            return f"`files.{name}` lacks a SHA-256 digest or a size"
    signature = manifest.get("signature")
    if signature is not None and not (isinstance(signature, dict) and isinstance(signature.get("key_id"), str)):
        return "`signature` is not a signature entry"
    return None


_LOCAL = struct.Struct("<4s5H3L2H")  # a member's local file header
_END = struct.Struct("<4s4H2LH")      # the end of central directory record


def _layout_problems(path: Path, archive: zipfile.ZipFile) -> list[str]:
    """Bytes the zip's directory does not account for, and local headers that disagree with it.

    Zip readers tolerate bytes before the first member and after the directory, and some read a
    member by its local header rather than the directory: a forged report put there would be what
    one tool shows while the digests hold. A bundle as edgeaudit writes it is members end to end
    from byte 0, then the directory, then its end record, and nothing else."""
    problems, position = [], 0
    size = path.stat().st_size
    with path.open("rb") as raw:
        for info in sorted(archive.infolist(), key=lambda i: i.header_offset):
            if info.header_offset != position:
                where = "before the first member" if position == 0 else "between members"
                problems.append(f"{info.filename}: {info.header_offset - position} bytes {where} that no member holds")
            raw.seek(info.header_offset)
            header = raw.read(_LOCAL.size)
            if len(header) < _LOCAL.size or header[:4] != b"PK\x03\x04":
                problems.append(f"{info.filename}: no local header where the directory says it starts")
                return problems
            _, _, flags, method, _, _, crc, compressed, plain, name_length, extra_length = _LOCAL.unpack(header)
            name = raw.read(name_length)
            encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"
            if (name != info.orig_filename.encode(encoding, "replace") or flags != info.flag_bits
                    or method != info.compress_type or (crc, compressed, plain) != (info.CRC, info.compress_size,
                                                                                   info.file_size)):
                problems.append(f"{info.filename}: its local header disagrees with the zip's directory "
                                "(name, flags, method, CRC or sizes)")
            position = info.header_offset + _LOCAL.size + name_length + extra_length + info.compress_size
        raw.seek(max(0, size - _END.size))
        end = raw.read(_END.size)
    if len(end) < _END.size or end[:4] != b"PK\x05\x06":
        return problems + ["bytes after the zip's directory (its end record is not the last bytes of the file)"]
    _, _, _, _, _, directory_size, directory_offset, comment_length = _END.unpack(end)
    if comment_length or directory_offset != position or directory_offset + directory_size != size - _END.size:
        problems.append("bytes before, inside or after the zip's directory that no member holds")
    return problems


def verify_bundle(path: Path, public_key: Path | None = None) -> tuple[list[str], dict[str, Any]]:
    """Problems found (empty when every digest and the signature hold) and the manifest.

    The archive is read by its directory, entry by entry: a name that occurs twice is refused
    (zip readers disagree on which copy they show), as are members the manifest does not list
    and listed members that are missing. Raises BundleError for an unusable key or a malformed
    manifest that no signature check has already shown to be forged."""
    key = load_public_key(public_key) if public_key is not None else None
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        return [f"not a readable bundle: {exc}"], {}
    problems: list[str] = []
    with archive:
        infos = archive.infolist()
        counts = Counter(info.filename for info in infos)
        duplicated = sorted(name for name, count in counts.items() if count > 1)
        if duplicated:
            return [f"{name}: {counts[name]} members of that name (a forged copy may be the one unzip shows)"
                    for name in duplicated], {}
        layout = _layout_problems(path, archive)
        if layout:
            return layout, {}
        members = {info.filename: info for info in infos}
        if MANIFEST not in members:
            return [f"no {MANIFEST} in the bundle"], {}
        manifest_bytes = archive.read(MANIFEST)
        if key is not None:
            if SIGNATURE not in members:
                problems.append("the bundle is not signed")
            else:
                try:
                    key.verify(base64.b64decode(archive.read(SIGNATURE).strip(), validate=True), manifest_bytes)
                except (InvalidSignature, ValueError, zipfile.BadZipFile):
                    problems.append("the signature does not match this public key and manifest")
        try:
            manifest = json.loads(manifest_bytes)
        except ValueError as exc:
            manifest, problem = {}, f"not JSON ({exc})"
        else:
            problem = _manifest_problem(manifest)
        if problem:
            if problems:  # already shown not to be the run's manifest
                return problems + [f"{MANIFEST}: {problem}"], {}
            raise BundleError(f"{path}: {MANIFEST} is malformed: {problem}")
        claimed = (manifest.get("signature") or {}).get("key_id")
        if key is not None and claimed is not None and claimed != _key_id(key):
            problems.insert(0, f"signed by another key: not by the key given ({_key_id(key)})")
        files = manifest["files"]
        for name, expected in sorted(files.items()):
            info = members.get(name)
            if info is None:
                problems.append(f"{name}: missing")
                continue
            if info.file_size != expected["bytes"]:
                problems.append(f"{name}: changed ({info.file_size} bytes, the manifest says {expected['bytes']})")
                continue
            try:
                data = archive.read(info)
            except (zipfile.BadZipFile, OSError) as exc:  # a damaged member fails its CRC check
                problems.append(f"{name}: unreadable ({exc})")
                continue
            if _digest(data) != expected["sha256"]:
                problems.append(f"{name}: changed (SHA-256 differs from the manifest)")
        for extra in sorted(set(members) - set(files) - {MANIFEST, SIGNATURE}):
            problems.append(f"{extra}: not in the manifest")
    return problems, manifest
