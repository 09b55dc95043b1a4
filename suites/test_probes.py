"""Non-destructive probes (seed: penetration-testing-suite).

Probes send GET, HEAD, OPTIONS and TRACE, and PUT/PATCH/DELETE only to a random key that does not
exist, with a body of a few bytes. Every probe's request and the status it got are in the evidence.
"""

import json
import re
from urllib.parse import urljoin, urlsplit

import pytest
from botocore.exceptions import ClientError

from edgeaudit.errors import AccessDeniedError, NotEvaluated, SiteUnreachable
from edgeaudit.web.site import PROBE_ORIGIN

FOREIGN_HOST = "evil.example"
PROBE_BODY = b"edgeaudit-probe"
SENSITIVE_FILES = {
    "/.git/HEAD": lambda body: re.match(rb"\s*(ref: refs/|[0-9a-f]{40}\s*$)", body) is not None,
    "/.git/config": lambda body: b"[core]" in body,
    "/.env": lambda body: re.search(rb"(?m)^\s*(export\s+)?[A-Z][A-Z0-9_]*\s*=", body) is not None
    and b"<html" not in body[:500].lower(),
    "/.aws/credentials": lambda body: re.search(rb"aws_(access_key_id|secret_access_key)", body, re.I) is not None,
    "/.npmrc": lambda body: re.search(rb"_auth(Token)?\s*=|^registry\s*=", body, re.I | re.M) is not None,
    "/.DS_Store": lambda body: body[4:8] == b"Bud1",
}
LISTING_MARKERS = (b"<ListBucketResult", b"<ListAllMyBucketsResult", b"<ListVersionsResult")
S3_ERROR_MARKERS = ("<Code>", "<RequestId>", "<HostId>")
SOURCE_MAP_REFERENCE = re.compile(rb"//[#@]\s*sourceMappingURL=\s*(\S+)")
WRITE_METHODS = ("PUT", "PATCH", "DELETE")


def _probe(site, method, url, **kwargs):
    """(status, response) of one probe, shared by every control that sends the same request."""
    response = site.fetch(method, url, **kwargs)
    return response.status_code, response


def _title(body):
    found = re.search(rb"<title>(.*?)</title>", body, re.I | re.S)
    return found.group(1).strip() if found else None


@pytest.mark.control("EA-PEN-01", severity="P1", frameworks={"ZAP": "40034", "nuclei": "exposures"})
@pytest.mark.monthly
@pytest.mark.quarterly
@pytest.mark.security
def test_no_sensitive_files(site, target, evidence):
    """No repository metadata, secrets file or editor backup is served.

    Remediation: delete the files listed from the bucket, exclude them from the deployment's
    sync (e.g. aws s3 sync --exclude ".git/*" --exclude ".env"), and rotate any secret they held.
    """
    probes, served = {}, {}
    for path, signature in SENSITIVE_FILES.items():
        status, response = _probe(site, "GET", path)
        probes[path] = status
        if status == 200 and signature(response.content):
            served[path] = "has the file's signature"
    not_found_body = site.get(site.not_found_url).content
    for page in target.paths:
        original = site.get(page)
        name = page + "index.html" if page.endswith("/") else page
        directory, _, file = name.rpartition("/")
        title = _title(original.content)
        for backup in (f"{name}~", f"{name}.bak", f"{directory}/.{file}.swp"):
            status, response = _probe(site, "GET", backup)
            probes[backup] = status
            if status == 200 and response.content != not_found_body and (
                    response.content == original.content or (title and title == _title(response.content))):
                served[backup] = f"a copy of {page}"
    evidence.record("probes", probes)
    evidence.require_none(served, "sensitive files are served: "
                          + ", ".join(f"{path} ({why})" for path, why in served.items()))


