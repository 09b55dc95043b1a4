"""A local stand-in for a CloudFront distribution in front of an S3 bucket.

``pytest --demo`` and the suite's own tests need something that answers like
CloudFront, over real TLS on loopback, so the controls run unchanged against it.
moto can store a distribution's configuration but serves no traffic, so this
module does: it reads the distribution config (and response headers policies)
through an ``EdgeSource`` on every request and serves the origin bucket's
objects the way that config says. Change the config through the API and the
next request shows it; that is how tests break one thing at a time.

What is modelled: a disabled distribution (403 for everything), the viewer
TLS policy (minimum version and a cipher list close to CloudFront's security
policies), the default root object, cache behaviours chosen by path pattern,
viewer protocol policy, allowed methods, the origin each behaviour targets (an
origin group's primary member; 502 when it names nothing), S3-through-OAC answers (403
AccessDenied for a missing key; Cache-Control passed through), custom error
responses, compression, response headers policies, and the headers CloudFront
adds (X-Cache, Via, X-Amz-Cf-Pop, X-Amz-Cf-Id, Age). Nothing is actually
cached: objects are read from the origin on every request and X-Cache only
tracks whether a path was fetched before.

Responses the edge makes itself (HTTP to HTTPS redirect, https-only and
method refusals, a disabled distribution) get no response headers policy;
origin answers, including errors and custom error pages, do.

Switches model what a misconfigured origin or edge function does, for tests
that need a site to fail a probe: ``cors_reflection`` (the origin echoes any
Origin and allows credentials), ``open_redirect`` (a function that redirects
to ``?next=``/``?url=`` and keeps a ``//host`` path when adding a slash),
``bucket_listing`` (the origin may s3:ListBucket and CloudFront forwards the
list query), ``accepts_writes`` (a public-write bucket answers writes 2xx;
nothing is stored), and ``hold(key)`` (a stale edge cache: the object as it
is now keeps being served whatever the origin later holds).
"""

from __future__ import annotations

import base64
import email.utils
import gzip
import hashlib
import re
import secrets
import selectors
import socket
import ssl
import threading
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError

POP = "LOC50-P1"
MEASURING_AGENTS = ("(lab vitals)", "(ttfb benchmark)")  # User-Agents of the page-speed controls
EDGE_SERVER = "CloudFront"

_MODERN_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)
_CIPHERS_2019 = _MODERN_CIPHERS + (
    ":ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256"
    ":ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384"
)
_CIPHERS_2018 = _CIPHERS_2019 + ":AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA256"
_LEGACY_CIPHERS = _CIPHERS_2018 + (
    ":ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA"
    ":ECDHE-RSA-AES256-SHA:AES128-SHA:AES256-SHA:DES-CBC3-SHA"
)

# CloudFront security policy -> (minimum TLS version, OpenSSL cipher list for TLS <= 1.2).
TLS_POLICIES: dict[str, tuple[ssl.TLSVersion, str]] = {
    "SSLv3": (ssl.TLSVersion.TLSv1, _LEGACY_CIPHERS),
    "TLSv1": (ssl.TLSVersion.TLSv1, _LEGACY_CIPHERS),
    "TLSv1_2016": (ssl.TLSVersion.TLSv1, _LEGACY_CIPHERS),
    "TLSv1.1_2016": (ssl.TLSVersion.TLSv1_1, _LEGACY_CIPHERS),
    "TLSv1.2_2018": (ssl.TLSVersion.TLSv1_2, _CIPHERS_2018),
    "TLSv1.2_2019": (ssl.TLSVersion.TLSv1_2, _CIPHERS_2019),
    "TLSv1.2_2021": (ssl.TLSVersion.TLSv1_2, _MODERN_CIPHERS),
    "TLSv1.2_2025": (ssl.TLSVersion.TLSv1_2, _MODERN_CIPHERS),
    "TLSv1.3_2025": (ssl.TLSVersion.TLSv1_3, _MODERN_CIPHERS),
}

COMPRESSIBLE_TYPES = (
    "application/javascript",
    "application/json",
    "application/xml",
    "image/svg+xml",
)
COMPRESS_MIN_BYTES = 1000
COMPRESS_MAX_BYTES = 10_000_000

# Headers a response headers policy cannot remove (CloudFront refuses them too).
_UNREMOVABLE = {
    "connection",
    "content-encoding",
    "content-length",
    "transfer-encoding",
    "via",
    "x-cache",
    "x-amz-cf-id",
    "x-amz-cf-pop",
}
_WRITE_METHODS = {"PUT", "POST", "DELETE", "PATCH"}
_MAX_REQUEST_BODY = 1_000_000


