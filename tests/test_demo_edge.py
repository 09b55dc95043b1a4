"""The demo environment's CA and local edge, against real servers on loopback with real TLS."""

from __future__ import annotations

import copy
import gzip
import socket
import ssl
import time
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edgeaudit.demo.edge import BotoEdgeSource, Edge, S3Object, path_pattern_matches
from edgeaudit.demo.pki import CertificateAuthority

INDEX = b"<!doctype html><title>demo</title><p>hello</p>"
NOT_FOUND_PAGE = b"<!doctype html><title>not found</title>"
APP_JS = b"console.log('edgeaudit demo');\n" * 100  # well over the 1000-byte compression floor
ORIGIN_DOMAIN = "site.s3.us-east-1.amazonaws.com"

SECURITY_POLICY = {
    "Name": "demo-security",
    "SecurityHeadersConfig": {
        "StrictTransportSecurity": {
            "Override": True,
            "IncludeSubdomains": True,
            "Preload": True,
            "AccessControlMaxAgeSec": 63072000,
        },
        "ContentSecurityPolicy": {"Override": True, "ContentSecurityPolicy": "default-src 'self'"},
        "ContentTypeOptions": {"Override": True},
        "FrameOptions": {"Override": True, "FrameOption": "DENY"},
        "ReferrerPolicy": {"Override": True, "ReferrerPolicy": "strict-origin-when-cross-origin"},
        "XSSProtection": {"Override": True, "Protection": True, "ModeBlock": True},
    },
    "CustomHeadersConfig": {
        "Quantity": 1,
        "Items": [{"Header": "Permissions-Policy", "Value": "camera=()", "Override": True}],
    },
    "RemoveHeadersConfig": {
        "Quantity": 2,
        "Items": [{"Header": "Server"}, {"Header": "X-Powered-By"}],
    },
    "CorsConfig": {
        "AccessControlAllowOrigins": {"Quantity": 1, "Items": ["https://app.example.com"]},
        "AccessControlAllowHeaders": {"Quantity": 1, "Items": ["*"]},
        "AccessControlAllowMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]},
        "AccessControlAllowCredentials": False,
        "AccessControlMaxAgeSec": 600,
        "OriginOverride": True,
    },
}


def methods(*names: str) -> dict:
    return {"Quantity": len(names), "Items": list(names)}


def behaviour(**overrides: object) -> dict:
    found = {
        "TargetOriginId": "s3",
        "ViewerProtocolPolicy": "redirect-to-https",
        "AllowedMethods": methods("GET", "HEAD"),
        "Compress": True,
    }
    found.update(overrides)
    return found


def site_config(**overrides: object) -> dict:
    """A distribution config in the boto3 shape, for a well-configured static site."""
    config = {
        "DefaultRootObject": "index.html",
        "Origins": {"Quantity": 1, "Items": [{"Id": "s3", "DomainName": ORIGIN_DOMAIN}]},
        "DefaultCacheBehavior": behaviour(),
        "CacheBehaviors": {"Quantity": 0},
        "CustomErrorResponses": {"Quantity": 0},
        "ViewerCertificate": {"MinimumProtocolVersion": "TLSv1.2_2021"},
    }
    config.update(overrides)
    return config


def error_page(code: int = 403, page: str = "/404.html", response: str = "404") -> dict:
    return {
        "Quantity": 1,
        "Items": [{"ErrorCode": code, "ResponsePagePath": page, "ResponseCode": response}],
    }


class MemorySource:
    """An EdgeSource held in memory: tests edit ``config``/``objects`` between requests."""

    def __init__(
        self, config: dict | None = None, objects: dict | None = None, policies: dict | None = None
    ) -> None:
        self.config = config if config is not None else site_config()
        modified = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
        self.objects = {
            "index.html": S3Object(INDEX, "text/html", '"index-etag"', modified),
            "404.html": S3Object(NOT_FOUND_PAGE, "text/html", '"404-etag"', modified),
            "assets/app.js": S3Object(APP_JS, "application/javascript", '"app-etag"', modified),
        }
        self.objects.update(objects or {})
        self.policies = policies or {"security": SECURITY_POLICY}

    def distribution_config(self) -> dict:
        return copy.deepcopy(self.config)

    def response_headers_policy(self, policy_id: str) -> dict | None:
        return copy.deepcopy(self.policies.get(policy_id))

    def get_object(self, key: str) -> S3Object | None:
        return self.objects.get(key)


