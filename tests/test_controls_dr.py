"""The disaster-recovery drills and the operational-procedure controls, proven both ways: one run
of suites/test_dr.py and suites/test_ops.py over a fleet (a compliant site plus one site per
break), then small runs for what is run-wide (the cadence ledger, the RTO threshold, the
auditor's permissions). Every drill leaves its scratch bucket empty.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable

import pytest
import requests

from conftest import Run, assert_passes, run_suite
from edgeaudit.aws import guard
from edgeaudit.demo import motoext
from edgeaudit.demo.builder import VIEWER_FUNCTION, SiteSpec
from edgeaudit.demo.history import past_runs
from edgeaudit.rules.schedule import last_due
from edgeaudit.rules import tomlwrite

MODULES = ("suites/test_dr.py", "suites/test_ops.py")
CONTROLS = {"EA-DR-01": "P2", "EA-DR-02": "P2", "EA-DR-03": "P2", "EA-DR-04": "P2", "EA-DR-05": "P3",
            "EA-DR-06": "P3", "EA-DR-07": "P3",
            "EA-OPS-01": "P2", "EA-OPS-02": "P3", "EA-OPS-03": "P4"}
NO_SCRATCH = "no scratch_bucket"
SCRATCH_MISSING = "does not exist, so the DR drill cannot run. Fix: create scratch-missing-drills-"
NOT_APPLICABLE = {"EA-OPS-04": "skipped"}  # the fleet's sites declare no lockfile; see the npm runs below
# target -> (switches, {control: outcome}, {control: text the message or evidence names}); the rest pass
FLEET = {
    "ok": ({}, {}, {}),
    "replica-missing": ({"replica": "missing"}, {"EA-DR-02": "failed"}, {"EA-DR-02": "about.html"}),
    "replica-stale": ({"replica": "stale"}, {"EA-DR-02": "failed", "EA-DR-03": "failed"},
                      {"EA-DR-02": "1 different", "EA-DR-03": "about.html has waited 12"}),
    "rollback-gap": ({"rollback_gap": ("index.html",)},
                     {"EA-DR-01": "failed", "EA-DR-04": "failed", "EA-DR-05": "failed"},
                     {"EA-DR-01": "index.html: it changed (the index page is in every release",
                      "EA-DR-04": "index.html: the index page has no version in the previous release",
                      "EA-DR-05": "1 did not restore, so the time of the rest is no recovery time: index.html: "}),
    "manifest-ok": ({"release_manifest": "file"}, {}, {}),
    "manifest-gap": ({"release_manifest": "s3", "rollback_gap": ("index.html", "about.html")},
                     {"EA-DR-01": "failed", "EA-DR-04": "failed", "EA-DR-05": "failed"},
                     {"EA-DR-01": "index.html: it changed (release release-2 of the release manifest names version",
                      "EA-DR-04": "2 of 7 cannot: about.html: version ",
                      "EA-DR-05": "2 did not restore, so the time of the rest is no recovery time: about.html: "}),
    "manifest-stale": ({"release_manifest": "stale"},
                       {"EA-DR-01": "error", "EA-DR-04": "error", "EA-DR-05": "error"},
                       {c: "release release-2 names other versions of 404.html, about.html, assets/app.8c2e4d.js"
                        for c in ("EA-DR-01", "EA-DR-04", "EA-DR-05")}),
    "late-write": ({"later_writes": ("sitemap.xml",)}, {}, {}),
    "late-write-gap": ({"later_writes": ("sitemap.xml",), "rollback_gap": ("index.html",)},
                       {"EA-DR-01": "failed", "EA-DR-04": "failed", "EA-DR-05": "failed"},
                       {"EA-DR-04": "index.html: the index page has no version in the previous release",
                        "EA-DR-05": "index.html: the index page has no version in the previous release"}),
    "no-scratch": ({"scratch_bucket": False},
                   {"EA-DR-01": "failed", "EA-DR-04": "failed", "EA-DR-05": "failed"},
                   {"EA-DR-01": NO_SCRATCH, "EA-DR-04": NO_SCRATCH, "EA-DR-05": NO_SCRATCH}),
    "scratch-missing": ({"scratch_bucket": "missing"},
                        {"EA-DR-01": "failed", "EA-DR-04": "failed", "EA-DR-05": "failed"},
                        {c: SCRATCH_MISSING for c in ("EA-DR-01", "EA-DR-04", "EA-DR-05")}),
    "no-replica": ({"replica": "none"}, {"EA-DR-02": "failed", "EA-DR-03": "failed", "EA-DR-07": "failed"},
                   {c: "sets no replica_bucket and does not declare it absent" for c in ("EA-DR-02", "EA-DR-03",
                                                                                        "EA-DR-07")}),
    "no-failover": ({"origin_group": False}, {"EA-DR-07": "failed"}, {"EA-DR-07": "found 0 group(s)"}),
    "failover-unused": ({"origin_group_break": "unused"}, {"EA-DR-07": "failed"},
                        {"EA-DR-07": "(failover-to-replica used by no behaviour): behaviour default targets "
                                     "s3-origin directly, bypassing the origin group(s); behaviour /assets/* "
                                     "targets s3-origin directly"}),
    "failover-codes": ({"origin_group_break": "codes"}, {"EA-DR-07": "failed"},
                       {"EA-DR-07": "behaviour /assets/* targets group failover-to-replica, where it fails over "
                                    "on [500, 502], not on [503, 504]"}),
    "failover-members": ({"origin_group_break": "members"}, {"EA-DR-07": "failed"},
                         {"EA-DR-07": "behaviour default targets group failover-to-replica, where its secondary "
                                      "is not the replica bucket failover-members-replica-"}),
    "unversioned": ({"versioning": False},
                    {"EA-DR-01": "failed", "EA-DR-02": "failed", "EA-DR-03": "failed", "EA-DR-04": "failed",
                     "EA-DR-05": "failed", "EA-DR-07": "failed"},
                    {"EA-DR-01": "versioning off", "EA-DR-04": "keeps no earlier version",
                     "EA-DR-05": "keeps no earlier version"}),
    "expired-waiver": ({}, {"EA-OPS-03": "failed"}, {"EA-OPS-03": "EA-HDR-06 (approved by"}),
    "stack-drifted": ({}, {"EA-DR-06": "failed"}, {"EA-DR-06": "/DistributionConfig/PriceClass"}),
    "stack-undeclared": ({"stack": "undeclared"}, {"EA-DR-06": "failed"},
                         {"EA-DR-06": "it holds no distribution "}),
    "baseline-ok": ({"stack": False}, {}, {}),
    "baseline-drifted": ({"stack": False}, {"EA-DR-06": "failed"},
                         {"EA-DR-06": "distribution.PriceClass: \"PriceClass_100\" -> \"PriceClass_All\""}),
    "no-baseline": ({"stack": False}, {"EA-DR-06": "failed"}, {"EA-DR-06": "edgeaudit snapshot"}),
    "baseline-lifecycle-off": ({"stack": False}, {"EA-DR-06": "failed"},
                               {"EA-DR-06": 'bucket.lifecycle[0].Status: "Enabled" -> "Disabled"'}),
    "baseline-replication-off": ({"stack": False}, {"EA-DR-06": "failed", "EA-DR-02": "failed"},
                                 {"EA-DR-06": 'bucket.replication.Rules[0].Status: "Enabled" -> "Disabled"',
                                  "EA-DR-02": "none enabled"}),
    "baseline-headers-changed": ({"stack": False}, {"EA-DR-06": "failed"},
                                 {"EA-DR-06": '.FrameOptions.FrameOption: "DENY" -> "SAMEORIGIN"'}),
    "baseline-function-changed": ({"stack": False, "viewer_function": True}, {"EA-DR-06": "failed"},
                                  {"EA-DR-06": "drifted: functions.baseline-function-changed-"}),
    # a stack holds the bucket and the distribution; what it does not hold is compared with the baseline
    "stack-function-ok": ({"viewer_function": True}, {}, {}),
    "stack-headers-changed": ({}, {"EA-DR-06": "failed"},
                              {"EA-DR-06": "1 drifted while the stack is IN_SYNC: policies.response_headers."}),
    "stack-function-changed": ({"viewer_function": True}, {"EA-DR-06": "failed"},
                               {"EA-DR-06": "1 drifted while the stack is IN_SYNC: functions.stack-function-changed-"}),
    "stack-no-baseline": ({}, {"EA-DR-06": "failed"},
                          {"EA-DR-06": "does not hold (bucket.policy, certificate, functions, policies.cache, "}),
}
NO_BASELINE = ("no-baseline", "stack-no-baseline")
STACK_DRIFT = [{"LogicalResourceId": "Distribution", "ResourceType": "AWS::CloudFront::Distribution",
                "PropertyDifferences": [{"PropertyPath": "/DistributionConfig/PriceClass",
                                         "ExpectedValue": "PriceClass_100", "ActualValue": "PriceClass_All"}]}]
EXPIRED_WAIVER = {"control": "EA-HDR-06", "target": "expired-waiver", "reason": "header rollout pending",
                  "approved_by": "A. Approver", "expires": dt.date.today() - dt.timedelta(days=3)}


def _history_line(started: dt.datetime, cadences: list[str], target: str = "ok") -> str:
    return json.dumps({"started": started.strftime("%Y-%m-%dT%H:%M:%SZ"), "complete": True, "demo": False,
                       "cadences": cadences, "selection": "all", "targets": [target]})


def _kept(now: dt.datetime, target: str = "ok", drop=lambda line: False) -> list[str]:
    """A site's history that kept every cadence on schedule (as the demo's CI does), but `drop`."""
    return [json.dumps({**line, "demo": False}) for line in past_runs(now, [target]) if not drop(line)]


def _run(world, workdir: Path, sites: list, *args: str, history: list[str] = (), env: dict | None = None,
         before: Callable[[Path], None] | None = None, **config_extra) -> Run:
    reports = workdir / "reports"
    reports.mkdir(parents=True)
    if history:
        (reports / "history.jsonl").write_text("\n".join(history) + "\n")
    config = workdir / "edgeaudit.toml"
    config.write_text(tomlwrite.dumps({**config_extra, "targets": [s.target_entry() for s in sites]}))
    if before:
        before(config)
    return run_suite(*args, "--edgeaudit-config", str(config), env={**world.aws_env, **(env or {})},
                     report_dir=reports)


def _scratch_keys(world, site) -> list[str]:
    bucket = site.extra.get("scratch_bucket")
    if not bucket or site.spec.scratch_bucket == "missing":
        return []
    listing = world.builder.client("s3", site.spec.region).list_objects_v2(Bucket=bucket, Prefix="_edgeaudit/")
    return [o["Key"] for o in listing.get("Contents", [])]


@pytest.fixture(scope="module")
def fleet_sites(world) -> dict:
    return {name: world.add(SiteSpec(name=name).but(**switches)) for name, (switches, _, _) in FLEET.items()}


def snapshot(world, config: Path, *args: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in {**os.environ, **world.aws_env}.items() if v is not None}
    return subprocess.run([sys.executable, "-m", "edgeaudit.cli", "snapshot", "--config", str(config), *args],
                          env=environ, capture_output=True, text=True, timeout=120)


def _disable_lifecycle_rule(world, site) -> None:
    s3 = world.builder.client("s3", site.spec.region)
    rules = s3.get_bucket_lifecycle_configuration(Bucket=site.bucket)["Rules"]
    with guard.local_seeding():
        s3.put_bucket_lifecycle_configuration(Bucket=site.bucket, LifecycleConfiguration={
            "Rules": [{**rule, "Status": "Disabled"} for rule in rules]})


def _disable_replication_rule(world, site) -> None:
    s3 = world.builder.client("s3", site.spec.region)
    config = s3.get_bucket_replication(Bucket=site.bucket)["ReplicationConfiguration"]
    config["Rules"] = [{**rule, "Status": "Disabled"} for rule in config["Rules"]]
    with guard.local_seeding():
        s3.put_bucket_replication(Bucket=site.bucket, ReplicationConfiguration=config)


def _loosen_frame_options(world, site) -> None:
    """The response headers policy's content changes; the distribution's configuration does not."""
    cloudfront = world.builder.client("cloudfront")
    distribution = cloudfront.get_distribution_config(Id=site.distribution_id)["DistributionConfig"]
    policy_id = distribution["DefaultCacheBehavior"]["ResponseHeadersPolicyId"]
    current = cloudfront.get_response_headers_policy_config(Id=policy_id)
    config = current["ResponseHeadersPolicyConfig"]
    config["SecurityHeadersConfig"]["FrameOptions"]["FrameOption"] = "SAMEORIGIN"
    with guard.local_seeding():
        cloudfront.update_response_headers_policy(Id=policy_id, IfMatch=current["ETag"],
                                                  ResponseHeadersPolicyConfig=config)


def _change_function_code(world, site) -> None:
    """The viewer function's code changes; the distribution's configuration does not."""
    config = world.builder.client("cloudfront").get_distribution_config(Id=site.distribution_id)["DistributionConfig"]
    [association] = config["DefaultCacheBehavior"]["FunctionAssociations"]["Items"]
    with guard.local_seeding():
        world.builder.viewer_function(association["FunctionARN"].rsplit("/", 1)[1],
                                      code=b"function handler(event) { return event.request; }")


def _change_price_class(world, distribution_id: str) -> None:
    cloudfront = world.builder.client("cloudfront")
    current = cloudfront.get_distribution_config(Id=distribution_id)
    config = {**current["DistributionConfig"], "PriceClass": "PriceClass_All"}
    with guard.local_seeding():
        cloudfront.update_distribution(Id=distribution_id, IfMatch=current["ETag"], DistributionConfig=config)


@pytest.fixture(scope="module")
def fleet(world, fleet_sites, tmp_path_factory) -> Run:
    now = dt.datetime.now(dt.timezone.utc)
    drifted = fleet_sites["stack-drifted"]
    motoext.set_stack_drift(drifted.extra["stack_name"], STACK_DRIFT, region=drifted.spec.region)

    def baselines_then_drift(config: Path) -> None:
        snapshotted = [name for name in FLEET if name not in NO_BASELINE]
        done = snapshot(world, config, *(arg for name in snapshotted for arg in ("--target", name)))
        assert done.returncode == 0, done.stderr
        _change_price_class(world, fleet_sites["baseline-drifted"].distribution_id)
        _disable_lifecycle_rule(world, fleet_sites["baseline-lifecycle-off"])
        _disable_replication_rule(world, fleet_sites["baseline-replication-off"])
        _loosen_frame_options(world, fleet_sites["baseline-headers-changed"])
        _loosen_frame_options(world, fleet_sites["stack-headers-changed"])
        _change_function_code(world, fleet_sites["baseline-function-changed"])
        _change_function_code(world, fleet_sites["stack-function-changed"])

    return _run(world, tmp_path_factory.mktemp("dr-fleet"), list(fleet_sites.values()), *MODULES,
                history=[json.dumps({**line, "demo": False}) for line in past_runs(now, list(FLEET))],
                waivers=[EXPIRED_WAIVER], before=baselines_then_drift)


def test_fleet_run_is_complete(fleet):
    assert fleet.report["complete"] is True, fleet.output
    pairs = {(r["control"], r["target"]) for r in fleet.report["results"]}
    assert pairs >= {(c, t) for c in CONTROLS for t in FLEET}


@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_compliant_site_passes(fleet, control):
    result = fleet.result(control, "ok")
    assert_passes(result, CONTROLS[control])


def test_dependency_review_needs_a_lockfile(fleet):
    result = fleet.result("EA-OPS-04", "ok")
    assert result["outcome"] == "skipped", result
    assert result["message"].startswith("declared absent in the config: lockfile ("), result


@pytest.mark.parametrize("target", [name for name in FLEET if name != "ok"])
def test_broken_site_fails_exactly_its_controls(fleet, target):
    _, expected, named = FLEET[target]
    outcomes = fleet.outcomes(target)
    assert {c: o for c, o in outcomes.items() if o != "passed"} == {**NOT_APPLICABLE, **expected}, fleet.output
    for control, text in named.items():
        result = fleet.result(control, target)
        assert result["severity"] == CONTROLS[control]
        assert text in result["message"] + json.dumps(result["evidence"]), result


def test_every_drill_leaves_its_scratch_bucket_empty(fleet, world, fleet_sites):
    assert fleet.report["complete"] is True
    assert {name: _scratch_keys(world, site) for name, site in fleet_sites.items()} == {n: [] for n in FLEET}


def test_restoration_evidence_names_sample_seed_and_throughput(fleet):
    restore = fleet.result("EA-DR-01", "ok")["evidence"]
    assert restore["sampled"][0] == "index.html" and len(restore["sampled"]) == 5
    assert isinstance(restore["sample_seed"], int) and restore["bytes"] > 0 and restore["seconds"] > 0
    assert all(v.startswith(("previous ", "current ")) for v in restore["restored"].values())
    rto = fleet.result("EA-DR-05", "ok")
    assert rto["margins"]["rto_minutes"]["limit"] == 60
    rpo = fleet.result("EA-DR-03", "replica-stale")
    assert rpo["margins"]["rpo_minutes"]["margin"] < 0


def test_behaviours_fail_over_through_the_group_and_the_edge_serves_the_primary(fleet, fleet_sites):
    """The compliant site's behaviours all target the origin group, and its edge serves the origin
    bucket's objects through it."""
    evidence = fleet.result("EA-DR-07", "ok")["evidence"]
    assert evidence["behaviours"] == {"default": "failover-to-replica", "/assets/*": "failover-to-replica"}
    assert evidence["origin_groups"]["failover-to-replica"]["used_by"] == ["default", "/assets/*"]
    site = fleet_sites["ok"]
    served = requests.get(site.edge.url + "about.html", verify=str(site.ca_file), timeout=10)
    assert served.status_code == 200 and b"A small static site." in served.content
    assert site.edge.errors == []