@dataclass
class S3Object:
    body: bytes
    content_type: str
    etag: str
    last_modified: datetime
    cache_control: str = ""


class EdgeSource(Protocol):
    """Where the edge reads its configuration and the origin's objects from."""

    def distribution_config(self) -> dict:
        """``GetDistributionConfig()["DistributionConfig"]``, boto3 shape."""
        ...

    def response_headers_policy(self, policy_id: str) -> dict | None:
        """``GetResponseHeadersPolicy()["ResponseHeadersPolicy"]["ResponseHeadersPolicyConfig"]``."""
        ...

    def get_object(self, key: str) -> S3Object | None:
        """The origin object, or None when it does not exist."""
        ...


class BotoEdgeSource:
    """An ``EdgeSource`` that reads an S3 + CloudFront API endpoint (the moto server).

    Clients get the endpoint and credentials explicitly, so nothing in the
    environment can point the demo at a real account. Configuration reads are
    cached for ``config_ttl`` seconds; objects are read on every request.
    """

    def __init__(
        self,
        *,
        endpoint_url: str,
        distribution_id: str,
        bucket: str,
        region: str = "us-east-1",
        credentials: tuple[str, str] = ("testing", "testing"),
        config_ttl: float = 1.0,
    ) -> None:
        self.distribution_id = distribution_id
        self.bucket = bucket
        self.config_ttl = config_ttl
        client_args: dict[str, Any] = {
            "endpoint_url": endpoint_url,
            "region_name": region,
            "aws_access_key_id": credentials[0],
            "aws_secret_access_key": credentials[1],
            "aws_session_token": None,
            "config": Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 2, "mode": "standard"},
                connect_timeout=5,
                read_timeout=10,
                max_pool_connections=50,
            ),
        }
        self._endpoint = (endpoint_url, region, client_args)
        self._s3, self._cloudfront = _clients(endpoint_url, region, credentials, client_args)
        self._cache: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def sign_with(self, credentials: tuple[str, str]) -> None:
        """Read with other keys from now on: an IAM user's, which moto accepts when a test has it
        enforce IAM (the default keys belong to no user and are then refused)."""
        endpoint_url, region, client_args = self._endpoint
        client_args = {**client_args, "aws_access_key_id": credentials[0], "aws_secret_access_key": credentials[1]}
        self._s3, self._cloudfront = _clients(endpoint_url, region, credentials, client_args)
        with self._lock:
            self._cache.clear()

    def distribution_config(self) -> dict:
        return self._cached(
            "distribution",
            lambda: self._cloudfront.get_distribution_config(Id=self.distribution_id)[
                "DistributionConfig"
            ],
        )

    def response_headers_policy(self, policy_id: str) -> dict | None:
        def fetch() -> dict | None:
            try:
                answer = self._cloudfront.get_response_headers_policy(Id=policy_id)
            except ClientError:
                return None
            return answer["ResponseHeadersPolicy"]["ResponseHeadersPolicyConfig"]

        return self._cached(f"policy:{policy_id}", fetch)

    def list_keys(self) -> list[str]:
        """The bucket's keys (the first thousand), for a listing the edge is switched to serve."""
        answer = self._s3.list_objects_v2(Bucket=self.bucket)
        return [item["Key"] for item in answer.get("Contents", [])]

    def get_object(self, key: str) -> S3Object | None:
        try:
            answer = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status in (403, 404):
                return None
            raise
        except ParamValidationError:
            return None
        return S3Object(
            body=answer["Body"].read(),
            content_type=answer.get("ContentType") or "binary/octet-stream",
            etag=answer.get("ETag", ""),
            last_modified=answer.get("LastModified") or datetime.now(timezone.utc),
            cache_control=answer.get("CacheControl") or "",
        )

    def _cached(self, name: str, fetch: Any) -> Any:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(name)
            if hit and now - hit[0] < self.config_ttl:
                return hit[1]
        value = fetch()
        with self._lock:
            self._cache[name] = (now, value)
        return value


_CLIENT_CACHE: dict[tuple[str, str, tuple[str, str]], tuple[Any, Any]] = {}
_CLIENT_LOCK = threading.Lock()


def _clients(
    endpoint_url: str, region: str, credentials: tuple[str, str], client_args: dict
) -> tuple[Any, Any]:
    """S3 and CloudFront clients for an endpoint, made once per process (they are thread-safe and
    slow to make) and shared by every edge reading that endpoint."""
    key = (endpoint_url, region, credentials)
    with _CLIENT_LOCK:
        if key not in _CLIENT_CACHE:
            # A profile named in AWS_PROFILE must not matter (nor break the demo when missing).
            isolated = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
            session = boto3.session.Session(botocore_session=isolated)
            _CLIENT_CACHE[key] = (
                session.client("s3", **client_args),
                session.client("cloudfront", **client_args),
            )
        return _CLIENT_CACHE[key]


