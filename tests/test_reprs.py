"""The fixtures' objects as failure logs show them (pytest's tracebacks, pytest-html): short,
named after the target, and never a secret."""

from __future__ import annotations

import datetime as dt

from edgeaudit.aws.clients import Aws, AwsRegistry
from edgeaudit.evidence import Evidence
from edgeaudit.rules import tomlwrite
from edgeaudit.rules.config import load
from edgeaudit.web.site import Site
from edgeaudit.web.tls import TlsProbe
from edgeaudit.web.vitals import PageLab, Vitals

TOKEN = "planted-repr-token-0123456789abcdef"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYPLANTEDREPR"


def _config(tmp_path):
    www = {"name": "www", "url": "https://www.example.com/", "bucket": "www-bucket", "distribution_id": "E1ABC",
           "region": "eu-west-1", "role_arn": "arn:aws:iam::123456789012:role/audit", "external_id": TOKEN,
           "crux_api_key_env": "CRUX_KEY"}
    others = [{**www, "name": name, "url": f"https://{name}.example.com/", "external_id": SECRET}
              for name in ("api", "shop", "blog")]
    path = tmp_path / "edgeaudit.toml"
    path.write_text(tomlwrite.dumps({"targets": [www, *others], "waivers": [
        {"control": "EA-S3-05", "reason": f"token {TOKEN}", "approved_by": "me", "expires": dt.date(2099, 1, 1)}]}))
    return load(path)


def test_the_config_and_its_targets_read_short_and_hold_no_secret(tmp_path):
    config = _config(tmp_path)
    assert repr(config) == "<Config edgeaudit.toml: 4 targets (www, api, shop, ...), 1 waivers, 0 attestations>"
    www = config.target("www")
    assert repr(www) == "<Target www https://www.example.com/>"
    shown = repr(config) + repr(config.targets) + repr(www)
    assert TOKEN not in shown and SECRET not in shown and "role" not in shown and "CRUX_KEY" not in shown


def test_the_fixtures_objects_are_named_after_their_target(tmp_path):
    www = _config(tmp_path).target("www")
    assert repr(Site(www)) == "<Site www https://www.example.com/>"
    assert repr(Aws(AwsRegistry(), www)) == "<Aws www eu-west-1>"
    assert repr(TlsProbe(www)) == "<TlsProbe www www.example.com:443>"
    evidence = Evidence(resource=f"https://www.example.com/?token={TOKEN}")
    evidence.record("api_key", SECRET)
    evidence.warn("close")
    assert repr(evidence).startswith("<Evidence https://www.example.com/?token=")
    assert repr(evidence).endswith(": api_key; 1 warnings>")
    assert TOKEN not in repr(evidence) and SECRET not in repr(evidence)
    measured = Vitals(device="mobile", profile={"cpu": 4}, pages={"/": PageLab("https://www.example.com/")},
                      browser="Chromium 131")
    assert repr(measured) == "<Vitals mobile lab / in Chromium 131>"
    assert repr(Vitals(device="desktop", profile={}, lab_error="no Chromium")) == \
        "<Vitals desktop lab not measured (no Chromium)>"
    assert all(" at 0x" not in repr(o) for o in (Site(www), www, evidence, measured))
