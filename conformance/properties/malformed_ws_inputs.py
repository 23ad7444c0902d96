"""Malformed WebSocket messages, one strategy per kind, for ``ws_malformed_input``.

Every strategy takes the bystanders' channels (public first, then private) and the run's
token: a server that wrongly acts on a malformed message then acts where the bystanders would
see it, and what leaks carries the token.

The ci profile is seeded, so a strategy's combinators and their order decide which inputs a ci
run sends: reshaping one (even into an equivalent ``@composite``) changes the run's inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hypothesis import strategies as st

from ..errors import UsageError
from .malformed_inputs import (
    KNOWN_PUSHER_EVENTS,
    NON_STRINGS,
    SCALARS,
    UTF8_TEXT,
    WS_FRAME_KINDS,
    WS_TEXT_KINDS,
    WsInput,
    compact_json,
    is_json,
    nest,
)

__all__ = ["WS_INPUTS", "WsInputStrategy", "ws_input_strategy"]

#: How a kind's strategy is made: ``(channels, token) -> strategy``.
WsInputStrategy = Callable[[Sequence[str], str], st.SearchStrategy[WsInput]]

#: Near misses of JSON a hand-written client produces (truncated, single-quoted, doubled).
_NOT_QUITE_JSON = [
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

#: Events only a server may send, and near misses of the client's own.
_SERVER_ONLY_EVENTS = [
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


def non_json_messages(channels: Sequence[str], token: str) -> st.SearchStrategy[WsInput]:
    text = st.sampled_from(_NOT_QUITE_JSON) | UTF8_TEXT.filter(lambda s: not is_json(s))
    return text.map(lambda t: WsInput("non_json", t))


def not_object_messages(channels: Sequence[str], token: str) -> st.SearchStrategy[WsInput]:
    """JSON, but not an object: scalars, arrays, a whole message inside an array or a string."""
    values = st.one_of(
        SCALARS,
        st.lists(SCALARS, max_size=4),
        st.just([{"event": "pusher:ping", "data": {}}]),
        st.just(compact_json({"event": "pusher:ping", "data": {}})),
    )
    return values.map(lambda v: WsInput("not_object", compact_json(v)))


def messages_missing_event(channels: Sequence[str], token: str) -> st.SearchStrategy[WsInput]:
    """Objects without an ``event`` member: none at all, or the event under a near-miss key."""
    public = channels[0]
    keys = st.sampled_from(["Event", "EVENT", "event ", "evt", "name", "type", ""])
    body = st.fixed_dictionaries(
        {},
        optional={
            "data": st.one_of(st.just({"channel": public}), st.just(token), SCALARS),
            "channel": st.sampled_from(list(channels)),
        },
    )
    renamed = st.tuples(keys, st.sampled_from(sorted(KNOWN_PUSHER_EVENTS))).map(
        lambda kv: {kv[0]: kv[1], "data": {"channel": public}}
    )
    return (body | renamed).map(lambda v: WsInput("missing_event", compact_json(v)))


def wrong_type_messages(channels: Sequence[str], token: str) -> st.SearchStrategy[WsInput]:
    """Known events whose members have the wrong JSON type; the note says which member."""
    private = channels[1]
    any_channel = st.sampled_from(list(channels))
    event_not_string = st.tuples(NON_STRINGS, any_channel).map(
        lambda a: ("event", {"event": a[0], "channel": a[1], "data": token})
    )
    subscribe_data = NON_STRINGS.filter(lambda v: not isinstance(v, dict)).map(
        lambda v: ("subscribe data", {"event": "pusher:subscribe", "data": v})
    )
    subscribe_channel = NON_STRINGS.map(
        lambda v: ("subscribe channel", {"event": "pusher:subscribe", "data": {"channel": v}})
    )
    channel_in_list = any_channel.map(
        lambda c: ("subscribe channel", {"event": "pusher:subscribe", "data": {"channel": [c]}})
    )
    private_auth = NON_STRINGS.filter(lambda v: v is not None).map(
        lambda v: (
            "private auth",
            {"event": "pusher:subscribe", "data": {"channel": private, "auth": v}},
        )
    )
    unsubscribe_channel = st.one_of(
        NON_STRINGS, any_channel.map(lambda c: [c]), any_channel.map(lambda c: {"name": c})
    ).map(
        lambda v: (
            "unsubscribe channel",
            {"event": "pusher:unsubscribe", "data": {"channel": v}},
        )
    )
    signin = st.one_of(
        NON_STRINGS.map(lambda v: {"event": "pusher:signin", "data": v}),
        st.tuples(NON_STRINGS, NON_STRINGS).map(
            lambda a: {"event": "pusher:signin", "data": {"auth": a[0], "user_data": a[1]}}
        ),
    ).map(lambda v: ("signin", v))
    client_channel = st.one_of(NON_STRINGS, any_channel.map(lambda c: [c])).map(
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
    ).map(lambda a: WsInput("wrong_types", compact_json(a[1]), a[0]))


def unknown_pusher_events(channels: Sequence[str], token: str) -> st.SearchStrategy[WsInput]:
    """Events in the reserved ``pusher:`` and ``pusher_internal:`` namespaces a client may not
    send: made-up ones, and the server's own."""
    names = st.one_of(
        st.from_regex(r"pusher:[a-z_]{1,24}", fullmatch=True).filter(
            lambda e: e not in KNOWN_PUSHER_EVENTS
        ),
        st.sampled_from(_SERVER_ONLY_EVENTS),
        st.from_regex(r"pusher_internal:[a-z_]{1,24}", fullmatch=True),
    )
    return st.tuples(names, st.sampled_from(list(channels))).map(
        lambda a: WsInput(
            "unknown_pusher_event",
            compact_json({"event": a[0], "channel": a[1], "data": compact_json({"token": token})}),
        )
    )


