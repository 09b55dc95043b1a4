"""Nothing secret in any file a run writes, nor on its terminal: secrets planted in the config,
in evidence (values and keys), in failure text, captured output, JUnit properties, warnings and
AWS answers are looked for in every file written (JSON, HTML, JUnit XML, history.jsonl, the
bundle's members, a merged report) and in the output."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

import pytest
from test_plugin import Project

from edgeaudit.aws import guard
from edgeaudit.demo.builder import SiteSpec
from edgeaudit.aws.clients import AwsRegistry
from edgeaudit.redact import REDACTED, redact, redact_text, redact_url, register_secret
from edgeaudit.rules.config import Target

# every query name the issue lists, in the case a careless caller might use
QUERY_NAMES = ("api_key", "token", "client_secret", "X-Goog-Signature", "x-goog-signature", "access_token",
               "Access-Token", "session", "SESSION", "auth", "signature", "Signature", "sig", "key", "KEY",
               "password", "Authorization", "X-Amz-Signature", "x-amz-credential", "X-Amz-Security-Token")
PLANTED = {name: f"planted{i:02d}secretvalue" for i, name in enumerate(QUERY_NAMES)}
ORIGIN_SECRET = "planted-origin-verify-0451"
EXTERNAL_ID = "planted-external-id-7788"
USERINFO = ("planteduser", "plantedpass99")
# secrets in the shapes names alone missed, and a CrUX key under a neutral variable name
SHAPES = {"header": "plantedauthtoken4411", "matrix": "plantedmatrixtoken55", "nested": "plantednestedtoken66",
          "quoted": "plantedquotedsecret77"}
CRUX_VARIABLE, CRUX_KEY = "PAGESPEED", "plantedcruxkeyvalue8899"
ALL_PLANTED = (*PLANTED.values(), ORIGIN_SECRET, EXTERNAL_ID, *USERINFO, *SHAPES.values(), CRUX_KEY)


def _query(names: tuple[str, ...] = QUERY_NAMES) -> str:
    return "&".join(f"{name}={PLANTED[name]}" for name in names) + "&page=2"


# --- the redaction functions ---------------------------------------------------------------------

@pytest.mark.parametrize("name", QUERY_NAMES)
def test_every_secret_query_name_is_redacted_whatever_its_case(name):
    redacted = redact_url(f"https://x.example/a?page=1&{name}={PLANTED[name]}#top")
    assert redacted == f"https://x.example/a?page=1&{name}={REDACTED}#top"


def test_authorization_in_a_query_string_and_credentials_in_a_url_are_redacted():
    text = ("GET https://planteduser:plantedpass99@x.example/?Authorization=Bearer%20plantedtokenvalue&page=2 "
            "and https://u:p@ss@y.example/?api_key=plantedkey")
    redacted = redact_text(text)
    for secret in ("planteduser", "plantedpass99", "plantedtokenvalue", "ss@y", "plantedkey"):
        assert secret not in redacted
    assert "https://<redacted>@x.example/" in redacted and "page=2" in redacted


def test_urls_that_are_keys_are_redacted():
    evidence = {"https://cdn.example/a?token=plantedtok": 200,
                "https://b.s3.amazonaws.com/k?X-Amz-Date=1&X-Amz-Signature=plantedsig": {"status": 403}}
    assert "planted" not in json.dumps(redact(evidence))
    assert list(redact(evidence)) == [f"https://cdn.example/a?token={REDACTED}",
                                      f"https://b.s3.amazonaws.com/k?X-Amz-Date=1&X-Amz-Signature={REDACTED}"]


def test_origin_custom_header_values_and_external_id_are_redacted():
    answer = {"DistributionConfig": {"Origins": {"Items": [{"Id": "s3", "CustomHeaders": {"Quantity": 1, "Items": [
        {"HeaderName": "X-Origin-Verify", "HeaderValue": ORIGIN_SECRET}]}}]}}}
    config = {"targets": [{"name": "www", "role_arn": "arn:aws:iam::1:role/a", "external_id": EXTERNAL_ID}]}
    redacted = redact([answer, config])
    assert ORIGIN_SECRET not in json.dumps(redacted) and EXTERNAL_ID not in json.dumps(redacted)
    assert redacted[0]["DistributionConfig"]["Origins"]["Items"][0]["CustomHeaders"]["Items"][0] == {
        "HeaderName": "X-Origin-Verify", "HeaderValue": REDACTED}
    assert redacted[1]["targets"][0]["role_arn"] == "arn:aws:iam::1:role/a"  # not a secret
    # a response headers policy's custom headers are what the site sends: they stay
    policy = {"CustomHeadersConfig": {"Items": [{"Header": "Permissions-Policy", "Value": "camera=()"}]}}
    assert redact(policy) == policy


def test_redacting_text_keeps_json_and_html_whole_and_is_idempotent():
    document = json.dumps({"u": 'saw "https://x.example/?page=2&token=plantedtok"'})
    assert json.loads(redact_text(document)) == {"u": f'saw "https://x.example/?page=2&token={REDACTED}"'}
    html = '<a href="https://x.example/?page=2&amp;sig=plantedsig">x</a><script>{"u":"?a=1\\u0026key=plantedk"}</script>'
    assert redact_text(html) == html.replace("plantedsig", REDACTED).replace("plantedk", REDACTED)
    assert redact_text(redact_text(html)) == redact_text(html)
    assert redact(("a", ["https://u:p@x/"])) == ("a", [f"https://{REDACTED}@x/"])  # tuples stay tuples


@pytest.mark.parametrize(("text", "secret"), [
    ("GET https://a.example/x?page=1;token=plantedtok01&b=2", "plantedtok01"),
    ("GET https://a.example/x;jsessionid=plantedsid02;v=1", "plantedsid02"),
    ("https://a.example/login?next=%2Fcb%3Ftoken%3Dplantedtok03%26page%3D2", "plantedtok03"),
    ("https://a.example/login?next=%2Fcb%3fpage%3d2%26access_token%3Dplantedtok04", "plantedtok04"),
    ("https://a.example/login?next=/cb?token=plantedtok05&page=2", "plantedtok05"),
    ("botocore said {'aws_access_key_id': 'AKID', 'aws_secret_access_key': 'plantedsecret06'}", "plantedsecret06"),
    ('{"X-Auth-Token": "plantedtok07", "Accept": "*/*"}', "plantedtok07"),
])
def test_secret_shapes_that_names_alone_missed(text, secret):
    redacted = redact_text(text)
    assert secret not in redacted and REDACTED in redacted
    assert redact_text(redacted) == redacted


def test_evidence_keys_that_name_a_token_are_redacted_and_paging_tokens_kept():
    redacted = redact({"X-Auth-Token": "plantedtok08", "github_token": "plantedtok09", "NextToken": "page-2",
                       "allow_credentials": True})
    assert redacted == {"X-Auth-Token": REDACTED, "github_token": REDACTED, "NextToken": "page-2",
                        "allow_credentials": True}


def test_registered_secrets_are_redacted_by_value_whatever_names_them():
    value = "plantedneutral/value+10"
    assert redact_text(f"psi = {value!r}") == f"psi = {value!r}"  # a name that says nothing
    register_secret(value)
    for shown in (f"psi = {value!r}", f"x?v={quote(value, safe='')}", f"...{value}'}}", f"q={quote_plus(value)}"):
        assert "plantedneutral" not in redact_text(shown), shown
    register_secret("short")  # too short to tell from a word
    assert redact_text("a short answer") == "a short answer"


def test_the_credentials_the_run_signs_with_are_redacted_by_value(tmp_path, monkeypatch):
    credentials = tmp_path / "credentials"
    credentials.write_text("[audit]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = plantedprofilesecret11\n"
                           "aws_session_token = plantedprofiletoken12\n")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    AwsRegistry().session(Target(name="www", url="https://www.example.com/", bucket="b", distribution_id="E1",
                                 profile="audit"))
    text = redact_text("botocore: creds=('AKIDPROFILE', 'plantedprofilesecret11', 'plantedprofiletoken12')")
    assert "plantedprofile" not in text and "AKIDPROFILE" in text


# --- a run: every file it writes, and its output --------------------------------------------------

LEAKY = f'''
import os
import warnings

@pytest.mark.control("EA-OPS-03", severity="P3")
def test_leaky(target, aws, evidence, record_property):
    """A control that meets secrets everywhere."""
    aws.cloudfront.get_distribution_config(Id=target.distribution_id)
    evidence.record("pages", {{"https://cdn.example/a?token={PLANTED["token"]}": 200,
                               "https://b.s3.amazonaws.com/k?X-Amz-Date=1&X-Amz-Signature={PLANTED["X-Amz-Signature"]}": 403}})
    evidence.record("links", ["https://x.example/?{_query()}"])
    evidence.record("https://y.example/?{_query(QUERY_NAMES[:4])}", "a URL as a key")
    record_property("seen", target.url)
    print("fetching", target.url, "and https://z.example/?{_query()}")
    evidence.record("request_headers", {{"X-Auth-Token": "{SHAPES["header"]}", "Accept": "text/html"}})
    print("asked https://a.example/x;jsessionid=1;token={SHAPES["matrix"]}")
    print("login at https://a.example/login?next=%2Fcb%3Ftoken%3D{SHAPES["nested"]}%26page%3D2")
    print("botocore said", {{"aws_access_key_id": "AKID", "aws_secret_access_key": "{SHAPES["quoted"]}"}})
    crux_settings = {{"padding": "p" * 300, "crux": os.environ["{CRUX_VARIABLE}"]}}  # -l shows it, cut in the middle
    print("asking CrUX with", os.environ["{CRUX_VARIABLE}"][::1])
    warnings.warn("slow answer from " + target.url)
    url = target.url
    assert url.startswith("ftp:"), f"not served at {{url}}"
'''


@pytest.fixture(scope="module")
def leaky_site(world):
    """A site whose CloudFront origin sends the bucket a shared secret header."""
    site = world.add(SiteSpec(name="leaky"))
    cloudfront = world.builder.client("cloudfront")
    with guard.local_seeding():
        current = cloudfront.get_distribution_config(Id=site.distribution_id)
        config = current["DistributionConfig"]
        config["Origins"]["Items"][0]["CustomHeaders"] = {
            "Quantity": 1, "Items": [{"HeaderName": "X-Origin-Verify", "HeaderValue": ORIGIN_SECRET}]}
        cloudfront.update_distribution(Id=site.distribution_id, IfMatch=current["ETag"], DistributionConfig=config)
    return site


def _texts(folder: Path) -> dict[str, str]:
    """Every file under `folder`, a zip's members one by one."""
    texts = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    texts[f"{path.name}:{name}"] = archive.read(name).decode("utf-8", "replace")
        else:
            texts[str(path.relative_to(folder))] = path.read_text("utf-8", "replace")
    return texts