def test_snapshot_writes_a_sorted_baseline_without_volatile_fields(fleet, fleet_sites, tmp_path_factory):
    baselines = sorted(Path(fleet.report_dir).parent.glob("baselines/*.json"))
    assert [p.name for p in baselines] == sorted(f"{name}.json" for name in FLEET if name not in NO_BASELINE)
    document = json.loads((Path(fleet.report_dir).parent / "baselines" / "baseline-ok.json").read_text())
    assert list(document) == ["bucket", "certificate", "distribution", "policies", "web_acl"]
    assert set(document["bucket"]) == {"encryption", "lifecycle", "logging", "ownership", "policy",
                                       "public_access_block", "replication", "versioning"}
    text = json.dumps(document)
    assert '"CallerReference"' not in text and '"ETag"' not in text and '"NotAfter"' not in text
    assert document["bucket"]["policy"]["Statement"], "the policy is kept as JSON, not as text"
    assert document["bucket"]["lifecycle"][0]["Status"] == "Enabled"
    assert document["bucket"]["replication"]["Rules"][0]["Status"] == "Enabled"
    with_function = json.loads((Path(fleet.report_dir).parent / "baselines" / "stack-function-ok.json").read_text())
    [(name, function)] = with_function["functions"].items()  # its code by content hash
    assert name.startswith("stack-function-ok-")
    assert function == {"code_sha256": hashlib.sha256(VIEWER_FUNCTION).hexdigest()}
    assert document["bucket"]["versioning"] == {"Status": "Enabled"}
    assert document["bucket"]["logging"]["TargetPrefix"].startswith("s3/")
    policies = document["policies"]
    [headers] = policies["response_headers"].values()
    assert headers["SecurityHeadersConfig"]["FrameOptions"]["FrameOption"] == "DENY"
    assert list(policies["cache"]) == ["658327ea-f89d-4fab-a63d-7e88639e58f6"]
    [oac] = policies["origin_access_controls"].values()
    assert oac["SigningBehavior"] == "always"
    distribution = document["distribution"]
    assert distribution["ViewerCertificate"]["ACMCertificateArn"] == document["certificate"]["CertificateArn"]
    assert document["certificate"]["DomainName"] == "localhost"
    assert distribution["WebACLId"] == document["web_acl"]["ARN"] and document["web_acl"]["Rules"]
    assert "Aliases" in distribution and "Logging" in distribution