def subscribes_without_channel(channels: Sequence[str], token: str) -> st.SearchStrategy[WsInput]:
    """(Un)subscriptions whose channel is absent, empty, null, misspelt or misplaced."""
    public = channels[0]
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
    return values.map(lambda v: WsInput("subscribe_without_channel", compact_json(v)))


def lone_surrogate_messages(channels: Sequence[str], token: str) -> st.SearchStrategy[WsInput]:
    """Valid JSON (the surrogate is escaped) whose strings are not valid Unicode: a server
    that echoes one in an error or relays it must not choke on encoding it."""
    public, private = channels[0], channels[1]
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
    return st.tuples(templates, surrogates).map(lambda a: WsInput("lone_surrogate", a[0] % a[1]))


def _nested_messages(
    depths: st.SearchStrategy[int], kind: str, channels: Sequence[str], token: str
) -> st.SearchStrategy[WsInput]:
    """Nesting ``depths`` deep, bare or in one of the places a message has a value."""

    def build(args: tuple[int, str, str]) -> WsInput:
        depth, shape, where = args
        inner = nest(depth, shape)
        if where == "bare":
            text = inner
        elif where == "ping_data":
            text = '{"event":"pusher:ping","data":' + inner + "}"
        elif where == "event":
            text = '{"event":' + inner + ',"data":' + compact_json(token) + "}"
        elif where == "subscribe_channel":
            text = '{"event":"pusher:subscribe","data":{"channel":' + inner + "}}"
        else:  # client event data on a bystander channel
            text = (
                '{"event":"client-robustness","channel":'
                + compact_json(channels[0])
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


def nested_messages(channels: Sequence[str], token: str) -> st.SearchStrategy[WsInput]:
    """Up to 1,000 levels: deep, but within what ROBUST-WS-03 expects a server to parse."""
    return _nested_messages(st.integers(2, 1000), "nested", channels, token)


def very_deep_messages(channels: Sequence[str], token: str) -> st.SearchStrategy[WsInput]:
    """Beyond 1,000 levels, up to 100,000: the classic way to overflow a recursive parser."""
    return _nested_messages(st.integers(1001, 100_000), "very_deep", channels, token)


def binary_frames(channels: Sequence[str], token: str) -> st.SearchStrategy[WsInput]:
    """The protocol is text frames only; a valid message in a binary frame is still binary."""
    return st.one_of(
        st.binary(max_size=64),
        st.just(compact_json({"event": "pusher:ping", "data": {}}).encode()),
        st.just(b"\xff\xfe\x00"),
    ).map(lambda b: WsInput("binary", b))


def huge_frames(channels: Sequence[str], token: str) -> st.SearchStrategy[WsInput]:
    """One to six megabytes in one text frame, as a ping, a client event, garbage or a flat
    array (large without being deep)."""
    public = channels[0]

    def build(args: tuple[int, str]) -> WsInput:
        size, shape = args
        filler = "a" * size
        if shape == "ping":
            text = compact_json({"event": "pusher:ping", "data": filler})
        elif shape == "client_event":
            text = compact_json({"event": "client-robustness", "channel": public, "data": filler})
        elif shape == "garbage":
            text = filler
        else:
            text = "[" + "0," * (size // 2) + "0]"
        return WsInput("huge", text, f"{size} bytes, {shape}")

    return st.tuples(
        st.integers(1_000_000, 6_000_000),
        st.sampled_from(["ping", "client_event", "garbage", "array"]),
    ).map(build)


#: The strategy of each WebSocket kind, text kinds first, in ``WS_TEXT_KINDS`` order.
WS_INPUTS: dict[str, WsInputStrategy] = {
    "non_json": non_json_messages,
    "not_object": not_object_messages,
    "missing_event": messages_missing_event,
    "wrong_types": wrong_type_messages,
    "unknown_pusher_event": unknown_pusher_events,
    "subscribe_without_channel": subscribes_without_channel,
    "nested": nested_messages,
    "lone_surrogate": lone_surrogate_messages,
    "binary": binary_frames,
    "huge": huge_frames,
    "very_deep": very_deep_messages,
}


def ws_input_strategy(kind: str, channels: Sequence[str], token: str) -> st.SearchStrategy[WsInput]:
    """Malformed messages of one kind. ``channels`` are the bystanders' channels (so a server
    that acts on a malformed message would act where it shows); ``token`` marks the payloads."""
    try:
        make = WS_INPUTS[kind]
    except KeyError:
        raise UsageError(
            f"unknown WebSocket input kind {kind!r} "
            f"(known: {', '.join(WS_TEXT_KINDS + WS_FRAME_KINDS)})"
        ) from None
    return make(channels, token)