def _assert_clean(texts: dict[str, str]) -> None:
    leaks = [(name, secret) for name, text in texts.items() for secret in ALL_PLANTED if secret in text]
    assert not leaks, leaks


@pytest.fixture(scope="module", params=["one process", "xdist"])
def leaky_run(request, tmp_path_factory, world, leaky_site):
    """The run in one process, and under xdist (workers hand reports and AWS answers over)."""
    project = Project(tmp_path_factory.mktemp("leaky"), world, leaky_site)
    project.control("leaky", LEAKY)
    parts = urlsplit(leaky_site.edge.url)
    url = urlunsplit((parts.scheme, f"{':'.join(USERINFO)}@{parts.netloc}", parts.path or "/",
                      f"api_key={PLANTED['api_key']}", ""))
    entry = {**leaky_site.target_entry(), "url": url, "role_arn": "arn:aws:iam::123456789012:role/edgeaudit-audit",
             "external_id": EXTERNAL_ID, "crux_api_key_env": CRUX_VARIABLE}
    project.config(targets=[entry])
    run = project.run("--bundle", "-l", "-rA", "--tb=long", *(["-n", "2"] if request.param == "xdist" else []),
                      env={CRUX_VARIABLE: CRUX_KEY})
    return project, run


def test_a_run_writes_no_planted_secret_anywhere(leaky_run):
    project, run = leaky_run
    result = run.result("EA-OPS-03", "leaky")
    assert result["outcome"] == "failed" and "not served at https://<redacted>@" in result["message"], run.output
    texts = _texts(project.root / "reports")
    kinds = {Path(name.split(":")[-1]).suffix or name for name in texts}
    assert {".json", ".html", ".xml", ".jsonl"} <= kinds, sorted(texts)
    assert any(name.endswith(":aws-responses.json") for name in texts), sorted(texts)
    _assert_clean(texts)
    # the secrets did reach each writer: what is left is the redaction marker
    xml = next(text for name, text in texts.items() if name.endswith(".xml"))
    assert "not served at https://&lt;redacted&gt;@" in xml and "fetching" in xml
    responses = next(text for name, text in texts.items() if name.endswith(":aws-responses.json"))
    assert '"HeaderName": "X-Origin-Verify"' in responses and '"HeaderValue": "<redacted>"' in responses
    config = json.loads(next(text for name, text in texts.items() if name.endswith(":config.json")))
    assert config["targets"][0]["external_id"] == REDACTED


