"""What an HTTP request to AWS does, read from the request itself (method, host, path, query,
headers, body) and not from the operation name it came with: the operations it names on the
wire (an X-Amz-Target header, an Action= parameter, an RPC path) and, for S3, the write it
makes and the bucket and keys it addresses, virtual-hosted or path style.

The read-only guard judges every request by these readings, so a read's name on a write's
request (a presigned GetObject URL with HttpMethod="PUT", a PUT signed as GetObject) is a write.
Every reading fails closed: a request it cannot read addresses nothing a grant covers.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit
from xml.etree import ElementTree

# An S3 service host: s3.amazonaws.com, s3.eu-west-1.amazonaws.com, s3-eu-west-1.amazonaws.com,
# s3.dualstack.eu-west-1.amazonaws.com, s3-accelerate.amazonaws.com, s3-fips.us-gov-west-1.amazonaws.com,
# s3.cn-north-1.amazonaws.com.cn (a bucket named s3-www is no region: s3-www.s3.amazonaws.com is virtual-hosted)
REGION = r"[a-z]{2}(-[a-z]+)+-\d+"
S3_HOST = re.compile(rf"s3(-fips|-accelerate|-external-1|-{REGION})?(\.dualstack)?(\.{REGION})?\.amazonaws\.com(\.cn)?")
# The smithy RPC v2 path (CloudWatch): /service/<service>/operation/<operation>
RPC_PATH = re.compile(r"/service/[^/]+/operation/(?P<operation>[^/]+)")
# S3 writes on one object: (method, query keys, a copy source?) -> the operation S3 performs
OBJECT_WRITES = {
    ("PUT", frozenset(), False): "PutObject",
    ("PUT", frozenset(), True): "CopyObject",
    ("PUT", frozenset({"partNumber", "uploadId"}), False): "UploadPart",
    ("PUT", frozenset({"partNumber", "uploadId"}), True): "UploadPartCopy",
    ("POST", frozenset({"uploads"}), False): "CreateMultipartUpload",
    ("POST", frozenset({"uploadId"}), False): "CompleteMultipartUpload",
    ("DELETE", frozenset(), False): "DeleteObject",
    ("DELETE", frozenset({"uploadId"}), False): "AbortMultipartUpload",
}
# Headers that would make a written object public or undeletable: no grant lets them through.
RISKY_HEADERS = ("x-amz-acl", "x-amz-grant-", "x-amz-object-lock-")


@dataclass(frozen=True)
class S3Write:
    """A write to S3 as its request makes it: the operation, and every (bucket, key) reading of
    its address (two when the host could be read either way)."""

    operation: str
    targets: tuple[tuple[str, tuple[str, ...]], ...]  # (bucket, keys) per reading of the URL
    if_none_match: bool  # `If-None-Match: *`: never over an existing object
    risky: bool          # carries an ACL, a grant or an Object Lock setting


def header(request: Any, name: str) -> str:
    """One header of a botocore request (AWSRequest or AWSPreparedRequest), as text."""
    value = request.headers.get(name)
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return str(value or "")


def body(request: Any) -> bytes | None:
    """The request's body when it is in memory (bytes); None for a stream the guard does not read."""
    data = request.body
    if isinstance(data, str):
        return data.encode("utf-8")
    return bytes(data) if isinstance(data, (bytes, bytearray)) else (b"" if data is None else None)


def named_operations(request: Any) -> set[str]:
    """The operations a request names on the wire: X-Amz-Target (JSON protocols), Action= in the
    query or a form body (query protocols), the RPC v2 path. Empty for a REST request."""
    names: set[str] = set()
    if target := header(request, "X-Amz-Target"):
        names.add(target.rsplit(".", 1)[-1])
    parts = urlsplit(request.url or "")
    names.update(parse_qs(parts.query, keep_blank_values=True).get("Action", []))
    if rpc := RPC_PATH.fullmatch(parts.path):
        names.add(unquote(rpc["operation"]))
    if "x-www-form-urlencoded" in header(request, "Content-Type").lower():
        form = body(request)
        if form is None:
            names.add("<a form body that cannot be read>")
        else:
            names.update(parse_qs(form.decode("utf-8", "replace"), keep_blank_values=True).get("Action", []))
    return names