class Headers:
    """Response headers: insertion-ordered, case-insensitive, one value per name."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[str, str]] = {}

    def set(self, name: str, value: str, *, override: bool = True) -> None:
        if override or name.lower() not in self._items:
            self._items[name.lower()] = (name, value)

    def get(self, name: str) -> str | None:
        item = self._items.get(name.lower())
        return item[1] if item else None

    def remove(self, name: str) -> None:
        self._items.pop(name.lower(), None)

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._items

    def items(self) -> list[tuple[str, str]]:
        return list(self._items.values())


@dataclass
class Reply:
    status: int
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""


class Edge:
    """CloudFront on loopback: an HTTPS and a plain-HTTP listener on 127.0.0.1.

    ``missing_object_status`` is what the origin answers for a missing key: 403
    (S3 through OAC without ``s3:ListBucket``) or 404 (with it). Custom error
    responses match on that code, as CloudFront's do.
    """

    def __init__(
        self,
        source: EdgeSource,
        *,
        cert_file: Path,
        key_file: Path,
        name: str = "demo",
        server_header: str = "AmazonS3",
        extra_headers: dict[str, str] | None = None,
        missing_object_status: int = 403,
        cors_reflection: bool = False,
        open_redirect: bool = False,
        bucket_listing: bool = False,
        accepts_writes: bool = False,
        html_delay_s: float = 0.0,
        connect_delay_s: float = 0.0,
        unavailable: bool = False,
    ) -> None:
        self.source = source
        self.cert_file = Path(cert_file)
        self.key_file = Path(key_file)
        self.name = name
        self.server_header = server_header
        self.extra_headers = dict(extra_headers or {})
        self.errors: list[str] = []
        self.missing_object_status = missing_object_status
        self.cors_reflection = cors_reflection
        self.open_redirect = open_redirect
        self.bucket_listing = bucket_listing
        self.accepts_writes = accepts_writes
        self.html_delay_s = html_delay_s  # a slow origin: HTML answers wait this long before the first byte
        self.connect_delay_s = connect_delay_s  # a distant edge: each new connection waits this long to be set up
        self.unavailable = unavailable  # every GET and HEAD answers 503 at once (an origin that is down)
        self.latency_s = 0.0  # a round trip to a distant edge, added to every answer (benchmarks set it)
        self._held: dict[str, S3Object] = {}
        self.requests_seen: list[tuple[str, str, str]] = []
        self.measurements_seen: list[tuple[str, str, str]] = []
        self.tls_policy: str | None = None
        host = hashlib.sha256(name.encode()).hexdigest()[:32]
        self._via = f"1.1 {host}.cloudfront.net (CloudFront)"
        self._lock = threading.Lock()
        self._first_fetch: dict[tuple[str, str], float] = {}
        self._connections: set[socket.socket] = set()
        self._servers: list[ThreadingHTTPServer] = []
        self._threads: list[threading.Thread] = []
        self._https_port: int | None = None
        self._http_port: int | None = None

    # lifecycle

    def start(self) -> Edge:
        if self._servers:
            return self
        context = self._tls_context()
        https = _EdgeServer(self, "https", context)
        http = _EdgeServer(self, "http", None)
        self._https_port = https.server_address[1]
        self._http_port = http.server_address[1]
        self._servers = [https, http]
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever,
                name=f"edge-{self.name}-{server.scheme}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
        for thread in self._threads:
            thread.join()
        for server in self._servers:
            server.server_close()
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._servers, self._threads = [], []

    def hold(self, key: str) -> None:
        """Keep serving the origin object ``key`` as it is now (a cache never invalidated)."""
        found = self.source.get_object(key)
        if found is None:
            raise KeyError(f"no object {key!r} at the origin to hold")
        with self._lock:
            self._held[key] = found

    def __enter__(self) -> Edge:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"https://localhost:{self._port(self._https_port)}/"

    @property
    def http_url(self) -> str:
        return f"http://localhost:{self._port(self._http_port)}/"

    @staticmethod
    def _port(port: int | None) -> int:
        if port is None:
            raise RuntimeError("the edge is not started")
        return port

    def _tls_context(self) -> ssl.SSLContext:
        """The viewer TLS policy, from ``ViewerCertificate.MinimumProtocolVersion`` at start.

        Legacy policies (TLS 1.0/1.1) need OpenSSL security level 0. A weak
        demo certificate (1024-bit RSA, SHA-1) also needs it to be loaded: the
        edge serves whatever certificate it is given, as CloudFront serves an
        imported one, so that clients can judge it.
        """
        viewer = self.source.distribution_config().get("ViewerCertificate") or {}
        self.tls_policy = viewer.get("MinimumProtocolVersion") or "TLSv1"
        minimum, ciphers = TLS_POLICIES.get(self.tls_policy, TLS_POLICIES["TLSv1.2_2021"])
        legacy = minimum < ssl.TLSVersion.TLSv1_2
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                context.minimum_version = minimum
            except (ValueError, ssl.SSLError):
                context.minimum_version = ssl.TLSVersion.TLSv1_2
        _set_ciphers(context, ciphers, low_security=legacy)
        try:
            context.load_cert_chain(self.cert_file, self.key_file)
        except ssl.SSLError:
            _set_ciphers(context, ciphers, low_security=True)
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    # bookkeeping used by the request handler

    def _record(self, scheme: str, method: str, path: str, agent: str = "") -> None:
        """Requests in `requests_seen`; page-speed measurements, which repeat URLs on purpose and
        say so in their User-Agent, in `measurements_seen`."""
        with self._lock:
            measuring = any(marker in agent for marker in MEASURING_AGENTS)
            (self.measurements_seen if measuring else self.requests_seen).append((scheme, method, path))

    def _track(self, connection: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    # request handling

    def respond(self, scheme: str, method: str, target: str, request_headers: Any) -> Reply:
        """Answer one request as CloudFront would; never raises."""
        try:
            return self._respond(scheme, method, target, request_headers)
        except Exception as exc:  # kept for tests: an origin fault shows as a 502, as on CloudFront
            self.errors.append(f"{method} {target}: {type(exc).__name__}: {exc}")
            return self._edge_error(502, "CloudFront wasn't able to connect to the origin.")

    def _respond(self, scheme: str, method: str, target: str, request_headers: Any) -> Reply:
        path, query = _request_path(target)
        if path is None:
            return self._edge_error(400, "Bad request.")
        config = self.source.distribution_config()
        if not config.get("Enabled", True):
            return self._edge_error(403, "The distribution is disabled.")
        behaviour = select_behaviour(config, path)

        if scheme == "http":
            policy = behaviour.get("ViewerProtocolPolicy", "allow-all")
            if policy == "redirect-to-https":
                return self._redirect(path + (f"?{query}" if query else ""))
            if policy == "https-only":
                return self._edge_error(403, "This distribution is configured to use HTTPS only.")

        allowed = _items(behaviour.get("AllowedMethods")) or ["GET", "HEAD"]
        if method not in allowed or method in ("TRACE", "CONNECT"):
            return self._edge_error(
                403,
                "This distribution is not configured to allow the HTTP request method "
                "that was used for this request.",
            )

        redirect = self._function_redirect(path, query) if self.open_redirect else None
        if redirect is not None:
            return redirect
        if target_origin(config, behaviour) is None:
            return self._edge_error(502, "CloudFront wasn't able to connect to the origin.")
        if self.unavailable and method in ("GET", "HEAD"):
            return self._edge_error(503, "The origin is not available.")
        if method == "OPTIONS":
            reply = Reply(200)
            reply.headers.set("Server", self.server_header)
        elif method in ("GET", "HEAD") and self.bucket_listing and path == "/" and _lists(query):
            reply = self._listing()
        elif method in ("GET", "HEAD"):
            reply = self._fetch(config, path)
        elif self.accepts_writes:
            reply = Reply(204 if method == "DELETE" else 200)
            reply.headers.set("Server", self.server_header)
            if method != "DELETE":
                reply.headers.set("ETag", f'"{hashlib.md5(secrets.token_bytes(8)).hexdigest()}"')
        else:
            reply = self._origin_error(403)
        if reply.status >= 400:
            reply = self._custom_error(config, reply)

        if reply.status == 200 and method in ("GET", "HEAD"):
            self._compress(behaviour, request_headers, reply)
        for name, value in self.extra_headers.items():
            reply.headers.set(name, value)
        if self.cors_reflection and request_headers.get("Origin"):
            reply.headers.set("Access-Control-Allow-Origin", request_headers["Origin"])
            reply.headers.set("Access-Control-Allow-Credentials", "true")
        policy_id = behaviour.get("ResponseHeadersPolicyId")
        if policy_id:
            headers_policy = self.source.response_headers_policy(policy_id)
            if headers_policy:
                apply_headers_policy(headers_policy, reply.headers, request_headers, method)
        self._edge_headers(reply, path, method)
        if _not_modified(reply, request_headers):
            reply.status, reply.body = 304, b""
        if self.html_delay_s and (reply.headers.get("Content-Type") or "").startswith("text/html"):
            time.sleep(self.html_delay_s)
        if self.latency_s:
            time.sleep(self.latency_s)
        return reply

    def _fetch(self, config: dict, path: str) -> Reply:
        if path == "/":
            key = config.get("DefaultRootObject") or ""
        else:
            key = unquote(path[1:])
        with self._lock:
            held = self._held.get(key)
        found = held or (self.source.get_object(key) if key else None)
        if found is None:
            return self._origin_error(self.missing_object_status, key)
        return _object_reply(200, found, self.server_header)

    def _function_redirect(self, path: str, query: str) -> Reply | None:
        """An edge function that redirects to ?next= / ?url=, and adds a slash to //host paths."""
        location = next((value for name, value in parse_qsl(query, keep_blank_values=True)
                         if name in ("next", "url", "redirect") and value), None)
        decoded = unquote(path)
        if location is None and decoded.startswith("//") and not decoded.endswith("/"):
            location = "//" + decoded.lstrip("/") + "/"
        if location is None:
            return None
        reply = Reply(302)
        reply.headers.set("Location", location)
        reply.headers.set("Server", EDGE_SERVER)
        reply.headers.set("X-Cache", "FunctionGeneratedResponse from cloudfront")
        return reply

    def _listing(self) -> Reply:
        """What S3 answers a ListObjects request when the caller may s3:ListBucket."""
        keys = getattr(self.source, "list_keys", lambda: [])()
        contents = "".join(f"<Contents><Key>{_xml_escape(key)}</Key></Contents>" for key in keys)
        bucket = _xml_escape(getattr(self.source, "bucket", ""))
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"<Name>{bucket}</Name><KeyCount>{len(keys)}</KeyCount>"
                "<IsTruncated>false</IsTruncated>"
                f"{contents}</ListBucketResult>").encode()
        reply = Reply(200, body=body)
        reply.headers.set("Content-Type", "application/xml")
        reply.headers.set("Server", self.server_header)
        return reply

    def _origin_error(self, status: int, key: str = "") -> Reply:
        """The XML error S3 answers with, passed through by CloudFront."""
        request_id = secrets.token_hex(8).upper()
        host_id = base64.b64encode(secrets.token_bytes(48)).decode()
        if status == 404:
            detail = (
                "<Code>NoSuchKey</Code><Message>The specified key does not exist.</Message>"
                f"<Key>{_xml_escape(key)}</Key>"
            )
        else:
            detail = "<Code>AccessDenied</Code><Message>Access Denied</Message>"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error>{detail}<RequestId>{request_id}</RequestId><HostId>{host_id}</HostId></Error>"
        ).encode()
        reply = Reply(status, body=body)
        reply.headers.set("Content-Type", "application/xml")
        reply.headers.set("Server", self.server_header)
        return reply

    def _custom_error(self, config: dict, reply: Reply) -> Reply:
        for entry in _items(config.get("CustomErrorResponses")):
            if int(entry.get("ErrorCode", 0)) != reply.status:
                continue
            page_path = entry.get("ResponsePagePath") or ""
            if not page_path.startswith("/"):
                return reply
            page = self.source.get_object(unquote(page_path[1:]))
            if page is None:
                return reply
            code = str(entry.get("ResponseCode") or "").strip()
            status = int(code) if code.isdigit() else reply.status
            return _object_reply(status, page, self.server_header)
        return reply

    def _compress(self, behaviour: dict, request_headers: Any, reply: Reply) -> None:
        if not behaviour.get("Compress"):
            return
        if not _accepts_compression(request_headers.get("Accept-Encoding") or ""):
            return
        if not _compressible(reply.headers.get("Content-Type") or ""):
            return
        if not COMPRESS_MIN_BYTES <= len(reply.body) <= COMPRESS_MAX_BYTES:
            return
        reply.body = gzip.compress(reply.body, mtime=0)
        reply.headers.set("Content-Encoding", "gzip")
        reply.headers.set("Vary", "Accept-Encoding")
        etag = reply.headers.get("ETag")
        if etag and not etag.startswith("W/"):
            reply.headers.set("ETag", "W/" + etag)

    def _edge_headers(self, reply: Reply, path: str, method: str) -> None:
        if reply.status == 200 and method in ("GET", "HEAD"):
            cache_key = (path, reply.headers.get("Content-Encoding") or "")
            now = time.monotonic()
            with self._lock:
                fetched_before = cache_key in self._first_fetch
                first = self._first_fetch.setdefault(cache_key, now)
            if not fetched_before:
                reply.headers.set("X-Cache", "Miss from cloudfront")
            else:
                reply.headers.set("X-Cache", "Hit from cloudfront")
                reply.headers.set("Age", str(int(now - first)))
        elif reply.status >= 400:
            reply.headers.set("X-Cache", "Error from cloudfront")
        else:
            reply.headers.set("X-Cache", "Miss from cloudfront")
        reply.headers.set("Via", self._via)
        reply.headers.set("X-Amz-Cf-Pop", POP)
        reply.headers.set("X-Amz-Cf-Id", _cf_id())

    def _redirect(self, target: str) -> Reply:
        location = f"https://localhost:{self._https_port}{target}"
        reply = self._edge_error(301, "")
        reply.headers.set("Location", location)
        reply.headers.set("X-Cache", "Redirect from cloudfront")
        return reply

    def _edge_error(self, status: int, message: str) -> Reply:
        """A page CloudFront makes itself, in its own format."""
        if status == 301:
            body = (
                "<html>\r\n<head><title>301 Moved Permanently</title></head>\r\n<body>\r\n"
                "<center><h1>301 Moved Permanently</h1></center>\r\n"
                "<hr><center>CloudFront</center>\r\n</body>\r\n</html>\r\n"
            )
        else:
            body = (
                '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN" '
                '"http://www.w3.org/TR/html4/loose.dtd">\n'
                '<HTML><HEAD><META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=iso-8859-1">\n'
                f"<TITLE>ERROR: The request could not be satisfied</TITLE>\n</HEAD><BODY>\n"
                f"<H1>{status} ERROR</H1>\n<H2>The request could not be satisfied.</H2>\n"
                f"<HR noshade size=\"1px\">\n{message}\n"
                "<BR clear=\"all\">\n<HR noshade size=\"1px\">\n<PRE>\n"
                f"Generated by cloudfront (CloudFront)\nRequest ID: {_cf_id()}\n"
                "</PRE>\n<ADDRESS>\n</ADDRESS>\n</BODY></HTML>"
            )
        reply = Reply(status, body=body.encode("latin-1"))
        reply.headers.set("Server", EDGE_SERVER)
        reply.headers.set("Content-Type", "text/html")
        reply.headers.set("X-Cache", "Error from cloudfront")
        reply.headers.set("Via", self._via)
        reply.headers.set("X-Amz-Cf-Pop", POP)
        reply.headers.set("X-Amz-Cf-Id", _cf_id())
        return reply


