"""The read-only guard has no side doors: a client made before it was installed, a request sent
past the client, a presigned URL or post, a request signed by hand with botocore, a read-looking
name that writes, a scratch grant on another bucket or used from another thread are all refused,
and nothing reaches the bucket."""

from __future__ import annotations

import datetime as dt
import textwrap
import threading

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.session
import pytest
import requests

from conftest import run_suite
from edgeaudit.aws import guard
from edgeaudit.aws.scratch import ROOT, Scratch
from edgeaudit.demo.builder import SiteSpec
from edgeaudit.rules import tomlwrite

KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="module")
def site(world):
    return world.add(SiteSpec(name="guard"))


def _client(world, service: str = "s3") -> object:
    return boto3.Session(**KEYS).client(service, region_name="us-east-1", endpoint_url=world.endpoint_url)


@pytest.fixture
def guarded(site):
    guard.install()
    guard.allow_scratch_in([site.extra["scratch_bucket"]])
    try:
        yield site
    finally:
        guard.uninstall()


def _exists(world, bucket: str, key: str) -> bool:
    listing = world.builder.client("s3").list_objects_v2(Bucket=bucket, Prefix=key)
    return any(o["Key"] == key for o in listing.get("Contents", []))


def test_a_client_made_before_the_guard_is_refused_a_write(world, site):
    early = _client(world)  # e.g. at conftest import, before the plugin started
    guard.install()
    try:
        with pytest.raises(guard.ReadOnlyViolation, match=f"refused s3:PutObject on {site.bucket}"):
            early.put_object(Bucket=site.bucket, Key="early.html", Body=b"defaced")
        assert early.get_bucket_versioning(Bucket=site.bucket)["Status"] == "Enabled"  # reads still work
    finally:
        guard.uninstall()
    assert not _exists(world, site.bucket, "early.html")


def test_presigned_writes_are_refused_and_presigned_reads_allowed(world, guarded):
    s3 = _client(world)
    with pytest.raises(guard.ReadOnlyViolation, match="refused a presigned URL for s3:PutObject"):
        s3.generate_presigned_url("put_object", Params={"Bucket": guarded.bucket, "Key": "presigned.html"})
    with pytest.raises(guard.ReadOnlyViolation, match="refused a presigned POST"):
        s3.generate_presigned_post(guarded.bucket, "posted.html")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": guarded.bucket, "Key": "index.html"})
    assert requests.get(url, timeout=10).status_code == 200
    assert not _exists(world, guarded.bucket, "presigned.html")


def test_a_request_sent_past_the_client_is_refused(world, guarded):
    s3 = _client(world)
    model = s3.meta.service_model.operation_model("PutObject")
    request_dict = s3._convert_to_request_dict(
        api_params={"Bucket": guarded.bucket, "Key": "bypass.html", "Body": b"defaced"}, operation_model=model,
        endpoint_url=world.endpoint_url, context={"client_region": "us-east-1", "auth_type": "v4"})
    with pytest.raises(guard.ReadOnlyViolation, match="s3:PutObject sent past the client"):
        s3._endpoint.make_request(model, request_dict)
    assert not _exists(world, guarded.bucket, "bypass.html")


def test_a_request_signed_by_hand_with_botocore_is_refused(world, guarded):
    url = f"{world.endpoint_url}/{guarded.bucket}/handsigned.html"
    request = botocore.awsrequest.AWSRequest(method="PUT", url=url, data=b"defaced")
    credentials = boto3.Session(**KEYS).get_credentials()
    with pytest.raises(guard.ReadOnlyViolation, match="signed with S3SigV4Auth by hand"):
        botocore.auth.S3SigV4Auth(credentials, "s3", "us-east-1").add_auth(request)
    with pytest.raises(guard.ReadOnlyViolation, match="s3:PutObject signed outside a client call"):
        _client(world)._request_signer.sign("PutObject", request)
    assert not _exists(world, guarded.bucket, "handsigned.html")