def describe(request: Any) -> str:
    """`PUT host/path?query-keys`: the request without its query's values (a signature, a token)."""
    parts = urlsplit(request.url or "")
    keys = sorted({k for k, _ in parse_qsl(parts.query, keep_blank_values=True)})
    return f"{(request.method or '?').upper()} {parts.netloc}{parts.path}" + (f"?{'&'.join(keys)}" if keys else "")


def _is_literal_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def addresses(request: Any) -> list[tuple[str, str]]:
    """Every (bucket, key) an S3 server could read from this request's host and path: path style
    on an S3 service host, an IP address or localhost; virtual-hosted on <bucket>.<S3 host> or
    <bucket>.localhost. A Host header that differs from the URL's, or a host of no S3 shape,
    gives no reading at all."""
    parts = urlsplit(request.url or "")
    host = (parts.hostname or "").lower()
    given = header(request, "Host").lower()
    if given and given not in (parts.netloc.lower(), host):
        return []
    path = unquote(parts.path)
    if not path.startswith("/"):
        return []
    readings = []
    if _is_literal_host(host) or S3_HOST.fullmatch(host):
        bucket, _, key = path[1:].partition("/")
        readings.append((bucket, key))
    for at, char in enumerate(host):
        rest = host[at + 1:]
        if char == "." and (S3_HOST.fullmatch(rest) or rest == "localhost"):
            readings.append((host[:at], path[1:]))
    return readings


def _deleted_keys(request: Any) -> tuple[str, ...] | None:
    """The keys of a DeleteObjects body; None when it holds anything else (a VersionId) or cannot be read."""
    data = body(request)
    if not data:
        return None
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError:
        return None
    keys = []
    for element in root.iter():
        name = element.tag.rsplit("}", 1)[-1]
        if name == "Key":
            keys.append(element.text or "")
        elif name not in ("Delete", "Object", "Quiet"):
            return None
    return tuple(keys) or None


def s3_write(request: Any) -> S3Write | None:
    """The S3 write a request makes, or None when it is none the guard can read (an ACL, a policy,
    tagging, retention, restore, a bucket setting, an address of no S3 shape)."""
    method = (request.method or "").upper()
    query = parse_qsl(urlsplit(request.url or "").query, keep_blank_values=True)
    keys = frozenset(k for k, _ in query if k != "x-id")
    readings = addresses(request)
    if not readings:
        return None
    if method == "POST" and keys == {"delete"}:
        operation, deleted = "DeleteObjects", _deleted_keys(request)
        if deleted is None or any(key for _, key in readings):
            return None
        targets = tuple((bucket, deleted) for bucket, _ in readings)
    else:
        operation = OBJECT_WRITES.get((method, keys, bool(header(request, "x-amz-copy-source"))), "")
        if not operation or any(not key for _, key in readings):
            return None
        targets = tuple((bucket, (key,)) for bucket, key in readings)
    if any(value != operation for key, value in query if key == "x-id"):
        return None
    names = [str(name).lower() for name in request.headers.keys()]
    return S3Write(operation=operation, targets=targets,
                   if_none_match=header(request, "If-None-Match").strip() == "*",
                   risky=any(name.startswith(RISKY_HEADERS) for name in names))


def matches_binding(http: dict[str, Any], request: Any) -> bool:
    """Does a REST request have the method and path of an operation's HTTP binding (its model's
    `http`: {"method": "POST", "requestUri": "/token"})?"""
    template = str(http.get("requestUri", "")).split("?", 1)[0]
    pattern = re.sub(r"\\\{[^}]+\\\+\\\}", ".+", re.escape(template))
    pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", pattern)
    return ((request.method or "").upper() == str(http.get("method", "")).upper()
            and re.fullmatch(pattern, urlsplit(request.url or "").path) is not None)