def test_only_volatile_fields_are_left_out_of_the_comparison():
    """A rule's Status is configuration; ETags and timestamps are not."""
    from edgeaudit.checks import drift

    baseline = drift.normalise({"Rules": [{"ID": "a", "Status": "Enabled"}], "ETag": "1", "LastModifiedTime": "x"})
    live = drift.normalise({"Rules": [{"ID": "a", "Status": "Disabled"}], "ETag": "2", "LastModifiedTime": "y"})
    assert drift.differences(baseline, live) == ['Rules[0].Status: "Enabled" -> "Disabled"']
    assert "Status" not in drift.VOLATILE


def test_snapshot_of_an_unknown_config_is_a_usage_error(world, tmp_path):
    done = snapshot(world, tmp_path / "missing.toml")
    assert done.returncode == 2 and "no config file" in done.stderr


def test_rollback_evidence_names_the_releases(fleet):
    evidence = fleet.result("EA-DR-04", "ok")["evidence"]
    assert evidence["previous_release"]["objects"] >= 7
    assert evidence["restored"]["objects"] == evidence["previous_release"]["objects"]
    live_until = dt.datetime.fromisoformat(evidence["latest_deployment"]["started"])
    newest = dt.datetime.fromisoformat(evidence["previous_release"]["newest_write"])
    assert dt.timedelta(hours=23) < live_until - newest < dt.timedelta(hours=25)  # the releases are a day apart


