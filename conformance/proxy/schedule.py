"""Fault schedules: which fault, when after a connection is accepted, on which connections.

A schedule is data (a YAML file) turned into frozen values here, checked as a whole so that a
mistake is one line naming the file, the step and the field. When a fault is due is decided by
pure code (``ScheduleCursor.due``), so the timing logic is tested without sockets or sleeps; the
proxy only asks the cursor what is due and sleeps until the next step.

The seed makes a schedule replayable: every random draw (the latency jitter) comes from a
``random.Random`` derived from the seed, the connection's index and the direction, so one
connection's draws never depend on how another's traffic happened to interleave.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from .faults import Fault, ProxyScheduleError, fault_from_params

__all__ = [
    "Injection",
    "Schedule",
    "ScheduleCursor",
    "Step",
    "load_schedule",
    "schedule_from_mapping",
    "seeded_rng",
]

_SCHEDULE_KEYS = {"name", "description", "seed", "steps"}
_STEP_KEYS = {"at", "fault", "connections"}


def seeded_rng(seed: int, connection: int, direction: str) -> random.Random:
    """The random source of one direction of one connection (a string seed is hashed the same
    way in every process, unlike ``hash()``)."""
    return random.Random(f"pusher-conformance-proxy/{seed}/{connection}/{direction}")


@dataclass(frozen=True)
class Step:
    #: Its position in the file, from 1 (what error messages and the log call it).
    number: int
    #: Seconds after the connection was accepted.
    at: float
    fault: Fault
    #: Accept-order indexes of the connections it applies to; None: all of them.
    connections: tuple[int, ...] | None = None

    def applies_to(self, index: int) -> bool:
        return self.connections is None or index in self.connections


@dataclass(frozen=True)
class Injection:
    """A step that has come due for one connection."""

    step: int
    at: float
    fault: Fault


@dataclass(frozen=True)
class Schedule:
    name: str
    steps: tuple[Step, ...]
    seed: int = 0
    description: str = ""

    def with_seed(self, seed: int | None) -> Schedule:
        """The same schedule with the seed overridden (``--seed``); None keeps the file's."""
        return self if seed is None else replace(self, seed=seed)

    def cursor(self, index: int) -> ScheduleCursor:
        """The steps for the connection accepted ``index``-th, in time order (file order for
        steps due at the same time)."""
        mine = sorted((s for s in self.steps if s.applies_to(index)), key=lambda s: s.at)
        return ScheduleCursor(tuple(mine))


class ScheduleCursor:
    """Hands out each step once, when the connection's age reaches its time."""

    def __init__(self, steps: tuple[Step, ...]) -> None:
        self._steps = steps
        self._next = 0

    @property
    def next_at(self) -> float | None:
        """When the next step is due (seconds after accept); None when none is left."""
        return self._steps[self._next].at if self._next < len(self._steps) else None

    def due(self, elapsed: float) -> list[Injection]:
        """Every step due by ``elapsed`` seconds after accept that was not handed out yet."""
        out: list[Injection] = []
        while self._next < len(self._steps) and self._steps[self._next].at <= elapsed:
            step = self._steps[self._next]
            out.append(Injection(step.number, step.at, step.fault))
            self._next += 1
        return out


def _step(raw: object, number: int) -> Step:
    if not isinstance(raw, Mapping):
        raise ProxyScheduleError(f"must be a mapping, got {raw!r}")
    if "at" not in raw:
        raise ProxyScheduleError("missing field 'at' (seconds after accept)")
    if "fault" not in raw:
        raise ProxyScheduleError("missing field 'fault'")
    at = raw["at"]
    if isinstance(at, bool) or not isinstance(at, int | float) or at < 0:
        raise ProxyScheduleError(f"field 'at' must be a number of seconds >= 0, got {at!r}")
    name = raw["fault"]
    if not isinstance(name, str):
        raise ProxyScheduleError(f"field 'fault' must be a fault name, got {name!r}")
    connections = _connections(raw.get("connections", "all"))
    params = {k: v for k, v in raw.items() if k not in _STEP_KEYS}
    bad_keys = [k for k in params if not isinstance(k, str)]
    if bad_keys:
        raise ProxyScheduleError(f"field names must be strings, got {bad_keys[0]!r}")
    return Step(number, float(at), fault_from_params(name, params), connections)


def _connections(value: object) -> tuple[int, ...] | None:
    if value == "all":
        return None
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value)
    ):
        raise ProxyScheduleError(
            f"field 'connections' must be 'all' or a non-empty list of indexes >= 0 "
            f"(accept order, from 0), got {value!r}"
        )
    return tuple(sorted(set(value)))


def schedule_from_mapping(data: object, *, source: str = "<schedule>") -> Schedule:
    """Check a parsed schedule as a whole; the first thing wrong is raised as one line that
    starts with ``source`` and, inside a step, the step's number (from 1)."""
    if not isinstance(data, Mapping):
        raise ProxyScheduleError(f"{source}: must hold a mapping with name and steps")
    unknown = sorted(str(k) for k in set(data) - _SCHEDULE_KEYS)
    if unknown:
        raise ProxyScheduleError(
            f"{source}: unknown field(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_SCHEDULE_KEYS))})"
        )
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ProxyScheduleError(f"{source}: field 'name' must be a non-empty string, got {name!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ProxyScheduleError(
            f"{source}: field 'description' must be a string, got {description!r}"
        )
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ProxyScheduleError(f"{source}: field 'seed' must be a whole number, got {seed!r}")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ProxyScheduleError(
            f"{source}: field 'steps' must be a non-empty list, got {raw_steps!r}"
        )
    steps: list[Step] = []
    for number, raw in enumerate(raw_steps, start=1):
        try:
            steps.append(_step(raw, number))
        except ProxyScheduleError as exc:
            fault = raw.get("fault") if isinstance(raw, Mapping) else None
            what = f" ({fault})" if isinstance(fault, str) else ""
            raise ProxyScheduleError(f"{source}: step {number}{what}: {exc}") from None
    return Schedule(name=name, steps=tuple(steps), seed=seed, description=description)


def load_schedule(path: str | Path, *, seed: int | None = None) -> Schedule:
    """Read and check a schedule file; ``seed`` overrides the file's."""
    file = Path(path)
    if not file.is_file():
        raise ProxyScheduleError(f"schedule file not found: {file}")
    try:
        data: Any = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ProxyScheduleError(f"{file}: not valid YAML: {first_line}") from None
    return schedule_from_mapping(data, source=str(file)).with_seed(seed)