def test_a_read_looking_name_that_writes_is_refused(world, guarded):
    cognito = _client(world, "cognito-identity")
    with guard.local_seeding():
        pool = cognito.create_identity_pool(IdentityPoolName="guard", AllowUnauthenticatedIdentities=True)
    pool_id = pool["IdentityPoolId"]
    with pytest.raises(guard.ReadOnlyViolation, match="refused cognito-identity:GetId"):
        cognito.get_id(IdentityPoolId=pool_id)  # creates an identity
    with guard.local_seeding():  # ListIdentities is no read the suite makes: refused outside seeding too
        assert cognito.list_identities(IdentityPoolId=pool_id, MaxResults=60)["Identities"] == []
    assert guard.is_read("s3", "GetBucketVersioning") and not guard.is_read("cognito-identity", "GetId")
    assert not guard.is_read("cognito-identity", "ListIdentities") and not guard.is_read("sqs", "GetQueueUrl")


def test_a_scratch_grant_is_refused_on_a_bucket_that_is_not_the_scratch_bucket(world, guarded):
    s3 = _client(world)
    with pytest.raises(guard.ReadOnlyViolation, match=f"scratch context on {guarded.bucket}: it is not a configured"):
        with Scratch(s3, guarded.bucket) as scratch:
            s3.put_object(Bucket=guarded.bucket, Key=scratch.key("index.html"), Body=b"restored")
    scratch_bucket = guarded.extra["scratch_bucket"]
    with Scratch(s3, scratch_bucket) as scratch:
        with pytest.raises(guard.ReadOnlyViolation, match=f"on {guarded.bucket}"):
            s3.put_object(Bucket=guarded.bucket, Key=scratch.key("index.html"), Body=b"restored")
    assert not world.builder.client("s3").list_objects_v2(Bucket=guarded.bucket, Prefix=ROOT).get("KeyCount")


def test_a_scratch_grant_refuses_writes_from_another_thread(world, guarded):
    s3, bucket = _client(world), guarded.extra["scratch_bucket"]
    errors: list[BaseException] = []

    def write(key: str) -> None:
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=b"x")
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            errors.append(exc)

    with Scratch(s3, bucket) as scratch:
        other = threading.Thread(target=write, args=(scratch.key("from-another-thread"),))
        other.start()
        other.join()
        write(scratch.key("from-the-drill"))  # the thread that opened the grant may
        assert scratch.remaining() == [scratch.key("from-the-drill")]
    assert len(errors) == 1 and isinstance(errors[0], guard.ReadOnlyViolation), errors


CONFTEST_WRITER = '''
import boto3

EARLY = boto3.client("s3", region_name="us-east-1")  # made at import, before the run starts
try:
    EARLY.put_object(Bucket="{bucket}", Key="at-import.html", Body=b"defaced")
    OUTCOME = "written"
except Exception as exc:
    OUTCOME = type(exc).__name__
open("{outcome}", "w").write(OUTCOME)
'''

DRILL_ON_THE_ORIGIN = '''
import pytest
from edgeaudit.aws.scratch import Scratch


@pytest.mark.control("EA-DR-01", severity="P2")
@pytest.mark.quarterly
@pytest.mark.dr
def test_drill_on_the_origin(aws, target, evidence):
    """A drill that opens its scratch context on the origin bucket.

    Remediation: none; the guard stops it.
    """
    raw = aws.client("s3", target.region).raw
    with Scratch(raw, target.bucket) as scratch:
        raw.put_object(Bucket=target.bucket, Key=scratch.key("index.html"), Body=b"restored")
'''


def _project(tmp_path, site, control: str) -> None:
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "test_drill.py").write_text(textwrap.dedent(control))
    (tmp_path / "pytest.ini").write_text("[pytest]\ntestpaths = suites\nedgeaudit_builtin_controls = false\n")
    (tmp_path / "edgeaudit.toml").write_text(tomlwrite.dumps({"targets": [site.target_entry()]}))


def test_a_write_at_conftest_import_is_refused_and_stops_the_run(tmp_path, site, world):
    _project(tmp_path, site, DRILL_ON_THE_ORIGIN)
    outcome = tmp_path / "outcome.txt"
    (tmp_path / "conftest.py").write_text(CONFTEST_WRITER.format(bucket=site.bucket, outcome=outcome))
    run = run_suite(cwd=tmp_path, env=world.aws_env, report_dir=tmp_path / "reports")
    assert outcome.read_text() == "ReadOnlyViolation", run.output  # the conftest swallowed it
    assert run.returncode == 4, run.output
    assert f"read-only guard: refused s3:PutObject on {site.bucket}" in run.output
    assert not _exists(world, site.bucket, "at-import.html")


