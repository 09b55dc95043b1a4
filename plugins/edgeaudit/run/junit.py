"""JUnit XML test case names that carry the control id: `EA-TLS-01 test_cert_expiry[www]`, so
that a CI's test view (which shows names, seldom properties) says which control failed.

pytest's junitxml names a test case from its node id when it records a report, and keeps any
attribute already set on the case (as `record_xml_attribute` does, which warns as experimental).
So the name is set on the case before junitxml records the teardown report, the last one, from
the `control` property every control's report carries. This runs where junitxml runs: on the
controller, with its reports from xdist workers too. classname stays as pytest sets it.

pytest's junitxml holds every test case as an element tree until the session ends, then builds
the whole document at once: a fleet's tens of thousands of cases cost kilobytes each. The run's
JUnit XML is pytest's own (`SpooledLogXML`, its subclass): each case is written to a spool file
once finalized, and the document is written from it at the end, as pytest would have written it."""

from __future__ import annotations

import itertools
import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import IO, Any

import pytest
from _pytest.junitxml import LogXML, xml_key

from edgeaudit.reporting.report import stage

SPOOLED = "edgeaudit-spooled-cases"  # where the spooled cases go in the document pytest writes


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

    @pytest.hookimpl(trylast=True)  # after junitxml started its clock
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        xml: Any = self.config.stash.get(xml_key, None)
        if type(xml) is LogXML:
            spooled = SpooledLogXML(xml)
            self.config.pluginmanager.unregister(xml)
            self.config.stash[xml_key] = spooled
            self.config.pluginmanager.register(spooled)


class _Spooled:
    """Stands, in the list pytest writes, for the cases already in the spool."""

    def to_xml(self) -> ET.Element:
        return ET.Element(SPOOLED)


class SpooledLogXML(LogXML):
    """pytest's LogXML (same options, same document), holding no finalized test case."""

    def __init__(self, base: LogXML) -> None:  # takes over a configured LogXML with its state
        self.__dict__.update(base.__dict__)
        self.spool: IO[bytes] = tempfile.TemporaryFile()

    def finalize(self, report: pytest.TestReport) -> None:
        reporter = self.node_reporters.get((report.id, getattr(report, "node", None)))
        super().finalize(report)
        if reporter is not None:
            self.spool.write(ET.tostring(reporter.to_xml(), encoding="utf-8", xml_declaration=False))
            reporter.__dict__.clear()  # an empty reporter: spooled (pytest's list keeps only this shell)

    def pytest_sessionfinish(self) -> None:
        held = [reporter for reporter in self.node_reporters_ordered if reporter.__dict__]
        self.node_reporters_ordered = [*held, _Spooled()]  # type: ignore[list-item]
        super().pytest_sessionfinish()  # the document with every case still held, and the marker
        document = Path(self.logfile)
        head, tail = document.read_bytes().split(ET.tostring(ET.Element(SPOOLED), encoding="utf-8", xml_declaration=False))
        self.spool.seek(0)
        cases = iter(lambda: self.spool.read(1 << 16), b"")
        os.replace(stage(document, itertools.chain([head], cases, [tail])), document)
        self.spool.close()
