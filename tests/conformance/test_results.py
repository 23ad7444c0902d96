"""results.json, junit.xml and summary.md from a synthetic set of results."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance.outcomes import CheckOutcome
from conformance.properties import known_property_names
from conformance.report.results_json import SCHEMA_VERSION
from conformance.results import (
    CheckResult,
    RunReport,
    build_report,
    normalize_figures,
)
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


# -- figures -----------------------------------------------------------------------------------

FIGURES = {
    "title": "admin-alerts <scenario>",
    "summary": {"delivered": 312, "expected": 312, "duplicates": 0, "order_violations": 0},
    "table": {
        "columns": ["user", "tabs", "delivered", "expected", "duplicates", "order violations"],
        "rows": [["admin-ana", 3, 120, 120, 0, 0], ["bob|<b>", 1, 12, 12, None, 0]],
    },
}


def test_figures_round_trip_through_check_result_json() -> None:
    result = CheckResult("R-01/c", "R-01", CheckOutcome.PASSED, figures=FIGURES)
    assert CheckResult.from_json(result.to_json()) == result
    old = result.to_json().replace(', "figures": ' + json.dumps(FIGURES), "")
    assert "figures" not in old
    assert CheckResult.from_json(old).figures == {}


def _figured_report(tmp_path: Path) -> RunReport:
    specs = load_specs(known_properties=known_property_names())
    results = {}
    for check in specs.checks:
        if check.full_id == "PROTO-CONN-05/first-frame":
            results[check.full_id] = CheckResult(
                check.full_id, check.requirement_id, CheckOutcome.PASSED, figures=FIGURES
            )
        elif check.requirement_id == "PROTO-CONN-03":
            results[check.full_id] = CheckResult(
                check.full_id, check.requirement_id, CheckOutcome.FAILED, message="lost events",
                figures={"summary": {"delivered": 2, "expected": 3}},
            )  # fmt: skip
        else:
            results[check.full_id] = CheckResult(
                check.full_id, check.requirement_id, CheckOutcome.PASSED
            )
    report = build_report(specs, results, target={"name": "t"}, run={"profile": "ci", "seed": 0})
    report.write(tmp_path)
    return report


def test_results_json_carries_figures_only_where_there_are_some(tmp_path: Path) -> None:
    _figured_report(tmp_path)
    data = json.loads((tmp_path / "results.json").read_text())
    checks = {c["id"]: c for r in data["requirements"] for c in r["checks"]}
    assert checks["PROTO-CONN-05/first-frame"]["figures"] == FIGURES
    figured = {k for k, c in checks.items() if "figures" in c}
    assert len(figured) == 1 + len([k for k in checks if k.startswith("PROTO-CONN-03/")])


def test_markdown_has_a_figures_section_for_passing_and_failing_checks(tmp_path: Path) -> None:
    _figured_report(tmp_path)
    text = (tmp_path / "summary.md").read_text()
    section = text[text.index("## Figures") : text.index("## Evidence")]
    assert "### PROTO-CONN-05/first-frame: admin-alerts <scenario> (passed)" in section
    assert "- delivered 312, expected 312, duplicates 0, order violations 0" in section
    assert "| user | tabs | delivered | expected | duplicates | order violations |" in section
    assert "|---|---|---|---|---|---|" in section
    assert "| admin-ana | 3 | 120 | 120 | 0 | 0 |" in section
    assert "| bob\\|<b> | 1 | 12 | 12 | null | 0 |" in section
    assert "(failed)" in section
    assert "- delivered 2, expected 3" in section


def test_html_has_the_figures_escaped(tmp_path: Path) -> None:
    _figured_report(tmp_path)
    text = (tmp_path / "summary.html").read_text()
    section = text[text.index("<h2>Figures</h2>") : text.index("<h2>Not covered</h2>")]
    assert "admin-alerts &lt;scenario&gt; (passed)</h3>" in section
    assert "<li>delivered 312, expected 312, duplicates 0, order violations 0</li>" in section
    assert "<th>order violations</th>" in section
    assert "<td>bob|&lt;b&gt;</td>" in section
    assert "<b>" not in section


def test_console_prints_one_figures_line_per_check(tmp_path: Path) -> None:
    report = _figured_report(tmp_path)
    figures = [line for line in report.console().splitlines() if line.startswith("figures ")]
    assert (
        "figures PROTO-CONN-05/first-frame: delivered 312, expected 312, "
        "duplicates 0, order violations 0; table of 2 rows in summary.md"
    ) in figures
    assert "figures PROTO-CONN-03/unknown-key-closed-4001: delivered 2, expected 3" in figures
    assert len(figures) == len(report.figured()) == 2


def test_no_figures_no_section(tmp_path: Path) -> None:
    _report(tmp_path, "PROTO-CONN-05")
    assert "## Figures" not in (tmp_path / "summary.md").read_text()
    assert "<h2>Figures</h2>" not in (tmp_path / "summary.html").read_text()


def test_normalize_figures_returns_plain_json() -> None:
    assert normalize_figures({}) == {}
    assert normalize_figures({"table": {"columns": ["a"], "rows": [(1,)]}}) == {
        "table": {"columns": ["a"], "rows": [[1]]}
    }
    assert normalize_figures({"other": {"kept": [1]}}) == {"other": {"kept": [1]}}


@pytest.mark.parametrize(
    ("figures", "message"),
    [
        ({"x": object()}, "figures are not JSON data"),
        ({"x": float("nan")}, "figures are not JSON data"),
        ({"title": 3}, "title must be a string"),
        ({"summary": [1]}, "summary must be a mapping"),
        ({"summary": {"a": [1]}}, "summary 'a' is not a number or text"),
        ({"table": {"rows": []}}, "table must be a mapping with exactly columns and rows"),
        ({"table": {"columns": [1], "rows": []}}, "table columns must be a list of strings"),
        ({"table": {"columns": ["a"], "rows": {}}}, "table rows must be a list of lists"),
        ({"table": {"columns": ["a"], "rows": [[1, 2]]}}, "table row 0 is not a list of 1 cells"),
        ({"table": {"columns": ["a"], "rows": [[{}]]}}, "table row 0 holds a cell that is not"),
    ],
)
def test_normalize_figures_names_what_is_wrong(figures: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalize_figures(figures)