def test_a_drill_opening_its_scratch_context_on_the_origin_is_refused(tmp_path, site, world):
    _project(tmp_path, site, DRILL_ON_THE_ORIGIN)
    run = run_suite(cwd=tmp_path, env=world.aws_env, report_dir=tmp_path / "reports")
    assert run.returncode == 1, run.output
    result = run.result("EA-DR-01", "guard")
    assert result["outcome"] == "error"
    assert f"refused a scratch context on {site.bucket}: it is not a configured scratch_bucket" in result["message"]
    assert not world.builder.client("s3").list_objects_v2(Bucket=site.bucket, Prefix=ROOT).get("KeyCount")


def test_a_run_that_collects_no_control_is_not_guarded(tmp_path, site, world):
    """The installed plugin stays out of the way of other test runs in the same environment."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_other.py").write_text("def test_nothing():\n    pass\n")
    outcome = tmp_path / "outcome.txt"
    (tmp_path / "conftest.py").write_text(CONFTEST_WRITER.format(bucket=site.extra["scratch_bucket"], outcome=outcome))
    run = run_suite("tests", cwd=tmp_path, env=world.aws_env, report_dir=tmp_path / "reports")
    assert run.returncode == 0, run.output
    assert outcome.read_text() == "written"
    assert _exists(world, site.extra["scratch_bucket"], "at-import.html")
    with guard.local_seeding():
        world.builder.client("s3").delete_object(Bucket=site.extra["scratch_bucket"], Key="at-import.html")


# --- the request decides, not the operation's name ----------------------------------------------

def _origin_intact(world, bucket: str) -> None:
    body = world.builder.client("s3").get_object(Bucket=bucket, Key="index.html")["Body"].read()
    assert body and b"defaced" not in body


@pytest.mark.parametrize("method", ["PUT", "DELETE", "POST"])
def test_a_presigned_read_with_a_write_method_is_refused(world, guarded, method):
    s3 = _client(world)
    refused = f"refused a presigned URL for {method} .*/{guarded.bucket}/index.html"
    with pytest.raises(guard.ReadOnlyViolation, match=refused):
        s3.generate_presigned_url("get_object", Params={"Bucket": guarded.bucket, "Key": "index.html"},
                                  HttpMethod=method)
    _origin_intact(world, guarded.bucket)


def test_a_write_signed_under_a_reads_name_is_refused(world, guarded):
    s3 = _client(world)
    url = f"{world.endpoint_url}/{guarded.bucket}/index.html"
    request = botocore.awsrequest.AWSRequest(method="PUT", url=url, data=b"defaced")
    with pytest.raises(guard.ReadOnlyViolation, match=f"refused PUT .*/{guarded.bucket}/index.html .as s3:GetObject"):
        s3._request_signer.sign("GetObject", request)
    model = s3.meta.service_model.operation_model("GetObject")
    request_dict = s3._convert_to_request_dict(
        api_params={"Bucket": guarded.bucket, "Key": "index.html"}, operation_model=model,
        endpoint_url=world.endpoint_url, context={"client_region": "us-east-1", "auth_type": "v4"})
    request_dict.update(method="PUT", body=b"defaced")
    with pytest.raises(guard.ReadOnlyViolation, match=f"refused PUT .*/{guarded.bucket}/index.html .as s3:GetObject"):
        s3._endpoint.make_request(model, request_dict)
    _origin_intact(world, guarded.bucket)


def test_a_request_changed_after_the_name_check_is_refused(world, guarded):
    """A handler turns a read into a delete before it is signed, or after (the demo's moto does not
    check signatures, so a changed request would go through): the request that goes out decides."""
    s3 = _client(world)

    def to_delete(request, **_):
        request.method = "DELETE"

    for event in ("before-sign.s3.GetObject", "before-send.s3.GetObject"):
        s3.meta.events.register(event, to_delete)
        try:
            with pytest.raises(guard.ReadOnlyViolation, match=f"refused DELETE .*/{guarded.bucket}/index.html"):
                s3.get_object(Bucket=guarded.bucket, Key="index.html")
        finally:
            s3.meta.events.unregister(event, to_delete)
    _origin_intact(world, guarded.bucket)


def test_a_scratch_grant_refuses_a_client_whose_endpoint_names_another_bucket(world, guarded):
    """Path style: <endpoint>/<origin>/<scratch>/_edgeaudit/... is a key of the origin bucket."""
    scratch_bucket = guarded.extra["scratch_bucket"]
    sneaky = boto3.Session(**KEYS).client("s3", region_name="us-east-1",
                                          endpoint_url=f"{world.endpoint_url}/{guarded.bucket}")
    with Scratch(_client(world), scratch_bucket) as scratch:
        refused = f"refused PUT .*/{guarded.bucket}/{scratch_bucket}/_edgeaudit/"
        with pytest.raises(guard.ReadOnlyViolation, match=refused):
            sneaky.put_object(Bucket=scratch_bucket, Key=scratch.key("index.html"), Body=b"defaced")
    assert not world.builder.client("s3").list_objects_v2(Bucket=guarded.bucket, Prefix=scratch_bucket).get("KeyCount")


def test_a_scratch_grant_refuses_what_its_request_does_beyond_its_keys(world, guarded):
    """Inside the grant, a put whose request gains ?acl or ?tagging, or a delete whose body names
    another key, is refused; the drill's own writes pass."""
    s3, bucket = _client(world), guarded.extra["scratch_bucket"]

    def with_query(query):
        def change(request, **_):
            request.url += ("&" if "?" in request.url else "?") + query
        return change

    def other_keys(request, **_):
        request.data = request.data.replace(b"<Key>_edgeaudit/", b"<Key>kept/_edgeaudit/")

    with guard.local_seeding():
        world.builder.client("s3").put_object(Bucket=bucket, Key="kept/x", Body=b"kept")
    with Scratch(s3, bucket) as scratch:
        s3.put_object(Bucket=bucket, Key=scratch.key("x"), Body=b"restored")
        for query in ("acl", "tagging", "retention", "legal-hold"):
            handler = with_query(query)
            s3.meta.events.register("before-sign.s3.PutObject", handler)
            try:
                with pytest.raises(guard.ReadOnlyViolation, match=rf"refused PUT .*/_edgeaudit/.*\?{query}"):
                    s3.put_object(Bucket=bucket, Key=scratch.key("x"), Body=b"x")
            finally:
                s3.meta.events.unregister("before-sign.s3.PutObject", handler)
        with pytest.raises(guard.ReadOnlyViolation, match="public or undeletable|no grant covers"):
            s3.put_object(Bucket=bucket, Key=scratch.key("y"), Body=b"y", ObjectLockLegalHoldStatus="ON")
        s3.meta.events.register("before-sign.s3.DeleteObjects", other_keys)
        try:
            with pytest.raises(guard.ReadOnlyViolation, match=r"refused POST .*\?delete"):
                s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": scratch.key("x")}]})
        finally:
            s3.meta.events.unregister("before-sign.s3.DeleteObjects", other_keys)
    assert world.builder.client("s3").get_object(Bucket=bucket, Key="kept/x")["Body"].read() == b"kept"
    with guard.local_seeding():
        world.builder.client("s3").delete_object(Bucket=bucket, Key="kept/x")