def select_behaviour(config: dict, path: str) -> dict:
    """The first cache behaviour whose PathPattern matches ``path``, else the default."""
    for behaviour in _items(config.get("CacheBehaviors")):
        if path_pattern_matches(behaviour.get("PathPattern", ""), path):
            return behaviour
    return config.get("DefaultCacheBehavior") or {}


def target_origin(config: dict, behaviour: dict) -> dict | None:
    """The origin a behaviour's requests go to: the one it names, or the primary member of the
    origin group it names (the secondary answers only when the primary fails, which the source's
    bucket never does); None when the name is neither."""
    target = behaviour.get("TargetOriginId")
    for group in _items(config.get("OriginGroups")):
        if group.get("Id") == target:
            members = _items(group.get("Members"))
            target = members[0].get("OriginId") if members else None
            break
    return next((o for o in _items(config.get("Origins")) if o.get("Id") == target), None)


def path_pattern_matches(pattern: str, path: str) -> bool:
    """CloudFront path patterns: ``*`` and ``?`` wildcards, case-sensitive, leading ``/`` optional."""
    regex = "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char)
        for char in pattern.lstrip("/")
    )
    return re.fullmatch(regex, path.lstrip("/"), flags=re.DOTALL) is not None


def apply_headers_policy(
    policy: dict, headers: Headers, request_headers: Any, method: str = "GET"
) -> None:
    """Apply a ResponseHeadersPolicyConfig (boto3 shape) to ``headers``."""
    security = policy.get("SecurityHeadersConfig") or {}
    for key, name, value in _security_headers(security):
        headers.set(name, value, override=bool(security[key].get("Override", True)))
    for item in _items(policy.get("CustomHeadersConfig")):
        override = bool(item.get("Override", True))
        headers.set(item["Header"], str(item.get("Value", "")), override=override)
    cors = policy.get("CorsConfig")
    if cors:
        _apply_cors(cors, headers, request_headers, method)
    for item in _items(policy.get("RemoveHeadersConfig")):
        if item["Header"].lower() not in _UNREMOVABLE:
            headers.remove(item["Header"])


