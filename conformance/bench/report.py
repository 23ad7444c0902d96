"""A bench run for people and machines: the console table (rich), ``bench.md`` (the same table
in Markdown, for the README to quote) and ``bench.json`` (schemas/bench.schema.json).

Every view is built from the same rows, so the console and the files never disagree. Beside each
phase's figures stand the CPU that the server and the load generator used, and the loss and
duplicates seen: a figure means little until the reader knows which side ran out of CPU.
"""

from __future__ import annotations

import dataclasses
import os
import platform
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from .. import __version__
from .figures import (
    Direction,
    better_direction,
    format_cpu,
    format_figure,
    label,
    ordered_figures,
    short,
)
from .model import BenchSettings, BenchTarget, PhaseResult
from .servers import REFERENCE_NAME, SOKETI_NAME

__all__ = [
    "FORMAT_VERSION",
    "BenchRun",
    "Ratio",
    "Row",
    "console_table",
    "outcome_code",
    "ratios",
    "run_headline",
    "table_rows",
    "to_json",
    "to_markdown",
]

FORMAT_VERSION = 1

#: Within this much of 1.0 a ratio is called the same: runs on a shared machine drift by that.
SAME_WITHIN = 0.05


@dataclass(frozen=True)
class BenchRun:
    """Everything a run measured: the results of each target (by its name, in phase order)."""

    settings: BenchSettings
    targets: tuple[BenchTarget, ...]
    results: Mapping[str, tuple[PhaseResult, ...]]
    started: str
    seconds: float
    notes: tuple[str, ...] = field(default=())

    def pair(self) -> tuple[str, str] | None:
        """The reference server and Soketi, when both were measured: ratios are always
        reference / Soketi."""
        if REFERENCE_NAME in self.results and SOKETI_NAME in self.results:
            return REFERENCE_NAME, SOKETI_NAME
        return None

    def phases(self) -> list[str]:
        seen: dict[str, None] = {}
        for results in self.results.values():
            seen.update((result.phase, None) for result in results)
        return list(seen)

    def result(self, target: str, phase: str) -> PhaseResult | None:
        return next((r for r in self.results.get(target, ()) if r.phase == phase), None)


@dataclass(frozen=True)
class Ratio:
    """One figure of the reference server over Soketi's, and what that means."""

    phase: str
    figure: str
    reference: float | None
    other: float | None
    ratio: float | None
    better_is: Direction
    verdict: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _verdict(ratio: float | None, better_is: Direction) -> str:
    if ratio is None:
        return "not compared"
    if abs(ratio - 1.0) <= SAME_WITHIN:
        return "same (within 5%)"
    if (ratio > 1.0) == (better_is == "higher"):
        return "better"
    return "worse"


def ratios(run: BenchRun) -> list[Ratio]:
    """reference / Soketi for every figure that has a direction, in table order."""
    pair = run.pair()
    if pair is None:
        return []
    found = []
    for phase in run.phases():
        both = [r for r in (run.result(pair[0], phase), run.result(pair[1], phase)) if r]
        for figure in ordered_figures(phase, both):
            direction = better_direction(figure)
            if direction is None:
                continue
            ours, theirs = (
                r.figures.get(figure) if r is not None else None
                for r in (run.result(pair[0], phase), run.result(pair[1], phase))
            )
            ratio = ours / theirs if ours is not None and theirs else None
            found.append(
                Ratio(phase, figure, ours, theirs, ratio, direction, _verdict(ratio, direction))
            )
    return found


@dataclass(frozen=True)
class Row:
    """One line of the table, already formatted: the console and the Markdown print it."""

    phase: str
    figure: str
    values: tuple[str, ...]
    ratio: str = ""
    better_is: str = ""
    verdict: str = ""


def table_rows(run: BenchRun) -> Iterator[Row]:
    """Per phase: its figures, then the CPU each side used, then loss and duplicates, then
    the load generator's notes and the phase's error, if any."""
    names = list(run.results)
    by_figure = {(r.phase, r.figure): r for r in ratios(run)}
    for phase in run.phases():
        per_target = [run.result(name, phase) for name in names]
        present = [r for r in per_target if r is not None]
        for figure in ordered_figures(phase, present):
            values = tuple(
                format_figure(figure, r.figures.get(figure)) if r is not None else "—"
                for r in per_target
            )
            compared = by_figure.get((phase, figure))
            yield Row(
                phase,
                label(phase, figure),
                values,
                ratio=_ratio_text(compared),
                better_is=compared.better_is if compared else "",
                verdict=compared.verdict if compared else "",
            )
        yield Row(
            phase,
            "CPU server / load gen",
            tuple(_cpu_pair(r) for r in per_target),
        )
        yield Row(
            phase,
            "loss / duplicates",
            tuple(f"{r.loss:,} / {r.duplicates:,}" if r else "—" for r in per_target),
        )
        if any(r.notes for r in present):
            yield Row(phase, "notes", tuple("; ".join(r.notes) if r else "" for r in per_target))
        if any(r.error for r in present):
            yield Row(
                phase,
                "error",
                tuple(short(r.error) if r and r.error else "" for r in per_target),
            )


