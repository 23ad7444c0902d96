"""The grading table and the exit codes."""

from __future__ import annotations

import pytest

from conformance.outcomes import CheckOutcome as C
from conformance.outcomes import ExitCode, Outcome, exit_code, grade


@pytest.mark.parametrize(
    ("level", "checks", "expected"),
    [
        ("MUST", [C.PASSED, C.PASSED], Outcome.PASS),
        ("MUST", [C.PASSED, C.FAILED], Outcome.FAIL),
        ("SHOULD", [C.FAILED], Outcome.NON_STRICT),
        ("MAY", [C.FAILED], Outcome.OPTIONAL_ABSENT),
        ("MUST", [C.SKIPPED], Outcome.OPTIONAL_ABSENT),
        ("MUST", [C.ERROR, C.INCONCLUSIVE], Outcome.ERROR),
        ("MUST", [C.FAILED, C.ERROR], Outcome.FAIL),
        ("SHOULD", [C.PASSED, C.INCONCLUSIVE], Outcome.INCONCLUSIVE),
        ("MUST", [], Outcome.NOT_RUN),
    ],
)
def test_grade(level: str, checks: list[C], expected: Outcome) -> None:
    assert grade(level, checks) is expected


def test_exit_codes() -> None:
    assert exit_code([("MUST", Outcome.PASS), ("SHOULD", Outcome.NON_STRICT)], 2) is ExitCode.OK
    assert exit_code([("MUST", Outcome.FAIL), ("MUST", Outcome.ERROR)], 2) is ExitCode.MUST_FAILED
    assert exit_code([("MUST", Outcome.PASS)], 0) is ExitCode.NOT_DECIDED
    assert exit_code([("SHOULD", Outcome.ERROR)], 1) is ExitCode.NOT_DECIDED
    assert exit_code([("MUST", Outcome.INCONCLUSIVE)], 1) is ExitCode.NOT_DECIDED
    assert exit_code([("SHOULD", Outcome.INCONCLUSIVE)], 1) is ExitCode.OK


def test_void_checks_make_a_void_verdict_below_failures_and_errors() -> None:
    from conformance.outcomes import CheckOutcome, ExitCode, Outcome, exit_code, grade

    assert grade("MUST", [CheckOutcome.PASSED, CheckOutcome.VOID]) is Outcome.VOID
    assert grade("MUST", [CheckOutcome.VOID, CheckOutcome.INCONCLUSIVE]) is Outcome.VOID
    assert grade("MUST", [CheckOutcome.VOID, CheckOutcome.ERROR]) is Outcome.ERROR
    assert grade("SHOULD", [CheckOutcome.VOID, CheckOutcome.FAILED]) is Outcome.NON_STRICT
    assert exit_code([("MUST", Outcome.PASS), ("SHOULD", Outcome.VOID)], 3) is ExitCode.NOT_DECIDED
    assert exit_code([("MUST", Outcome.FAIL), ("MUST", Outcome.VOID)], 3) is ExitCode.MUST_FAILED


@pytest.mark.parametrize(
    ("level", "basis", "expected"),
    [
        ("MUST", "stated", Outcome.FAIL),
        ("MUST", "inferred", Outcome.DISPUTED),
        ("MUST", "observed", Outcome.DISPUTED),
        ("SHOULD", "inferred", Outcome.NON_STRICT),
        ("MAY", "observed", Outcome.OPTIONAL_ABSENT),
    ],
)
def test_only_a_stated_must_fails_outright(level: str, basis: str, expected: Outcome) -> None:
    assert grade(level, [C.PASSED, C.FAILED], basis) is expected
    assert grade(level, [C.PASSED], basis) is Outcome.PASS


def test_a_disputed_must_fails_the_run_only_when_strict() -> None:
    verdicts = [("MUST", Outcome.PASS), ("MUST", Outcome.DISPUTED)]
    assert exit_code(verdicts, 2) is ExitCode.OK
    assert exit_code(verdicts, 2, strict=True) is ExitCode.MUST_FAILED


@pytest.mark.parametrize("found", [C.PASSED, C.FAILED])
def test_a_requirement_that_is_not_graded_is_reported_whatever_its_checks_found(
    found: C,
) -> None:
    assert grade("MAY", [C.PASSED, found], "observed", graded=False) is (Outcome.REPORTED)
    assert exit_code([("MAY", Outcome.REPORTED)], 1) is ExitCode.OK


def test_a_requirement_that_is_not_graded_still_shows_that_nothing_was_observed() -> None:
    assert grade("MAY", [C.ERROR], graded=False) is Outcome.ERROR
    assert grade("MAY", [C.INCONCLUSIVE], graded=False) is Outcome.INCONCLUSIVE
