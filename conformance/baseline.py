"""Baselines: the deviations a team accepts for its server, each with its reason, so a run
fails only on what is new and says what has been fixed.

A baseline file (YAML) names requirements and why their deviation is accepted::

    target: soketi-1.6.1            # what it was written for (shown, not enforced)
    deviations:
      RECON-01:
        outcome: FAIL               # optional: accept only this outcome
        reason: Soketi closes with a code but no reason text

Pure: loading checks the file against the specs as a whole (one line naming the file, the
requirement and the field), and ``compare`` sorts a run's verdicts into new, still expected and
fixed deviations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError
from .outcomes import Outcome
from .spec import load_yaml

__all__ = [
    "DEVIATIONS",
    "Baseline",
    "BaselineComparison",
    "ExpectedDeviation",
    "compare",
    "load_baseline",
]

#: Outcomes that are a deviation from the spec: what a baseline may accept. PASS and
#: OPTIONAL_ABSENT are not deviations, NOT_RUN is no evidence either way.
DEVIATIONS = frozenset(
    {
        Outcome.FAIL,
        Outcome.DISPUTED,
        Outcome.NON_STRICT,
        Outcome.INCONCLUSIVE,
        Outcome.ERROR,
        Outcome.VOID,
    }
)

_FILE_KEYS = {"target", "deviations"}
_ENTRY_KEYS = {"outcome", "reason"}


@dataclass(frozen=True)
class ExpectedDeviation:
    requirement: str
    reason: str
    #: Only this outcome is accepted; None: any deviation.
    outcome: Outcome | None = None

    def accepts(self, outcome: Outcome) -> bool:
        return outcome in DEVIATIONS and (self.outcome is None or outcome is self.outcome)


@dataclass(frozen=True)
class Baseline:
    source: str
    target: str | None
    deviations: Mapping[str, ExpectedDeviation]


@dataclass(frozen=True)
class Deviation:
    requirement: str
    level: str
    outcome: Outcome
    #: The baseline's reason, for an expected or a fixed one; for a new one whose outcome the
    #: baseline did not accept, what the baseline expected.
    reason: str = ""


@dataclass(frozen=True)
class BaselineComparison:
    source: str
    target: str | None
    #: Deviations the baseline does not accept: the only ones that fail the run.
    new: tuple[Deviation, ...]
    expected: tuple[Deviation, ...]
    #: Accepted deviations that are gone: the requirement now passes (or is optional-absent).
    fixed: tuple[Deviation, ...]
    #: Accepted deviations whose requirement did not run (not selected, or no check ran).
    unchecked: tuple[str, ...]

    @property
    def exempt(self) -> frozenset[str]:
        """Requirement ids whose verdicts the exit code does not count."""
        return frozenset(d.requirement for d in self.expected)


def load_baseline(path: str | Path, known: Iterable[str]) -> Baseline:
    """Read and check a baseline file; ``known``: the requirement ids of the specs."""
    source = Path(path)
    name = source.name
    try:
        raw = load_yaml(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read the baseline {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # a YAML error of any kind is the file's fault
        raise UsageError(f"{name}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, Mapping):
        raise UsageError(f"{name}: a baseline is a mapping with 'deviations'")
    unknown = sorted(str(k) for k in set(raw) - _FILE_KEYS)
    if unknown:
        known = ", ".join(sorted(_FILE_KEYS))
        raise UsageError(f"{name}: unknown field(s) {', '.join(unknown)} (known: {known})")
    target = raw.get("target")
    if target is not None and not isinstance(target, str):
        raise UsageError(f"{name}: target must be a string, got {target!r}")
    entries = raw.get("deviations", {})
    if not isinstance(entries, Mapping):
        raise UsageError(f"{name}: deviations must map requirement ids to a reason")
    ids = set(known)
    deviations: dict[str, ExpectedDeviation] = {}
    for requirement, entry in entries.items():
        deviations[str(requirement)] = _entry(name, str(requirement), entry, ids)
    return Baseline(str(path), target, deviations)


def _entry(name: str, requirement: str, entry: object, ids: set[str]) -> ExpectedDeviation:
    where = f"{name}: {requirement}"
    if requirement not in ids:
        raise UsageError(f"{where}: no such requirement in the specs (see `conformance list`)")
    if not isinstance(entry, Mapping):
        raise UsageError(f"{where}: give a mapping with a reason (and optionally an outcome)")
    unknown = sorted(str(k) for k in set(entry) - _ENTRY_KEYS)
    if unknown:
        raise UsageError(f"{where}: unknown field(s) {', '.join(unknown)} (known: outcome, reason)")
    reason = entry.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise UsageError(f"{where}: every accepted deviation needs a reason")
    outcome = entry.get("outcome")
    if outcome is None:
        return ExpectedDeviation(requirement, reason.strip())
    allowed = sorted(o.value for o in DEVIATIONS)
    if outcome not in allowed:
        raise UsageError(f"{where}: outcome must be one of {', '.join(allowed)}, got {outcome!r}")
    return ExpectedDeviation(requirement, reason.strip(), Outcome(outcome))


def compare(baseline: Baseline, verdicts: Iterable[tuple[str, str, Outcome]]) -> BaselineComparison:
    """Sort a run's (requirement id, level, outcome) verdicts against the baseline."""
    new: list[Deviation] = []
    expected: list[Deviation] = []
    fixed: list[Deviation] = []
    ran: set[str] = set()
    for requirement, level, outcome in verdicts:
        if outcome is Outcome.NOT_RUN:
            continue
        ran.add(requirement)
        accepted = baseline.deviations.get(requirement)
        if outcome in DEVIATIONS:
            if accepted is not None and accepted.accepts(outcome):
                expected.append(Deviation(requirement, level, outcome, accepted.reason))
            else:
                why = (
                    f"the baseline accepts {accepted.outcome.value} only"
                    if accepted is not None and accepted.outcome is not None
                    else ""
                )
                new.append(Deviation(requirement, level, outcome, why))
        elif accepted is not None:
            fixed.append(Deviation(requirement, level, outcome, accepted.reason))
    unchecked = tuple(sorted(set(baseline.deviations) - ran))
    return BaselineComparison(
        baseline.source, baseline.target, tuple(new), tuple(expected), tuple(fixed), unchecked
    )