def _security_headers(security: dict) -> list[tuple[str, str, str]]:
    found = []
    hsts = security.get("StrictTransportSecurity")
    if hsts:
        value = f"max-age={int(hsts.get('AccessControlMaxAgeSec', 0))}"
        if hsts.get("IncludeSubdomains"):
            value += "; includeSubDomains"
        if hsts.get("Preload"):
            value += "; preload"
        found.append(("StrictTransportSecurity", "Strict-Transport-Security", value))
    csp = security.get("ContentSecurityPolicy")
    if csp:
        value = csp.get("ContentSecurityPolicy", "")
        found.append(("ContentSecurityPolicy", "Content-Security-Policy", value))
    if security.get("ContentTypeOptions"):
        found.append(("ContentTypeOptions", "X-Content-Type-Options", "nosniff"))
    frame = security.get("FrameOptions")
    if frame:
        found.append(("FrameOptions", "X-Frame-Options", frame.get("FrameOption", "DENY")))
    referrer = security.get("ReferrerPolicy")
    if referrer:
        found.append(("ReferrerPolicy", "Referrer-Policy", referrer.get("ReferrerPolicy", "")))
    xss = security.get("XSSProtection")
    if xss:
        if not xss.get("Protection"):
            value = "0"
        elif xss.get("ModeBlock"):
            value = "1; mode=block"
        elif xss.get("ReportUri"):
            value = f"1; report={xss['ReportUri']}"
        else:
            value = "1"
        found.append(("XSSProtection", "X-XSS-Protection", value))
    return found


