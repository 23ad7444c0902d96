"""Robustness: malformed WebSocket and HTTP input is refused or ignored, the server stays alive,
and nobody else notices.

Each example sends a handful of malformed inputs (at most one per selected category, so that
every category is exercised in every run and a failure shrinks to the one input that matters),
then checks what the requirement asserts:

- ``sender``: the sending connection only got ``pusher:error`` (or nothing, or pongs), still
  answers ``pusher:ping`` and its own subscription still delivers; for frame-level input
  (binary, huge, very deep) a clean close with 1003/1007/1008/1009 is also legal;
- ``liveness``: a fresh connection is greeted and its ``pusher:ping`` answered;
- ``isolation``: bystanders opened once per run (one subscribed to a public and a private
  channel, one subscribed to nothing) get each marker exactly once and nothing else;
- ``status`` (HTTP): each request is answered with a 4xx within the response timeout, and what it
  asked to publish reaches nobody;
- ``service`` (HTTP): afterwards a correctly signed trigger on the same keep-alive connection is
  answered 200 and delivered exactly once, and a fresh connection is greeted.

The inputs are small descriptions with a clipped ``repr`` (so a counterexample stays readable
even when the payload is megabytes); the payload is built when the input is drawn. Every input
actually sent is counted in ``ctx.stats["malformed_inputs"]``, which lands in ``results.json``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import secrets
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from hypothesis import strategies as st

from ..context import CheckContext, nonce, unique_channel
from ..errors import CheckFailed, PreconditionFailed, TargetError, UsageError
from ..httpclient import ApiClient, ApiResponse
from ..wsclient import Frame, RawConnection
from .registry import explore, prop

__all__ = [
    "HTTP_KINDS",
    "WS_FRAME_KINDS",
    "WS_TEXT_KINDS",
    "HttpInput",
    "WsInput",
    "http_input_strategy",
    "ws_input_strategy",
]

#: Text messages that are malformed as Pusher messages (each at most a few KB).
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
#: Close codes RFC 6455 7.4.1 gives for data an endpoint will not take: unsupported data,
#: invalid payload, policy violation, message too big.
FRAME_CLOSE_CODES = frozenset({1003, 1007, 1008, 1009})
#: What a sender may receive besides its markers: the error report, pongs, heartbeat pings.
SENDER_ALLOWED_EVENTS = frozenset({"pusher:error", "pusher:pong", "pusher:ping"})
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


# -- strategies ------------------------------------------------------------------------------


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


#: Text without lone surrogates (a WebSocket text frame must be valid UTF-8).
_TEXT = st.text(st.characters(codec="utf-8"), max_size=200)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8"), max_size=20)
)
_NON_STRINGS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(_SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=5), _SCALARS, max_size=3),
)


def _nest(depth: int, shape: str, leaf: str = "0") -> str:
    """``depth`` levels of arrays or objects, built as text (no recursion on either side)."""
    if shape == "array":
        return "[" * depth + leaf + "]" * depth
    return '{"a":' * depth + leaf + "}" * depth


def _nested_messages(
    depths: st.SearchStrategy[int], kind: str, channels: Sequence[str], token: str
) -> st.SearchStrategy[WsInput]:
    def build(args: tuple[int, str, str]) -> WsInput:
        depth, shape, where = args
        inner = _nest(depth, shape)
        if where == "bare":
            text = inner
        elif where == "ping_data":
            text = '{"event":"pusher:ping","data":' + inner + "}"
        elif where == "event":
            text = '{"event":' + inner + ',"data":' + _dumps(token) + "}"
        elif where == "subscribe_channel":
            text = '{"event":"pusher:subscribe","data":{"channel":' + inner + "}}"
        else:  # client event data on a bystander channel
            text = (
                '{"event":"client-robustness","channel":'
                + _dumps(channels[0])
                + ',"data":'
                + inner
                + "}"
            )
        return WsInput(kind, text, f"{depth} levels of {shape}s in {where}")

    return st.tuples(
        depths,
        st.sampled_from(["array", "object"]),
        st.sampled_from(["bare", "ping_data", "event", "subscribe_channel", "client_data"]),
    ).map(build)


def ws_input_strategy(kind: str, channels: Sequence[str], token: str) -> st.SearchStrategy[WsInput]:
    """Malformed messages of one kind. ``channels`` are the bystanders' channels (so a server
    that acts on a malformed message would act where it shows); ``token`` marks the payloads."""
    public, private = channels[0], channels[1]
    any_channel = st.sampled_from(list(channels))
    if kind == "non_json":
        fixed = st.sampled_from(
            [
                "",
                " ",
                "{",
                "}",
                "[",
                '{"event":',
                '{"event":"pusher:ping"',
                '{"event":"pusher:ping",}',
                "{'event':'pusher:ping'}",
                '{"event" "pusher:ping"}',
                "pusher:ping",
                "undefined",
                "\x00",
                '{"event":"pusher:ping"}}',
                '{"event":"pusher:ping"} {"event":"pusher:ping"}',
                '{"event":"pusher:ping","data":{}} trailing',
            ]
        )
        text = fixed | _TEXT.filter(lambda s: not _is_json(s))
        return text.map(lambda t: WsInput(kind, t))
    if kind == "not_object":
        values = st.one_of(
            _SCALARS,
            st.lists(_SCALARS, max_size=4),
            st.just([{"event": "pusher:ping", "data": {}}]),
            st.just(_dumps({"event": "pusher:ping", "data": {}})),
        )
        return values.map(lambda v: WsInput(kind, _dumps(v)))
    if kind == "missing_event":
        keys = st.sampled_from(["Event", "EVENT", "event ", "evt", "name", "type", ""])
        body = st.fixed_dictionaries(
            {},
            optional={
                "data": st.one_of(st.just({"channel": public}), st.just(token), _SCALARS),
                "channel": any_channel,
            },
        )
        renamed = st.tuples(keys, st.sampled_from(sorted(KNOWN_PUSHER_EVENTS))).map(
            lambda kv: {kv[0]: kv[1], "data": {"channel": public}}
        )
        return (body | renamed).map(lambda v: WsInput(kind, _dumps(v)))
    if kind == "wrong_types":
        event_not_string = st.tuples(_NON_STRINGS, any_channel).map(
            lambda a: ("event", {"event": a[0], "channel": a[1], "data": token})
        )
        subscribe_data = _NON_STRINGS.filter(lambda v: not isinstance(v, dict)).map(
            lambda v: ("subscribe data", {"event": "pusher:subscribe", "data": v})
        )
        subscribe_channel = _NON_STRINGS.map(
            lambda v: ("subscribe channel", {"event": "pusher:subscribe", "data": {"channel": v}})
        )
        channel_in_list = any_channel.map(
            lambda c: ("subscribe channel", {"event": "pusher:subscribe", "data": {"channel": [c]}})
        )
        private_auth = _NON_STRINGS.filter(lambda v: v is not None).map(
            lambda v: (
                "private auth",
                {"event": "pusher:subscribe", "data": {"channel": private, "auth": v}},
            )
        )
        unsubscribe_channel = st.one_of(
            _NON_STRINGS, any_channel.map(lambda c: [c]), any_channel.map(lambda c: {"name": c})
        ).map(
            lambda v: (
                "unsubscribe channel",
                {"event": "pusher:unsubscribe", "data": {"channel": v}},
            )
        )
        signin = st.one_of(
            _NON_STRINGS.map(lambda v: {"event": "pusher:signin", "data": v}),
            st.tuples(_NON_STRINGS, _NON_STRINGS).map(
                lambda a: {"event": "pusher:signin", "data": {"auth": a[0], "user_data": a[1]}}
            ),
        ).map(lambda v: ("signin", v))
        client_channel = st.one_of(_NON_STRINGS, any_channel.map(lambda c: [c])).map(
            lambda v: (
                "client event channel",
                {"event": "client-robustness", "channel": v, "data": token},
            )
        )
        return st.one_of(
            event_not_string,
            subscribe_data,
            subscribe_channel,
            channel_in_list,
            private_auth,
            unsubscribe_channel,
            signin,
            client_channel,
        ).map(lambda a: WsInput(kind, _dumps(a[1]), a[0]))
    if kind == "unknown_pusher_event":
        names = st.one_of(
            st.from_regex(r"pusher:[a-z_]{1,24}", fullmatch=True).filter(
                lambda e: e not in KNOWN_PUSHER_EVENTS
            ),
            st.sampled_from(
                [
                    "pusher:error",
                    "pusher:connection_established",
                    "pusher:cache_miss",
                    "pusher:signin_success",
                    "pusher:PING",
                    "pusher:",
                    "pusher_internal:subscription_succeeded",
                    "pusher_internal:member_added",
                    "pusher_internal:member_removed",
                    "pusher_internal:subscription_count",
                ]
            ),
            st.from_regex(r"pusher_internal:[a-z_]{1,24}", fullmatch=True),
        )
        return st.tuples(names, any_channel).map(
            lambda a: WsInput(
                kind,
                _dumps({"event": a[0], "channel": a[1], "data": _dumps({"token": token})}),
            )
        )
    if kind == "subscribe_without_channel":
        values = st.sampled_from(
            [
                {"event": "pusher:subscribe"},
                {"event": "pusher:subscribe", "data": {}},
                {"event": "pusher:subscribe", "data": {"auth": "x:y"}},
                {"event": "pusher:subscribe", "data": {"channel": None}},
                {"event": "pusher:subscribe", "data": {"channel": ""}},
                {"event": "pusher:subscribe", "data": {"Channel": public}},
                {"event": "pusher:subscribe", "channel": public},
                {"event": "pusher:unsubscribe"},
                {"event": "pusher:unsubscribe", "data": {}},
            ]
        )
        return values.map(lambda v: WsInput(kind, _dumps(v)))
    if kind == "lone_surrogate":
        # Valid JSON (the surrogate is escaped) whose strings are not valid Unicode: a server
        # that echoes one in an error or relays it must not choke on encoding it.
        templates = st.sampled_from(
            [
                '{"event":"pusher:ping","data":"%s"}',
                '{"event":"pusher:%s"}',
                '{"event":"%s","channel":"' + public + '","data":"x"}',
                '{"event":"client-%s","channel":"' + public + '","data":"x"}',
                '{"event":"pusher:subscribe","data":{"channel":"%s"}}',
                '{"event":"pusher:subscribe","data":{"channel":"' + private + '","auth":"%s"}}',
            ]
        )
        surrogates = st.integers(0xD800, 0xDFFF).map(lambda c: f"\\u{c:04x}")
        return st.tuples(templates, surrogates).map(lambda a: WsInput(kind, a[0] % a[1]))
    if kind == "nested":
        return _nested_messages(st.integers(2, 1000), kind, channels, token)
    if kind == "very_deep":
        return _nested_messages(st.integers(1001, 100_000), kind, channels, token)
    if kind == "binary":
        return st.one_of(
            st.binary(max_size=64),
            st.just(_dumps({"event": "pusher:ping", "data": {}}).encode()),
            st.just(b"\xff\xfe\x00"),
        ).map(lambda b: WsInput(kind, b))
    if kind == "huge":

        def build(args: tuple[int, str]) -> WsInput:
            size, shape = args
            filler = "a" * size
            if shape == "ping":
                text = _dumps({"event": "pusher:ping", "data": filler})
            elif shape == "client_event":
                text = _dumps({"event": "client-robustness", "channel": public, "data": filler})
            elif shape == "garbage":
                text = filler
            else:
                text = "[" + "0," * (size // 2) + "0]"
            return WsInput(kind, text, f"{size} bytes, {shape}")

        return st.tuples(
            st.integers(1_000_000, 6_000_000),
            st.sampled_from(["ping", "client_event", "garbage", "array"]),
        ).map(build)
    raise UsageError(
        f"unknown WebSocket input kind {kind!r} "
        f"(known: {', '.join(WS_TEXT_KINDS + WS_FRAME_KINDS)})"
    )


def _at_least_one(parts: Sequence[st.SearchStrategy[Any]]) -> st.SearchStrategy[tuple[Any, ...]]:
    """One optional input per category, never none at all: every category shows up in most
    examples, and shrinking can drop the ones a failure does not need."""
    return st.tuples(*[st.none() | part for part in parts]).filter(
        lambda inputs: any(item is not None for item in inputs)
    )


def _event_body(
    channel: str, token: str, fields: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A trigger body, with ``fields`` replacing (``_DROP``: removing) some of its members."""
    body: dict[str, Any] = {"name": "robustness-refused", "channel": channel, "data": token}
    body.update(fields or {})
    return {k: v for k, v in body.items() if v is not _DROP}