def source_with(default_behaviour: dict | None = None, **config: object) -> MemorySource:
    """A MemorySource for ``site_config(**config)``, its default behaviour changed as given."""
    default = behaviour(**(default_behaviour or {}))
    return MemorySource(site_config(DefaultCacheBehavior=default, **config))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict:
    directory = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority.create()
    cert_file, key_file = ca.issue(["localhost", "127.0.0.1"]).write(directory, "edge")
    return {
        "ca": ca,
        "ca_file": ca.write_ca(directory / "ca.pem"),
        "cert_file": cert_file,
        "key_file": key_file,
        "dir": directory,
    }


@pytest.fixture
def make_edge(pki: dict):
    """Start edges for a test and stop them all after it."""
    started: list[Edge] = []

    def make(source: MemorySource | None = None, *, cert: tuple[Path, Path] | None = None, **options) -> Edge:
        cert_file, key_file = cert or (pki["cert_file"], pki["key_file"])
        edge = Edge(source or MemorySource(), cert_file=cert_file, key_file=key_file, **options)
        edge.start()
        started.append(edge)
        return edge

    yield make
    for edge in started:
        edge.stop()


def call(method: str, edge: Edge, path: str, pki: dict, **kwargs) -> requests.Response:
    """One HTTPS request to the edge, trusting only the demo CA."""
    kwargs.setdefault("timeout", 5)
    return requests.request(method, edge.url + path, verify=str(pki["ca_file"]), **kwargs)


def get(edge: Edge, path: str, pki: dict, **kwargs) -> requests.Response:
    return call("GET", edge, path, pki, **kwargs)


def edge_port(edge: Edge) -> int:
    return int(edge.url.rstrip("/").rsplit(":", 1)[1])


def tls_client(
    ca_file: Path, version: ssl.TLSVersion | None = None, *, legacy: bool = False
) -> ssl.SSLContext:
    """A verifying client that trusts only ``ca_file``, optionally pinned to one TLS version."""
    context = ssl.create_default_context(cafile=str(ca_file))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if version is not None:
            context.minimum_version = version
            context.maximum_version = version
    if legacy:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def handshake(edge: Edge, context: ssl.SSLContext) -> str:
    with socket.create_connection(("127.0.0.1", edge_port(edge)), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.version() or ""


def raw_exchange(edge: Edge, request: bytes, pki: dict) -> bytes:
    """Send bytes over TLS as they are and return what comes back (one response)."""
    with socket.create_connection(("127.0.0.1", edge_port(edge)), timeout=5) as raw:
        with tls_client(pki["ca_file"]).wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(request)
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                answer += chunk
            return answer


# --- serving ---------------------------------------------------------------------------


def test_root_object_is_served_with_cloudfront_headers(make_edge, pki):
    edge = make_edge()
    response = get(edge, "", pki)
    assert response.status_code == 200
    assert response.content == INDEX
    assert response.headers["Content-Type"] == "text/html"
    assert response.headers["ETag"] == '"index-etag"'
    assert response.headers["Last-Modified"] == "Tue, 02 Jan 2024 03:04:05 GMT"
    assert response.headers["Content-Length"] == str(len(INDEX))
    assert response.headers["Server"] == "AmazonS3"
    assert response.headers["Via"].endswith(".cloudfront.net (CloudFront)")
    assert response.headers["X-Amz-Cf-Pop"] == "LOC50-P1"
    assert response.headers["X-Amz-Cf-Id"]


def test_head_has_headers_and_no_body(make_edge, pki):
    edge = make_edge()
    response = call("HEAD", edge, "index.html", pki)
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(INDEX))
    assert response.content == b""


