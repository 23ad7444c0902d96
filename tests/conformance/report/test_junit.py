"""junit.xml: well-formed, one case per check, the requirement carried as properties."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from conformance.report import junit
from conformance.results import RunReport


def test_junit_is_well_formed_with_properties(failing_report: RunReport, tmp_path: Path) -> None:
    path = tmp_path / junit.FILE_NAME
    junit.write(failing_report, path)
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    cases = root.findall("./testsuite/testcase")
    assert int(root.get("tests", "0")) == len(cases) > 20
    assert int(root.get("failures", "0")) == 1
    for case in cases:
        assert case.get("name")
        assert case.get("classname")
        assert case.get("time")
        props = {p.get("name"): p.get("value") for p in case.findall("./properties/property")}
        assert props["requirement"]
        assert props["level"] in ("MUST", "SHOULD", "MAY")
    failed = [c for c in cases if c.find("failure") is not None]
    assert failed[0].find("failure").text == 'boom <&> "quoted"'  # type: ignore[union-attr]
