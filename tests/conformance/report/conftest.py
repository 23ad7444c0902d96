"""Reports every format's tests render: one with a failing MUST and nothing figured, one with
figures on a passing and a failing check. Built here once so each format is tested against the
same data."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from conformance.outcomes import CheckOutcome
from conformance.properties import known_property_names
from conformance.provenance import Provenance, Variant
from conformance.results import CheckResult, RunReport, build_report
from conformance.spec import SpecSet, load_specs


@pytest.fixture(scope="session")
def specs() -> SpecSet:
    return load_specs(known_properties=known_property_names())


def _as_stated(specs: SpecSet, requirement_id: str) -> SpecSet:
    """The specs with one requirement resting on a quoted docs sentence, whatever the bundled
    specs say of it today, so that its failure is a FAIL."""
    files = tuple(
        dataclasses.replace(
            f,
            requirements=tuple(
                dataclasses.replace(r, provenance=Provenance("stated", quote="The rule, quoted."))
                if r.id == requirement_id
                else r
                for r in f.requirements
            ),
        )
        for f in specs.files
    )
    return dataclasses.replace(specs, files=files)


@pytest.fixture
def failing_report(specs: SpecSet) -> RunReport:
    """PROTO-CONN-05 (stated) fails with a message that needs escaping in every markup; the
    rest pass."""
    specs = _as_stated(specs, "PROTO-CONN-05")
    results = {}
    for check in specs.checks:
        failed = check.requirement_id == "PROTO-CONN-05"
        results[check.full_id] = CheckResult(
            check.full_id, check.requirement_id,
            CheckOutcome.FAILED if failed else CheckOutcome.PASSED,
            message='boom <&> "quoted"' if failed else "",
            duration_s=0.5,
            transcript="transcripts/x.jsonl" if failed else None,
        )  # fmt: skip
    return build_report(specs, results, target={"name": "t", "ws_url": "ws://x"},
                        run={"profile": "ci", "seed": 0})  # fmt: skip


def _as_inferred(specs: SpecSet, requirement_id: str) -> SpecSet:
    """The specs with one requirement re-based on an inference, with a known variant."""

    def rebased(requirement: Any) -> Any:
        if requirement.id != requirement_id:
            return requirement
        return dataclasses.replace(
            requirement,
            provenance=Provenance(
                "inferred",
                reasoning="read <into> the docs & not stated",
                variants=(Variant("sends it <elsewhere>", ("Soketi 1.6.1",), "pusher-js copes"),),
            ),
        )

    files = tuple(
        dataclasses.replace(f, requirements=tuple(rebased(r) for r in f.requirements))
        for f in specs.files
    )
    return dataclasses.replace(specs, files=files)


@pytest.fixture(params=[False, True], ids=["lenient", "strict"])
def disputed_report(specs: SpecSet, request: pytest.FixtureRequest) -> RunReport:
    """PROTO-CONN-05 fails as in ``failing_report``, but its basis is inferred: DISPUTED, and
    the exit code counts it only under --strict (the fixture's param)."""
    rebased = _as_inferred(specs, "PROTO-CONN-05")
    results = {
        check.full_id: CheckResult(
            check.full_id,
            check.requirement_id,
            CheckOutcome.FAILED if check.requirement_id == "PROTO-CONN-05" else CheckOutcome.PASSED,
            message="boom" if check.requirement_id == "PROTO-CONN-05" else "",
        )
        for check in rebased.checks
    }
    return build_report(
        rebased, results, target={"name": "t"}, run={"profile": "ci", "seed": 0},
        strict=request.param,
    )  # fmt: skip


@pytest.fixture
def figures() -> dict[str, Any]:
    """A delivery scenario's figures, with cells that need escaping in markdown and HTML."""
    return {
        "title": "admin-alerts <scenario>",
        "summary": {"delivered": 312, "expected": 312, "duplicates": 0, "order_violations": 0},
        "table": {
            "columns": ["user", "tabs", "delivered", "expected", "duplicates", "order violations"],
            "rows": [["admin-ana", 3, 120, 120, 0, 0], ["bob|<b>", 1, 12, 12, None, 0]],
        },
    }


@pytest.fixture
def figured_report(specs: SpecSet, figures: dict[str, Any]) -> RunReport:
    """Figures on one passing check (title, summary and table) and on each check of a failing
    requirement (summary only), so the formats show both outcomes and both shapes."""
    results = {}
    for check in specs.checks:
        if check.full_id == "PROTO-CONN-05/first-frame":
            results[check.full_id] = CheckResult(
                check.full_id, check.requirement_id, CheckOutcome.PASSED, figures=figures
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
    return build_report(specs, results, target={"name": "t"}, run={"profile": "ci", "seed": 0})