def _apply_cors(cors: dict, headers: Headers, request_headers: Any, method: str) -> None:
    origin = request_headers.get("Origin")
    if not origin:
        return
    allowed_origins = _items(cors.get("AccessControlAllowOrigins"))
    if not any(_origin_matches(pattern, origin) for pattern in allowed_origins):
        return
    override = bool(cors.get("OriginOverride", True))
    credentials = bool(cors.get("AccessControlAllowCredentials"))
    allow_origin = "*" if "*" in allowed_origins and not credentials else origin
    headers.set("Access-Control-Allow-Origin", allow_origin, override=override)
    if credentials:
        headers.set("Access-Control-Allow-Credentials", "true", override=override)
    expose = _items(cors.get("AccessControlExposeHeaders"))
    if expose:
        headers.set("Access-Control-Expose-Headers", ", ".join(expose), override=override)
    if method == "OPTIONS" and request_headers.get("Access-Control-Request-Method"):
        methods = _items(cors.get("AccessControlAllowMethods"))
        if "ALL" in methods:
            methods = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
        headers.set("Access-Control-Allow-Methods", ", ".join(methods), override=override)
        allow_headers = _items(cors.get("AccessControlAllowHeaders"))
        if allow_headers:
            headers.set("Access-Control-Allow-Headers", ", ".join(allow_headers), override=override)
        if cors.get("AccessControlMaxAgeSec") is not None:
            max_age = str(cors["AccessControlMaxAgeSec"])
            headers.set("Access-Control-Max-Age", max_age, override=override)


