"""Exceptions, one per way a run or a check can end other than by passing.

The split between ``CheckFailed`` and ``PreconditionFailed`` is what lets a broken server fail
only the requirement it breaks: a check whose set-up step does not hold is inconclusive, because
that set-up is itself a requirement checked elsewhere.
"""

from __future__ import annotations

__all__ = [
    "CheckFailed",
    "CheckOverBudget",
    "ConformanceError",
    "HarnessError",
    "PreconditionFailed",
    "SpecError",
    "TargetError",
    "TargetUnreachable",
    "UsageError",
]


class ConformanceError(Exception):
    """Root of every error the suite raises on purpose."""


class UsageError(ConformanceError):
    """The user asked for something impossible (bad flag, missing file). Exit status 2."""


class SpecError(UsageError):
    """A spec file is invalid. Exit status 2."""


class TargetUnreachable(ConformanceError):
    """Nothing answers at the target's address. Exit status 3."""


class HarnessError(ConformanceError):
    """The suite itself could not do its job (for example the bundled server did not start)."""


class CheckFailed(ConformanceError):
    """The target broke the rule under test: the check fails."""


class PreconditionFailed(ConformanceError):
    """A set-up step did not hold, so the rule could not be tested: the check is inconclusive."""


class TargetError(ConformanceError):
    """The target misbehaved at the transport level (refused a connection mid-run, timed out a
    request): the check is an error, not evidence about the rule."""


class CheckOverBudget(BaseException):
    """A check spent its time budget: the target is too slow for it at this timeout multiplier.

    A ``BaseException`` on purpose: raised inside a hypothesis example, it must end the
    exploration at once instead of being shrunk like a counterexample."""

    def __init__(self, budget: float) -> None:
        super().__init__(f"the check used up its time budget of {budget:.0f} s")
        self.budget = budget
