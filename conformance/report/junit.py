"""junit.xml: the run in the one format every CI system already displays.

Each area becomes a test suite and each check a test case, so a CI page groups failures the way
the specs do. The requirement, its level and its verdict ride along as test-case properties,
because JUnit itself has no notion of a SHOULD failure that does not fail the run."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

from ..outcomes import CheckOutcome, Outcome
from ..results import CheckResult, RequirementVerdict, RunReport

__all__ = ["FILE_NAME", "render", "write"]

FILE_NAME = "junit.xml"

# JUnit attributes are shown in one line by most CI pages; longer messages go in the element's
# text instead.
_MESSAGE_LIMIT = 300


def _disputed_and_lenient(verdict: RequirementVerdict, check: CheckResult, strict: bool) -> bool:
    return (
        check.outcome is CheckOutcome.FAILED and verdict.outcome is Outcome.DISPUTED and not strict
    )


def _case(
    suite: ET.Element,
    area: str,
    verdict: RequirementVerdict,
    check: CheckResult,
    strict: bool,
) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        classname=f"{area}.{verdict.requirement.id}",
        name=check.check_id,
        time=f"{check.duration_s:.3f}",
    )
    props = ET.SubElement(case, "properties")
    for name, value in (
        ("requirement", verdict.requirement.id),
        ("level", verdict.requirement.level),
        ("requirement_outcome", verdict.outcome.value),
        ("source", verdict.requirement.source),
        ("basis", verdict.requirement.basis),
    ):
        ET.SubElement(props, "property", name=name, value=value)
    if _disputed_and_lenient(verdict, check, strict):
        # Broken, but on a reading the docs do not state: shown, not counted (unless --strict).
        message = check.message.splitlines()[0] if check.message else "failed"
        ET.SubElement(
            case,
            "skipped",
            message=f"DISPUTED ({verdict.requirement.basis}): {message}"[:_MESSAGE_LIMIT],
        )
    elif check.outcome is CheckOutcome.FAILED:
        failure = ET.SubElement(
            case,
            "failure",
            message=check.message.splitlines()[0][:_MESSAGE_LIMIT] if check.message else "failed",
            type=f"{verdict.requirement.level} {verdict.outcome.value}",
        )
        failure.text = check.message
    elif check.outcome is CheckOutcome.ERROR:
        error = ET.SubElement(case, "error", message=(check.message or "error")[:_MESSAGE_LIMIT])
        error.text = check.message
    elif check.outcome in (CheckOutcome.SKIPPED, CheckOutcome.INCONCLUSIVE):
        # An inconclusive check proved nothing either way, which JUnit can only call skipped.
        ET.SubElement(
            case, "skipped", message=f"{check.outcome.value}: {check.message}"[:_MESSAGE_LIMIT]
        )


def render(report: RunReport) -> ET.Element:
    """The ``testsuites`` element, indented, for tests to inspect without parsing a file."""
    suites = ET.Element("testsuites", name="pusher-conformance")
    strict = bool(report.run.get("strict"))
    by_area: dict[str, list[RequirementVerdict]] = defaultdict(list)
    for verdict in report.verdicts:
        by_area[verdict.requirement.area].append(verdict)
    for area, verdicts in by_area.items():
        cases = [(v, c) for v in verdicts for c in v.checks]
        counts = Counter(c.outcome for _, c in cases)
        lenient = sum(1 for v, c in cases if _disputed_and_lenient(v, c, strict))
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=area,
            tests=str(len(cases)),
            failures=str(counts[CheckOutcome.FAILED] - lenient),
            errors=str(counts[CheckOutcome.ERROR]),
            skipped=str(counts[CheckOutcome.SKIPPED] + counts[CheckOutcome.INCONCLUSIVE] + lenient),
            time=f"{sum(c.duration_s for _, c in cases):.3f}",
        )
        for verdict, check in cases:
            _case(suite, area, verdict, check, strict)
    for key in ("tests", "failures", "errors", "skipped"):
        suites.set(key, str(sum(int(suite.get(key, "0")) for suite in suites)))
    ET.indent(suites)
    return suites


def write(report: RunReport, path: Path) -> None:
    """ElementTree writes the file itself, so the declaration and encoding are its own."""
    ET.ElementTree(render(report)).write(path, encoding="utf-8", xml_declaration=True)
