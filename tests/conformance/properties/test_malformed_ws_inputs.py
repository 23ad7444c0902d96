"""Each WebSocket kind's strategy generates what its kind claims (checked offline)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.errors import UsageError
from conformance.properties.malformed_inputs import (
    KNOWN_PUSHER_EVENTS,
    WS_FRAME_KINDS,
    WS_TEXT_KINDS,
    WsInput,
)
from conformance.properties.malformed_ws_inputs import WS_INPUTS, ws_input_strategy

CHANNELS = ["robustness-aaaa", "private-robustness-bbbb"]
TOKEN = "robustness-0123456789abcdef"


def _valid_pusher_message(value: Any) -> bool:
    """What a correct server accepts as a well-formed message (before any permission check)."""
    if not isinstance(value, dict) or not isinstance(value.get("event"), str):
        return False
    event = value["event"]
    if event in ("pusher:subscribe", "pusher:unsubscribe"):
        data = value.get("data")
        return (
            isinstance(data, dict)
            and isinstance(data.get("channel"), str)
            and bool(data["channel"])
            and all(
                data.get(k) is None or isinstance(data.get(k), str)
                for k in ("auth", "channel_data")
            )
        )
    if event == "pusher:signin":
        data = value.get("data")
        return isinstance(data, dict) and all(
            isinstance(data.get(k), str) for k in ("auth", "user_data")
        )
    if event.startswith(("pusher:", "pusher_internal:")):
        return event in KNOWN_PUSHER_EVENTS
    return isinstance(value.get("channel"), str)


def test_every_kind_has_one_strategy_in_kind_order() -> None:
    assert list(WS_INPUTS) == list(WS_TEXT_KINDS + WS_FRAME_KINDS)


def test_an_unknown_kind_is_a_usage_error_listing_the_known() -> None:
    with pytest.raises(UsageError, match=r"unknown WebSocket input kind 'nope' \(known: non_json"):
        ws_input_strategy("nope", CHANNELS, TOKEN)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("kind", [k for k in WS_TEXT_KINDS + WS_FRAME_KINDS if k != "huge"])
def test_ws_inputs_are_what_they_claim(kind: str, data: Any, json_reader: Any) -> None:
    item: WsInput = data.draw(ws_input_strategy(kind, CHANNELS, TOKEN))
    assert item.kind == kind
    if kind == "binary":
        assert isinstance(item.payload, bytes)
        return
    assert isinstance(item.payload, str)
    item.payload.encode()  # a text frame must be valid UTF-8
    value = json_reader.parse(item.payload)
    if kind == "non_json":
        assert value is json_reader.NOT_JSON
    elif kind == "not_object":
        assert value is not json_reader.NOT_JSON
        assert not isinstance(value, dict)
    elif kind == "missing_event":
        assert isinstance(value, dict)
        assert "event" not in value
    elif kind in ("wrong_types", "unknown_pusher_event", "subscribe_without_channel"):
        assert not _valid_pusher_message(value), item
    elif kind == "nested":
        assert 2 <= json_reader.depth(item.payload) <= 1000 + 2  # plus the envelope
    elif kind == "very_deep":
        assert json_reader.depth(item.payload) > 1000
    elif kind == "lone_surrogate":
        assert json_reader.has_lone_surrogate(value)
    assert len(repr(item)) < 400


@settings(max_examples=4, deadline=None)
@given(item=ws_input_strategy("huge", CHANNELS, TOKEN))
def test_huge_frames_are_megabytes_with_a_short_repr(item: WsInput) -> None:
    assert 1_000_000 <= len(item.payload) <= 13_000_000
    assert len(repr(item)) < 400
