"""Malformed input in the sans-I/O core: deep nesting, lone surrogates and absurd timestamps."""

from __future__ import annotations

import json

import pytest

from reference_server.protocol import frames
from reference_server.protocol.connection import (
    SendText,
    State,
)
from reference_server.protocol.errors import (
    BadRequest,
    InvalidJson,
    InvalidMessage,
    Unauthorized,
)
from reference_server.protocol.messages import (
    MAX_JSON_DEPTH,
    JsonTooDeep,
    json_object,
    loads_bounded,
    parse_client_message,
)

from ..harness import is_error, opened, sent
from ..http_harness import signed, validate


def _nest(depth: int) -> str:
    return "[" * depth + "]" * depth


# -- JSON depth ----------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1000, 10_000, 100_000])
def test_deep_json_is_refused_not_a_recursion_error(depth: int) -> None:
    with pytest.raises(JsonTooDeep):
        loads_bounded(_nest(depth))
    with pytest.raises(InvalidMessage):
        parse_client_message('{"event":"pusher:ping","data":' + _nest(depth) + "}")
    assert json_object('{"a":' + _nest(depth) + "}") is None


def test_json_at_the_depth_limit_is_fine() -> None:
    # The envelope is one level, so data may nest one less.
    assert loads_bounded(_nest(MAX_JSON_DEPTH)) is not None
    text = '{"event":"pusher:ping","data":' + _nest(MAX_JSON_DEPTH - 1) + "}"
    parse_client_message(text)


def test_many_brackets_in_strings_do_not_count_as_depth() -> None:
    assert loads_bounded(json.dumps({"data": "[" * 10_000})) == {"data": "[" * 10_000}


def test_a_deep_message_gets_pusher_error_and_the_connection_stays_open() -> None:
    connection = opened()
    connection.receive_text("[" * 100_000, 1.0)
    (error,) = sent(connection)
    assert error["event"] == "pusher:error"
    assert connection.state is State.OPEN
    connection.receive_text('{"event":"pusher:ping","data":{}}', 2.0)
    assert sent(connection)[0]["event"] == "pusher:pong"


def test_not_json_is_invalid_json() -> None:
    with pytest.raises(InvalidJson):
        parse_client_message("{")
    connection = opened()
    connection.receive_text("{", 1.0)
    assert is_error(sent(connection)) == "Invalid JSON"
    assert connection.state is State.OPEN


# -- lone surrogates -----------------------------------------------------------------------


def test_frames_with_a_lone_surrogate_are_encodable_and_say_the_same() -> None:
    text = frames.error("Unknown pusher event pusher:\ud800", None)
    text.encode()
    assert json.loads(text)["data"]["message"] == "Unknown pusher event pusher:\ud800"
    event = frames.channel_event("e", "c", "caf\u00e9 \udfff")
    event.encode()
    assert json.loads(event)["data"] == "caf\u00e9 \udfff"
    # Ordinary non-ASCII text stays UTF-8, not escaped.
    assert "\u00e9" in frames.channel_event("e", "c", "caf\u00e9")


@pytest.mark.parametrize(
    "message",
    [
        '{"event":"pusher:\\ud800"}',
        '{"event":"pusher:subscribe","data":{"channel":"\\udc00"}}',
        '{"event":"pusher:subscribe","data":{"channel":"private-a","auth":"k:\\ud800"}}',
        '{"event":"pusher:subscribe","data":{"channel":"presence-a","auth":"k:x",'
        '"channel_data":"{\\"user_id\\":\\"\\ud800\\"}"}}',
    ],
)
def test_a_lone_surrogate_in_a_message_is_answered_with_an_encodable_error(message: str) -> None:
    connection = opened()
    connection.receive_text(message, 1.0)
    outputs = connection.data_to_send()
    assert outputs
    for output in outputs:
        assert isinstance(output, SendText)
        output.text.encode()
    assert connection.state is State.OPEN


# -- HTTP API ------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
def test_a_deeply_nested_body_is_400(depth: int) -> None:
    body = ('{"name":"e","channel":"c","data":"d","x":' + _nest(depth) + "}").encode()
    with pytest.raises(BadRequest):
        validate(signed(body))


@pytest.mark.parametrize("digits", [19, 4301, 6000])
def test_an_absurdly_long_timestamp_is_401(digits: int) -> None:
    body = b'{"name":"e","channel":"c","data":"d"}'
    with pytest.raises(Unauthorized):
        validate(signed(body, auth_timestamp="9" * digits))


def test_data_with_a_lone_surrogate_is_accepted() -> None:
    body = b'{"name":"e","channel":"c","data":"x\\ud800"}'
    event = validate(signed(body))
    assert event.data == "x\ud800"  # type: ignore[attr-defined]