_DROP: Any = object()


def http_input_strategy(
    kind: str, channels: Sequence[str], token: str
) -> st.SearchStrategy[HttpInput]:
    """Malformed ``POST /apps/{id}/events`` requests of one kind, publishing ``token`` to the
    bystanders' channels if anything were to accept them."""
    public = channels[0]
    any_channel = st.sampled_from(list(channels))
    if kind == "bad_json":
        good = _dumps(_event_body(public, token))
        texts = st.sampled_from(
            [
                good[:-1],
                good + "x",
                good + "}",
                good.replace('"', "'"),
                good.replace(",", ",,", 1),
                good[:-1] + ",}",
                "",
                "{",
                "null",
                "not json",
                good.replace(":", "=", 1),
                "/* comment */" + good,
            ]
        )
        raw = texts.map(str.encode) | st.just(good.encode()[:-2] + b'\xff"}')
        return raw.map(lambda b: HttpInput(kind, b))
    if kind == "wrong_content_type":
        types = st.sampled_from(
            [
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=robustness",
                "application/xml",
                "application/octet-stream",
                "image/png",
            ]
        )
        return st.tuples(types, any_channel).map(
            lambda a: HttpInput(
                kind,
                _dumps(_event_body(a[1], token)).encode(),
                content_type=a[0],
                may_accept=True,
            )
        )
    if kind == "missing_fields":
        drops = st.sets(st.sampled_from(["name", "data", "channel"]), min_size=1)
        return st.tuples(drops, any_channel).map(
            lambda a: HttpInput(
                kind,
                _dumps(_event_body(a[1], token, dict.fromkeys(a[0], _DROP))).encode(),
                note="without " + ", ".join(sorted(a[0])),
            )
        )
    if kind == "wrong_types":
        name = st.one_of(_NON_STRINGS, st.just("")).map(lambda v: ("name", {"name": v}))
        data = _NON_STRINGS.map(lambda v: ("data", {"data": v}))
        channel = st.one_of(_NON_STRINGS, any_channel.map(lambda c: [c])).map(
            lambda v: ("channel", {"channel": v})
        )
        channels_field = st.one_of(
            any_channel,
            st.just([]),
            st.lists(st.integers(), min_size=1, max_size=3),
            any_channel.map(lambda c: [c, 1]),
            any_channel.map(lambda c: [c] * 101),
            st.dictionaries(st.text(max_size=3), any_channel, min_size=1, max_size=2),
        ).map(lambda v: ("channels", {"channel": _DROP, "channels": v}))
        both = any_channel.map(lambda c: ("channel and channels", {"channels": [c]}))
        socket_id = st.one_of(
            _NON_STRINGS.filter(lambda v: v is not None),
            st.sampled_from(["", "abc", "1.2.3", "1.", ".1", "1 .2", "١٢٣.٤٥٦"]),
        ).map(lambda v: ("socket_id", {"socket_id": v}))
        return st.tuples(
            st.one_of(name, data, channel, channels_field, both, socket_id), any_channel
        ).map(
            lambda a: HttpInput(
                kind, _dumps(_event_body(a[1], token, a[0][1])).encode(), note=a[0][0]
            )
        )
    if kind == "oversized":

        def big(size: int) -> HttpInput:
            body = _dumps(_event_body(public, token + "a" * size)).encode()
            return HttpInput(kind, body, note=f"{len(body)} bytes")

        return st.integers(1_100_000, 6_000_000).map(big)
    if kind == "deep_nesting":

        def deep(args: tuple[int, str, str]) -> HttpInput:
            depth, shape, where = args
            inner = _nest(depth, shape)
            fields = {
                "name": '"robustness-refused"',
                "channel": _dumps(public),
                "data": _dumps(token),
            }
            fields[where] = inner
            text = "{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}"
            return HttpInput(kind, text.encode(), note=f"{depth} levels of {shape}s in {where}")

        return st.tuples(
            st.integers(2, 100_000),
            st.sampled_from(["array", "object"]),
            st.sampled_from(["name", "data", "channel"]),
        ).map(deep)
    if kind == "bad_signing":
        body = _dumps(_event_body(public, token)).encode()
        garbage_timestamps = st.one_of(
            st.sampled_from(["", "abc", "1e9", "-", "0x10", " 1", "1.5", "١٢٣٤٥٦٧٨٩٠", "NaN"]),
            st.integers(20, 6000).map(lambda n: "9" * n),
        )
        signed_garbage = st.one_of(
            garbage_timestamps.map(lambda t: (("auth_timestamp", t),)),
            st.sampled_from(["", "2.0", "1", "1.0 ", "0.1", "1.00"]).map(
                lambda v: (("auth_version", v),)
            ),
            st.one_of(st.just(""), st.text(max_size=40)).map(lambda k: (("auth_key", k),)),
            st.sampled_from(["", "0" * 32, "x" * 32, "d41d8cd98f00b204e9800998ecf8427e"]).map(
                lambda m: (("body_md5", m),)
            ),
        ).map(lambda auth: HttpInput(kind, body, auth=auth, note="signed garbage"))
        bad_signatures = st.one_of(
            st.sampled_from(["", "zz", "0" * 64, "g" * 64, "%", " "]),
            st.integers(65, 20_000).map(lambda n: "a" * n),
            st.text(max_size=70),
        ).map(lambda s: HttpInput(kind, body, auth=(("auth_signature", s),), note="bad signature"))
        missing = st.sets(
            st.sampled_from(["auth_key", "auth_timestamp", "auth_version", "auth_signature"]),
            min_size=1,
        ).map(
            lambda names: HttpInput(
                kind,
                body,
                auth=tuple((n, None) for n in sorted(names)),
                note="missing " + ", ".join(sorted(names)),
            )
        )
        return st.one_of(signed_garbage, bad_signatures, missing)
    if kind == "lone_surrogate":
        # Escaped lone surrogates in name or data: valid JSON, not valid Unicode. Accepting and
        # publishing (escaped) is legal, refusing with a 4xx too; a 5xx or a broken subscriber
        # is not.
        def surrogate(args: tuple[int, str, str]) -> HttpInput:
            code, where, channel = args
            escaped = f"\\u{code:04x}"
            fields = {
                "name": '"robustness-refused"',
                "channel": _dumps(channel),
                "data": _dumps(token),
            }
            fields[where] = fields[where][:-1] + escaped + '"'
            text = "{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}"
            return HttpInput(kind, text.encode(), may_accept=where != "channel", note=f"in {where}")

        return st.tuples(
            st.integers(0xD800, 0xDFFF), st.sampled_from(["name", "data", "channel"]), any_channel
        ).map(surrogate)
    raise UsageError(f"unknown HTTP input kind {kind!r} (known: {', '.join(HTTP_KINDS)})")