def test_a_scratch_prefix_is_the_guards_not_the_callers(world, guarded):
    bucket = guarded.extra["scratch_bucket"]
    for prefix in ("not-edgeaudit/", "_edgeaudit/", "_edgeaudit/chosen-by-me/"):
        with pytest.raises(guard.ReadOnlyViolation, match="its prefix is not one the guard issued"):
            with guard.scratch(bucket, prefix):
                pass
    with pytest.raises(guard.ReadOnlyViolation, match="it is not one run's _edgeaudit/<run id>/"):
        with guard.scratch_cleanup(bucket, "not-edgeaudit/"):
            pass
    s3 = _client(world)
    with guard.scratch_cleanup(bucket, "_edgeaudit/20200101T000000Z-0badc0de/"):  # deletes only
        with pytest.raises(guard.ReadOnlyViolation, match="s3:PutObject"):
            s3.put_object(Bucket=bucket, Key="_edgeaudit/20200101T000000Z-0badc0de/x", Body=b"x")
    assert Scratch(s3, bucket).prefix.startswith(ROOT) and guard.scratch_prefix() != guard.scratch_prefix()


def test_a_query_or_json_request_must_name_the_read_it_is_signed_as(world, guarded):
    """POST is the transport of the query and JSON protocols: there the Action= or X-Amz-Target
    must be the read the request is signed as."""
    iam, kms = _client(world, "iam"), _client(world, "kms")
    create = botocore.awsrequest.AWSRequest(
        method="POST", url=f"{world.endpoint_url}/", data={"Action": "CreateUser", "UserName": "intruder"},
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    with pytest.raises(guard.ReadOnlyViolation, match="the request names CreateUser"):
        iam._request_signer.sign("ListUsers", create)
    get_create = botocore.awsrequest.AWSRequest(method="GET", url=f"{world.endpoint_url}/?Action=CreateUser&UserName=x")
    with pytest.raises(guard.ReadOnlyViolation, match="the request names CreateUser"):
        iam._request_signer.sign("ListUsers", get_create)
    schedule = botocore.awsrequest.AWSRequest(
        method="POST", url=f"{world.endpoint_url}/", data=b'{"KeyId": "k"}',
        headers={"X-Amz-Target": "TrentService.ScheduleKeyDeletion", "Content-Type": "application/x-amz-json-1.1"})
    with pytest.raises(guard.ReadOnlyViolation, match="the request names ScheduleKeyDeletion"):
        kms._request_signer.sign("DescribeKey", schedule)
    # the reads themselves pass, whatever their protocol: query (IAM, STS), RPC v2 CBOR (CloudWatch)
    assert isinstance(iam.list_users()["Users"], list)
    assert _client(world, "sts").get_caller_identity()["Account"]
    now = dt.datetime.now(dt.timezone.utc)
    metric = {"Id": "m", "MetricStat": {"Metric": {"Namespace": "AWS/S3", "MetricName": "BucketSizeBytes"},
                                        "Period": 86400, "Stat": "Average"}}
    assert "MetricDataResults" in _client(world, "cloudwatch").get_metric_data(
        MetricDataQueries=[metric], StartTime=now - dt.timedelta(days=1), EndTime=now)
    assert not any(u["UserName"] == "intruder" for u in iam.list_users()["Users"])


def test_a_rest_read_sent_as_post_passes_only_with_its_own_method_and_path(guarded):
    """sso-oidc:CreateToken (an SSO profile's credentials) is a POST of a REST API: it passes with
    its model's method and path, and a POST elsewhere under its name does not."""
    model = botocore.session.get_session().get_service_model("sso-oidc").operation_model("CreateToken")
    call = guard._Call("sso-oidc", "CreateToken", model)
    guard.judge(call, botocore.awsrequest.AWSRequest(method="POST", url="https://oidc.eu-west-1.amazonaws.com/token"))
    for method, path in (("POST", "/client/register"), ("PUT", "/token"), ("DELETE", "/token")):
        request = botocore.awsrequest.AWSRequest(method=method, url=f"https://oidc.eu-west-1.amazonaws.com{path}")
        with pytest.raises(guard.ReadOnlyViolation, match=f"refused {method} oidc.eu-west-1.amazonaws.com{path}"):
            guard.judge(call, request)


def test_a_rest_write_carrying_a_reads_name_in_its_query_or_headers_is_refused(world, guarded):
    """S3 routes by method and path: an Action= or X-Amz-Target naming a read changes nothing."""
    s3, url = _client(world), f"{world.endpoint_url}/{guarded.bucket}/index.html"
    for request in (botocore.awsrequest.AWSRequest(method="PUT", url=f"{url}?Action=GetObject", data=b"defaced"),
                    botocore.awsrequest.AWSRequest(method="PUT", url=url, data=b"defaced",
                                                   headers={"X-Amz-Target": "AmazonS3.GetObject"}),
                    botocore.awsrequest.AWSRequest(method="POST", url=f"{url}?uploads&Action=GetObject")):
        with pytest.raises(guard.ReadOnlyViolation, match=f"refused (PUT|POST) .*/{guarded.bucket}/index.html"):
            s3._request_signer.sign("GetObject", request)
    _origin_intact(world, guarded.bucket)