def test_the_terminal_shows_no_planted_secret(leaky_run):
    _, run = leaky_run
    assert "not served at https://<redacted>@" in run.output  # the failure is shown, redacted
    assert "slow answer from https://<redacted>@" in run.output  # and the warning
    assert "fetching" in run.output  # and the captured output (-rA)
    _assert_clean({"output": run.output})


def test_a_merged_report_writes_no_planted_secret(leaky_run, tmp_path):
    """`edgeaudit merge` writes through the same redaction, even for a shard that carries secrets."""
    project, run = leaky_run
    shard = run.report
    shard["results"][0]["message"] = f"seen at https://{':'.join(USERINFO)}@x.example/?api_key={PLANTED['api_key']}"
    shard["results"][0]["evidence"][f"https://x.example/?token={PLANTED['token']}"] = 200
    shard["results"][0]["evidence"]["external_id"] = EXTERNAL_ID
    path = tmp_path / "shard.json"
    path.write_text(json.dumps(shard))
    done = subprocess.run([sys.executable, "-m", "edgeaudit.cli", "merge", str(path), "--output", str(tmp_path / "m")],
                          capture_output=True, text=True, timeout=120)
    texts = _texts(tmp_path / "m")
    assert {Path(name).suffix for name in texts} == {".json", ".html", ".csv"}, (done.stdout, done.stderr)
    _assert_clean({**texts, "stdout": done.stdout, "stderr": done.stderr})


