"""Grading: from check outcomes to a requirement's verdict, and from verdicts to an exit code.

Pure functions, so the grading table in docs/spec-format.md is tested directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum, StrEnum

__all__ = ["CheckOutcome", "ExitCode", "Outcome", "exit_code", "grade"]


class CheckOutcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"
    SKIPPED = "skipped"
    #: Not judged: the target died before or while the check ran (the death is the finding).
    VOID = "void"


class Outcome(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    #: A MUST broken whose reading the docs do not state in words (inferred or observed basis):
    #: reported with the known variants, and not counted against the exit code unless --strict.
    DISPUTED = "DISPUTED"
    NON_STRICT = "NON_STRICT"
    OPTIONAL_ABSENT = "OPTIONAL_ABSENT"
    #: A requirement marked ``graded: false``: behaviour the docs leave open, recorded (its
    #: figures) and never counted for or against the target.
    REPORTED = "REPORTED"
    INCONCLUSIVE = "INCONCLUSIVE"
    ERROR = "ERROR"
    VOID = "VOID"
    NOT_RUN = "NOT_RUN"


class ExitCode(int, Enum):
    OK = 0
    MUST_FAILED = 1
    USAGE = 2
    NOT_DECIDED = 3


_FAILED_BY_LEVEL = {
    "MUST": Outcome.FAIL,
    "SHOULD": Outcome.NON_STRICT,
    "MAY": Outcome.OPTIONAL_ABSENT,
}


def grade(
    level: str, checks: Iterable[CheckOutcome], basis: str = "stated", *, graded: bool = True
) -> Outcome:
    """One requirement's verdict from its checks' outcomes (see the table in the spec format).

    Only a MUST the docs state in words fails outright: an implementer told FAIL on our reading
    of the docs would stop trusting every other FAIL. A requirement that is not graded is
    REPORTED once its checks ran, whatever they found: the docs give nothing to grade against."""
    outcomes = list(checks)
    if not outcomes:
        return Outcome.NOT_RUN
    if not graded and all(o in (CheckOutcome.PASSED, CheckOutcome.FAILED) for o in outcomes):
        return Outcome.REPORTED
    if CheckOutcome.FAILED in outcomes:
        if level == "MUST" and basis != "stated":
            return Outcome.DISPUTED
        return _FAILED_BY_LEVEL[level]
    if CheckOutcome.ERROR in outcomes:
        return Outcome.ERROR
    if CheckOutcome.VOID in outcomes:
        return Outcome.VOID
    if CheckOutcome.INCONCLUSIVE in outcomes:
        return Outcome.INCONCLUSIVE
    if all(o is CheckOutcome.SKIPPED for o in outcomes):
        return Outcome.OPTIONAL_ABSENT
    return Outcome.PASS


def exit_code(
    verdicts: Iterable[tuple[str, Outcome]], executed_checks: int, *, strict: bool = False
) -> ExitCode:
    """0 when every MUST passed; 1 when a MUST failed (or, with ``strict``, was disputed); 3 when
    the run decided nothing (no check executed), hit an error, or left a MUST inconclusive."""
    pairs = list(verdicts)
    failing = (Outcome.FAIL, Outcome.DISPUTED) if strict else (Outcome.FAIL,)
    if any(outcome in failing for _, outcome in pairs):
        return ExitCode.MUST_FAILED
    if executed_checks == 0:
        return ExitCode.NOT_DECIDED
    if any(outcome in (Outcome.ERROR, Outcome.VOID) for _, outcome in pairs):
        return ExitCode.NOT_DECIDED
    if any(level == "MUST" and outcome is Outcome.INCONCLUSIVE for level, outcome in pairs):
        return ExitCode.NOT_DECIDED
    return ExitCode.OK