def test_missing_key_without_custom_errors_is_raw_s3_access_denied(make_edge, pki):
    edge = make_edge()
    response = get(edge, "no/such/page.html", pki)
    assert response.status_code == 403
    assert response.headers["Content-Type"] == "application/xml"
    assert response.headers["X-Cache"] == "Error from cloudfront"
    assert response.text.startswith("<?xml")
    assert "<Code>AccessDenied</Code><Message>Access Denied</Message>" in response.text
    assert "<RequestId>" in response.text and "<HostId>" in response.text


def test_root_without_default_root_object_is_access_denied(make_edge, pki):
    edge = make_edge(source_with(DefaultRootObject=""))
    response = get(edge, "", pki)
    assert response.status_code == 403
    assert "<Code>AccessDenied</Code>" in response.text


def test_custom_error_response_serves_the_404_page(make_edge, pki):
    edge = make_edge(source_with(CustomErrorResponses=error_page(403, "/404.html", "404")))
    response = get(edge, "missing.html", pki)
    assert response.status_code == 404
    assert response.content == NOT_FOUND_PAGE
    assert response.headers["Content-Type"] == "text/html"


def test_custom_error_for_404_only_does_not_catch_the_oac_403(make_edge, pki):
    source = source_with(CustomErrorResponses=error_page(404, "/404.html", "404"))
    assert get(make_edge(source), "missing.html", pki).status_code == 403
    bucket_lists = make_edge(source, missing_object_status=404)
    response = get(bucket_lists, "missing.html", pki)
    assert response.status_code == 404
    assert response.content == NOT_FOUND_PAGE


def test_keys_are_url_decoded_and_the_query_ignored(make_edge, pki):
    spaced = S3Object(b"spaced", "text/plain", '"s"', datetime.now(timezone.utc))
    source = MemorySource(objects={"docs/a file.txt": spaced})
    response = get(make_edge(source), "docs/a%20file.txt?v=3", pki)
    assert response.status_code == 200
    assert response.content == b"spaced"


def test_cache_control_from_the_origin_is_passed_through(make_edge, pki):
    cached = S3Object(b"body{}", "text/css", '"c"', datetime.now(timezone.utc), "max-age=31536000")
    edge = make_edge(MemorySource(objects={"assets/site.css": cached}))
    assert get(edge, "assets/site.css", pki).headers["Cache-Control"] == "max-age=31536000"
    assert "Cache-Control" not in get(edge, "index.html", pki).headers


def test_a_disabled_distribution_serves_nothing(make_edge, pki):
    source = secured_source()
    edge = make_edge(source)
    source.config["Enabled"] = False
    response = get(edge, "", pki)
    assert response.status_code == 403
    assert response.headers["Server"] == "CloudFront"
    assert "Strict-Transport-Security" not in response.headers
    assert requests.get(edge.http_url, allow_redirects=False, timeout=5).status_code == 403


def test_a_failing_source_is_a_502_not_a_crash(make_edge, pki):
    class Broken(MemorySource):
        def get_object(self, key: str) -> S3Object | None:
            raise ConnectionError("origin unreachable")

    edge = make_edge(Broken())
    assert get(edge, "index.html", pki).status_code == 502
    assert "origin unreachable" in edge.errors[-1]
    assert get(edge, "index.html", pki).status_code == 502


def test_config_changes_apply_to_the_next_request(make_edge, pki):
    source = MemorySource()
    edge = make_edge(source)
    assert get(edge, "", pki).status_code == 200
    source.config["DefaultRootObject"] = ""
    assert get(edge, "", pki).status_code == 403


# --- viewer protocol and behaviours ----------------------------------------------------


def test_http_redirects_to_the_https_url(make_edge):
    edge = make_edge()
    response = requests.get(edge.http_url + "index.html?x=1", allow_redirects=False, timeout=5)
    assert response.status_code == 301
    assert response.headers["Location"] == f"{edge.url}index.html?x=1"
    assert response.headers["Server"] == "CloudFront"