# -- running ---------------------------------------------------------------------------------


def _count(ctx: CheckContext, sent: int) -> None:
    ctx.stats["malformed_inputs"] = ctx.stats.get("malformed_inputs", 0) + sent


def _source_address(ctx: CheckContext) -> str | None:
    """A loopback source address of this check's own, when the target is on 127.0.0.1: a
    server that blocks the address a malformed frame came from then blocks this check only."""
    host = urlsplit(ctx.target.ws_url).hostname or ""
    try:
        if not ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).version != 4:
            return None
    except ValueError:
        return None
    return f"127.0.{zlib.crc32(ctx.check.full_id.encode()) % 250 + 2}.{secrets.randbelow(250) + 2}"


def _describe(frames: Sequence[Frame]) -> str:
    return "; ".join(f.describe() for f in frames[:3]) + (
        f" (and {len(frames) - 3} more)" if len(frames) > 3 else ""
    )


def _is_marker(frame: Frame, token: str) -> bool:
    return frame.event == "robustness-marker" and frame.parsed.get("data") == token


async def _await_markers(
    ctx: CheckContext, conn: RawConnection, channels: Sequence[str], token: str
) -> list[str]:
    """Wait (one response timeout in all) for the marker on each channel; return the channels
    it did not arrive on."""
    deadline = time.monotonic() + ctx.response_timeout
    missing = []
    for channel in channels:

        def wanted(frame: Frame, channel: str = channel) -> bool:
            return _is_marker(frame, token) and frame.parsed.get("channel") == channel

        if await conn.wait_for(wanted, max(0.0, deadline - time.monotonic())) is None:
            missing.append(channel)
    return missing


