"""Malformed input in the sans-I/O core: deep nesting, lone surrogates, absurd timestamps and
the robustness fault switches (issue 4)."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterable

import pytest

from reference_server.faults import Fault
from reference_server.protocol import frames
from reference_server.protocol.channels import ChannelRegistry
from reference_server.protocol.connection import (
    Close,
    Connection,
    ConnectionSettings,
    SendText,
    State,
)
from reference_server.protocol.errors import (
    BadRequest,
    InvalidJson,
    InvalidMessage,
    PayloadTooLarge,
    Unauthorized,
)
from reference_server.protocol.http_api import (
    ApiLimits,
    AppCredentials,
    HttpRequest,
    validate_trigger,
)
from reference_server.protocol.messages import (
    MAX_JSON_DEPTH,
    JsonTooDeep,
    json_object,
    loads_bounded,
    parse_client_message,
)
from reference_server.protocol.signing import body_md5, sign_http_request
from reference_server.protocol.socket_ids import SocketIdAllocator

KEY = "app-key"
APP = AppCredentials("3", KEY, "secret")
NOW = 1_700_000_000
_SEEDS = itertools.count()


def _connection(
    faults: Iterable[Fault] = (), registry: ChannelRegistry | None = None
) -> Connection:
    settings = ConnectionSettings(KEY, 120.0, 30.0, frozenset(faults))
    connection = Connection(
        settings,
        registry if registry is not None else ChannelRegistry(),
        SocketIdAllocator(random.Random(next(_SEEDS))),
    )
    connection.open(KEY, 0.0)
    connection.data_to_send()
    return connection


def _texts(connection: Connection) -> list[dict[str, object]]:
    return [json.loads(o.text) for o in connection.data_to_send() if isinstance(o, SendText)]


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
    connection = _connection()
    connection.receive_text("[" * 100_000, 1.0)
    (error,) = _texts(connection)
    assert error["event"] == "pusher:error"
    assert connection.state is State.OPEN
    connection.receive_text('{"event":"pusher:ping","data":{}}', 2.0)
    assert _texts(connection)[0]["event"] == "pusher:pong"


def test_not_json_is_invalid_json_and_counted() -> None:
    with pytest.raises(InvalidJson):
        parse_client_message("{")
    connection = _connection()
    connection.receive_text("{", 1.0)
    connection.receive_text("[]", 1.0)
    connection.receive_binary(b"\x00", 1.0)
    assert connection.malformed_inputs == 3


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
    connection = _connection()
    connection.receive_text(message, 1.0)
    outputs = connection.data_to_send()
    assert outputs
    for output in outputs:
        assert isinstance(output, SendText)
        output.text.encode()
    assert connection.state is State.OPEN


# -- HTTP API ------------------------------------------------------------------------------


def _signed(body: bytes, **overrides: str) -> HttpRequest:
    params = {
        "auth_key": KEY,
        "auth_timestamp": str(NOW),
        "auth_version": "1.0",
        "body_md5": body_md5(body),
    }
    params.update(overrides)
    query = list(params.items())
    query.append(("auth_signature", sign_http_request(APP.secret, "POST", "/apps/3/events", query)))
    return HttpRequest("POST", "/apps/3/events", tuple(query), body)


def _validate(request: HttpRequest, faults: Iterable[Fault] = ()) -> object:
    return validate_trigger("3", request, APP, NOW, ApiLimits(), frozenset(faults))


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
def test_a_deeply_nested_body_is_400(depth: int) -> None:
    body = ('{"name":"e","channel":"c","data":"d","x":' + _nest(depth) + "}").encode()
    with pytest.raises(BadRequest):
        _validate(_signed(body))


@pytest.mark.parametrize("digits", [19, 4301, 6000])
def test_an_absurdly_long_timestamp_is_401(digits: int) -> None:
    body = b'{"name":"e","channel":"c","data":"d"}'
    with pytest.raises(Unauthorized):
        _validate(_signed(body, auth_timestamp="9" * digits))


def test_data_with_a_lone_surrogate_is_accepted() -> None:
    body = b'{"name":"e","channel":"c","data":"x\\ud800"}'
    event = _validate(_signed(body))
    assert event.data == "x\ud800"  # type: ignore[attr-defined]


# -- fault switches ------------------------------------------------------------------------


def test_fault_invalid_json_closes() -> None:
    connection = _connection([Fault.INVALID_JSON_CLOSES])
    connection.receive_text("not json", 1.0)
    assert connection.data_to_send() == [Close(1008, "Invalid JSON")]
    # Other malformed messages are still answered with pusher:error.
    other = _connection([Fault.INVALID_JSON_CLOSES])
    other.receive_text("[]", 1.0)
    assert _texts(other)[0]["event"] == "pusher:error"


def test_fault_binary_frame_close_1011() -> None:
    connection = _connection([Fault.BINARY_FRAME_CLOSE_1011])
    connection.receive_binary(b"\x01", 1.0)
    assert connection.data_to_send() == [Close(1011, "Internal error")]
    clean = _connection()
    clean.receive_binary(b"\x01", 1.0)
    assert next(o for o in clean.data_to_send() if isinstance(o, Close)).code == 1003


def test_fault_malformed_error_broadcast_reaches_the_other_subscribers() -> None:
    registry = ChannelRegistry()
    bystander = _connection(registry=registry)
    bystander.receive_text('{"event":"pusher:subscribe","data":{"channel":"c"}}', 1.0)
    for faults, expected in (([Fault.MALFORMED_ERROR_BROADCAST], 1), ([], 0)):
        sender = _connection(faults, registry=registry)
        sender.receive_text('{"event":"pusher:subscribe","data":{"channel":"c"}}', 1.0)
        sender.deliveries_to_send()
        sender.receive_text("[]", 2.0)
        deliveries = sender.deliveries_to_send()
        assert len(deliveries) == expected
        for delivery in deliveries:
            assert delivery.socket_ids == (bystander.socket_id,)
            assert json.loads(delivery.text)["event"] == "pusher:error"


def test_fault_oversized_body_500() -> None:
    body = json.dumps({"name": "e", "channel": "c", "data": "a" * 1_100_000}).encode()
    with pytest.raises(RuntimeError):
        _validate(_signed(body), [Fault.OVERSIZED_BODY_500])
    with pytest.raises(PayloadTooLarge):
        _validate(_signed(body))
