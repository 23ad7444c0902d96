"""Fault switches in the handshake, the heartbeat and the handling of malformed input."""

from __future__ import annotations

import json

from reference_server.faults import Fault
from reference_server.faults.server import FaultyConnection
from reference_server.protocol import frames
from reference_server.protocol.connection import Close, SendBinary, SendPong, SendText

from ..harness import ACTIVITY, KEY, PONG, App, opened, sent, subscribe, succeeded


def test_fault_unknown_key_accepted() -> None:
    connection = App([Fault.UNKNOWN_KEY_ACCEPTED]).new()
    connection.open("wrong", 0.0)
    assert sent(connection)[0]["event"] == "pusher:connection_established"


def test_fault_established_data_as_object() -> None:
    connection = App([Fault.ESTABLISHED_DATA_AS_OBJECT]).new()
    connection.open(KEY, 0.0)
    [frame] = sent(connection)
    assert frame["data"] == {"socket_id": connection.socket_id, "activity_timeout": 120}


def test_fault_pong_as_binary() -> None:
    connection = opened([Fault.PONG_AS_BINARY])
    connection.receive_text('{"event":"pusher:ping"}', 1.0)
    assert connection.data_to_send() == [SendBinary(frames.PONG.encode())]
    # Other frames stay text.
    assert subscribe(connection, "a") == [succeeded("a")]


def test_fault_no_pong() -> None:
    connection = opened([Fault.NO_PONG])
    connection.receive_text('{"event":"pusher:ping"}', 1.0)
    assert connection.data_to_send() == []
    connection.receive_ping(b"", 1.0)
    assert connection.data_to_send() == [SendPong(b"")]


def test_fault_ws_ping_ignored() -> None:
    connection = opened([Fault.WS_PING_IGNORED])
    connection.receive_ping(b"abc", 1.0)
    assert connection.data_to_send() == []
    connection.receive_text('{"event":"pusher:ping"}', 1.0)
    assert connection.data_to_send() == [SendText(frames.PONG)]


def test_fault_no_idle_ping_still_closes_with_4201() -> None:
    connection = opened([Fault.NO_IDLE_PING])
    connection.tick(ACTIVITY)
    assert connection.data_to_send() == []
    connection.tick(ACTIVITY + PONG)
    assert connection.data_to_send()[-1] == Close(4201, "Pong reply not received")


def test_fault_pong_timeout_not_enforced() -> None:
    connection = opened([Fault.PONG_TIMEOUT_NOT_ENFORCED])
    connection.tick(ACTIVITY)
    assert connection.data_to_send() == [SendText(frames.PING)]
    assert connection.next_deadline() is None
    connection.tick(1e9)
    assert connection.data_to_send() == []
    connection.receive_text('{"event":"pusher:pong"}', 1e9)
    assert connection.next_deadline() == 1e9 + ACTIVITY


def test_fault_invalid_json_closes() -> None:
    connection = opened([Fault.INVALID_JSON_CLOSES])
    connection.receive_text("not json", 1.0)
    assert connection.data_to_send() == [Close(1008, "Invalid JSON")]
    # Other malformed messages are still answered with pusher:error.
    other = opened([Fault.INVALID_JSON_CLOSES])
    other.receive_text("[]", 1.0)
    assert sent(other)[0]["event"] == "pusher:error"


def test_fault_binary_frame_close_1011() -> None:
    connection = opened([Fault.BINARY_FRAME_CLOSE_1011])
    connection.receive_binary(b"\x01", 1.0)
    assert connection.data_to_send() == [Close(1011, "Internal error")]
    clean = opened()
    clean.receive_binary(b"\x01", 1.0)
    assert next(o for o in clean.data_to_send() if isinstance(o, Close)).code == 1003


def test_fault_malformed_error_broadcast_reaches_the_other_subscribers() -> None:
    for faults, expected in (([Fault.MALFORMED_ERROR_BROADCAST], 1), ([Fault.NO_PONG], 0)):
        app = App(faults)
        bystander = app.connect()
        bystander.receive_text('{"event":"pusher:subscribe","data":{"channel":"c"}}', 1.0)
        sender = app.connect()
        sender.receive_text('{"event":"pusher:subscribe","data":{"channel":"c"}}', 1.0)
        sender.deliveries_to_send()
        sender.receive_text("[]", 2.0)
        deliveries = sender.deliveries_to_send()
        assert len(deliveries) == expected
        for delivery in deliveries:
            assert delivery.socket_ids == (bystander.socket_id,)
            assert json.loads(delivery.text)["event"] == "pusher:error"


def test_malformed_input_is_counted_for_the_address_block() -> None:
    connection = opened([Fault.MALFORMED_SENDER_ADDRESS_BLOCKED])
    assert isinstance(connection, FaultyConnection)
    connection.receive_text('{"event":"pusher:ping"}', 1.0)
    assert connection.malformed_inputs == 0
    connection.receive_text("[]", 1.0)
    assert connection.malformed_inputs == 1
    connection.receive_binary(b"x", 1.0)
    assert connection.malformed_inputs == 2


def test_fault_unknown_key_close_4009() -> None:
    connection = App([Fault.UNKNOWN_KEY_CLOSE_4009]).new()
    connection.open("wrong", 0.0)
    error, close = connection.data_to_send()
    assert isinstance(error, SendText)
    assert json.loads(error.text)["data"]["code"] == 4009
    assert close == Close(4009, "App key wrong does not exist")
    # The right key still opens.
    good = App([Fault.UNKNOWN_KEY_CLOSE_4009]).new()
    good.open(KEY, 0.0)
    assert sent(good)[0]["event"] == "pusher:connection_established"


def test_fault_old_protocol_accepted() -> None:
    connection = App([Fault.OLD_PROTOCOL_ACCEPTED]).new()
    connection.open(KEY, 0.0, protocol=2)
    assert sent(connection)[0]["event"] == "pusher:connection_established"


def test_fault_no_error_before_close_legacy() -> None:
    legacy = App([Fault.NO_ERROR_BEFORE_CLOSE_LEGACY]).new()
    legacy.open("wrong", 0.0, protocol=5)
    assert legacy.data_to_send() == [Close(4001, "App key wrong does not exist")]
    # Protocol 7 (and a client that names none) still hears the error first.
    for protocol in (7, None):
        current = App([Fault.NO_ERROR_BEFORE_CLOSE_LEGACY]).new()
        current.open("wrong", 0.0, protocol=protocol)
        error, close = current.data_to_send()
        assert isinstance(error, SendText)
        assert close == Close(4001, "App key wrong does not exist")
