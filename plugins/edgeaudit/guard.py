"""The read-only guard: a botocore `before-call` handler that refuses every AWS call that is
not a read, so that the suite cannot change an account it audits.

It is installed into botocore's built-in handlers, so every session created while the
suite runs carries it, including clients a control makes itself. Two narrow doors exist:
`scratch()` lets a disaster-recovery drill write under one prefix of one bucket, and
`local_seeding()` lets the demo builder write to an endpoint on loopback (moto).
"""

from __future__ import annotations

import contextlib
import ipaddress
import threading
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import urlsplit

import botocore.handlers

READ_PREFIXES = ("Get", "List", "Describe", "Head")
# Reads whose names do not start with a read verb.
READ_OPERATIONS = frozenset({
    "AssumeRole", "AssumeRoleWithWebIdentity", "AssumeRoleWithSAML",  # credentials only
    "SimulatePrincipalPolicy", "SimulateCustomPolicy", "LookupEvents",
    "BatchGetTraces", "TestDNSAnswer", "SelectObjectContent",
    "DetectStackDrift",  # compares a stack with its resources; changes neither
})
# What a drill may do inside its scratch prefix.
SCRATCH_OPERATIONS = frozenset({
    "PutObject", "CopyObject", "DeleteObject", "DeleteObjects", "CreateMultipartUpload",
    "UploadPart", "UploadPartCopy", "CompleteMultipartUpload", "AbortMultipartUpload",
})


class ReadOnlyViolation(RuntimeError):
    """A control tried to change AWS outside a scratch context."""


def is_read(operation: str) -> bool:
    return operation.startswith(READ_PREFIXES) or operation in READ_OPERATIONS


@dataclass(frozen=True)
class ScratchGrant:
    bucket: str
    prefix: str

    def allows(self, operation: str, params: dict[str, Any]) -> bool:
        if operation not in SCRATCH_OPERATIONS or params.get("Bucket") != self.bucket:
            return False
        if operation == "DeleteObjects":
            keys = [o.get("Key", "") for o in params.get("Delete", {}).get("Objects", [])]
        else:
            keys = [params.get("Key", "")]
        return bool(keys) and all(k.startswith(self.prefix) for k in keys)


_lock = threading.Lock()
_grants: list[ScratchGrant] = []
_seeding = 0
violations: list[str] = []


@contextlib.contextmanager
def scratch(bucket: str, prefix: str) -> Iterator[ScratchGrant]:
    """Allow the drill writes of SCRATCH_OPERATIONS on keys under `prefix` in `bucket`."""
    if not prefix or not prefix.endswith("/"):
        raise ValueError("a scratch prefix must be a non-empty folder such as '_edgeaudit/<run>/'")
    grant = ScratchGrant(bucket, prefix)
    with _lock:
        _grants.append(grant)
    try:
        yield grant
    finally:
        with _lock:
            _grants.remove(grant)


@contextlib.contextmanager
def local_seeding() -> Iterator[None]:
    """Allow writes to AWS endpoints on loopback only (the demo's moto server)."""
    global _seeding
    with _lock:
        _seeding += 1
    try:
        yield
    finally:
        with _lock:
            _seeding -= 1


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _remember_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """before-parameter-build: keep the API parameters for the decision in before-call."""
    context["edgeaudit_api_params"] = params


def check_call(model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """before-call: let reads through; refuse writes unless a grant covers them."""
    operation = model.name
    if is_read(operation):
        return None
    api_params = context.get("edgeaudit_api_params", {})
    with _lock:
        if any(g.allows(operation, api_params) for g in _grants):
            return None
        if _seeding and _is_loopback(params.get("url", "")):
            return None
    service = model.service_model.service_name
    where = api_params.get("Bucket") or api_params.get("Id") or ""
    message = (f"refused {service}:{operation}{' on ' + str(where) if where else ''}: "
               "edgeaudit is read-only outside a DR scratch context")
    with _lock:
        violations.append(message)
    raise ReadOnlyViolation(message)


_HANDLERS = [("before-parameter-build", _remember_params), ("before-call", check_call)]


def install() -> None:
    """Put the guard into every botocore session created from now on (idempotent)."""
    for handler in _HANDLERS:
        if handler not in botocore.handlers.BUILTIN_HANDLERS:
            botocore.handlers.BUILTIN_HANDLERS.append(handler)
    import boto3

    if boto3.DEFAULT_SESSION is not None:
        register(boto3.DEFAULT_SESSION._session)


def uninstall() -> None:
    for handler in _HANDLERS:
        while handler in botocore.handlers.BUILTIN_HANDLERS:
            botocore.handlers.BUILTIN_HANDLERS.remove(handler)


def register(botocore_session: Any) -> None:
    """Guard a session that existed before install()."""
    for event, handler in _HANDLERS:
        botocore_session.register(event, handler, unique_id=f"edgeaudit-guard-{event}")