def test_https_only_refuses_plain_http(make_edge):
    edge = make_edge(source_with({"ViewerProtocolPolicy": "https-only"}))
    response = requests.get(edge.http_url + "index.html", allow_redirects=False, timeout=5)
    assert response.status_code == 403
    assert "The request could not be satisfied" in response.text


def test_allow_all_serves_plain_http(make_edge):
    edge = make_edge(source_with({"ViewerProtocolPolicy": "allow-all"}))
    response = requests.get(edge.http_url, timeout=5)
    assert response.status_code == 200
    assert response.content == INDEX


def test_path_pattern_behaviour_wins_over_the_default(make_edge):
    assets = behaviour(PathPattern="/assets/*", ViewerProtocolPolicy="https-only")
    edge = make_edge(
        source_with({"ViewerProtocolPolicy": "allow-all"}, CacheBehaviors={"Quantity": 1, "Items": [assets]})
    )
    assert requests.get(edge.http_url + "index.html", timeout=5).status_code == 200
    assert requests.get(edge.http_url + "assets/app.js", timeout=5).status_code == 403


FAILOVER_GROUPS = {"Quantity": 1, "Items": [{
    "Id": "failover",
    "FailoverCriteria": {"StatusCodes": {"Quantity": 4, "Items": [500, 502, 503, 504]}},
    "Members": {"Quantity": 2, "Items": [{"OriginId": "s3"}, {"OriginId": "replica"}]},
}]}
TWO_ORIGINS = {"Quantity": 2, "Items": [{"Id": "s3", "DomainName": ORIGIN_DOMAIN},
                                        {"Id": "replica", "DomainName": "replica.s3.eu-central-1.amazonaws.com"}]}


def test_behaviours_targeting_an_origin_group_serve_from_its_primary(make_edge, pki):
    assets = behaviour(PathPattern="/assets/*", TargetOriginId="failover")
    edge = make_edge(source_with({"TargetOriginId": "failover"}, Origins=TWO_ORIGINS, OriginGroups=FAILOVER_GROUPS,
                                 CacheBehaviors={"Quantity": 1, "Items": [assets]}))
    assert get(edge, "", pki).content == INDEX
    assert get(edge, "assets/app.js", pki, headers={"Accept-Encoding": "identity"}).content == APP_JS
    assert get(edge, "missing.html", pki).status_code == 403  # the primary's own answer, not a failover
    assert edge.errors == []


@pytest.mark.parametrize("target", ["nowhere", "empty-group"])
def test_a_behaviour_targeting_nothing_is_a_502(make_edge, pki, target):
    groups = {"Quantity": 1, "Items": [{"Id": "empty-group", "Members": {"Quantity": 0, "Items": []}}]}
    edge = make_edge(source_with({"TargetOriginId": target}, OriginGroups=groups))
    response = get(edge, "", pki)
    assert response.status_code == 502 and "wasn't able to connect to the origin" in response.text


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.js", "/assets/app.js", True),
        ("/assets/*", "/assets/app.js", True),
        ("assets/*", "/assets/app.js", True),
        ("assets/*", "/Assets/app.js", False),
        ("img/?.png", "/img/a.png", True),
        ("img/?.png", "/img/ab.png", False),
        ("api/v1.0/*", "/api/v1x0/x", False),
    ],
)
def test_path_pattern_matching(pattern, path, matches):
    assert path_pattern_matches(pattern, path) is matches


# --- methods ---------------------------------------------------------------------------


def test_methods_outside_the_behaviour_are_refused_by_the_edge(make_edge, pki):
    edge = make_edge()
    for method in ("PUT", "DELETE", "OPTIONS", "TRACE", "FROB"):
        response = call(method, edge, "index.html", pki)
        assert response.status_code == 403, method
        assert response.headers["Server"] == "CloudFront"


