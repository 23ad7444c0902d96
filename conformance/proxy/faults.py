"""The faults the proxy can inject, as values.

Each fault is a frozen dataclass checked when it is built, so a schedule file, a check and the
command line get the same one-line error for the same mistake before any socket is touched. The
proxy (server.py) decides what a fault does to a live connection; this module only says which
faults exist and which parameters they take.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeAlias

from ..errors import UsageError

__all__ = [
    "DIRECTIONS",
    "FAULT_TYPES",
    "Bandwidth",
    "CutAfter",
    "Direction",
    "Fault",
    "HalfOpen",
    "Latency",
    "ProxyScheduleError",
    "Reset",
    "Resume",
    "Stall",
    "WsClose",
    "fault_from_params",
]

#: ``up``: client to server; ``down``: server to client.
Direction: TypeAlias = Literal["up", "down", "both"]
DIRECTIONS: tuple[str, ...] = ("up", "down", "both")

#: The longest close reason a close frame can carry (125 payload bytes minus the code).
MAX_CLOSE_REASON_BYTES = 123


class ProxyScheduleError(UsageError):
    """A fault or a schedule is invalid. A usage error: the command line exits with status 2."""


def _fail(fault: str, field: str, value: object, expected: str) -> ProxyScheduleError:
    return ProxyScheduleError(f"{fault}: {field} must be {expected}, got {value!r}")


def _number(fault: str, field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _fail(fault, field, value, "a number >= 0")


def _whole(fault: str, field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(fault, field, value, "a whole number >= 0")


def _direction(fault: str, value: object, allowed: tuple[str, ...] = DIRECTIONS) -> None:
    if value not in allowed:
        raise _fail(fault, "direction", value, f"one of {', '.join(allowed)}")


class _Fault:
    """What every fault shares: its schedule name and its parameters for the log."""

    name: ClassVar[str]

    def params(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload, no-any-return]


@dataclass(frozen=True)
class Latency(_Fault):
    """Delay every chunk by ``ms`` plus or minus up to ``jitter_ms`` (uniform, never below 0).
    Chunks keep their order: a chunk never overtakes one that arrived before it. ``Latency(0)``
    lifts it."""

    name: ClassVar[str] = "latency"
    ms: float
    jitter_ms: float = 0
    direction: Direction = "both"

    def __post_init__(self) -> None:
        _number(self.name, "ms", self.ms)
        _number(self.name, "jitter_ms", self.jitter_ms)
        _direction(self.name, self.direction)

    def draw(self, rng: random.Random) -> float:
        """One chunk's delay in seconds; the jitter comes from ``rng`` so a seed replays it."""
        jitter = rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0
        return max(0.0, self.ms + jitter) / 1000


@dataclass(frozen=True)
class Bandwidth(_Fault):
    """Forward at most ``bytes_per_second`` in each chosen direction; 0 lifts the limit."""

    name: ClassVar[str] = "bandwidth"
    bytes_per_second: int
    direction: Direction = "both"

    def __post_init__(self) -> None:
        _whole(self.name, "bytes_per_second", self.bytes_per_second)
        _direction(self.name, self.direction)


@dataclass(frozen=True)
class Stall(_Fault):
    """Stop forwarding in a direction; the bytes are held in order until ``Resume``."""

    name: ClassVar[str] = "stall"
    direction: Direction = "both"

    def __post_init__(self) -> None:
        _direction(self.name, self.direction)


@dataclass(frozen=True)
class Resume(_Fault):
    """Lift every stall (not a half-open connection: that one is dead for good)."""

    name: ClassVar[str] = "resume"


@dataclass(frozen=True)
class Reset(_Fault):
    """Close both sockets at once with a TCP RST (SO_LINGER 0), dropping anything in flight."""

    name: ClassVar[str] = "reset"


@dataclass(frozen=True)
class HalfOpen(_Fault):
    """Forward nothing more either way and send no FIN: both peers see a silent, open socket,
    as behind a NAT that forgot the connection."""

    name: ClassVar[str] = "half_open"


@dataclass(frozen=True)
class CutAfter(_Fault):
    """Forward exactly ``bytes`` more bytes in one direction, then reset both sockets."""

    name: ClassVar[str] = "cut_after"
    bytes: int
    direction: Literal["up", "down"]

    def __post_init__(self) -> None:
        _whole(self.name, "bytes", self.bytes)
        _direction(self.name, self.direction, ("up", "down"))


@dataclass(frozen=True)
class WsClose(_Fault):
    """At the next frame boundary, give the client a close frame as if from the server, and the
    server a (masked) close 1001 as if from the client. Codes the RFC reserves (1004-1006, 1015,
    1016-2999) are allowed on purpose: a compliant client must then fail the connection."""

    name: ClassVar[str] = "ws_close"
    code: int
    reason: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.code, bool) or not isinstance(self.code, int):
            raise _fail(self.name, "code", self.code, "a whole number from 1000 to 4999")
        if not 1000 <= self.code <= 4999:
            raise _fail(self.name, "code", self.code, "a whole number from 1000 to 4999")
        if not isinstance(self.reason, str):
            raise _fail(self.name, "reason", self.reason, "a string")
        if len(self.reason.encode("utf-8")) > MAX_CLOSE_REASON_BYTES:
            raise _fail(
                self.name, "reason", self.reason, f"at most {MAX_CLOSE_REASON_BYTES} UTF-8 bytes"
            )


Fault: TypeAlias = Latency | Bandwidth | Stall | Resume | Reset | HalfOpen | CutAfter | WsClose

FAULT_TYPES: dict[str, type[Fault]] = {
    cls.name: cls for cls in (Latency, Bandwidth, Stall, Resume, Reset, HalfOpen, CutAfter, WsClose)
}


def fault_from_params(name: str, params: dict[str, Any]) -> Fault:
    """Build a fault from its schedule name and parameters, refusing unknown or missing ones by
    name (the dataclass's own TypeError would name Python's view of it, not the user's)."""
    cls = FAULT_TYPES.get(name)
    if cls is None:
        raise ProxyScheduleError(
            f"unknown fault {name!r} (known: {', '.join(sorted(FAULT_TYPES))})"
        )
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - set(fields))
    if unknown:
        known = ", ".join(fields) or "none"
        raise ProxyScheduleError(f"{name}: unknown field(s) {', '.join(unknown)} (known: {known})")
    missing = [
        f.name
        for f in fields.values()
        if f.name not in params
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ProxyScheduleError(f"{name}: missing field(s) {', '.join(missing)}")
    return cls(**params)
