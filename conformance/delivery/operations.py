"""The operations of the delivery model, as data.

A run of the model is a list of operations. The same list drives the target (``driver``), is
printed when a run fails, and is saved as a regression case that replays it as a plain check.
Names are symbolic (``c0`` is a connection slot, ``private1`` a channel slot), so a list means
the same thing on every run and every server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal

from ..errors import UsageError

__all__ = [
    "Batch",
    "BatchItem",
    "Check",
    "ClientEvent",
    "Connect",
    "Disconnect",
    "Operation",
    "Query",
    "Subscribe",
    "Trigger",
    "Unsubscribe",
    "channel_kind",
    "operation_from_dict",
    "operations_from_list",
    "operations_to_list",
]

ChannelKind = Literal["public", "private", "presence"]
CHANNEL_KINDS: tuple[ChannelKind, ...] = ("public", "private", "presence")


def channel_kind(slot: str) -> ChannelKind:
    """The kind of a channel slot, from its name (``private1`` is a private channel)."""
    for kind in CHANNEL_KINDS:
        if slot.startswith(kind) and slot[len(kind) :].isdigit():
            return kind
    raise UsageError(f"not a channel slot: {slot!r} (expected e.g. public0, private1, presence0)")


def _is_conn(slot: object) -> bool:
    return isinstance(slot, str) and slot.startswith("c") and slot[1:].isdigit()


@dataclass(frozen=True)
class Operation:
    """One step. ``kind`` is its name in YAML and in the rule weights."""

    kind: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        args: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or value is False or (f.name == "count" and value == 1):
                continue
            if isinstance(value, tuple):
                value = [v.to_dict() if isinstance(v, BatchItem) else v for v in value]
            args[f.name] = value
        return {self.kind: args}

    def describe(self) -> str:
        args = self.to_dict()[self.kind]
        inner = ", ".join(f"{k}={v}" for k, v in args.items())
        return f"{self.kind}({inner})"


@dataclass(frozen=True)
class Connect(Operation):
    kind: ClassVar[str] = "connect"
    conn: str


@dataclass(frozen=True)
class Disconnect(Operation):
    kind: ClassVar[str] = "disconnect"
    conn: str


@dataclass(frozen=True)
class Subscribe(Operation):
    """``auth`` is ``valid`` or ``invalid`` (a signature made with a wrong secret); ``racing``
    publishes one event on the channel while the subscription is still in flight."""

    kind: ClassVar[str] = "subscribe"
    conn: str
    channel: str
    auth: Literal["valid", "invalid"] = "valid"
    racing: bool = False


@dataclass(frozen=True)
class Unsubscribe(Operation):
    kind: ClassVar[str] = "unsubscribe"
    conn: str
    channel: str
    racing: bool = False


@dataclass(frozen=True)
class Trigger(Operation):
    """``count`` events published one after another (a burst when more than one), each to all
    of ``channels``, excluding connection ``exclude`` when given."""

    kind: ClassVar[str] = "trigger"
    channels: tuple[str, ...]
    exclude: str | None = None
    count: int = 1


@dataclass(frozen=True)
class BatchItem:
    channel: str
    exclude: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, **({"exclude": self.exclude} if self.exclude else {})}


@dataclass(frozen=True)
class Batch(Operation):
    kind: ClassVar[str] = "batch"
    items: tuple[BatchItem, ...]


@dataclass(frozen=True)
class ClientEvent(Operation):
    kind: ClassVar[str] = "client_event"
    conn: str
    channel: str


@dataclass(frozen=True)
class Query(Operation):
    """The HTTP API's view of a channel: ``occupied``, counts, and a presence channel's users."""

    kind: ClassVar[str] = "query"
    channel: str


@dataclass(frozen=True)
class Check(Operation):
    """A barrier, then every invariant on everything observed so far."""

    kind: ClassVar[str] = "check"


OPERATION_TYPES: dict[str, type[Operation]] = {
    t.kind: t
    for t in (
        Connect,
        Disconnect,
        Subscribe,
        Unsubscribe,
        Trigger,
        Batch,
        ClientEvent,
        Query,
        Check,
    )
}


def _conn(value: Any, where: str) -> str:
    if not _is_conn(value):
        raise UsageError(f"{where}: {value!r} is not a connection slot (c0, c1, ...)")
    text: str = value
    return text


def _channel(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise UsageError(f"{where}: {value!r} is not a channel slot")
    channel_kind(value)
    return value


def operation_from_dict(step: Mapping[str, Any]) -> Operation:
    """One YAML step back into an operation; a clear error for anything malformed."""
    if not isinstance(step, Mapping) or len(step) != 1:
        raise UsageError(f"a step is a mapping with one key (the operation): {step!r}")
    ((kind, raw),) = step.items()
    if kind not in OPERATION_TYPES:
        raise UsageError(f"unknown operation {kind!r} (known: {', '.join(OPERATION_TYPES)})")
    where = f"step {kind}"
    if raw is not None and not isinstance(raw, Mapping):
        raise UsageError(f"{where}: its arguments are a mapping, not {raw!r}")
    args = dict(raw or {})
    try:
        if kind == "connect":
            op: Operation = Connect(_conn(args.pop("conn", None), where))
        elif kind == "disconnect":
            op = Disconnect(_conn(args.pop("conn", None), where))
        elif kind == "subscribe":
            auth = args.pop("auth", "valid")
            if auth not in ("valid", "invalid"):
                raise UsageError(f"{where}: auth must be valid or invalid, not {auth!r}")
            op = Subscribe(
                _conn(args.pop("conn", None), where),
                _channel(args.pop("channel", None), where),
                auth,
                bool(args.pop("racing", False)),
            )
        elif kind == "unsubscribe":
            op = Unsubscribe(
                _conn(args.pop("conn", None), where),
                _channel(args.pop("channel", None), where),
                bool(args.pop("racing", False)),
            )
        elif kind == "trigger":
            channels = args.pop("channels", None)
            if not isinstance(channels, Sequence) or isinstance(channels, str) or not channels:
                raise UsageError(f"{where}: channels must be a non-empty list")
            exclude = args.pop("exclude", None)
            count = args.pop("count", 1)
            if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                raise UsageError(f"{where}: count must be a positive whole number")
            op = Trigger(
                tuple(_channel(c, where) for c in channels),
                None if exclude is None else _conn(exclude, where),
                count,
            )
        elif kind == "batch":
            items = args.pop("items", None)
            if not isinstance(items, Sequence) or not items:
                raise UsageError(f"{where}: items must be a non-empty list")
            parsed = []
            for item in items:
                if not isinstance(item, Mapping):
                    raise UsageError(f"{where}: an item is a mapping: {item!r}")
                extra = set(item) - {"channel", "exclude"}
                if extra:
                    raise UsageError(
                        f"{where}: unknown item key(s) {', '.join(sorted(map(str, extra)))}"
                    )
                exclude = item.get("exclude")
                parsed.append(
                    BatchItem(
                        _channel(item.get("channel"), where),
                        None if exclude is None else _conn(exclude, where),
                    )
                )
            op = Batch(tuple(parsed))
        elif kind == "client_event":
            op = ClientEvent(
                _conn(args.pop("conn", None), where), _channel(args.pop("channel", None), where)
            )
        elif kind == "query":
            op = Query(_channel(args.pop("channel", None), where))
        else:
            op = Check()
    except TypeError as exc:
        raise UsageError(f"{where}: {exc}") from None
    if args:
        raise UsageError(f"{where}: unknown argument(s) {', '.join(sorted(map(str, args)))}")
    return op


def operations_from_list(steps: Any) -> list[Operation]:
    if not isinstance(steps, list) or not steps:
        raise UsageError("steps must be a non-empty list of operations")
    return [operation_from_dict(step) for step in steps]


def operations_to_list(ops: Sequence[Operation]) -> list[dict[str, Any]]:
    return [op.to_dict() for op in ops]