async def _pusher_ping(ctx: CheckContext, conn: RawConnection) -> bool:
    """Whether ``pusher:ping`` is answered with ``pusher:pong`` (False when closed)."""
    if conn.has_closed():
        return False
    try:
        await conn.send_json({"event": "pusher:ping", "data": {}})
    except CheckFailed:
        return False
    frame = await conn.wait_for(lambda f: f.event == "pusher:pong", ctx.response_timeout)
    return frame is not None


@dataclass
class _Stage:
    """The per-run fixtures: bystanders and their channels."""

    public: str
    private: str
    token: str
    source: str | None


async def _open_bystanders(ctx: CheckContext, stage: _Stage) -> None:
    await ctx.open("bystander")
    await ctx.subscribe("bystander", stage.public)
    await ctx.subscribe("bystander", stage.private, auth="signed")
    await ctx.open("idle")


async def _check_bystanders(ctx: CheckContext, stage: _Stage, token: str) -> None:
    """Each marker exactly once on the subscribed bystander; nothing else on either."""
    watcher, idle = ctx.connection("bystander"), ctx.connection("idle")
    for name, conn in (("bystander", watcher), ("idle", idle)):
        if conn.closed is not None:
            raise CheckFailed(f"the {name} connection was closed: {conn.closed.describe()}")
    missing = await _await_markers(ctx, watcher, [stage.public, stage.private], token)
    if missing:
        raise CheckFailed(
            f"the bystander's subscription to {', '.join(missing)} stopped delivering: "
            "the marker published after the malformed input never arrived"
        )
    for name, conn in (("bystander", watcher), ("idle", idle)):
        if not await _pusher_ping(ctx, conn) and not await conn.ws_ping(b"r", ctx.response_timeout):
            raise CheckFailed(f"the {name} connection stopped answering pings")
        stray = [f for f in conn.unconsumed() if f.event != "pusher:ping"]
        if stray:
            raise CheckFailed(
                f"the {name} connection received frames it should never see: {_describe(stray)}"
            )
        conn.consumed.update(f.index for f in conn.frames)