def _origin_matches(pattern: str, origin: str) -> bool:
    if pattern == "*":
        return True
    if "*" in pattern:
        return re.fullmatch(re.escape(pattern).replace(r"\*", "[^/]*"), origin) is not None
    return pattern == origin


class _EdgeServer(ThreadingHTTPServer):
    """One listener; TLS handshakes run in the per-connection thread, not in accept()."""

    daemon_threads = True

    def __init__(self, edge: Edge, scheme: str, context: ssl.SSLContext | None) -> None:
        self.edge = edge
        self.scheme = scheme
        self.context = context
        self._stopping = False
        self._wake_reader, self._waker = socket.socketpair()
        super().__init__(("127.0.0.1", 0), _EdgeHandler)

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Sleep until a connection or shutdown() comes, without polling: a fleet's thousand
        edges, each waking every few tens of milliseconds, would keep a core busy doing nothing."""
        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not self._stopping:
                if any(key.fileobj is self for key, _ in selector.select()) and not self._stopping:
                    self._handle_request_noblock()

    def shutdown(self) -> None:
        """Wake serve_forever to return (the caller joins its thread)."""
        self._stopping = True
        self._waker.send(b"\0")

    def server_close(self) -> None:
        super().server_close()
        self._wake_reader.close()
        self._waker.close()

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = self.socket.accept()
        if self.context is not None:
            connection = self.context.wrap_socket(
                connection, server_side=True, do_handshake_on_connect=False
            )
        return connection, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Failed handshakes and dropped connections are normal here; stay quiet."""