@pytest.mark.control("EA-PEN-02", severity="P2", frameworks={"nuclei": "aws-object-listing"})
@pytest.mark.monthly
@pytest.mark.quarterly
@pytest.mark.security
def test_no_bucket_listing_through_the_edge(site, target, evidence):
    """The edge never answers with a listing of the bucket.

    Remediation: keep the default root object set, and remove s3:ListBucket from what the
    distribution's Origin Access Control may do in the bucket policy.
    """
    prefixes = {"/" + path.strip("/").rpartition("/")[0] + "/" for path in target.paths if path.strip("/").count("/")}
    urls = ["/", "/?list-type=2", "/?prefix=", "/?delimiter=%2F", *sorted(p for p in prefixes if p != "//")]
    probes, listings = {}, []
    for url in urls:
        status, response = _probe(site, "GET", url)
        probes[url] = status
        if any(marker in response.content[:4096] for marker in LISTING_MARKERS):
            listings.append(url)
    evidence.record("probes", probes)
    evidence.require_none(listings, "the edge lists the bucket for: " + ", ".join(listings))


def _bucket_urls(aws, target, key):
    """Unsigned GET and LIST URLs of the bucket's own endpoint, as boto3 resolves it for the target
    (AWS_ENDPOINT_URL honoured: path-style there, virtual-hosted on AWS)."""
    client = aws.anonymous("s3", target.region or "us-east-1")
    return {"GET": client.generate_presigned_url("get_object", Params={"Bucket": target.bucket, "Key": key}),
            "LIST": client.generate_presigned_url("list_objects_v2", Params={"Bucket": target.bucket})}


@pytest.mark.control("EA-PEN-03", severity="P2", frameworks={"AWS": "Origin Access Control"},
                     reads=("cloudfront:GetDistributionConfig",))
@pytest.mark.monthly
@pytest.mark.quarterly
@pytest.mark.security
def test_origin_refuses_anonymous_access(aws, site, target, evidence):
    """The bucket's own endpoint refuses anonymous GET and LIST, so CloudFront cannot be bypassed.

    Remediation: turn on Block Public Access for the bucket and remove every bucket policy
    statement and ACL grant that lets everyone read or list; CloudFront reads through OAC.
    """
    config = aws.cloudfront.get_distribution_config(Id=target.distribution_id)["DistributionConfig"]
    key = config.get("DefaultRootObject") or target.paths[0].lstrip("/") or "index.html"
    evidence.resource = f"s3://{target.bucket}"
    probes, open_ = {}, []
    for kind, url in _bucket_urls(aws, target, key).items():
        try:
            response = site.fetch("GET", url)
        except SiteUnreachable as exc:
            raise NotEvaluated(f"the bucket's endpoint {urlsplit(url).netloc} is unreachable: {exc}") from None
        probes[kind] = {"url": url, "status": response.status_code}
        if response.status_code in (301, 307):
            raise NotEvaluated(f"{url} redirects ({response.status_code}): is the target's region "
                               f"{target.region!r} the bucket's region?")
        if response.status_code == 200 and (kind == "GET" or b"<ListBucketResult" in response.content[:4096]):
            open_.append(kind)
    evidence.record("probes", probes)
    evidence.require_none(open_, f"the bucket {target.bucket} answers anonymous " + " and ".join(open_) + " requests")