def test_a_collection_error_is_redacted_in_junit_and_on_the_terminal(tmp_path, world, leaky_site):
    project = Project(tmp_path, world, leaky_site)
    project.control("broken", f'''
    raise RuntimeError("cannot reach https://{':'.join(USERINFO)}@x.example/?key={PLANTED['key']}")
    ''')
    project.config()
    run = project.run()
    assert run.returncode != 0 and "cannot reach https://<redacted>@x.example/" in run.output, run.output
    texts = {**_texts(project.root / "reports"), "output": run.output}
    assert any(name.endswith(".xml") and "cannot reach" in text for name, text in texts.items()), sorted(texts)
    _assert_clean(texts)


# --- the GitHub token -----------------------------------------------------------------------------

GITHUB_TOKEN = "plantedgithubtoken0417"  # in a variable whose name says nothing of a secret


def test_the_github_token_reaches_no_file_and_no_terminal(tmp_path, world, leaky_site):
    """A GitHub that echoes the token in a run's link and in a refusal: the reports, the bundle and
    the terminal show the redaction marker instead."""
    from edgeaudit.demo.github import GitHubServer, Repository
    from edgeaudit.rules import tomlwrite
    from conftest import run_suite

    repo = Repository.demo()
    failed = repo.deploy(dt.datetime.now(dt.timezone.utc), conclusion="failure")
    failed["html_url"] += f"?seen={GITHUB_TOKEN}"
    repo.protection_status = 403
    server = GitHubServer(repo)
    server.token = GITHUB_TOKEN
    try:
        config = tmp_path / "edgeaudit.toml"
        config.write_text(tomlwrite.dumps({"targets": [leaky_site.target_entry()],
                                           "github": {**server.source(), "token_env": "GH_DEPLOY_READ"}}))
        run = run_suite("suites/test_records.py", "--edgeaudit-config", str(config), "--bundle", "-rA", "--tb=long",
                        env={**world.aws_env, "GH_DEPLOY_READ": GITHUB_TOKEN}, report_dir=tmp_path / "reports")
    finally:
        server.stop()
    assert run.result("EA-DEP-05", "leaky")["outcome"] == "failed", run.output
    assert f"seen={REDACTED}" in run.result("EA-DEP-05", "leaky")["message"]
    texts = {**_texts(tmp_path / "reports"), "output": run.output}
    assert any(".zip:" in name for name in texts) and any(name.endswith(".json") for name in texts), sorted(texts)
    assert [name for name, text in texts.items() if GITHUB_TOKEN in text] == []