class _EdgeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10
    # Headers and body go out in two writes: no Nagle, or each answer waits 40 ms for an ACK.
    disable_nagle_algorithm = True
    server: _EdgeServer

    def setup(self) -> None:
        self.request.settimeout(self.timeout)
        if self.server.edge.connect_delay_s:
            time.sleep(self.server.edge.connect_delay_s)
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()
        self.server.edge._track(self.request, True)
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.edge._track(self.request, False)

    def __getattr__(self, name: str) -> Any:
        """Route every method (``do_GET``, ``do_FOO``...) to one dispatcher."""
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _dispatch(self) -> None:
        edge = self.server.edge
        # http.server folds a leading "//" of the path into "/"; CloudFront does not.
        words = self.requestline.split()
        target = words[1] if len(words) == 3 else self.path
        edge._record(self.server.scheme, self.command, target, self.headers.get("User-Agent", ""))
        if not self._drain_body():
            reply = edge._edge_error(400, "Bad request.")
        else:
            reply = edge.respond(self.server.scheme, self.command, target, self.headers)
        self.send_response_only(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Date", self.date_time_string())
        if reply.status != 304:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD" and reply.status != 304:
            self.wfile.write(reply.body)

    def _drain_body(self) -> bool:
        """Read and drop a request body so the connection stays usable; False if malformed."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            return True
        length = self.headers.get("Content-Length")
        if length is None:
            return True
        if not length.strip().isdigit():
            self.close_connection = True
            return False
        size = int(length)
        if size > _MAX_REQUEST_BODY:
            self.close_connection = True
            return True
        self.rfile.read(size)
        return True

    def version_string(self) -> str:
        return EDGE_SERVER

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _set_ciphers(context: ssl.SSLContext, ciphers: str, *, low_security: bool) -> None:
    suffix = ":@SECLEVEL=0" if low_security else ""
    try:
        context.set_ciphers(ciphers + suffix)
    except ssl.SSLError:
        context.set_ciphers("DEFAULT" + suffix)


def _request_path(target: str) -> tuple[str | None, str]:
    """The path and query of a request target (origin or absolute form); path None if unusable."""
    if target.startswith("/"):  # origin form: "//host/x" is a path here, not a network location
        path, _, query = target.partition("#")[0].partition("?")
    else:
        try:
            parts = urlsplit(target)
        except ValueError:
            return None, ""
        path, query = parts.path, parts.query
    if not path.startswith("/") or any(ord(char) < 0x21 or ord(char) == 0x7F for char in path):
        return None, ""
    return path, query


def _object_reply(status: int, found: S3Object, server_header: str) -> Reply:
    reply = Reply(status, body=found.body)
    reply.headers.set("Content-Type", found.content_type or "binary/octet-stream")
    if found.etag:
        etag = found.etag if found.etag.startswith(('"', "W/")) else f'"{found.etag}"'
        reply.headers.set("ETag", etag)
    modified = found.last_modified
    if modified.tzinfo is None:
        modified = modified.replace(tzinfo=timezone.utc)
    modified = modified.astimezone(timezone.utc)
    reply.headers.set("Last-Modified", email.utils.format_datetime(modified, usegmt=True))
    if found.cache_control:
        reply.headers.set("Cache-Control", found.cache_control)
    reply.headers.set("Server", server_header)
    return reply


def _lists(query: str) -> bool:
    """Does a query of the bucket root ask S3 for a listing?"""
    names = {name for name, _ in parse_qsl(query, keep_blank_values=True)}
    return bool(names & {"list-type", "prefix", "delimiter", "marker", "max-keys"})


def _not_modified(reply: Reply, request_headers: Any) -> bool:
    wanted = request_headers.get("If-None-Match")
    etag = reply.headers.get("ETag")
    if reply.status != 200 or not wanted or not etag:
        return False
    if wanted.strip() == "*":
        return True
    return _opaque_tag(etag) in {_opaque_tag(tag) for tag in wanted.split(",")}


def _opaque_tag(etag: str) -> str:
    """An entity tag without its weak marker: If-None-Match compares weakly."""
    return etag.strip().removeprefix("W/")


def _accepts_compression(accept_encoding: str) -> bool:
    for token in accept_encoding.lower().split(","):
        coding, _, params = token.strip().partition(";")
        refused = re.fullmatch(r"q=0(\.0*)?", params.replace(" ", "")) is not None
        if coding.strip() in ("gzip", "br") and not refused:
            return True
    return False


def _compressible(content_type: str) -> bool:
    media_type = content_type.split(";")[0].strip().lower()
    return media_type.startswith("text/") or media_type in COMPRESSIBLE_TYPES


def _items(container: dict | None) -> list:
    return list((container or {}).get("Items") or [])


def _cf_id() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(42)).decode()


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