@pytest.mark.control("EA-PEN-04", severity="P2", frameworks={"OBS": "cross-origin-resource-sharing", "ZAP": "10098"})
@pytest.mark.monthly
@pytest.mark.quarterly
@pytest.mark.security
def test_cors_does_not_reflect_with_credentials(site, target, evidence):
    """A foreign Origin is never echoed back together with Access-Control-Allow-Credentials: true.

    Remediation: in the response headers policy's CORS config, list the allowed origins (never
    reflect the request's) and leave AccessControlAllowCredentials off for public content.
    """
    probes, offenders, reflected = {}, [], []
    for path in target.paths:
        url = site.url(path)
        answers = {"HEAD": site.cross_origin(url),
                   "OPTIONS": site.fetch("OPTIONS", url, headers={"Origin": PROBE_ORIGIN,
                                                                  "Access-Control-Request-Method": "GET"})}
        for method, response in answers.items():
            allow_origin = response.headers.get("Access-Control-Allow-Origin")
            credentials = (response.headers.get("Access-Control-Allow-Credentials") or "").strip().lower()
            probes[f"{method} {url}"] = {"status": response.status_code, "allow_origin": allow_origin,
                                         "allow_credentials": credentials or None}
            if allow_origin == PROBE_ORIGIN and credentials == "true":
                offenders.append(f"{method} {url}")
            elif allow_origin == PROBE_ORIGIN:
                reflected.append(f"{method} {url}")
    evidence.record("origin_sent", PROBE_ORIGIN)
    evidence.record("probes", probes)
    evidence.require_none(offenders, f"{PROBE_ORIGIN} is reflected with credentials allowed on: "
                          + ", ".join(offenders))
    if reflected:
        evidence.warn("a foreign Origin is reflected (without credentials) on: " + ", ".join(reflected))


@pytest.mark.control("EA-PEN-05", severity="P1", frameworks={"ZAP": "90028"})
@pytest.mark.monthly
@pytest.mark.quarterly
@pytest.mark.security
def test_writes_are_refused(site, target, evidence):
    """PUT, PATCH and DELETE of a random key are refused, and TRACE is refused.

    Remediation: allow only GET and HEAD (and OPTIONS) on every cache behaviour, and make sure
    the bucket policy grants no write to anyone but the deploy role.
    """
    key_url = site.not_found_url
    probes, accepted = {}, []
    for method in WRITE_METHODS:  # the DELETE comes last and removes whatever a PUT might have made
        status, _ = _probe(site, method, key_url, data=None if method == "DELETE" else PROBE_BODY)
        probes[f"{method} {key_url}"] = status
        if status < 400:
            accepted.append(f"{method} ({status})")
    status, response = _probe(site, "TRACE", site.url("/"))
    probes[f"TRACE {site.url('/')}"] = status
    if status < 400:
        accepted.append(f"TRACE ({status})")
    evidence.record("probes", probes)
    evidence.require_none(accepted, f"not refused at {urlsplit(key_url).path}: " + ", ".join(accepted))


@pytest.mark.control("EA-PEN-06", severity="P3", frameworks={"ZAP": "10028"})
@pytest.mark.monthly
@pytest.mark.quarterly
@pytest.mark.security
def test_no_open_redirect(site, target, evidence):
    """No request makes the site redirect to a foreign host.

    Remediation: remove or fix the edge function (or S3 redirect rule) that builds Location from
    the request: only relative paths on this host may be redirect targets.
    """
    origin = target.url.rstrip("/")
    foreign = f"https://{FOREIGN_HOST}/"
    urls = [f"{origin}//{FOREIGN_HOST}", f"{origin}/%2F%2F{FOREIGN_HOST}",
            *(f"{origin}/?{name}={foreign}" for name in ("next", "url", "redirect"))]
    probes, offenders = {}, []
    for url in urls:
        status, response = _probe(site, "GET", url)
        location = response.headers.get("Location")
        probes[url] = {"status": status, "location": location}
        if location and (urlsplit(urljoin(url, location)).hostname or "").lower() != target.host.lower():
            offenders.append(url)
    evidence.record("probes", probes)
    evidence.require_none(offenders, "redirects to a foreign host: " + ", ".join(
        f"{url} -> {probes[url]['location']}" for url in offenders))