async def _probe(ctx: CheckContext, stage: _Stage) -> None:
    """A fresh connection is greeted and answers ``pusher:ping``."""
    try:
        conn = await ctx.connect("probe", local_address=stage.source)
    except TargetError as exc:
        raise CheckFailed(f"after the malformed input, a new connection failed: {exc}") from None
    try:
        if conn.closed is not None:
            raise CheckFailed(
                f"after the malformed input, a new connection was refused: {conn.closed.describe()}"
            )
        greeted = await conn.wait_for(
            lambda f: f.event == "pusher:connection_established", ctx.response_timeout
        )
        if greeted is None:
            raise CheckFailed(
                "after the malformed input, a new connection got no pusher:connection_established"
                + (f" ({conn.closed.describe()})" if conn.closed else "")
            )
        if not await _pusher_ping(ctx, conn):
            raise CheckFailed(
                "after the malformed input, a new connection's pusher:ping went unanswered"
            )
    finally:
        await conn.close()
        del ctx.connections["probe"]


async def _drain(ctx: CheckContext) -> None:
    """Start an example clean: whatever an earlier (perhaps failed) example left in flight to
    the bystanders has arrived after a ping round trip, and is set aside."""
    for name in ("bystander", "idle"):
        conn = ctx.connection(name)
        if not conn.has_closed() and not await _pusher_ping(ctx, conn):
            await conn.ws_ping(b"drain", ctx.response_timeout)
        conn.consumed.update(f.index for f in conn.frames)


