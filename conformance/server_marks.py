"""Dynamic coverage: what the bundled reference server says its code paths served in a run.

The server marks the code paths that implement a requirement with the requirement ids
(``serves("PROTO-CONN-05")`` in ``reference_server/``); started with ``--serves-file PATH``
it counts each mark's hits and appends one JSON line to PATH with every mark and its count,
on SIGUSR1 or else at exit (a server restarted by a check appends a line as it exits, the
next one on SIGUSR1). Before it builds the report the suite sends SIGUSR1 to the bundled
server, waits for the line and reads the file here; the stop that follows drains the server
uncounted. It never imports the server: the file is the whole interface.

What the counts can and cannot say: checks run side by side, so a hit is not tied to the
check that caused it. A requirement is *exercised* when a mark claiming it was hit at least
once, by any check. A requirement whose checks ran but whose marks were never hit is
suspicious: its checks may not reach the code that implements it. A mark never hit is server
code no check of the run reached (expected for requirements outside a ``--check``
selection).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .outcomes import CheckOutcome

__all__ = [
    "MARKS_FILE",
    "DynamicCoverage",
    "ServerMark",
    "ServerMarks",
    "dynamic_coverage",
    "read_marks",
]

#: The file in the report directory the bundled server appends its marks to.
MARKS_FILE = "server-marks.jsonl"


@dataclass(frozen=True)
class ServerMark:
    """One marked code path (``file:function``), the ids it claims and its hits in the run."""

    location: str
    ids: tuple[str, ...]
    hits: int


@dataclass(frozen=True)
class ServerMarks:
    """The marks of every server process of the run, hits added up."""

    marks: tuple[ServerMark, ...]
    #: Server processes that wrote a line (a restart adds one).
    processes: int
    #: Why the file could not be read, if it could not (``marks`` is then empty).
    problem: str | None = None


def _mark(entry: Any) -> tuple[str, tuple[str, ...], int]:
    if not isinstance(entry, dict):
        raise ValueError("a mark is not an object")
    location, ids, hits = entry.get("location"), entry.get("ids"), entry.get("hits")
    if not isinstance(location, str) or not isinstance(hits, int) or hits < 0:
        raise ValueError("a mark lacks a location or a hit count")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise ValueError(f"mark {location}: ids must be a non-empty list of strings")
    return location, tuple(ids), hits


def read_marks(path: Path) -> ServerMarks:
    """The marks in ``path``, one line per server process, hits added up per mark (in the
    order the first line lists them). A missing, empty or malformed file gives no marks and
    a ``problem`` saying why, so the report says so instead of claiming no coverage."""
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as exc:
        return ServerMarks((), 0, f"cannot read {path.name}: {exc.strerror or exc}")
    if not lines:
        return ServerMarks((), 0, f"{path.name} is empty: the server wrote no marks")
    totals: dict[tuple[str, tuple[str, ...]], int] = {}
    try:
        for number, line in enumerate(lines, 1):
            data = json.loads(line)
            marks = data.get("marks") if isinstance(data, dict) else None
            if not isinstance(marks, list):
                raise ValueError(f"line {number} holds no list of marks")
            for entry in marks:
                location, ids, hits = _mark(entry)
                totals[(location, ids)] = totals.get((location, ids), 0) + hits
    except ValueError as exc:
        return ServerMarks((), 0, f"{path.name}: {exc}")
    marks = tuple(ServerMark(location, ids, hits) for (location, ids), hits in totals.items())
    return ServerMarks(marks, len(lines))


@dataclass(frozen=True)
class DynamicCoverage:
    """What the marks say about one run, in the specs' requirement order."""

    #: Requirement id -> hits of the marks claiming it, for every id a mark claims.
    hits: dict[str, int]
    #: Requirement id -> the marks claiming it (``file:function``).
    claimed_by: dict[str, tuple[str, ...]]
    #: Claimed by a mark that was hit at least once.
    exercised: tuple[str, ...]
    #: Checks of it ran, marks claim it, and no such mark was hit: suspicious.
    checked_not_reached: tuple[str, ...]
    #: Checks of it ran but no mark claims it (the server says nothing about where).
    checked_unclaimed: tuple[str, ...]
    #: Marks no input of the run reached.
    marks_never_hit: tuple[ServerMark, ...]
    #: Ids marks claim that no requirement of the specs has.
    unknown_ids: tuple[str, ...]
    marks: int
    processes: int
    problem: str | None = None


def _ran(outcomes: Iterable[CheckOutcome]) -> bool:
    """Whether a check reached the target: skipped (capability absent) and void (the target
    was dead) checks did not."""
    return any(o not in (CheckOutcome.SKIPPED, CheckOutcome.VOID) for o in outcomes)


def dynamic_coverage(
    marks: ServerMarks,
    requirement_ids: Iterable[str],
    outcomes: Mapping[str, Iterable[CheckOutcome]],
) -> DynamicCoverage:
    """Put the marks beside the requirements (in spec order) and the outcomes of the checks
    that ran, by requirement id."""
    order = list(requirement_ids)
    hits: dict[str, int] = {}
    claimed: dict[str, list[str]] = {}
    for mark in marks.marks:
        for requirement in mark.ids:
            hits[requirement] = hits.get(requirement, 0) + mark.hits
            claimed.setdefault(requirement, []).append(mark.location)
    known = set(order)
    ran = [rid for rid in order if _ran(outcomes.get(rid, ()))]
    return DynamicCoverage(
        hits={rid: hits[rid] for rid in order if rid in hits},
        claimed_by={rid: tuple(claimed[rid]) for rid in order if rid in claimed},
        exercised=tuple(rid for rid in order if hits.get(rid, 0) > 0),
        checked_not_reached=tuple(rid for rid in ran if rid in hits and hits[rid] == 0),
        checked_unclaimed=tuple(rid for rid in ran if rid not in hits),
        marks_never_hit=tuple(m for m in marks.marks if m.hits == 0),
        unknown_ids=tuple(sorted(set(hits) - known)),
        marks=len(marks.marks),
        processes=marks.processes,
        problem=marks.problem,
    )
