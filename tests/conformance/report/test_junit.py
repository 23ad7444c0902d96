"""junit.xml: one case per check, valid JUnit XML (schemas/junit.xsd) whatever the checks'
outcomes, the requirement behind each case in its system-out and its suite's properties; a
DISPUTED MUST's failed checks are skipped cases unless the run was --strict."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
import xmlschema

from conformance.outcomes import CheckOutcome
from conformance.report import junit, schemas
from conformance.results import CheckResult, RunReport, build_report
from conformance.spec import SpecSet

# One requirement per outcome, so every element JUnit has for a result appears: PROTO-CONN-07's
# basis is stated (its failure is a FAIL), PROTO-CONN-05's inferred (DISPUTED).
_OUTCOMES = {
    "PROTO-CONN-01": CheckOutcome.ERROR,
    "PROTO-CONN-03": CheckOutcome.SKIPPED,
    "PROTO-CONN-04": CheckOutcome.INCONCLUSIVE,
    "PROTO-CONN-05": CheckOutcome.FAILED,
    "PROTO-CONN-07": CheckOutcome.FAILED,
    "HTTP-AUTH-04": CheckOutcome.VOID,
}


@pytest.fixture(scope="module")
def xsd() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(schemas.path(schemas.JUNIT))


@pytest.fixture(params=[False, True], ids=["lenient", "strict"])
def mixed_report(specs: SpecSet, request: pytest.FixtureRequest) -> RunReport:
    """Passed, failed (FAIL and DISPUTED), error, skipped, inconclusive and void checks, with
    messages of several lines and markup in them; one requirement not run at all; lenient and
    --strict."""
    results = {}
    for check in specs.checks:
        if check.requirement_id == "PROTO-CONN-06":
            continue
        outcome = _OUTCOMES.get(check.requirement_id, CheckOutcome.PASSED)
        message = "" if outcome is CheckOutcome.PASSED else f"{outcome.value} <&>\nline two ]]>"
        results[check.full_id] = CheckResult(
            check.full_id, check.requirement_id, outcome, message=message, duration_s=1234.5
        )
    report = build_report(
        specs, results, target={"name": "t"}, run={"profile": "ci", "seed": 0},
        strict=request.param,
    )  # fmt: skip
    verdicts = {v.requirement.id: v.outcome.value for v in report.verdicts}
    assert (verdicts["PROTO-CONN-07"], verdicts["PROTO-CONN-05"]) == ("FAIL", "DISPUTED")
    return report


def test_junit_validates_against_the_junit_xsd(
    failing_report: RunReport, disputed_report: RunReport, mixed_report: RunReport,
    xsd: xmlschema.XMLSchema, tmp_path: Path,
) -> None:  # fmt: skip
    for name, report in (
        ("failing", failing_report), ("disputed", disputed_report), ("mixed", mixed_report)
    ):  # fmt: skip
        path = tmp_path / f"{name}.xml"
        junit.write(report, path)
        assert [f"{e.path}: {e.reason}" for e in xsd.iter_errors(path)] == [], name


def test_the_counts_and_result_elements_follow_the_outcomes(
    mixed_report: RunReport, tmp_path: Path
) -> None:
    path = tmp_path / junit.FILE_NAME
    junit.write(mixed_report, path)
    root = ET.parse(path).getroot()
    cases = root.findall("./testsuite/testcase")
    elements: Counter[str] = Counter()
    for case in cases:
        found = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
        assert len(found) <= 1
        elements.update(found)
    checks = Counter(c.outcome for v in mixed_report.verdicts for c in v.checks)
    assert all(checks[o] for o in _OUTCOMES.values())
    disputed = sum(len(v.checks) for v in mixed_report.verdicts if v.outcome.value == "DISPUTED")
    lenient = 0 if mixed_report.run.get("strict") else disputed
    assert disputed
    assert elements == {
        "failure": checks[CheckOutcome.FAILED] - lenient,
        "error": checks[CheckOutcome.ERROR],
        "skipped": checks[CheckOutcome.SKIPPED]
        + checks[CheckOutcome.INCONCLUSIVE]
        + checks[CheckOutcome.VOID]
        + lenient,
    }
    assert (
        int(root.get("tests", "0"))
        == len(cases)
        == sum(len(v.checks) for v in mixed_report.verdicts)
    )
    assert "PROTO-CONN-06" not in {c.get("classname", "").split(".")[1] for c in cases}
    assert int(root.get("failures", "0")) == elements["failure"]
    assert int(root.get("errors", "0")) == elements["error"]
    assert sum(int(s.get("skipped", "0")) for s in root) == elements["skipped"]
    assert root.get("time") == f"{1234.5 * len(cases):.3f}"


def test_each_case_says_its_requirement(mixed_report: RunReport, tmp_path: Path) -> None:
    path = tmp_path / junit.FILE_NAME
    junit.write(mixed_report, path)
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    cases = root.findall("./testsuite/testcase")
    assert int(root.get("tests", "0")) > 20
    for suite in root:
        props = {p.get("name"): p.get("value") for p in suite.findall("./properties/property")}
        for case in suite.findall("testcase"):
            assert case.get("name")
            assert case.get("time")
            area, requirement = case.get("classname", "").split(".")
            assert area == suite.get("name")
            assert props[f"{requirement}.level"] in ("MUST", "SHOULD", "MAY")
            assert props[f"{requirement}.source"]
            assert props[f"{requirement}.basis"] in ("stated", "inferred", "observed")
            out = case.findtext("system-out") or ""
            verdict = props[f"{requirement}.outcome"]
            assert f"requirement: {requirement} [{props[f'{requirement}.level']}]" in out
            assert f"verdict: {verdict}\nbasis: {props[f'{requirement}.basis']}\n" in out
    (failed,) = [c for c in cases if c.get("classname") == "connection.PROTO-CONN-07"]
    failure = failed.find("failure")
    assert failure is not None
    assert failure.text == "failed <&>\nline two ]]>"
    assert failure.get("type") == "MUST FAIL"
