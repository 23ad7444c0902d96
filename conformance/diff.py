"""``conformance diff OLD.json NEW.json``: what changed between two runs, requirement by
requirement, read from their results.json.

Each change is worse, better or sideways ("changed") by the outcome's severity (a pass and an
absent option are as good as each other; an inconclusive verdict is worse than either, a
failed SHOULD or an error worse again, a failed MUST worst); a requirement that ran in one run
only is "not run" in the other, and one in one run's specs only is added or removed. Exit
status: 0 when nothing got worse, 1 when something did, 2 when a file is not a results.json
this suite can read.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .outcomes import Outcome
from .report.results_json import read as load_results

__all__ = ["Change", "RunDiff", "add_diff_arguments", "diff_command", "diff_runs"]

_SEVERITY = {
    Outcome.PASS: 0,
    Outcome.OPTIONAL_ABSENT: 0,
    Outcome.REPORTED: 0,
    Outcome.INCONCLUSIVE: 1,
    Outcome.NON_STRICT: 2,
    Outcome.ERROR: 2,
    Outcome.VOID: 2,
    Outcome.DISPUTED: 2,
    Outcome.FAIL: 3,
}


@dataclass(frozen=True)
class Change:
    requirement: str
    level: str
    title: str
    old: str | None
    new: str | None

    @property
    def direction(self) -> str:
        if self.old is None:
            return "added"
        if self.new is None:
            return "removed"
        if Outcome.NOT_RUN.value in (self.old, self.new):
            return "not run"
        old, new = _severity(self.old), _severity(self.new)
        if old is None or new is None or old == new:
            return "changed"
        return "worse" if new > old else "better"


@dataclass(frozen=True)
class RunDiff:
    old: Mapping[str, Any]
    new: Mapping[str, Any]
    changes: tuple[Change, ...]
    unchanged: int

    @property
    def worse(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.direction == "worse")

    @property
    def specs_differ(self) -> bool:
        return bool(self.old["suite"].get("specs_sha256") != self.new["suite"].get("specs_sha256"))


def _severity(outcome: str) -> int | None:
    try:
        return _SEVERITY.get(Outcome(outcome))
    except ValueError:
        return None


def diff_runs(old: Mapping[str, Any], new: Mapping[str, Any]) -> RunDiff:
    before = {r["id"]: r for r in old["requirements"]}
    after = {r["id"]: r for r in new["requirements"]}
    changes: list[Change] = []
    unchanged = 0
    for requirement in sorted(before.keys() | after.keys()):
        a, b = before.get(requirement), after.get(requirement)
        a_outcome = a["outcome"] if a else None
        b_outcome = b["outcome"] if b else None
        if a_outcome == b_outcome:
            unchanged += 1
            continue
        entry = b or a
        assert entry is not None
        changes.append(
            Change(requirement, entry["level"], str(entry.get("title", "")), a_outcome, b_outcome)
        )
    return RunDiff(old, new, tuple(changes), unchanged)


def add_diff_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", metavar="OLD.json", help="the earlier run's results.json")
    parser.add_argument("new", metavar="NEW.json", help="the later run's results.json")
    parser.add_argument("--json", action="store_true", help="the changes as JSON")


def _describe(data: Mapping[str, Any]) -> str:
    target = data.get("target", {})
    run = data.get("run", {})
    suite = data["suite"]
    return (
        f"{target.get('name', '?')} ({target.get('ws_url', '?')}), suite"
        f" {suite.get('version', '?')}, specs {str(suite.get('specs_sha256'))[:12]},"
        f" started {run.get('started_at', '?')}"
    )


def diff_command(args: argparse.Namespace) -> int:
    result = diff_runs(load_results(args.old), load_results(args.new))
    if args.json:
        print(
            json.dumps(
                {
                    "old": _describe(result.old),
                    "new": _describe(result.new),
                    "specs_differ": result.specs_differ,
                    "unchanged": result.unchanged,
                    "changes": [{**c.__dict__, "direction": c.direction} for c in result.changes],
                },
                indent=2,
            )
        )
        return 1 if result.worse else 0
    print(f"old: {_describe(result.old)}")
    print(f"new: {_describe(result.new)}")
    if result.specs_differ:
        print("note: the specs differ between the runs: some changes may be the suite's")
    width = max((len(c.requirement) for c in result.changes), default=0)
    for change in result.changes:
        print(
            f"  {change.requirement:<{width}}  {change.level:<6}  {change.old or '-':>15} -> "
            f"{change.new or '-':<15}  {change.direction:<7}  {change.title}"
        )
    counts = {d: sum(1 for c in result.changes if c.direction == d) for d in _ORDER}
    summary = ", ".join(f"{n} {d}" for d, n in counts.items() if n) or "no change"
    print(f"{len(result.changes)} changed ({summary}); {result.unchanged} unchanged")
    return 1 if result.worse else 0


_ORDER = ("worse", "better", "changed", "not run", "added", "removed")
