"""Malformed input for the robustness properties: what a broken or hostile client might send.

Inputs are small frozen descriptions with a clipped ``repr`` (a counterexample stays readable
even when the payload is megabytes); the payload itself is built when the input is drawn. Each
kind names one way of being wrong, so a report can say which kinds a run exercised.

This module holds what both transports share: the kinds, the input types and the building
blocks of their strategies. The strategy of each kind is in ``malformed_ws_inputs`` and
``malformed_http_inputs``, one named function per kind, looked up by kind there.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

__all__ = [
    "HTTP_KINDS",
    "KNOWN_PUSHER_EVENTS",
    "NON_STRINGS",
    "SCALARS",
    "UTF8_TEXT",
    "WS_FRAME_KINDS",
    "WS_TEXT_KINDS",
    "HttpInput",
    "WsInput",
    "at_least_one",
    "compact_json",
    "is_json",
    "nest",
]

WS_TEXT_KINDS = (
    "non_json",
    "not_object",
    "missing_event",
    "wrong_types",
    "unknown_pusher_event",
    "subscribe_without_channel",
    "nested",
    "lone_surrogate",
)
#: Frames a server may refuse at the WebSocket level (RFC 6455 7.4.1 close codes).
WS_FRAME_KINDS = ("binary", "huge", "very_deep")
HTTP_KINDS = (
    "bad_json",
    "wrong_content_type",
    "missing_fields",
    "wrong_types",
    "oversized",
    "deep_nesting",
    "bad_signing",
    "lone_surrogate",
)
KNOWN_PUSHER_EVENTS = frozenset(
    {"pusher:ping", "pusher:pong", "pusher:subscribe", "pusher:unsubscribe", "pusher:signin"}
)
_CLIP = 160


def _clip(value: str | bytes) -> str:
    text = repr(value)
    if len(text) <= _CLIP:
        return text
    return f"{text[:_CLIP]}... ({len(value)} {'bytes' if isinstance(value, bytes) else 'chars'})"


@dataclass(frozen=True)
class WsInput:
    """One malformed WebSocket message: a text frame (``str``) or a binary one (``bytes``)."""

    kind: str
    payload: str | bytes = field(repr=False)
    note: str = ""

    @property
    def frame_level(self) -> bool:
        return self.kind in WS_FRAME_KINDS

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Hypothesis's pretty printer would otherwise print every field, megabytes included."""
        printer.text(repr(self))

    def __repr__(self) -> str:
        note = f" {self.note}" if self.note else ""
        return f"<{self.kind}{note}: {_clip(self.payload)}>"


@dataclass(frozen=True)
class HttpInput:
    """One malformed ``POST /apps/{id}/events``. The query is signed correctly at send time,
    then ``auth`` applies: a value replaces (``None`` drops) a parameter before signing, and an
    ``auth_signature`` value replaces the signature itself. ``may_accept``: a 2xx is legal too
    (a well-formed body under a wrong content type, an escaped lone surrogate)."""

    kind: str
    body: bytes = field(repr=False)
    content_type: str = "application/json"
    auth: tuple[tuple[str, str | None], ...] = ()
    may_accept: bool = False
    note: str = ""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def __repr__(self) -> str:
        parts = [self.kind]
        if self.note:
            parts.append(self.note)
        if self.content_type != "application/json":
            parts.append(f"content-type {self.content_type!r}")
        if self.auth:
            parts.append(f"auth {dict(self.auth)!r}"[:_CLIP])
        return f"<{' '.join(parts)}: body {_clip(self.body)}>"


# -- building blocks of the strategies ------------------------------------------------------


def compact_json(value: Any) -> str:
    """JSON as a client library would send it (no spaces, non-ASCII as is)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


#: Text without lone surrogates (a WebSocket text frame must be valid UTF-8).
UTF8_TEXT = st.text(st.characters(codec="utf-8"), max_size=200)
#: JSON values that are not containers, short strings included.
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8"), max_size=20)
)
#: JSON values of any type but string: what a field that must be a string is given instead.
NON_STRINGS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=5), SCALARS, max_size=3),
)


def nest(depth: int, shape: str, leaf: str = "0") -> str:
    """``depth`` levels of arrays or objects, built as text (no recursion on either side)."""
    if shape == "array":
        return "[" * depth + leaf + "]" * depth
    return '{"a":' * depth + leaf + "}" * depth


def at_least_one(parts: Sequence[st.SearchStrategy[Any]]) -> st.SearchStrategy[tuple[Any, ...]]:
    """One optional input per category, never none at all: every category shows up in most
    examples, and shrinking can drop the ones a failure does not need."""
    return st.tuples(*[st.none() | part for part in parts]).filter(
        lambda inputs: any(item is not None for item in inputs)
    )
