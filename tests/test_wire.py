"""Reading an AWS request from its wire form (aws/wire.py): the bucket and key an S3 request
addresses, virtual-hosted or path style, the write it makes, and the operations a query or JSON
request names; every reading the guard cannot be sure of gives nothing a grant could cover."""

from __future__ import annotations

import botocore.awsrequest
import botocore.session
import pytest

from edgeaudit.aws import guard, wire


def _request(method: str, url: str, data: bytes = b"", **headers: str) -> botocore.awsrequest.AWSRequest:
    return botocore.awsrequest.AWSRequest(method=method, url=url, data=data, headers=headers)


@pytest.mark.parametrize("url, readings", [
    ("https://s3.eu-west-1.amazonaws.com/scratch/_edgeaudit/r/x", [("scratch", "_edgeaudit/r/x")]),
    ("http://127.0.0.1:5000/scratch/_edgeaudit/r/x", [("scratch", "_edgeaudit/r/x")]),
    ("https://scratch.s3.eu-west-1.amazonaws.com/_edgeaudit/r/x", [("scratch", "_edgeaudit/r/x")]),
    ("https://my.scratch.s3-accelerate.amazonaws.com/k", [("my.scratch", "k")]),
    ("https://s3-origin.s3.amazonaws.com/scratch/k", [("s3-origin", "scratch/k")]),
    ("https://s3-eu-west-1.amazonaws.com/scratch/k", [("scratch", "k")]),
    ("https://s3-fips.dualstack.us-gov-west-1.amazonaws.com/scratch/k", [("scratch", "k")]),
    ("https://scratch.s3.cn-north-1.amazonaws.com.cn/k", [("scratch", "k")]),
    ("https://b.localhost:5000/k", [("b", "k")]),
    ("https://minio.internal:9000/scratch/k", []),      # a host of no S3 shape: no reading
    ("http://127.0.0.1:5000//scratch/k", [("", "scratch/k")]),
    ("http://127.0.0.1:5000/scratch%2F..%2Forigin/k", [("scratch", "../origin/k")]),
])
def test_the_bucket_and_key_a_request_addresses(url, readings):
    assert wire.addresses(_request("PUT", url)) == readings


def test_a_host_header_other_than_the_urls_addresses_nothing():
    request = _request("PUT", "http://127.0.0.1:5000/scratch/_edgeaudit/r/x", Host="origin.s3.amazonaws.com")
    assert wire.addresses(request) == [] and wire.s3_write(request) is None


@pytest.mark.parametrize("method, query, headers, operation", [
    ("PUT", "", {}, "PutObject"),
    ("PUT", "", {"x-amz-copy-source": "origin/index.html"}, "CopyObject"),
    ("PUT", "?partNumber=1&uploadId=u", {}, "UploadPart"),
    ("POST", "?uploads", {}, "CreateMultipartUpload"),
    ("POST", "?uploadId=u", {}, "CompleteMultipartUpload"),
    ("DELETE", "", {}, "DeleteObject"),
    ("DELETE", "?uploadId=u", {}, "AbortMultipartUpload"),
    ("PUT", "?x-id=PutObject", {}, "PutObject"),
    ("PUT", "?x-id=GetObject", {}, None),
    ("DELETE", "?versionId=v", {}, None),
    *[("PUT", f"?{action}", {}, None) for action in ("acl", "tagging", "policy", "retention", "legal-hold")],
    ("POST", "?restore", {}, None),
    ("POST", "?select&select-type=2", {}, None),
])
def test_the_write_an_s3_request_makes(method, query, headers, operation):
    write = wire.s3_write(_request(method, f"http://127.0.0.1:5000/scratch/_edgeaudit/r/x{query}", **headers))
    assert (write.operation if write else None) == operation


def test_a_delete_of_many_reads_its_keys_from_the_body():
    body = (b'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>_edgeaudit/r/a</Key></Object>'
            b'<Object><Key>index.html</Key></Object><Quiet>true</Quiet></Delete>')
    write = wire.s3_write(_request("POST", "http://127.0.0.1:5000/scratch?delete", body))
    assert write.operation == "DeleteObjects" and write.targets == (("scratch", ("_edgeaudit/r/a", "index.html")),)
    versioned = body.replace(b"<Key>index.html</Key>", b"<Key>index.html</Key><VersionId>v</VersionId>")
    assert wire.s3_write(_request("POST", "http://127.0.0.1:5000/scratch?delete", versioned)) is None
    assert wire.s3_write(_request("POST", "http://127.0.0.1:5000/scratch?delete", b"<not xml")) is None


def test_headers_that_make_an_object_public_or_undeletable_are_marked():
    url = "http://127.0.0.1:5000/scratch/_edgeaudit/r/x"
    for header in ("x-amz-acl", "x-amz-grant-read", "x-amz-object-lock-mode", "x-amz-object-lock-legal-hold"):
        assert wire.s3_write(_request("PUT", url, **{header: "v"})).risky
    assert not wire.s3_write(_request("PUT", url, **{"If-None-Match": "*"})).risky


def test_the_operations_a_request_names_on_the_wire():
    form = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    assert wire.named_operations(_request("POST", "https://sts.amazonaws.com/", b"Action=GetCallerIdentity", **form)) \
        == {"GetCallerIdentity"}
    assert wire.named_operations(_request("GET", "https://iam.amazonaws.com/?Action=CreateUser")) == {"CreateUser"}
    assert wire.named_operations(_request("POST", "https://ce.us-east-1.amazonaws.com/", b"{}",
                                          **{"X-Amz-Target": "AWSInsightsIndexService.GetCostAndUsage"})) \
        == {"GetCostAndUsage"}
    assert wire.named_operations(_request(
        "POST", "https://monitoring.amazonaws.com/service/GraniteServiceVersion20100801/operation/GetMetricData")) \
        == {"GetMetricData"}
    assert wire.named_operations(_request("PUT", "https://s3.amazonaws.com/b/k")) == set()


def test_the_description_of_a_request_leaves_out_query_values():
    request = _request("GET", "https://b.s3.amazonaws.com/k?X-Amz-Signature=secret&X-Amz-Security-Token=token")
    assert wire.describe(request) == "GET b.s3.amazonaws.com/k?X-Amz-Security-Token&X-Amz-Signature"


def test_every_service_of_the_reads_is_known_by_its_signers_id():
    session = botocore.session.get_session()
    for service in guard.READS:
        service_id = session.get_service_model(service).service_id.hyphenize()
        assert guard.SERVICE_NAMES.get(service_id, service_id) == service