def _cpu_pair(result: PhaseResult | None) -> str:
    """Server / load generator; with the busiest load-generator process, since one process
    at 100% is a limit however far the sum is from the cores there are."""
    if result is None:
        return "—"
    text = f"{format_cpu(result.server_cpu_percent)} / {format_cpu(result.loadgen_cpu_percent)}"
    by_process = result.loadgen_cpu_by_process
    if len(by_process) > 1:
        busiest = max(by_process, key=lambda name: by_process[name])
        text += f" ({busiest} {format_cpu(by_process[busiest])})"
    return text


def _ratio_text(compared: Ratio | None) -> str:
    if compared is None:
        return ""
    return "—" if compared.ratio is None else f"{compared.ratio:.2f}x"


def _columns(run: BenchRun) -> list[str]:
    columns = ["phase", "figure", *run.results]
    if run.pair() is not None:
        columns += ["reference / soketi", "better is", "reference is"]
    return columns


def _cells(run: BenchRun, row: Row) -> list[str]:
    cells = [row.phase, row.figure, *row.values]
    if run.pair() is not None:
        cells += [row.ratio, row.better_is, row.verdict]
    return cells


def console_table(run: BenchRun) -> Table:
    table = Table()
    for column in _columns(run):
        table.add_column(column, overflow="fold")
    last = None
    for row in table_rows(run):
        if last is not None and row.phase != last:
            table.add_section()
        cells = _cells(run, row)
        if row.phase == last:
            cells[0] = ""
        if row.verdict == "worse":
            cells[-1] = f"[red]{cells[-1]}[/]"
        if row.figure == "loss / duplicates" and any(v not in ("0 / 0", "—") for v in row.values):
            cells[2 : 2 + len(row.values)] = [f"[bold red]{v}[/]" for v in row.values]
        table.add_row(*cells)
        last = row.phase
    return table


def _machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count() or 0,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def run_headline(run: BenchRun) -> str:
    """What the run was: its phases, the machine, the load generator, how long it took."""
    machine = _machine()
    return (
        f"{len(run.phases())} phase(s) on {machine['cores']} core(s),"
        f" {run.settings.workers} load-generator worker(s), {run.seconds:.0f} s"
    )


def to_markdown(run: BenchRun) -> str:
    machine = _machine()
    lines = [
        "# conformance bench",
        "",
        f"{run.started}; {machine['cores']} core(s), {machine['platform']}, Python"
        f" {machine['python']}; {run.settings.workers} load-generator worker(s);"
        f" {run.seconds:.0f} s.",
        "",
    ]
    for target in run.targets:
        lines.append(f"- {target.name}: {target.ws_url}")
    lines += [f"- note: {note}" for note in run.notes]
    lines.append("")
    columns = _columns(run)
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    last = None
    for row in table_rows(run):
        cells = _cells(run, row)
        if row.phase == last:
            cells[0] = ""
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        last = row.phase
    return "\n".join(lines) + "\n"


def _result_dict(result: PhaseResult) -> dict[str, Any]:
    data = dataclasses.asdict(result)
    data["notes"] = list(result.notes)
    return data


def to_json(run: BenchRun, exit_code: int) -> dict[str, Any]:
    settings = dataclasses.asdict(run.settings)
    settings["phases"] = list(run.settings.phases)
    data: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "tool": {"name": "pusher-conformance", "version": __version__},
        "started": run.started,
        "seconds": round(run.seconds, 3),
        "machine": _machine(),
        "settings": settings,
        # No credentials: the file is meant to be shared.
        "targets": [
            {
                "name": t.name,
                "ws_url": t.ws_url,
                "http_url": t.http_url,
                "server_pid": t.server_pid,
            }
            for t in run.targets
        ],
        "results": {
            name: [_result_dict(r) for r in results] for name, results in run.results.items()
        },
        "notes": list(run.notes),
        "exit_code": exit_code,
    }
    pair = run.pair()
    if pair is not None:
        data["comparison"] = {
            "reference": pair[0],
            "other": pair[1],
            "same_within": SAME_WITHIN,
            "ratios": [r.as_dict() for r in ratios(run)],
        }
    return data


def outcome_code(results: Mapping[str, Sequence[PhaseResult]]) -> int:
    """0 when every phase was measured without loss or duplicates, 1 otherwise."""
    flawed = any(r.loss or r.duplicates or r.error for phases in results.values() for r in phases)
    return 1 if flawed else 0