def test_allowed_writes_reach_the_origin_which_refuses_them(make_edge, pki):
    all_methods = methods("GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE")
    edge = make_edge(source_with({"AllowedMethods": all_methods}))
    response = call("PUT", edge, "index.html", pki, data=b"overwrite")
    assert response.status_code == 403
    assert "<Code>AccessDenied</Code>" in response.text
    assert response.headers["Server"] == "AmazonS3"
    assert call("OPTIONS", edge, "index.html", pki).status_code == 200


def test_odd_requests_get_an_answer_and_the_edge_keeps_serving(make_edge, pki):
    edge = make_edge()
    # A one-word request line gets the HTTP/0.9-style answer: a body without a status line.
    assert b"400" in raw_exchange(edge, b"GARBAGE\r\n\r\n", pki)
    for target, status in [
        (b"*", b"400"),
        (b"/%zz%00%ff", b"403"),
        (b"https://localhost/index.html", b"200"),
    ]:
        answer = raw_exchange(edge, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n", pki)
        assert answer.startswith(b"HTTP/1.1 " + status), target
    with socket.create_connection(("127.0.0.1", edge_port(edge)), timeout=5) as raw:
        raw.sendall(b"not a tls handshake\r\n\r\n")
    assert get(edge, "", pki).status_code == 200


# --- response headers policy -----------------------------------------------------------


def secured_source(**overrides: object) -> MemorySource:
    return source_with({"ResponseHeadersPolicyId": "security"}, **overrides)


def test_response_headers_policy_adds_security_headers(make_edge, pki):
    response = get(make_edge(secured_source()), "", pki)
    hsts = "max-age=63072000; includeSubDomains; preload"
    assert response.headers["Strict-Transport-Security"] == hsts
    assert response.headers["Content-Security-Policy"] == "default-src 'self'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response.headers["X-XSS-Protection"] == "1; mode=block"
    assert response.headers["Permissions-Policy"] == "camera=()"


def test_response_headers_policy_applies_to_error_pages(make_edge, pki):
    edge = make_edge(secured_source(CustomErrorResponses=error_page()))
    page = get(edge, "missing.html", pki)
    assert page.status_code == 404
    assert page.headers["Strict-Transport-Security"].startswith("max-age=63072000")
    raw_error = get(make_edge(secured_source()), "missing.html", pki)
    assert raw_error.status_code == 403
    assert raw_error.headers["X-Content-Type-Options"] == "nosniff"


def test_remove_headers_drops_origin_headers(make_edge, pki):
    planted = {"X-Powered-By": "PHP/5.4"}
    plain = get(make_edge(MemorySource(), extra_headers=planted), "", pki)
    assert plain.headers["X-Powered-By"] == "PHP/5.4"
    assert plain.headers["Server"] == "AmazonS3"
    cleaned = get(make_edge(secured_source(), extra_headers=planted), "", pki)
    assert "X-Powered-By" not in cleaned.headers
    assert "Server" not in cleaned.headers


def test_override_false_keeps_the_origin_value(make_edge, pki):
    policy = {"SecurityHeadersConfig": {"FrameOptions": {"Override": False, "FrameOption": "DENY"}}}
    source = source_with({"ResponseHeadersPolicyId": "p"})
    source.policies = {"p": policy}
    response = get(make_edge(source, extra_headers={"X-Frame-Options": "SAMEORIGIN"}), "", pki)
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"


def test_cors_headers_only_for_allowed_origins(make_edge, pki):
    edge = make_edge(secured_source())
    allowed = get(edge, "", pki, headers={"Origin": "https://app.example.com"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    other = get(edge, "", pki, headers={"Origin": "https://evil.example.net"})
    assert "Access-Control-Allow-Origin" not in other.headers


# --- compression and cache headers -----------------------------------------------------


def test_gzip_when_compress_and_accept_encoding(make_edge, pki):
    edge = make_edge()
    compressed = get(edge, "assets/app.js", pki, headers={"Accept-Encoding": "br, gzip"}, stream=True)
    assert compressed.headers["Content-Encoding"] == "gzip"
    assert compressed.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(compressed.raw.read()) == APP_JS
    identity = get(edge, "assets/app.js", pki, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in identity.headers
    assert identity.content == APP_JS
    small = get(edge, "index.html", pki, headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in small.headers


def test_no_gzip_when_compress_is_off(make_edge, pki):
    edge = make_edge(source_with({"Compress": False}))
    response = get(edge, "assets/app.js", pki, headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in response.headers


def test_x_cache_miss_then_hit(make_edge, pki):
    edge = make_edge()
    first = get(edge, "index.html", pki)
    second = get(edge, "index.html", pki)
    assert first.headers["X-Cache"] == "Miss from cloudfront"
    assert "Age" not in first.headers
    assert second.headers["X-Cache"] == "Hit from cloudfront"
    assert int(second.headers["Age"]) >= 0


def test_if_none_match_gives_304(make_edge, pki):
    response = get(make_edge(), "index.html", pki, headers={"If-None-Match": '"index-etag"'})
    assert response.status_code == 304
    assert response.content == b""


def test_requests_seen_counts_every_request(make_edge, pki):
    edge = make_edge()
    for _ in range(3):
        get(edge, "index.html", pki)
    requests.get(edge.http_url + "index.html", allow_redirects=False, timeout=5)
    assert edge.requests_seen.count(("https", "GET", "/index.html")) == 3
    assert ("http", "GET", "/index.html") in edge.requests_seen


# --- TLS -------------------------------------------------------------------------------


def test_tls12_2021_edge_refuses_a_tls11_client(make_edge, pki):
    try:
        tls11 = tls_client(pki["ca_file"], ssl.TLSVersion.TLSv1_1, legacy=True)
    except (ValueError, ssl.SSLError) as error:
        pytest.skip(f"local OpenSSL cannot configure a TLS 1.1 client: {error}")
    legacy_edge = make_edge(source_with(ViewerCertificate={"MinimumProtocolVersion": "TLSv1.1_2016"}))
    try:
        assert handshake(legacy_edge, tls11) == "TLSv1.1"
    except ssl.SSLError as error:
        pytest.skip(f"local OpenSSL cannot make a TLS 1.1 handshake: {error}")
    modern_edge = make_edge()
    with pytest.raises(ssl.SSLError):
        handshake(modern_edge, tls11)
    assert handshake(modern_edge, tls_client(pki["ca_file"])) in ("TLSv1.2", "TLSv1.3")


def test_tls13_2025_edge_refuses_tls12(make_edge, pki):
    edge = make_edge(source_with(ViewerCertificate={"MinimumProtocolVersion": "TLSv1.3_2025"}))
    with pytest.raises(ssl.SSLError):
        handshake(edge, tls_client(pki["ca_file"], ssl.TLSVersion.TLSv1_2))
    assert handshake(edge, tls_client(pki["ca_file"])) == "TLSv1.3"


# --- PKI -------------------------------------------------------------------------------


def test_leaf_chains_to_the_ca_and_only_to_it(make_edge, pki):
    edge = make_edge()
    assert handshake(edge, tls_client(pki["ca_file"])) in ("TLSv1.2", "TLSv1.3")
    stranger = CertificateAuthority.create("another CA").write_ca(pki["dir"] / "stranger.pem")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(edge, tls_client(stranger))


def test_leaf_names_and_extensions(pki):
    ca: CertificateAuthority = pki["ca"]
    leaf = ca.issue(["localhost", "127.0.0.1", "www.example.test"]).certificate
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "www.example.test"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "localhost"
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usages
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert aki == ski
    assert ca.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    leaf.verify_directly_issued_by(ca.certificate)


def test_expired_certificate_is_rejected(make_edge, pki):
    ca: CertificateAuthority = pki["ca"]
    long_ago = datetime.now(timezone.utc) - timedelta(days=100)
    expired = ca.issue(["localhost", "127.0.0.1"], not_before=long_ago, days_valid=30)
    assert expired.certificate.not_valid_after_utc < datetime.now(timezone.utc)
    edge = make_edge(cert=expired.write(pki["dir"], "expired"))
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        handshake(edge, tls_client(pki["ca_file"]))
    assert caught.value.verify_code == 10  # X509_V_ERR_CERT_HAS_EXPIRED
    with pytest.raises(requests.exceptions.SSLError, match="certificate has expired"):
        get(edge, "", pki)


def test_weak_variants_are_what_they_say(make_edge, pki):
    ca: CertificateAuthority = pki["ca"]
    rsa_1024 = ca.issue(["localhost"], key="rsa-1024").certificate
    assert isinstance(rsa_1024.public_key(), rsa.RSAPublicKey)
    assert rsa_1024.public_key().key_size == 1024
    sha1 = ca.issue(["localhost", "127.0.0.1"], hash_name="sha1", key="rsa-2048")
    assert sha1.certificate.signature_hash_algorithm.name == "sha1"
    assert sha1.certificate.signature_algorithm_oid == x509.SignatureAlgorithmOID.ECDSA_WITH_SHA1
    p384 = ca.issue(["localhost"], key="ec-p384", hash_name="sha384").certificate
    assert isinstance(p384.public_key().curve, ec.SECP384R1)
    assert p384.signature_hash_algorithm.name == "sha384"
    rsa_ca = CertificateAuthority.create(key="rsa-2048", hash_name="sha1")
    assert rsa_ca.certificate.signature_algorithm_oid == x509.SignatureAlgorithmOID.RSA_WITH_SHA1
    # The edge still serves a SHA-1 certificate; a default verifying client refuses it.
    edge = make_edge(cert=sha1.write(pki["dir"], "sha1"))
    with pytest.raises(ssl.SSLCertVerificationError, match="too weak"):
        handshake(edge, tls_client(pki["ca_file"]))


def test_unknown_key_or_hash_is_a_clear_error(pki):
    with pytest.raises(ValueError, match="unknown key type"):
        pki["ca"].issue(["localhost"], key="dsa-1024")
    with pytest.raises(ValueError, match="unknown hash"):
        pki["ca"].issue(["localhost"], hash_name="md5")


# --- BotoEdgeSource against moto --------------------------------------------------------


def test_boto_edge_source_serves_the_bucket_from_moto(make_edge, pki, monkeypatch):
    from moto.server import ThreadedMotoServer

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # must be ignored
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client_args = {
            "endpoint_url": endpoint,
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        s3 = boto3.client("s3", **client_args)
        cloudfront = boto3.client("cloudfront", **client_args)
        s3.create_bucket(Bucket="demo-site")
        s3.put_object(
            Bucket="demo-site", Key="index.html", Body=INDEX, ContentType="text/html", CacheControl="max-age=300"
        )
        created = cloudfront.create_distribution(
            DistributionConfig={
                "CallerReference": "edge-test",
                "Comment": "",
                "Enabled": True,
                "DefaultRootObject": "index.html",
                "Origins": {
                    "Quantity": 1,
                    "Items": [
                        {
                            "Id": "s3",
                            "DomainName": "demo-site.s3.us-east-1.amazonaws.com",
                            "S3OriginConfig": {"OriginAccessIdentity": ""},
                        }
                    ],
                },
                "DefaultCacheBehavior": {
                    "TargetOriginId": "s3",
                    "ViewerProtocolPolicy": "redirect-to-https",
                },
            }
        )
        source = BotoEdgeSource(
            endpoint_url=endpoint, distribution_id=created["Distribution"]["Id"], bucket="demo-site"
        )
        assert source.response_headers_policy("no-such-policy") is None
        edge = make_edge(source)
        response = get(edge, "", pki)
        assert response.status_code == 200
        assert response.content == INDEX
        assert response.headers["Content-Type"] == "text/html"
        assert response.headers["Cache-Control"] == "max-age=300"
        assert response.headers["ETag"].startswith('"')
        assert get(edge, "missing.html", pki).status_code == 403
        redirect = requests.get(edge.http_url, allow_redirects=False, timeout=5)
        assert redirect.status_code == 301
        assert redirect.headers["Location"] == edge.url
    finally:
        server.stop()


def test_start_and_stop_are_quick(pki):
    began = time.monotonic()
    with Edge(MemorySource(), cert_file=pki["cert_file"], key_file=pki["key_file"]) as edge:
        assert get(edge, "", pki).status_code == 200
    assert time.monotonic() - began < 1.0


# --- switches for the live-site probes ---------------------------------------------------


def test_cors_reflection_echoes_any_origin_with_credentials(make_edge, pki):
    edge = make_edge(cors_reflection=True)
    answer = call("HEAD", edge, "", pki, headers={"Origin": "https://evil.example"})
    assert answer.headers["Access-Control-Allow-Origin"] == "https://evil.example"
    assert answer.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Access-Control-Allow-Origin" not in call("HEAD", make_edge(), "", pki,
                                                     headers={"Origin": "https://evil.example"}).headers


def test_open_redirect_follows_query_and_keeps_a_double_slash_path(make_edge, pki):
    edge = make_edge(open_redirect=True)
    to_next = get(edge, "?next=https://evil.example/", pki, allow_redirects=False)
    assert to_next.status_code == 302 and to_next.headers["Location"] == "https://evil.example/"
    slashed = requests.get(edge.url + "/evil.example", verify=str(pki["ca_file"]), allow_redirects=False, timeout=5)
    assert slashed.status_code == 302 and slashed.headers["Location"] == "//evil.example/"
    encoded = get(edge, "%2F%2Fevil.example", pki, allow_redirects=False)
    assert encoded.headers["Location"] == "//evil.example/"
    assert get(make_edge(), "?next=https://evil.example/", pki, allow_redirects=False).status_code == 200


def test_double_slash_path_is_a_path_not_a_host(make_edge, pki):
    edge = make_edge()
    answer = requests.get(edge.url + "/index.html", verify=str(pki["ca_file"]), timeout=5)
    assert answer.status_code == 403  # the key "/index.html" does not exist; "//" is not folded
    assert ("https", "GET", "//index.html") in edge.requests_seen


def test_bucket_listing_answers_list_queries_of_the_root(make_edge, pki):
    source = MemorySource()
    source.list_keys = lambda: sorted(source.objects)  # type: ignore[attr-defined]
    edge = make_edge(source, bucket_listing=True)
    listing = get(edge, "?list-type=2", pki)
    assert listing.status_code == 200 and listing.headers["Content-Type"] == "application/xml"
    assert b"<ListBucketResult" in listing.content and b"<Key>assets/app.js</Key>" in listing.content
    assert get(edge, "", pki).content == INDEX
    assert b"<ListBucketResult" not in get(make_edge(), "?list-type=2", pki).content


def test_accepts_writes_answers_2xx_and_stores_nothing(make_edge, pki):
    all_methods = methods("GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE")
    source = source_with({"AllowedMethods": all_methods})
    edge = make_edge(source, accepts_writes=True)
    assert call("PUT", edge, "probe.txt", pki, data=b"x").status_code == 200
    assert call("DELETE", edge, "probe.txt", pki).status_code == 204
    assert "probe.txt" not in source.objects
    assert call("TRACE", edge, "", pki).status_code == 403


def test_hold_keeps_serving_the_old_object(make_edge, pki):
    source = MemorySource()
    edge = make_edge(source)
    edge.hold("index.html")
    source.objects["index.html"] = S3Object(b"<p>release 2</p>", "text/html", '"new-etag"',
                                            datetime(2024, 2, 1, tzinfo=timezone.utc))
    assert get(edge, "", pki).content == INDEX
    assert get(make_edge(source), "", pki).content == b"<p>release 2</p>"
    with pytest.raises(KeyError):
        edge.hold("no-such-key")
