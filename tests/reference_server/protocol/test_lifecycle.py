"""The connection lifecycle: handshake, malformed input, pings and the heartbeat."""

from __future__ import annotations

import json

import pytest

from reference_server.protocol import frames
from reference_server.protocol.connection import Close, SendPong, SendText, State
from reference_server.protocol.lifecycle import protocol_version
from reference_server.protocol.socket_ids import is_socket_id

from ..harness import ACTIVITY, KEY, PONG, App, frames_of, is_error, opened, sent, subscribe


class TestHandshake:
    def test_known_key_gets_connection_established(self) -> None:
        connection = App().new()
        connection.open(KEY, 5.0)
        [frame] = sent(connection)
        assert frame["event"] == "pusher:connection_established"
        data = json.loads(frame["data"])
        assert data == {"socket_id": connection.socket_id, "activity_timeout": 120}
        assert is_socket_id(data["socket_id"])
        assert connection.state is State.OPEN
        assert connection.next_deadline() == 5.0 + ACTIVITY

    def test_unknown_key_gets_error_4001_then_close_4001(self) -> None:
        connection = App().new()
        connection.open("wrong", 0.0)
        [error_frame, close] = connection.data_to_send()
        assert isinstance(error_frame, SendText)
        assert json.loads(error_frame.text)["data"]["code"] == 4001
        assert isinstance(close, Close)
        assert close.code == 4001
        assert connection.state is State.CLOSED
        assert connection.socket_id is None
        assert connection.next_deadline() is None

    def test_closed_connection_ignores_input(self) -> None:
        connection = App().new()
        connection.open("wrong", 0.0)
        connection.data_to_send()
        connection.receive_text('{"event":"pusher:ping"}', 1.0)
        connection.receive_ping(b"x", 1.0)
        connection.receive_binary(b"x", 1.0)
        connection.tick(1e9)
        connection.open(KEY, 1.0)
        assert connection.data_to_send() == []

    @pytest.mark.parametrize("protocol", [1, 2, 3])
    def test_protocols_1_to_3_get_error_4007_then_close_4007(self, protocol: int) -> None:
        connection = App().new()
        connection.open(KEY, 0.0, protocol=protocol)
        [error_frame, close] = connection.data_to_send()
        assert isinstance(error_frame, SendText)
        assert json.loads(error_frame.text)["data"]["code"] == 4007
        assert close == Close(4007, f"Unsupported protocol version {protocol}")
        assert connection.state is State.CLOSED
        assert connection.socket_id is None

    @pytest.mark.parametrize("protocol", [None, 4, 5, 6, 7, 8])
    def test_other_protocols_and_none_are_greeted(self, protocol: int | None) -> None:
        connection = App().new()
        connection.open(KEY, 0.0, protocol=protocol)
        assert sent(connection)[0]["event"] == "pusher:connection_established"

    @pytest.mark.parametrize("protocol", [5, 7])
    def test_an_error_precedes_the_close_for_legacy_and_current_protocols(
        self, protocol: int
    ) -> None:
        connection = App().new()
        connection.open("wrong", 0.0, protocol=protocol)
        error_frame, close = connection.data_to_send()
        assert isinstance(error_frame, SendText)
        assert isinstance(close, Close)
        assert json.loads(error_frame.text)["event"] == "pusher:error"

    @pytest.mark.parametrize(
        ("value", "version"),
        [
            (None, None),
            ("7", 7),
            ("5", 5),
            ("", None),
            ("x", None),
            ("-1", None),
            ("\u0663", None),
            ("9" * 12, None),
        ],
    )
    def test_protocol_version_reads_plain_decimal_integers(
        self, value: str | None, version: int | None
    ) -> None:
        assert protocol_version(value) == version

    def test_long_keys_give_a_close_reason_that_fits_a_control_frame(self) -> None:
        connection = App().new()
        connection.open("\u00e9" * 200, 0.0)
        close = connection.data_to_send()[-1]
        assert isinstance(close, Close)
        assert len(close.reason.encode()) <= 123