@pytest.mark.control("EA-PEN-07", severity="P3", frameworks={"ZAP": "90022"})
@pytest.mark.monthly
@pytest.mark.quarterly
@pytest.mark.security
def test_errors_leak_nothing(site, target, evidence):
    """Error answers show no S3 internals: no XML <Code>, RequestId, HostId, nor the bucket's name.

    Remediation: add custom error responses for 403 and 404 that serve the site's own error page,
    so S3's XML errors never reach viewers.
    """
    answers = {f"GET {site.not_found_url}": site.get(site.not_found_url)}
    for method in WRITE_METHODS:
        answers[f"{method} {site.not_found_url}"] = site.fetch(method, site.not_found_url,
                                                               data=None if method == "DELETE" else PROBE_BODY)
    probes, leaks = {}, {}
    for probe, response in answers.items():
        probes[probe] = response.status_code
        if response.status_code < 400:
            continue
        found = [marker for marker in S3_ERROR_MARKERS if marker in response.text]
        if target.bucket in response.text:
            found.append("the bucket name in the body")
        found += [f"the bucket name in {name}" for name, value in response.headers.items() if target.bucket in value]
        if found:
            leaks[probe] = found
    evidence.record("probes", probes)
    evidence.require_none(leaks, "error answers leak S3 internals: " + "; ".join(
        f"{probe} shows {', '.join(found)}" for probe, found in leaks.items()))


@pytest.mark.control("EA-PEN-08", severity="P4")
@pytest.mark.monthly
@pytest.mark.quarterly
@pytest.mark.security
def test_no_source_maps(site, target, crawl, evidence):
    """No source map of the site's scripts is served.

    Remediation: do not deploy *.map files (or build without them), and drop the
    sourceMappingURL comments; upload maps to the error tracker instead. A site that means to
    publish its maps says so with `allow_source_maps = true` in its target.
    """
    if target.allow_source_maps:
        pytest.skip("the target publishes its source maps on purpose (allow_source_maps = true)")
    crawled = crawl()
    scripts = sorted({ref.url for refs in crawled.references.values() for ref in refs
                      if ref.tag == "script" and ref.url in crawled.fetched and crawled.fetched[ref.url].status == 200})
    maps = {}
    for script in scripts:
        response = site.get(script)
        named = [m.decode("utf-8", "replace") for m in SOURCE_MAP_REFERENCE.findall(response.content[-4096:])]
        named += [response.headers[h] for h in ("SourceMap", "X-SourceMap") if h in response.headers]
        for name in named + [script.split("?", 1)[0] + ".map"]:
            if not name.startswith("data:"):
                maps.setdefault(urljoin(script, name), script)
    probes, served = {}, []
    for url in maps:
        status, response = _probe(site, "GET", url)
        probes[url] = status
        if status == 200 and _is_source_map(response.content):
            served.append(url)
    evidence.record("scripts", scripts)
    evidence.record("probes", probes)
    evidence.require_none(served, "source maps are served: " + ", ".join(f"{url} (of {maps[url]})" for url in served))


def _is_source_map(body):
    try:
        document = json.loads(body)
    except ValueError:
        return False
    return isinstance(document, dict) and "mappings" in document and "version" in document


# <bucket>.s3.amazonaws.com, <bucket>.s3.<region>.amazonaws.com, <bucket>.s3-website-<region>.amazonaws.com, ...
_S3_HOST = re.compile(r"^(?P<bucket>.+)\.s3(-website)?([.-][a-z0-9-]+)?\.amazonaws\.com$")
# the alias target of a website-endpoint record: s3-website-<region>.amazonaws.com or s3-website.<region>...
_S3_WEBSITE_ALIAS = re.compile(r"^s3-website[.-]([a-z0-9-]+\.)?amazonaws\.com$")


def _points_at(record):
    """("cloudfront", domain) or ("s3", bucket) for a record that points at CloudFront or S3, else None."""
    name = record["Name"].rstrip(".").lower()
    alias = (record.get("AliasTarget") or {}).get("DNSName", "").rstrip(".").lower()
    values = [alias] if alias else [r["Value"].rstrip(".").lower() for r in record.get("ResourceRecords", [])
                                     if record["Type"] == "CNAME"]
    for value in values:
        if value.endswith(".cloudfront.net"):
            return "cloudfront", value
        if _S3_WEBSITE_ALIAS.match(value):
            return "s3", name  # a website-endpoint alias serves the bucket named like the record
        match = _S3_HOST.match(value)
        if match:
            return "s3", match.group("bucket")
    return None