def test_a_write_after_the_deployment_is_no_release(fleet):
    """A sitemap regenerated an hour after the deployment: the previous release is still the one
    of a day before, and the evidence says how the deployment was found."""
    evidence = fleet.result("EA-DR-04", "late-write")["evidence"]
    found_by = evidence["latest_deployment"]["found_by"]
    assert found_by.startswith("the burst of writes that published the live index page index.html"), found_by
    assert found_by.endswith("1 later write(s) in 1 burst(s) count as no release: sitemap.xml"), found_by
    live_until = dt.datetime.fromisoformat(evidence["latest_deployment"]["started"])
    newest = dt.datetime.fromisoformat(evidence["previous_release"]["newest_write"])
    assert dt.timedelta(hours=22) < live_until - newest < dt.timedelta(hours=24)
    assert fleet.result("EA-DR-04", "ok")["evidence"]["latest_deployment"]["found_by"] == (
        "the burst of writes that published the live index page index.html (every release rewrites it)")
    manifest = fleet.result("EA-DR-04", "manifest-ok")["evidence"]["latest_deployment"]["found_by"]
    assert manifest.startswith("release manifest ") and ": release release-3 is live" in manifest


def test_missing_scratch_bucket_is_named_with_the_fix(fleet, fleet_sites):
    """A scratch bucket that is configured but does not exist: the drills fail naming it, not
    with S3's bare NoSuchBucket."""
    bucket = fleet_sites["scratch-missing"].extra["scratch_bucket"]
    for control in ("EA-DR-01", "EA-DR-04", "EA-DR-05"):
        message = fleet.result(control, "scratch-missing")["message"]
        assert f"the scratch bucket {bucket} does not exist" in message and f"Fix: create {bucket}" in message
        assert "NoSuchBucket" not in message


def test_rollback_lists_every_object_the_manifest_says_is_lost(fleet):
    evidence = fleet.result("EA-DR-04", "manifest-gap")["evidence"]
    assert evidence["previous_release"]["source"].startswith("release manifest s3://manifest-gap-releases-")
    assert evidence["previous_release"]["source"].endswith(", release release-2")
    assert sorted(evidence["offenders"]) == ["about.html", "index.html"]
    assert all("is no longer in the bucket" in why for why in evidence["offenders"].values())
    assert evidence["restored"]["objects"] == 5
    history_only = fleet.result("EA-DR-04", "ok")["evidence"]["previous_release"]["source"]
    assert history_only.startswith("version history: the versions live before ")


def test_manifest_names_the_previous_release_that_restores(fleet):
    evidence = fleet.result("EA-DR-04", "manifest-ok")["evidence"]
    assert evidence["previous_release"]["source"].endswith(", release release-2")
    assert evidence["restored"]["objects"] == evidence["previous_release"]["objects"] == 7
    assert fleet.result("EA-DR-01", "manifest-ok")["evidence"]["restored"]["index.html"].startswith("previous ")


def test_recovery_time_of_a_small_release_is_a_measured_full_restore(fleet):
    result = fleet.result("EA-DR-05", "ok")
    evidence = result["evidence"]
    assert evidence["method"] == "full" and evidence["how"].startswith("measured: the whole previous release (")
    assert "at most dr_full_restore_max_mb = 256 MiB" in evidence["how"]
    assert evidence["restored"]["objects"] == evidence["previous_release"]["objects"]
    assert evidence["restored"]["bytes"] == evidence["previous_release"]["bytes"] > 0
    assert evidence["scratch_left_after_drill"] == []
    assert result["margins"]["rto_minutes"]["limit"] == 60


# --- run-wide: the cadence ledger and the RTO threshold -------------------------------------------

@pytest.fixture(scope="module")
def overdue(world, fleet_sites, tmp_path_factory) -> Run:
    """The quarterly drill last ran 100 days ago; the restore objective is a few milliseconds and
    every release counts as too large to restore whole."""
    now = dt.datetime.now(dt.timezone.utc)
    history = [_history_line(now - dt.timedelta(days=100), ["daily", "weekly", "monthly", "quarterly", "dr"]),
               *_kept(now, drop=lambda line: line["selection"] in ("quarterly", "dr"))]
    return _run(world, tmp_path_factory.mktemp("dr-overdue"), [fleet_sites["ok"]], *MODULES,
                "-k", "cadence or recovery_time", history=history,
                thresholds={"rto_min": 0.00001, "dr_full_restore_max_mb": 0})


def test_overdue_quarterly_run_fails_cadence_evidence(overdue):
    result = overdue.result("EA-OPS-02", "ok")
    assert result["outcome"] == "failed" and result["severity"] == "P3", result
    # 100 days ago is in neither of the last two quarters' first weeks: both are missed, by name
    assert "quarterly (last ran 100 d ago; no complete run of ok in 2 windows (" in result["message"]
    assert "of the 2 windows since " in result["message"]
    assert "(the first week of the quarter), grace 12 h)" in result["message"]
    assert "dr (last ran 100 d ago" in result["message"] and "daily" not in result["message"]
    assert result["evidence"]["ledger"]["daily"]["status"] == "within"
    quarterly = result["evidence"]["ledger"]["quarterly"]
    assert quarterly["required"].endswith("(the first week of the quarter)") and len(quarterly["missed"]) == 2
    assert all(w in result["message"] for w in quarterly["missed"])


def test_restore_slower_than_rto_fails(overdue):
    result = overdue.result("EA-DR-05", "ok")
    assert result["outcome"] == "failed" and result["severity"] == "P3", result
    assert result["margins"]["rto_minutes"]["margin"] < 0
    assert "(estimate: the previous release (" in result["message"]


def test_release_above_the_limit_is_estimated_from_a_size_stratified_sample(overdue):
    evidence = overdue.result("EA-DR-05", "ok")["evidence"]
    assert evidence["method"] == "stratified sample" and evidence["how"].startswith("estimate: ")
    assert "exceeds dr_full_restore_max_mb = 0 MiB" in evidence["how"]
    strata = evidence["strata"]
    assert len(strata) == 5 and sum(s["objects"] for s in strata) == evidence["previous_release"]["objects"]
    assert [s["largest"] for s in strata] == sorted(s["largest"] for s in strata)
    assert all(s["smallest"] <= s["sampled_bytes"] <= s["largest"] for s in strata)
    assert isinstance(evidence["sample_seed"], int) and evidence["scratch_left_after_drill"] == []
    assert evidence["restored"]["objects"] == 5


def test_no_history_leaves_cadence_evidence_not_evaluated(world, fleet_sites, tmp_path):
    """Not a skip that hides it forever: an error that says how to keep the history."""
    run = _run(world, tmp_path, [fleet_sites["ok"]], "suites/test_ops.py", "-k", "cadence")
    result = run.result("EA-OPS-02", "ok")
    assert result["outcome"] == "error" and result["severity"] == "P3", result
    assert "no earlier run in " in result["message"] and "history.jsonl" in result["message"]
    assert "Keep reports/history.jsonl between CI runs" in result["message"]