def _retoken(item: Any, placeholder: str, token: str) -> Any:
    """The input with this example's token in place of the run's placeholder (same length),
    so that what leaks can be told apart from what an earlier example left behind."""
    if isinstance(item, WsInput):
        if isinstance(item.payload, str):
            return dataclasses.replace(item, payload=item.payload.replace(placeholder, token))
        return item
    return dataclasses.replace(item, body=item.body.replace(placeholder.encode(), token.encode()))


def _asserts(params: Mapping[str, Any], known: Sequence[str]) -> frozenset[str]:
    chosen = params.get("assert", list(known))
    if isinstance(chosen, str):
        chosen = [chosen]
    unknown = set(chosen) - set(known)
    if unknown or not chosen:
        raise UsageError(f"assert takes {', '.join(known)} (got {chosen!r})")
    return frozenset(chosen)


def _kinds(params: Mapping[str, Any], known: Sequence[str]) -> list[str]:
    kinds = list(params.get("kinds", list(known)))
    unknown = set(kinds) - set(known)
    if unknown or not kinds:
        raise UsageError(f"kinds takes {', '.join(known)} (got {kinds!r})")
    return kinds


@prop("ws_malformed_input", "kinds", "assert", "examples")
def ws_malformed_input(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    asserts = _asserts(params, ("sender", "liveness", "isolation"))
    kinds = _kinds(params, WS_TEXT_KINDS + WS_FRAME_KINDS)
    stage = _Stage(
        public=unique_channel("robustness-"),
        private=unique_channel("private-robustness-"),
        token="robustness-" + nonce(),
        source=_source_address(ctx),
    )
    ctx.run(_open_bystanders(ctx, stage))
    channels = [stage.public, stage.private]
    strategy = _at_least_one([ws_input_strategy(k, channels, stage.token) for k in kinds])

    async def go(inputs: tuple[WsInput | None, ...]) -> None:
        await _drain(ctx)
        token = "robustness-" + nonce()
        chosen = [_retoken(i, stage.token, token) for i in inputs if i is not None]
        sender = await ctx.connect("sender", local_address=stage.source)
        if (
            sender.has_closed()
            or await sender.wait_for(
                lambda f: f.event == "pusher:connection_established", ctx.response_timeout
            )
            is None
        ):
            raise PreconditionFailed("could not open the sending connection")
        await ctx.subscribe("sender", stage.public)
        sent = 0
        closed_by = None
        try:
            for item in chosen:
                if sender.has_closed():
                    break
                if item.frame_level:
                    closed_by = item
                sent += 1
                try:
                    if isinstance(item.payload, bytes):
                        await sender.send_binary(item.payload)
                    else:
                        await sender.send_text(item.payload)
                except CheckFailed:
                    break  # closed while this one was being written (e.g. 1009 on a huge one)
                if item.frame_level:
                    # One frame-level input at a time: a close it causes is seen before anything
                    # else is sent (no data races the close frame), and it is the suspect.
                    await _pusher_ping(ctx, sender)
        finally:
            _count(ctx, sent)
        # The server has read everything once the sender's ping is answered (or it closed).
        answered = await _pusher_ping(ctx, sender)
        if not answered and not sender.has_closed():
            await sender.wait_closed(0.2)
        if "sender" in asserts:
            await _check_sender(sender, closed_by, answered)
        if "liveness" in asserts:
            await _probe(ctx, stage)
        marker = nonce()
        await ctx.trigger("robustness-marker", marker, channels=channels)
        if "isolation" in asserts:
            await _check_bystanders(ctx, stage, marker)
        if "sender" in asserts and not sender.has_closed():
            missing = await _await_markers(ctx, sender, [stage.public], marker)
            if missing and not sender.has_closed():
                raise CheckFailed(
                    "the sender's own subscription stopped delivering after the malformed input"
                )
            await _pusher_ping(ctx, sender)
            await _check_sender_frames(sender)
        for name in ("bystander", "idle"):
            conn = ctx.connection(name)
            conn.consumed.update(f.index for f in conn.frames)
        await sender.close()

    def body(inputs: tuple[WsInput | None, ...]) -> None:
        ctx.run(go(inputs))

    explore(ctx, strategy, body, params)


async def _check_sender(sender: RawConnection, closed_by: WsInput | None, answered: bool) -> None:
    """``closed_by``: the last frame-level input sent (a close is legal only after one)."""
    if sender.has_closed():
        closed = sender.closed
        assert closed is not None
        if closed_by is None:
            raise CheckFailed(
                f"the server closed the connection after a malformed text message "
                f"({closed.describe()}); it should answer pusher:error or ignore it"
            )
        if not closed.clean or closed.code not in FRAME_CLOSE_CODES:
            raise CheckFailed(
                f"after {closed_by!r} the connection ended with {closed.describe()}; "
                f"legal: stay open, or a close frame with "
                f"{', '.join(map(str, sorted(FRAME_CLOSE_CODES)))}"
            )
        return
    if not answered:
        raise CheckFailed(
            "after the malformed input the connection stayed open but stopped answering pusher:ping"
        )
    await _check_sender_frames(sender)


async def _check_sender_frames(sender: RawConnection) -> None:
    """Everything left unconsumed (the markers were consumed once each) must be an error
    report, a pong or a heartbeat ping; a second marker shows up here too."""
    stray = [f for f in sender.unconsumed() if f.event not in SENDER_ALLOWED_EVENTS]
    if stray:
        raise CheckFailed(
            "the sender received something other than pusher:error in answer to malformed "
            f"input: {_describe(stray)}"
        )


# -- HTTP ------------------------------------------------------------------------------------


def _request(
    ctx: CheckContext, api: ApiClient, item: HttpInput
) -> tuple[list[tuple[str, str]], bytes]:
    """Sign the request, then apply the input's overrides (an ``auth_signature`` override
    replaces the correct signature; any other override is signed along)."""
    pairs = api.signed_query("POST", api.events_path(), item.body, auth=dict(item.auth))
    return pairs, item.body


@prop("http_malformed_request", "kinds", "assert", "examples")
def http_malformed_request(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    asserts = _asserts(params, ("status", "service"))
    kinds = _kinds(params, HTTP_KINDS)
    stage = _Stage(
        public=unique_channel("robustness-"),
        private=unique_channel("private-robustness-"),
        token="robustness-" + nonce(),
        source=None,
    )
    ctx.run(_open_bystanders(ctx, stage))
    channels = [stage.public, stage.private]
    strategy = _at_least_one([http_input_strategy(k, channels, stage.token) for k in kinds])
    # The malformed requests go over a session of their own, so that the markers (on the
    # check's usual session) do not share its keep-alive connection; ``service`` then probes
    # the malformed requests' own connection.
    attacker = ApiClient(ctx.target, ctx.transcript, ctx.response_timeout)

    async def send(item: HttpInput) -> ApiResponse | None:
        """The answer; None (``status`` fails on it) when none came in time."""
        pairs, body = _request(ctx, attacker, item)
        try:
            return await attacker.send(
                "POST", attacker.events_path(), pairs, body, content_type=item.content_type
            )
        except TargetError as exc:
            if "status" in asserts:
                raise CheckFailed(f"{item!r}: no HTTP answer ({exc})") from None
            return None

    async def go(inputs: tuple[HttpInput | None, ...]) -> None:
        await _drain(ctx)
        token = "robustness-" + nonce()
        chosen = [_retoken(i, stage.token, token) for i in inputs if i is not None]
        accepted = 0
        sent = 0
        try:
            for item in chosen:
                response = await send(item)
                sent += 1
                if response is None:
                    continue
                ok = 400 <= response.status < 500 or (
                    item.may_accept and 200 <= response.status < 300
                )
                if "status" in asserts and not ok:
                    legal = "a 4xx" + (" or a 2xx" if item.may_accept else "")
                    raise CheckFailed(
                        f"{item!r} was answered HTTP {response.status} "
                        f"(body {response.text[:120]!r}); expected {legal}"
                    )
                if 200 <= response.status < 300:
                    accepted += 1
        finally:
            _count(ctx, sent)
        watcher = ctx.connection("bystander")
        if "status" in asserts:
            marker = nonce()
            await ctx.trigger("robustness-marker", marker, channels=channels)
            if await _await_markers(ctx, watcher, channels, marker):
                raise PreconditionFailed("the marker after the malformed requests never arrived")
            await ctx.ping_barrier("bystander")
            leaked = [f for f in watcher.unconsumed() if token in str(f.raw)[:200_000]]
            if len(leaked) > accepted:
                raise CheckFailed(
                    f"a refused request was delivered anyway: {_describe(leaked)}"
                    if accepted == 0
                    else f"{len(leaked)} events arrived for {accepted} accepted requests: "
                    f"{_describe(leaked)}"
                )
        if "service" in asserts:
            probe = nonce()
            body = attacker.event_body("robustness-marker", probe, channels=channels)
            try:
                response = await attacker.request("POST", attacker.events_path(), body=body)
            except TargetError as exc:
                raise CheckFailed(
                    "after the malformed requests, a correctly signed trigger got no answer "
                    f"({exc})"
                ) from None
            if response.status != 200:
                raise CheckFailed(
                    "after the malformed requests, a correctly signed trigger on the same "
                    f"connection was answered HTTP {response.status}: {response.text[:120]!r}"
                )
            missing = await _await_markers(ctx, watcher, channels, probe)
            if missing:
                raise CheckFailed(
                    "after the malformed requests, a correctly signed trigger was answered 200 "
                    f"but never reached the subscriber of {', '.join(missing)}"
                )
            await ctx.ping_barrier("bystander")
            again = [f for f in watcher.unconsumed() if _is_marker(f, probe)]
            if again:
                raise CheckFailed(f"the trigger was delivered more than once: {_describe(again)}")
            await _probe(ctx, stage)
        watcher.consumed.update(f.index for f in watcher.frames)
        idle = ctx.connection("idle")
        idle.consumed.update(f.index for f in idle.frames)

    def body(inputs: tuple[HttpInput | None, ...]) -> None:
        ctx.run(go(inputs))

    try:
        explore(ctx, strategy, body, params)
    finally:
        ctx.run(attacker.aclose())
