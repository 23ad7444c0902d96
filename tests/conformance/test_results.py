"""results.json, junit.xml and summary.md from a synthetic set of results."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from conformance.outcomes import CheckOutcome
from conformance.properties import known_property_names
from conformance.results import SCHEMA_VERSION, CheckResult, build_report
from conformance.spec import load_specs


def _report(tmp_path: Path, failing: str) -> dict[str, object]:
    specs = load_specs(known_properties=known_property_names())
    results = {}
    for check in specs.checks:
        outcome = CheckOutcome.FAILED if check.requirement_id == failing else CheckOutcome.PASSED
        results[check.full_id] = CheckResult(
            check.full_id, check.requirement_id, outcome,
            message="boom <&> \"quoted\"" if outcome is CheckOutcome.FAILED else "",
            duration_s=0.5,
            transcript="transcripts/x.jsonl" if outcome is CheckOutcome.FAILED else None,
        )  # fmt: skip
    report = build_report(specs, results, target={"name": "t", "ws_url": "ws://x"},
                          run={"profile": "ci", "seed": 0})  # fmt: skip
    report.write(tmp_path)
    loaded: dict[str, object] = json.loads((tmp_path / "results.json").read_text())
    return loaded


def test_results_json(tmp_path: Path) -> None:
    data = _report(tmp_path, "PROTO-CONN-05")
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["exit_code"] == 1
    requirements = {r["id"]: r for r in data["requirements"]}  # type: ignore[attr-defined]
    assert requirements["PROTO-CONN-05"]["outcome"] == "FAIL"
    assert requirements["PROTO-CONN-01"]["outcome"] == "PASS"
    not_covered = {r["id"] for r in data["not_covered"]}  # type: ignore[attr-defined]
    assert "PROTO-CONN-02" in not_covered
    assert len(data["suite"]["specs_sha256"]) == 64  # type: ignore[index]


def test_should_failure_exits_zero(tmp_path: Path) -> None:
    data = _report(tmp_path, "CHAN-SUB-08")
    assert data["exit_code"] == 0
    assert data["totals"] == {"NON_STRICT": 1, "PASS": len(data["requirements"]) - 1}  # type: ignore[arg-type]


def test_junit_is_well_formed_with_properties(tmp_path: Path) -> None:
    _report(tmp_path, "PROTO-CONN-05")
    root = ET.parse(tmp_path / "junit.xml").getroot()
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


def test_html_summary_escapes_and_links(tmp_path: Path) -> None:
    _report(tmp_path, "PROTO-CONN-05")
    text = (tmp_path / "summary.html").read_text()
    assert text.startswith("<!doctype html>")
    assert "boom &lt;&amp;&gt; &quot;quoted&quot;" in text
    assert "<a href='#PROTO-CONN-05'>" in text
    assert "href='transcripts/x.jsonl'" in text


def test_markdown_summary_has_evidence_and_gaps(tmp_path: Path) -> None:
    _report(tmp_path, "PROTO-CONN-05")
    text = (tmp_path / "summary.md").read_text()
    assert "| PROTO-CONN-05 | MUST | FAIL |" in text
    assert "## Evidence" in text
    assert "transcripts/x.jsonl" in text
    assert "## Not covered" in text
    assert "PROTO-CONN-02" in text