def test_demo_runs_in_the_folder_are_no_history_of_a_site(world, fleet_sites, tmp_path):
    """The demo's scheduled runs share the folder's history file but never vouch for a site."""
    now = dt.datetime.now(dt.timezone.utc)
    demo = json.loads(_history_line(now - dt.timedelta(hours=1), ["daily", "weekly", "monthly", "quarterly", "dr"]))
    run = _run(world, tmp_path, [fleet_sites["ok"]], "suites/test_ops.py", "-k", "cadence",
               history=[json.dumps({**demo, "demo": True})])
    assert run.result("EA-OPS-02", "ok")["outcome"] == "error"


def test_a_cadence_that_never_ran_fails_and_the_grace_is_a_threshold(world, fleet_sites, tmp_path):
    now = dt.datetime.now(dt.timezone.utc)
    history = [_history_line(now - dt.timedelta(days=9), ["daily", "weekly", "monthly", "quarterly"])]
    run = _run(world, tmp_path / "a", [fleet_sites["ok"]], "suites/test_ops.py", "-k", "cadence",
               history=history)
    result = run.result("EA-OPS-02", "ok")
    assert result["outcome"] == "failed" and "dr (never ran;" in result["message"], result
    assert "daily (last ran 9 d ago" in result["message"] and "weekly (last ran 9 d ago" in result["message"]
    # the newest daily window missed: overdue at 12 h of grace, not yet judged with enough grace
    newest = last_due("daily", now, dt.timedelta(hours=12))[0].isoformat()
    late = _kept(now, drop=lambda line: line["started"].startswith(newest))
    strict = _run(world, tmp_path / "b", [fleet_sites["ok"]], "suites/test_ops.py", "-k", "cadence", history=late)
    assert strict.result("EA-OPS-02", "ok")["evidence"]["ledger"]["daily"]["missed"] == [newest]
    grace = int((now - dt.datetime.fromisoformat(newest).replace(tzinfo=dt.timezone.utc)).total_seconds() // 3600)
    lenient = _run(world, tmp_path / "c", [fleet_sites["ok"]], "suites/test_ops.py", "-k", "cadence",
                   history=late, thresholds={"cadence_grace_h": grace})
    assert "daily" not in lenient.result("EA-OPS-02", "ok")["message"]
    assert lenient.result("EA-OPS-02", "ok")["evidence"]["grace_h"] == grace


def test_waiver_of_a_passing_control_matches_nothing(world, fleet_sites, tmp_path):
    """A waiver whose control passed in the last report covers nothing and should go."""
    waiver = {"control": "EA-DR-02", "reason": "replica rebuild", "approved_by": "A. Approver",
              "expires": dt.date.today() + dt.timedelta(days=60)}
    first = _run(world, tmp_path / "a", [fleet_sites["ok"]], "suites/test_dr.py", "-k", "test_replication")
    assert first.result("EA-DR-02", "ok")["outcome"] == "passed"
    reports = tmp_path / "a" / "reports"
    config = tmp_path / "a" / "edgeaudit.toml"
    config.write_text(tomlwrite.dumps({"waivers": [waiver], "targets": [fleet_sites["ok"].target_entry()]}))
    second = run_suite("suites/test_ops.py", "-k", "waiver", "--edgeaudit-config", str(config),
                       env=world.aws_env, report_dir=reports)
    result = second.result("EA-OPS-03", "ok")
    assert result["outcome"] == "failed" and "matches nothing" in result["message"], result


def test_waiver_health_reads_the_history_where_the_config_keeps_it(world, fleet_sites, tmp_path):
    """[report] history elsewhere than the report folder: EA-OPS-03 finds the passing run there."""
    waiver = {"control": "EA-DR-02", "reason": "replica rebuild", "approved_by": "A. Approver",
              "expires": dt.date.today() + dt.timedelta(days=60)}
    report = {"history": str(tmp_path / "shared" / "history.jsonl")}
    first = _run(world, tmp_path / "a", [fleet_sites["ok"]], "suites/test_dr.py", "-k", "test_replication",
                 report=report)
    assert first.result("EA-DR-02", "ok")["outcome"] == "passed"
    assert not (tmp_path / "a" / "reports" / "history.jsonl").exists()
    config = tmp_path / "a" / "edgeaudit.toml"
    config.write_text(tomlwrite.dumps({"report": report, "waivers": [waiver],
                                       "targets": [fleet_sites["ok"].target_entry()]}))
    second = run_suite("suites/test_ops.py", "-k", "waiver", "--edgeaudit-config", str(config),
                       env=world.aws_env, report_dir=tmp_path / "a" / "reports")
    result = second.result("EA-OPS-03", "ok")
    assert result["outcome"] == "failed" and result["severity"] == "P4", result
    assert "EA-DR-02 (approved by A. Approver" in result["message"] and "matches nothing" in result["message"]


# --- what counts as a run ------------------------------------------------------------------------

def _lines(run: Run) -> list[dict]:
    return [json.loads(line) for line in (run.report_dir / "history.jsonl").read_text().splitlines()]


def test_a_missed_business_day_fails_though_later_runs_kept_the_schedule(world, fleet_sites, tmp_path):
    now = dt.datetime.now(dt.timezone.utc)
    missed = next(d for d in (now.date() - dt.timedelta(days=n) for n in range(10, 20)) if d.weekday() < 5)
    history = _kept(now, drop=lambda line: line["started"].startswith(missed.isoformat()))
    run = _run(world, tmp_path, [fleet_sites["ok"]], "suites/test_ops.py", "-k", "cadence", history=history)
    result = run.result("EA-OPS-02", "ok")
    assert result["outcome"] == "failed" and result["severity"] == "P3", result
    assert f"daily (last ran " in result["message"] and f"1 window ({missed.isoformat()})" in result["message"]
    assert result["evidence"]["ledger"]["daily"]["missed"] == [missed.isoformat()]
    kept = _run(world, tmp_path / "kept", [fleet_sites["ok"]], "suites/test_ops.py", "-k", "cadence",
                history=_kept(now))
    assert kept.result("EA-OPS-02", "ok")["outcome"] == "passed"
    assert kept.result("EA-OPS-02", "ok")["evidence"]["history"]["ignored"] == []


def test_runs_of_another_target_do_not_count_for_this_one(world, fleet_sites, tmp_path):
    now = dt.datetime.now(dt.timezone.utc)
    run = _run(world, tmp_path, [fleet_sites["ok"]], "suites/test_ops.py", "-k", "cadence",
               history=_kept(now, target="www"))
    result = run.result("EA-OPS-02", "ok")
    assert result["outcome"] == "failed" and "daily (never ran; no complete run of ok in " in result["message"]


def test_one_control_carrying_every_cadence_marker_is_no_run_of_any_cadence(world, fleet_sites, tmp_path):
    """-k narrows what -m selected: the line records what the run really covered."""
    run = _run(world, tmp_path, [fleet_sites["ok"]], "suites/test_ops.py",
               "-m", "daily or weekly or monthly or quarterly or dr", "-k", "waiver_health")
    assert run.result("EA-OPS-03", "ok")["outcome"] == "passed"
    [line] = _lines(run)
    assert line["cadences"] == [] and line["coverage"] == {} and line["targets"] == []


def test_a_run_whose_controls_all_ended_error_is_no_complete_run(world, fleet_sites, tmp_path):
    run = _run(world, tmp_path, [fleet_sites["ok"]], "suites/test_ops.py", "-k", "cadence")
    assert run.result("EA-OPS-02", "ok")["outcome"] == "error"
    [line] = _lines(run)
    assert line["complete"] is False and line["cadences"] == [] and line["coverage"] == {}
    assert "NOT EVALUATED" in run.html and "NOT COMPLIANT" not in run.html


def test_a_forged_history_line_dated_2099_keeps_no_cadence_within(world, fleet_sites, tmp_path):
    forged = _history_line(dt.datetime(2099, 1, 1, tzinfo=dt.timezone.utc),
                           ["daily", "weekly", "monthly", "quarterly", "dr"])
    run = _run(world, tmp_path, [fleet_sites["ok"]], "suites/test_ops.py", "-k", "cadence", history=[forged])
    result = run.result("EA-OPS-02", "ok")
    assert result["outcome"] == "error" and "no earlier run in " in result["message"], result
    [ignored] = result["evidence"]["history"]["ignored"]
    assert "2099-01-01T00:00:00Z" in ignored and "dated in the future" in ignored
    assert str(tmp_path / "reports" / "history.jsonl") in ignored


def _signing_key(path: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    path.chmod(0o600)
    return path


def test_with_a_signing_key_only_signed_history_lines_count(world, fleet_sites, tmp_path):
    from edgeaudit.reporting.history_lines import sign, signer

    key = _signing_key(tmp_path / "signing.pem")
    now = dt.datetime.now(dt.timezone.utc)
    unsigned = _kept(now)
    run = _run(world, tmp_path / "a", [fleet_sites["ok"]], "suites/test_ops.py", "-k", "cadence",
               "--sign-key", str(key), history=unsigned)
    result = run.result("EA-OPS-02", "ok")
    assert result["outcome"] == "error" and "no earlier run in " in result["message"], result
    assert len(result["evidence"]["history"]["ignored"]) == len(unsigned)
    assert "is not signed by the run's signing key (sha256:" in result["evidence"]["history"]["ignored"][0]
    own = _lines(run)[-1]
    assert own["seal"]["algorithm"] == "Ed25519"  # the run signs its own line
    signed = [json.dumps(sign(json.loads(line), signer(key))) for line in unsigned]
    verified = _run(world, tmp_path / "b", [fleet_sites["ok"]], "suites/test_ops.py", "-k", "cadence",
                    "--sign-key", str(key), history=signed)
    result = verified.result("EA-OPS-02", "ok")
    assert result["outcome"] == "passed", result
    assert len(result["evidence"]["history"]["verified"]) == len(signed)
    assert result["evidence"]["history"]["signing_key"].startswith("sha256:")


def test_a_malformed_history_never_prevents_the_report(world, fleet_sites, tmp_path):
    now = dt.datetime.now(dt.timezone.utc)
    bad_date = json.dumps({"started": "last tuesday", "complete": True, "cadences": ["daily"], "targets": ["ok"]})
    deep = '{"started": "2026-12-01T06:00:00Z", "measures": ' + "[" * 50000 + "]" * 50000 + "}"
    bad_measures = json.dumps({"started": "2026-12-01T07:00:00Z", "complete": True, "measures": {"x": "y"}})
    run = _run(world, tmp_path, [fleet_sites["ok"]], "suites/test_ops.py", "-k", "cadence",
               history=[bad_date, deep, bad_measures, *_kept(now)])
    assert run.returncode == 0, run.output
    result = run.result("EA-OPS-02", "ok")
    assert result["outcome"] == "warned" and "3 history line(s) ignored: " in result["message"], result
    ignored = result["evidence"]["history"]["ignored"]
    assert any("'last tuesday' is not a UTC time" in w for w in ignored) and any("measures" in w for w in ignored)
    assert run._written(".html").is_file() and "last tuesday" in run.output


def test_collect_only_writes_no_report_and_no_history_line(world, fleet_sites, tmp_path):
    run = _run(world, tmp_path, [fleet_sites["ok"]], "suites/test_ops.py", "--co")
    assert run.returncode == 0, run.output
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == []


NO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None,
                  "AWS_PROFILE": None, "AWS_DEFAULT_PROFILE": None, "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
                  "AWS_CONFIG_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true",
                  "AWS_CONTAINER_CREDENTIALS_FULL_URI": None, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
                  "AWS_WEB_IDENTITY_TOKEN_FILE": None}


def test_no_aws_credentials_is_one_line_and_exit_code_4(world, fleet_sites, tmp_path):
    run = _run(world, tmp_path, [fleet_sites["ok"]], *MODULES, env=NO_CREDENTIALS)
    assert run.returncode == 4, run.output
    assert run.output.count("no AWS credentials found in the environment") == 1, run.output
    assert "Fix: set AWS_PROFILE" in run.output and "Remediation" not in run.output
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == []  # no report, no history line


def test_a_site_whose_name_does_not_resolve_is_not_evaluated_once_with_the_reason(world, fleet_sites, tmp_path):
    entry = {**fleet_sites["ok"].target_entry(), "name": "gone", "url": "https://gone.edgeaudit.invalid/",
             "http_url": "http://gone.edgeaudit.invalid/"}
    config = tmp_path / "edgeaudit.toml"
    config.write_text(tomlwrite.dumps({"targets": [entry]}))
    run = run_suite("suites/test_headers.py", "suites/test_site.py", "-m", "daily",
                    "--edgeaudit-config", str(config), env={**world.aws_env, "HTTPS_PROXY": None, "https_proxy": None,
                                                            "HTTP_PROXY": None, "http_proxy": None},
                    report_dir=tmp_path / "reports")
    errors = [r for r in run.report["results"] if r["outcome"] == "error"]
    assert len(errors) >= 13 and all("its host name gone.edgeaudit.invalid does not resolve" in r["message"]
                          for r in errors), [r["message"][:300] for r in errors]
    assert run.output.count("does not resolve") >= len(errors)  # the terminal names it too


# --- the auditor's permissions ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def denied(world, fleet_sites, tmp_path_factory) -> Run:
    """An auditor allowed everything but listing object versions, moto enforcing IAM."""
    from moto import settings
    from moto.core.responses import ActionAuthenticatorMixin

    iam = world.builder.client("iam")
    with guard.local_seeding():
        iam.create_user(UserName="auditor-no-versions")
        iam.put_user_policy(UserName="auditor-no-versions", PolicyName="audit", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "*", "Resource": "*"},
                # The IAM action is s3:ListBucketVersions; moto 5.2.6 checks the operation's name
                # (s3:ListObjectVersions) where 5.2.5 checked the action. A wildcard covers both,
                # as it would on AWS.
                {"Effect": "Deny", "Action": "s3:List*Versions", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="auditor-no-versions")["AccessKey"]
    before = settings.INITIAL_NO_AUTH_ACTION_COUNT
    settings.INITIAL_NO_AUTH_ACTION_COUNT = ActionAuthenticatorMixin.request_count  # enforce from now on
    try:
        return _run(world, tmp_path_factory.mktemp("dr-denied"), [fleet_sites["ok"]], *MODULES,
                    "-k", "preflight or rollback",
                    env={"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]})
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = before
        with guard.local_seeding():  # a user who may write every bucket would fail EA-IAM-01 of later runs
            iam.delete_access_key(UserName="auditor-no-versions", AccessKeyId=key["AccessKeyId"])
            iam.delete_user_policy(UserName="auditor-no-versions", PolicyName="audit")
            iam.delete_user(UserName="auditor-no-versions")


def test_missing_permission_fails_preflight_naming_the_action(denied):
    result = denied.result("EA-OPS-01", "ok")
    assert result["outcome"] == "failed" and result["severity"] == "P2", result
    assert result["evidence"]["missing"] == ["s3:ListBucketVersions"]
    assert "auditor-no-versions" in result["message"]
    rollback = denied.result("EA-DR-04", "ok")
    assert rollback["outcome"] == "error" and "s3:ListBucketVersions" in rollback["message"]


# --- copies that fail while the restore is timed --------------------------------------------------

def _enforcing(world, user: str, statements: list[dict], run: Callable[[dict], Run]) -> Run:
    """A run as an IAM user of these statements, moto enforcing IAM from now until it ends."""
    from moto import settings
    from moto.core.responses import ActionAuthenticatorMixin

    iam = world.builder.client("iam")
    with guard.local_seeding():
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="audit", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": statements}))
        key = iam.create_access_key(UserName=user)["AccessKey"]
    before = settings.INITIAL_NO_AUTH_ACTION_COUNT
    settings.INITIAL_NO_AUTH_ACTION_COUNT = ActionAuthenticatorMixin.request_count
    try:
        return run({"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]})
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = before
        with guard.local_seeding():
            iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
            iam.delete_user_policy(UserName=user, PolicyName="audit")
            iam.delete_user(UserName=user)


@pytest.mark.parametrize("thresholds", [{}, {"dr_full_restore_max_mb": 0, "dr_sample_objects": 7}],
                         ids=["full", "stratified"])
def test_copies_denied_while_the_restore_is_timed_fail_the_recovery_time(world, tmp_path, thresholds):
    """3 of the previous release's 7 objects cannot be copied into scratch: the time the other
    4 took is no recovery time. In the stratified estimate (one object a stratum here) the
    failed strata still count."""
    site = world.add(SiteSpec(name="ok"))
    # On AWS a copy needs s3:PutObject on its destination; moto 5.2.6 checks the operation's name
    # (s3:CopyObject). A wildcard covers both.
    denied = {"Effect": "Deny", "Action": "s3:*Object",
              "Resource": f"arn:aws:s3:::{site.extra['scratch_bucket']}/_edgeaudit/*/assets/*"}
    run = _enforcing(world, f"auditor-copies-denied-{len(thresholds)}",
                     [{"Effect": "Allow", "Action": "*", "Resource": "*"}, denied],
                     lambda env: _run(world, tmp_path, [site], "suites/test_dr.py", "-k", "recovery_time",
                                      env=env, thresholds=thresholds))
    result = run.result("EA-DR-05", "ok")
    assert result["outcome"] == "failed" and result["severity"] == "P3", result
    assert "3 did not restore, so the time of the rest is no recovery time: assets/app.8c2e4d.js: AccessDenied" \
        in result["message"], result
    evidence = result["evidence"]
    assert sorted(evidence["not_restored"]) == ["assets/app.8c2e4d.js", "assets/logo.svg", "assets/style.3f9a1c.css"]
    assert evidence["restored"]["objects"] == 4 and evidence["scratch_left_after_drill"] == []
    if thresholds:
        strata = evidence["strata"]
        assert len(strata) == 7 and sum(s["objects"] for s in strata) == 7
        assert sorted(s["sampled"] for s in strata if s["problem"]) == sorted(evidence["not_restored"])
        assert "counting the 3 strata whose sample failed to restore" in evidence["how"]


# --- dependency review: npm audit against a registry on loopback ---------------------------------

MINIMIST_ADVISORY = {"id": 1179, "url": "https://github.com/advisories/GHSA-xvch-5gv4-984h",
                     "title": "Prototype Pollution in minimist", "severity": "critical",
                     "vulnerable_versions": "<1.2.6", "cwe": ["CWE-1321"], "cvss": {"score": 9.8, "vectorString": None}}


class _Registry(http.server.BaseHTTPRequestHandler):
    """The two npm registry endpoints `npm audit` uses, in their real shapes: the bulk advisory
    search (POST) and package documents (GET) for the fix it proposes."""

    def _send(self, document: dict) -> None:
        body = json.dumps(document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        asked = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            asked = gzip.decompress(asked)
        self._send({"minimist": [MINIMIST_ADVISORY]} if b"minimist" in asked else {})

    def do_GET(self) -> None:
        name = self.path.strip("/")
        self._send({"name": name, "dist-tags": {"latest": "1.2.8"}, "versions": {
            v: {"name": name, "version": v, "dist": {"tarball": f"http://127.0.0.1/{name}-{v}.tgz"}}
            for v in ("1.2.5", "1.2.6", "1.2.8")}})

    def log_message(self, *args) -> None:
        pass


def _npm_project(folder: Path, minimist: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "package.json").write_text(json.dumps({"name": "site", "version": "1.0.0",
                                                     "dependencies": {"minimist": minimist}}))
    (folder / "package-lock.json").write_text(json.dumps({
        "name": "site", "version": "1.0.0", "lockfileVersion": 3, "requires": True, "packages": {
            "": {"name": "site", "version": "1.0.0", "dependencies": {"minimist": minimist}},
            "node_modules/minimist": {"version": minimist,
                                      "resolved": f"https://registry.npmjs.org/minimist/-/minimist-{minimist}.tgz"}}}))
    return folder / "package-lock.json"


@pytest.fixture(scope="module")
def registry():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def _dependency_run(world, fleet_sites, workdir: Path, registry_url: str) -> Run:
    site = fleet_sites["ok"]
    entry = {k: v for k, v in site.target_entry().items() if k != "absent"}  # these sites have a lockfile
    targets = [{**entry, "name": name, "lockfile": str(_npm_project(workdir / name, version))}
               for name, version in (("deps-vulnerable", "1.2.5"), ("deps-clean", "1.2.8"))]
    config = workdir / "edgeaudit.toml"
    config.write_text(tomlwrite.dumps({"targets": targets}))
    return run_suite("suites/test_ops.py", "-k", "dependency", "--edgeaudit-config", str(config),
                     env={**world.aws_env, "npm_config_registry": registry_url, "npm_config_cache": str(workdir / "npm"),
                          "npm_config_fetch_retries": "0", "npm_config_audit_level": "info"},
                     report_dir=workdir / "reports")


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_known_vulnerable_package_fails_dependency_review(world, fleet_sites, tmp_path, registry):
    run = _dependency_run(world, fleet_sites, tmp_path, registry)
    failed = run.result("EA-OPS-04", "deps-vulnerable")
    assert failed["outcome"] == "failed" and failed["severity"] == "P3", failed
    assert "minimist 1.2.5" in failed["message"] and "Prototype Pollution" in failed["message"]
    assert failed["evidence"]["tool"] == "npm audit"
    assert run.result("EA-OPS-04", "deps-clean")["outcome"] == "passed"


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_unreachable_advisory_source_is_an_error(world, fleet_sites, tmp_path):
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    run = _dependency_run(world, fleet_sites, tmp_path, f"http://127.0.0.1:{port}/")
    for target in ("deps-vulnerable", "deps-clean"):
        result = run.result("EA-OPS-04", target)
        assert result["outcome"] == "error" and "npm audit could not review" in result["message"], result


def test_demo_passes_every_drill_and_leaves_scratch_empty(tmp_path):
    """`pytest -m dr --demo`: the demo's version history, replica, stack and origin group pass
    EA-DR-01..07, and the drills report their scratch prefix empty when they end."""
    from conftest import REPO

    run = run_suite("-m", "dr", "--demo", cwd=REPO, report_dir=tmp_path)
    outcomes = {r["control"]: r["outcome"] for r in run.report["results"] if r["control"].startswith("EA-DR-")}
    assert outcomes == {f"EA-DR-0{n}": "passed" for n in range(1, 8)}, run.output
    for control in ("EA-DR-01", "EA-DR-04"):
        assert run.result(control, "www")["evidence"]["scratch_left_after_drill"] == []


# --- the release manifest and the restore limit in the config -------------------------------------

def _target(**extra) -> dict:
    return {"name": "www", "url": "https://www.example.com/", "bucket": "origin", "distribution_id": "E1", **extra}


def test_release_manifest_is_resolved_beside_the_config(tmp_path):
    from edgeaudit.rules.config import parse

    (tmp_path / "releases.json").write_text('{"releases": []}')
    config = parse(tmp_path / "edgeaudit.toml", {"targets": [_target(release_manifest="releases.json")]})
    assert config.targets[0].release_manifest == str(tmp_path / "releases.json")
    remote = parse(tmp_path / "edgeaudit.toml", {"targets": [_target(release_manifest="s3://deploys/www.json")]})
    assert remote.targets[0].release_manifest == "s3://deploys/www.json"


def test_a_target_names_its_baseline_beside_the_config(tmp_path):
    from edgeaudit.checks import drift
    from edgeaudit.rules.config import parse

    config = parse(tmp_path / "edgeaudit.toml", {"targets": [_target(baseline="snapshots/www.json")]})
    assert drift.baseline_path(Path("/elsewhere"), config.targets[0]) == tmp_path / "snapshots" / "www.json"
    default = parse(tmp_path / "edgeaudit.toml", {"targets": [_target()]}).targets[0]
    assert drift.baseline_path(tmp_path, default) == tmp_path / "baselines" / "www.json"


@pytest.mark.parametrize(("value", "problem"), [("missing.json", "no file at"), ("s3://deploys", "wrong type or value"),
                                                (42, "wrong type or value")])
def test_bad_release_manifest_is_a_config_error(tmp_path, value, problem):
    from edgeaudit.rules.config import ConfigError, parse

    with pytest.raises(ConfigError, match=r"targets\[0\] \(\"www\"\)\.release_manifest: " + problem) as error:
        parse(tmp_path / "edgeaudit.toml", {"targets": [_target(release_manifest=value)]})
    assert "Fix:" in str(error.value)


@pytest.mark.parametrize("value", [-1, "256", True])
def test_bad_full_restore_limit_is_a_config_error(tmp_path, value):
    from edgeaudit.rules.config import ConfigError, parse

    with pytest.raises(ConfigError, match="thresholds.dr_full_restore_max_mb"):
        parse(tmp_path / "edgeaudit.toml", {"thresholds": {"dr_full_restore_max_mb": value}, "targets": [_target()]})
    assert parse(tmp_path / "edgeaudit.toml", {"targets": [_target()]}).thresholds.dr_full_restore_max_mb == 256


@pytest.mark.parametrize(("text", "problem"), [("not json", "not JSON"), ('{"releases": []}', 'no "releases" list'),
                                               ('{"releases": [{"id": "r1", "objects": {"a": 1}}]}', "releases[0] is not")])
def test_malformed_release_manifest_is_not_evaluated(text, problem):
    from edgeaudit.checks import manifest
    from edgeaudit.errors import NotEvaluated

    with pytest.raises(NotEvaluated, match=r"release manifest m\.json: " + re.escape(problem)):
        manifest.parse("m.json", text)


def test_manifest_knows_which_objects_changed():
    from edgeaudit.checks import manifest

    releases = manifest.parse("m.json", json.dumps({"releases": [
        {"id": "r1", "objects": {"index.html": "v1", "a.css": "c1"}},
        {"id": "r2", "objects": {"index.html": "v2", "a.css": "c1"}},
        {"id": "r3", "objects": {"index.html": "v2", "a.css": "c1", "new.js": "n1"}}]}))
    assert releases.previous.id == "r2" and releases.live.id == "r3"
    assert releases.earlier_version("index.html", "v2") == ("r1", "v1")
    assert releases.earlier_version("a.css", "c1") is None and releases.earlier_version("new.js", "n1") is None
    assert manifest.stale_keys(releases, {"index.html": {"VersionId": "v2"}, "a.css": {"VersionId": "c1"},
                                          "new.js": {"VersionId": "n2"}, "extra": {"VersionId": "x"}}) == ["extra", "new.js"]


# --- the latest deployment, told apart from other writes ------------------------------------------

def _history(*writes: tuple[str, int, bool]) -> "rollback.History":
    """Versions of (key, minutes ago, live), a minute apart within a burst."""
    now = dt.datetime(2026, 12, 1, 12, tzinfo=dt.timezone.utc)
    from edgeaudit.checks import rollback

    return rollback.History(versions=[{"Key": key, "VersionId": f"v{n}", "IsLatest": live, "Size": 1,
                                       "LastModified": now - dt.timedelta(minutes=ago)}
                                      for n, (key, ago, live) in enumerate(writes)])


def test_the_latest_deployment_is_the_one_that_published_the_index_page():
    from edgeaudit.checks import rollback

    history = _history(("index.html", 3000, False), ("a.css", 3000, True), ("sitemap.xml", 3000, False),
                       ("index.html", 120, True), ("sitemap.xml", 120, False), ("sitemap.xml", 10, True))
    latest = rollback.latest_deployment(history, 300, "index.html")
    assert latest.writes == 2 and latest.keys == {"index.html", "sitemap.xml"}
    release = rollback.previous_release(history, 300, "index.html")
    assert {k: v["VersionId"] for k, v in release.members.items()} == {"index.html": "v0", "a.css": "v1",
                                                                       "sitemap.xml": "v2"}


def test_without_an_index_page_the_widest_burst_is_the_deployment_and_a_tie_is_not_evaluated():
    from edgeaudit.checks import rollback

    widest = _history(("a.css", 3000, False), ("a.css", 120, True), ("b.js", 120, True), ("c.svg", 120, True),
                      ("sitemap.xml", 10, True))
    latest = rollback.latest_deployment(widest, 300, "index.html")
    assert latest.keys == {"a.css", "b.js", "c.svg"} and "changed the most objects (3)" in latest.found_by
    tie = _history(("a.css", 3000, False), ("b.js", 3000, True), ("a.css", 120, True), ("c.svg", 120, True))
    with pytest.raises(rollback.Undecided, match="no live index page index.html and 2 bursts of writes each "
                                                 "changed 2 objects"):
        rollback.previous_release(tie, 300, "index.html")
