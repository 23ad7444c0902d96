"""junit.xml: the run in the one format every CI system already displays.

Each area becomes a test suite and each check a test case, so a CI page groups failures the way
the specs do. JUnit has no notion of a SHOULD failure that does not fail the run, so the
requirement behind each case rides along twice, in places the format allows (it validates
against schemas/junit.xsd, the JUnit XML format CI systems read):

- the case's classname is ``AREA.REQUIREMENT-ID`` and its ``system-out`` says the requirement,
  its level, its verdict, its basis and its source, which CI pages show beside the case;
- the suite's ``properties`` hold the same per requirement, as ``REQUIREMENT-ID.level``,
  ``REQUIREMENT-ID.outcome``, ``REQUIREMENT-ID.basis`` and ``REQUIREMENT-ID.source``, for tools
  (JUnit puts properties on suites, not on cases).

A DISPUTED MUST's failed checks are skipped cases, not failures, unless the run was --strict:
broken, but on a reading the docs do not state."""

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

# Checks that proved nothing either way, which JUnit can only call skipped: not applicable,
# inconclusive, or void (not judged: the target died).
_SKIPPED = (CheckOutcome.SKIPPED, CheckOutcome.INCONCLUSIVE, CheckOutcome.VOID)


def _disputed_and_lenient(verdict: RequirementVerdict, check: CheckResult, strict: bool) -> bool:
    return (
        check.outcome is CheckOutcome.FAILED and verdict.outcome is Outcome.DISPUTED and not strict
    )


def _about(verdict: RequirementVerdict) -> dict[str, str]:
    req = verdict.requirement
    return {
        "level": req.level,
        "outcome": verdict.outcome.value,
        "basis": req.basis,
        "source": req.source,
    }


def _case(
    suite: ET.Element,
    area: str,
    verdict: RequirementVerdict,
    check: CheckResult,
    strict: bool,
) -> None:
    req = verdict.requirement
    case = ET.SubElement(
        suite,
        "testcase",
        classname=f"{area}.{req.id}",
        name=check.check_id,
        time=f"{check.duration_s:.3f}",
    )
    if _disputed_and_lenient(verdict, check, strict):
        # Broken, but on a reading the docs do not state: shown, not counted (unless --strict).
        message = check.message.splitlines()[0] if check.message else "failed"
        ET.SubElement(
            case,
            "skipped",
            message=f"DISPUTED ({req.basis}): {message}"[:_MESSAGE_LIMIT],
        )
    elif check.outcome is CheckOutcome.FAILED:
        failure = ET.SubElement(
            case,
            "failure",
            message=check.message.splitlines()[0][:_MESSAGE_LIMIT] if check.message else "failed",
            type=f"{req.level} {verdict.outcome.value}",
        )
        failure.text = check.message
    elif check.outcome is CheckOutcome.ERROR:
        error = ET.SubElement(case, "error", message=(check.message or "error")[:_MESSAGE_LIMIT])
        error.text = check.message
    elif check.outcome in _SKIPPED:
        ET.SubElement(
            case, "skipped", message=f"{check.outcome.value}: {check.message}"[:_MESSAGE_LIMIT]
        )
    out = ET.SubElement(case, "system-out")
    out.text = (
        f"requirement: {req.id} [{req.level}] {req.title}\n"
        f"verdict: {verdict.outcome.value}\nbasis: {req.basis}\nsource: {req.source}\n"
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
            skipped=str(sum(counts[o] for o in _SKIPPED) + lenient),
            time=f"{sum(c.duration_s for _, c in cases):.3f}",
        )
        ran = [v for v in verdicts if v.checks]
        if ran:
            props = ET.SubElement(suite, "properties")
            for verdict in ran:
                for key, value in _about(verdict).items():
                    ET.SubElement(
                        props, "property", name=f"{verdict.requirement.id}.{key}", value=value
                    )
        for verdict, check in cases:
            _case(suite, area, verdict, check, strict)
    # The format counts skipped cases per suite only.
    for key in ("tests", "failures", "errors"):
        suites.set(key, str(sum(int(suite.get(key, "0")) for suite in suites)))
    suites.set("time", f"{sum(float(suite.get('time', '0')) for suite in suites):.3f}")
    ET.indent(suites)
    return suites


def write(report: RunReport, path: Path) -> None:
    """ElementTree writes the file itself, so the declaration and encoding are its own."""
    ET.ElementTree(render(report)).write(path, encoding="utf-8", xml_declaration=True)
