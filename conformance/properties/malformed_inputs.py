"""Malformed input for the robustness properties: what a broken or hostile client might send.

Inputs are small frozen descriptions with a clipped ``repr`` (a counterexample stays readable
even when the payload is megabytes); the payload itself is built when the input is drawn. Each
kind names one way of being wrong, so a report can say which kinds a run exercised.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from ..errors import UsageError

__all__ = [
    "HTTP_KINDS",
    "KNOWN_PUSHER_EVENTS",
    "WS_FRAME_KINDS",
    "WS_TEXT_KINDS",
    "HttpInput",
    "WsInput",
    "at_least_one",
    "http_input_strategy",
    "ws_input_strategy",
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


def at_least_one(parts: Sequence[st.SearchStrategy[Any]]) -> st.SearchStrategy[tuple[Any, ...]]:
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
        # Correctly signed, but with a value no server may accept. A wrong auth_key or an
        # unknown auth_version are left out: refusing those is HTTP-AUTH-06 (SHOULD) and
        # HTTP-AUTH-07 (unverifiable), not a robustness MUST.
        signed_garbage = st.one_of(
            garbage_timestamps.map(lambda t: (("auth_timestamp", t),)),
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
