"""A fleet built on several threads is the fleet built one site after another: the same
buckets, objects, distributions, certificates and costs per site, and every edge serves its
pages. Both fleets live in the session's moto server, told apart by their names."""

from __future__ import annotations

import datetime as dt
from typing import Any

import requests
from cryptography import x509

from edgeaudit.checks import cost
from edgeaudit.demo.builder import BuiltSite, SiteSpec
from edgeaudit.demo.environment import DemoEnvironment

DATA = tuple((f"data/item-{i:03d}.json", b'{"n": %d}' % i, "application/json") for i in range(40))


def fleet(prefix: str) -> list[SiteSpec]:
    """Six sites that differ where building shares something: a region of their own (a new
    access log bucket), bulk data, a stale replica, a manifest bucket, writers, costs."""
    return [SiteSpec(name=f"{prefix}0", extra_objects=DATA),
            SiteSpec(name=f"{prefix}1", region="us-west-2", replica="stale", daily_cost_usd=1.5),
            SiteSpec(name=f"{prefix}2", region="us-west-2", release_manifest="s3", cost_spike=True),
            SiteSpec(name=f"{prefix}3", web_acl="empty", extra_writer=True, deploy_user_key_age_days=30),
            SiteSpec(name=f"{prefix}4", acm_certificate="imported", cert_days_left=40, extra_objects=DATA[:5]),
            SiteSpec(name=f"{prefix}5", replica="missing", stack="undeclared", daily_cost_usd=0.9)]


def snapshot(world: DemoEnvironment, site: BuiltSite) -> dict[str, Any]:
    """What moto holds for one site, with its name, random suffix and generated ids written as
    placeholders, so that two builds of one spec compare equal."""
    suffix = site.bucket.rsplit("-", 1)[1]
    s3, cloudfront = world.builder.client("s3"), world.builder.client("cloudfront")
    buckets = {}
    for bucket in (b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].endswith(f"-{suffix}")):
        versions = s3.list_object_versions(Bucket=bucket).get("Versions", [])
        current = sorted(v["Key"] for v in versions if v["IsLatest"])
        buckets[bucket] = {"versions": len(versions), "current": current, "types": sorted(
            {(key, s3.head_object(Bucket=bucket, Key=key)["ContentType"]) for key in current[:3] + current[-3:]})}
    config = cloudfront.get_distribution_config(Id=site.distribution_id)["DistributionConfig"]
    behaviours = [config["DefaultCacheBehavior"], *config["CacheBehaviors"].get("Items", [])]
    distribution = {
        "origins": sorted(o["DomainName"] for o in config["Origins"]["Items"]),
        "groups": config.get("OriginGroups", {}).get("Quantity", 0), "enabled": config["Enabled"],
        "root": config["DefaultRootObject"], "comment": config["Comment"], "web_acl": bool(config["WebACLId"]),
        "behaviours": [(b.get("PathPattern"), b["TargetOriginId"], b["ViewerProtocolPolicy"]) for b in behaviours],
        "errors": config["CustomErrorResponses"]["Quantity"],
        "tls": config["ViewerCertificate"]["MinimumProtocolVersion"],
    }
    acm = world.builder.client("acm").describe_certificate(CertificateArn=site.extra["certificate_arn"])["Certificate"]
    edge_cert = x509.load_pem_x509_certificate(site.edge.cert_file.read_bytes())
    days_left = (edge_cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc)).days
    request = cost.daily_costs_request(cost.today(), (site.target_entry()["cost_tag"]["key"], site.extra["cost_tag"]))
    costs = world.builder.client("ce").get_cost_and_usage(**request)["ResultsByTime"]
    held = {"buckets": buckets, "distribution": distribution, "target": {
        k: v for k, v in site.target_entry().items() if k not in ("url", "http_url", "distribution_id", "ca_bundle")},
        "acm": (acm["DomainName"], sorted(acm["SubjectAlternativeNames"]), acm["Type"], acm["Status"]),
        "edge_certificate": (sorted(str(n.value) for n in edge_cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value), days_left),
        "costs": [r["Total"] for r in costs]}
    return placeholders(held, {site.distribution_id: "DIST", f"-{suffix}": "-SUFFIX", site.spec.name: "NAME"})