def _target_zones(aws, target):
    """The public hosted zones of the target's host (longest matching name); where several share
    that name, the ones whose record for the host points at this target's distribution."""
    host = target.host.lower().rstrip(".")
    zones = [z for page in aws.route53.paginate("list_hosted_zones") for z in page["HostedZones"]
             if not z.get("Config", {}).get("PrivateZone")]
    covering = [z for z in zones if host == z["Name"].rstrip(".").lower()
                or host.endswith("." + z["Name"].rstrip(".").lower())]
    if not covering:
        return [], []
    longest = max(len(z["Name"]) for z in covering)
    candidates = [z for z in covering if len(z["Name"]) == longest]
    domain = aws.cloudfront.get_distribution(Id=target.distribution_id)["Distribution"]["DomainName"].lower()
    records = {z["Id"]: [r for page in aws.route53.paginate("list_resource_record_sets", HostedZoneId=z["Id"])
                         for r in page["ResourceRecordSets"]] for z in candidates}
    ours = [z for z in candidates if any(r["Name"].rstrip(".").lower() == host
                                         and _points_at(r) == ("cloudfront", domain) for r in records[z["Id"]])]
    chosen = ours or candidates
    return chosen, [r for z in chosen for r in records[z["Id"]]]


@pytest.mark.control("EA-PEN-09", severity="P2", frameworks={"nuclei": "takeovers"},
                     reads=("cloudfront:GetDistribution", "route53:ListHostedZones", "route53:ListResourceRecordSets",
                            "cloudfront:ListDistributions", "s3:HeadBucket"))
@pytest.mark.monthly
@pytest.mark.quarterly
@pytest.mark.security
def test_no_dangling_dns(aws, target, evidence):
    """No DNS record of the target's zone dangles at a CloudFront distribution or bucket not ours.

    Every Route 53 record that points at CloudFront or S3 must point at a distribution or bucket
    of this account.

    Remediation: delete the records listed (or recreate what they point at): a record left
    pointing at a deleted distribution or bucket lets anyone who creates it serve your domain.
    """
    zones, records = _target_zones(aws, target)
    if not zones:
        raise NotEvaluated(f"no public Route 53 hosted zone of this account covers {target.host}, so its DNS "
                           "records could not be read: if the zone is hosted elsewhere, this control cannot see "
                           "it; check there that no CNAME or alias points at a CloudFront distribution or S3 "
                           "bucket that is not yours")
    distributions = {d["DomainName"].lower() for page in aws.cloudfront.paginate("list_distributions")
                     for d in (page.get("DistributionList", {}).get("Items") or [])}
    checked, dangling = {}, {}
    for record in records:
        pointed = _points_at(record)
        if pointed is None:
            continue
        kind, value = pointed
        name = f"{record['Name']} {record['Type']}"
        checked[name] = f"{kind}: {value}"
        if kind == "cloudfront" and value not in distributions:
            dangling[name] = f"{value} is not a distribution of this account"
        elif kind == "s3":
            problem = _bucket_problem(aws, value)
            if problem:
                dangling[name] = problem
    evidence.resource = "route53:" + ", ".join(z["Id"].rsplit("/", 1)[-1] for z in zones)
    evidence.record("zones", [z["Name"] for z in zones])
    evidence.record("records", checked)
    evidence.require_none(dangling, "DNS records point at resources that are not ours: " + "; ".join(
        f"{name} -> {why}" for name, why in dangling.items()))


def _bucket_problem(aws, bucket):
    """Why a bucket a record points at is not safely ours, or None."""
    try:
        aws.s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=aws.account_id)
    except AccessDeniedError:
        return f"bucket {bucket} exists but is not this account's (or s3:ListBucket is denied on it)"
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket", "NotFound"):
            return f"bucket {bucket} does not exist: anyone can create it"
        if code == "403":
            return f"bucket {bucket} exists but is not this account's (or s3:ListBucket is denied on it)"
        raise
    return None
