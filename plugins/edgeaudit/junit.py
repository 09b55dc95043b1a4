"""JUnit XML test case names that carry the control id: `EA-TLS-01 test_cert_expiry[www]`, so
that a CI's test view (which shows names, seldom properties) says which control failed.

pytest's junitxml names a test case from its node id when it records a report, and keeps any
attribute already set on the case (as `record_xml_attribute` does, which warns as experimental).
So the name is set on the case before junitxml records the teardown report, the last one, from
the `control` property every control's report carries. This runs where junitxml runs: on the
controller, with its reports from xdist workers too. classname stays as pytest sets it."""

from __future__ import annotations

from typing import Any

import pytest
from _pytest.junitxml import xml_key


def junit_name(control: str, name: str) -> str:
    """`EA-TLS-01 test_cert_expiry[www]`; a name that already starts with the id is kept."""
    return name if name.startswith(control + " ") else f"{control} {name}"


class JunitNames:
    """Registered on the process that writes JUnit XML (not on xdist workers)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(tryfirst=True)  # before junitxml finalizes the test case
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        xml: Any = self.config.stash.get(xml_key, None)
        if xml is None or report.when != "teardown":
            return
        control = dict(report.user_properties).get("control")
        if not control:
            return
        case = xml.node_reporter(report)  # the open case of this test (created if junitxml has none yet)
        name = case.attrs.get("name") or report.nodeid.rsplit("::", 1)[-1]
        case.attrs["name"] = junit_name(str(control), name)