def placeholders(value: Any, names: dict[str, str]) -> Any:
    """`value` with every occurrence of each key of `names` (in keys and strings) replaced."""
    if isinstance(value, dict):
        return {placeholders(k, names): placeholders(v, names) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [placeholders(v, names) for v in value]
    if isinstance(value, str):
        for name, placeholder in names.items():
            value = value.replace(name, placeholder)
    return value


def test_a_fleet_built_in_parallel_equals_the_fleet_built_serially(world: DemoEnvironment) -> None:
    serial = world.add_sites(fleet("serial"), workers=1)
    parallel = world.add_sites(fleet("parallel"), workers=4)
    assert [s.spec.name for s in parallel] == [f"parallel{i}" for i in range(6)]  # in the order of the specs
    assert world.sites[-12:] == serial + parallel
    held = [snapshot(world, site) for site in serial]
    assert len({repr(h) for h in held}) == len(held)  # the comparison sees what tells the sites apart
    for one, other, before in zip(serial, parallel, held):
        assert snapshot(world, other) == before, one.spec.name
    shared = [b["Name"] for b in world.builder.client("s3").list_buckets()["Buckets"] if "us-west-2" in b["Name"]]
    assert shared == ["access-logs-123456789012-us-west-2"]  # made once, though two threads needed it
    for site in parallel:
        for path, title in (("/", "Example static site"), ("/about.html", "About")):
            page = requests.get(site.edge.url.rstrip("/") + path, verify=str(site.ca_file), timeout=10)
            assert page.status_code == 200 and f"<h1>{title}</h1>" in page.text, (site.spec.name, path)


def test_bulk_data_reads_as_if_put_one_by_one(world: DemoEnvironment) -> None:
    """The fleet's data objects and the replica's copies are written through moto's model at
    once: they read back with their content type and cache policy, in the bucket and the replica."""
    site = world.add_sites([SiteSpec(name="bulk", extra_objects=DATA)], workers=2)[0]
    s3 = world.builder.client("s3", site.spec.region)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=site.bucket)["Contents"]}
    assert {key for key, _, _ in DATA} <= keys
    replica = site.target_entry()["replica_bucket"]
    assert {o["Key"] for o in s3.list_objects_v2(Bucket=replica)["Contents"]} == keys
    for bucket in (site.bucket, replica):
        got = s3.get_object(Bucket=bucket, Key="data/item-007.json")
        assert (got["Body"].read(), got["ContentType"], got["CacheControl"]) == (
            b'{"n": 7}', "application/json", "public, max-age=300")
    page = requests.get(site.edge.url.rstrip("/") + "/data/item-007.json", verify=str(site.ca_file), timeout=10)
    assert page.status_code == 200 and page.json() == {"n": 7}


def test_requested_certificates_share_one_key_and_nothing_else(world: DemoEnvironment) -> None:
    """moto's ACM makes an RSA key per requested certificate, the slowest part of a site's
    build: they share one, each certificate stays its own; keys made elsewhere stay fresh."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from moto.acm.models import CertBundle

    one, two = (CertBundle.generate_cert("localhost", "123456789012", "us-east-1", ["www.example.com"])
                for _ in range(2))
    assert one.key == two.key and one.cert != two.cert
    assert one.describe()["Certificate"]["KeyAlgorithm"] == "RSA_2048"
    fresh = [rsa.generate_private_key(public_exponent=65537, key_size=1024).private_numbers() for _ in range(2)]
    assert fresh[0] != fresh[1]


def test_an_idle_edge_sleeps_until_a_connection_or_stop(world: DemoEnvironment, monkeypatch) -> None:
    """A fleet's edges wait for connections without polling (a thousand edges waking every 50 ms
    kept a core busy); stop() still ends them at once and frees their ports."""
    import selectors
    import socket
    import threading
    import time

    from edgeaudit.demo import edge as edge_module

    waits: list[float | None] = []

    class Counting(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
        def select(self, timeout: float | None = None) -> list:
            if threading.current_thread().name.startswith("edge-idle-"):  # this site's two listeners
                waits.append(timeout)
            return super().select(timeout)

    monkeypatch.setattr(edge_module.selectors, "DefaultSelector", Counting)
    site = world.add_sites([SiteSpec(name="idle")], workers=1)[0]
    time.sleep(0.5)  # ten polls of the old loop
    assert waits == [None, None]  # one wait without a timeout per listener (HTTPS, HTTP)
    page = requests.get(site.edge.url, verify=str(site.ca_file), timeout=10)
    assert page.status_code == 200
    port = int(site.edge.url.rstrip("/").rsplit(":", 1)[1])
    site.edge.stop()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