class TestMessages:
    @pytest.mark.parametrize("text", ["nope", "[1]", "{}", '{"event":3}', '{"data":{}}'])
    def test_malformed_frames_get_a_null_code_error_and_stay_open(self, text: str) -> None:
        connection = opened()
        connection.receive_text(text, 1.0)
        is_error(sent(connection))
        assert connection.state is State.OPEN

    def test_binary_frames_close_1003_without_pusher_error(self) -> None:
        connection = opened()
        connection.receive_binary(b"{}", 1.0)
        [close] = connection.data_to_send()
        assert isinstance(close, Close)
        assert close.code == 1003
        assert connection.state is State.CLOSED

    @pytest.mark.parametrize("event", ["pusher:whatever", "pusher_internal:x", "my-event"])
    def test_unknown_events_get_a_null_code_error(self, event: str) -> None:
        connection = opened()
        connection.receive_text(json.dumps({"event": event, "data": {}}), 1.0)
        assert event in is_error(sent(connection))

    def test_client_events_are_refused_when_disabled(self) -> None:
        connection = opened(client_events=False)
        subscribe(connection, "private-a")
        connection.receive_text('{"event":"client-x","channel":"a","data":{}}', 1.0)
        assert "client-x" in is_error(sent(connection))
        assert connection.state is State.OPEN


class TestPing:
    def test_pusher_ping_gets_pusher_pong(self) -> None:
        connection = opened()
        connection.receive_text('{"event":"pusher:ping","data":{}}', 1.0)
        assert connection.data_to_send() == [SendText(frames.PONG)]

    def test_pusher_pong_is_accepted_silently(self) -> None:
        connection = opened()
        connection.receive_text('{"event":"pusher:pong","data":{}}', 1.0)
        assert connection.data_to_send() == []

    def test_websocket_ping_gets_pong_with_the_same_payload(self) -> None:
        connection = opened()
        connection.receive_ping(b"abc", 1.0)
        assert connection.data_to_send() == [SendPong(b"abc")]


class TestHeartbeat:
    def test_nothing_happens_before_the_activity_timeout(self) -> None:
        connection = opened()
        connection.tick(ACTIVITY - 0.001)
        assert connection.data_to_send() == []

    def test_idle_connection_gets_pusher_ping(self) -> None:
        connection = opened()
        connection.tick(ACTIVITY)
        assert connection.data_to_send() == [SendText(frames.PING)]
        assert connection.next_deadline() == ACTIVITY + PONG
        connection.tick(ACTIVITY + 1)  # No second ping while waiting.
        assert connection.data_to_send() == []

    def test_no_reply_closes_with_4201(self) -> None:
        connection = opened()
        connection.tick(ACTIVITY)
        connection.data_to_send()
        connection.tick(ACTIVITY + PONG)
        [error_frame, close] = connection.data_to_send()
        assert frames_of([error_frame])[0]["data"]["code"] == 4201
        assert close == Close(4201, "Pong reply not received")
        assert connection.state is State.CLOSED

    @pytest.mark.parametrize(
        "frame",
        [
            '{"event":"pusher:pong","data":{}}',
            '{"event":"pusher:ping"}',
            "not even json",
            '{"event":"pusher:subscribe","data":{"channel":"a"}}',
        ],
    )
    def test_any_text_frame_is_activity(self, frame: str) -> None:
        connection = opened()
        connection.tick(ACTIVITY)
        connection.receive_text(frame, ACTIVITY + 1)
        connection.data_to_send()
        assert connection.next_deadline() == 2 * ACTIVITY + 1
        connection.tick(ACTIVITY + PONG)
        assert connection.data_to_send() == []
        assert connection.state is State.OPEN

    def test_websocket_control_frames_are_activity(self) -> None:
        connection = opened()
        connection.receive_ping(b"", 10.0)
        connection.data_to_send()
        assert connection.next_deadline() == 10.0 + ACTIVITY
        connection.receive_pong(b"", 20.0)
        assert connection.next_deadline() == 20.0 + ACTIVITY

    def test_late_tick_pings_first(self) -> None:
        connection = opened()
        connection.tick(ACTIVITY + PONG + 100)
        assert connection.data_to_send() == [SendText(frames.PING)]
