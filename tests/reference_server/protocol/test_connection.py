from __future__ import annotations

import json
import random
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from reference_server.faults import Fault
from reference_server.protocol import frames
from reference_server.protocol.channels import ChannelRegistry
from reference_server.protocol.connection import (
    Close,
    Connection,
    ConnectionSettings,
    Output,
    SendBinary,
    SendPong,
    SendText,
    State,
)
from reference_server.protocol.socket_ids import SocketIdAllocator, is_socket_id

KEY = "app-key"
ACTIVITY = 120.0
PONG = 30.0


def make(
    faults: Iterable[Fault] = (),
    *,
    registry: ChannelRegistry | None = None,
    allocator: SocketIdAllocator | None = None,
) -> Connection:
    settings = ConnectionSettings(KEY, ACTIVITY, PONG, frozenset(faults))
    return Connection(
        settings,
        registry if registry is not None else ChannelRegistry(),
        allocator if allocator is not None else SocketIdAllocator(random.Random(0)),
    )


def opened(
    faults: Iterable[Fault] = (),
    *,
    registry: ChannelRegistry | None = None,
    allocator: SocketIdAllocator | None = None,
) -> Connection:
    connection = make(faults, registry=registry, allocator=allocator)
    connection.open(KEY, 0.0)
    connection.data_to_send()
    return connection


def frames_of(outputs: list[Output]) -> list[dict[str, Any]]:
    """Decode text outputs; fail on anything else."""
    decoded = []
    for output in outputs:
        assert isinstance(output, SendText), output
        decoded.append(json.loads(output.text))
    return decoded


def sent(connection: Connection) -> list[dict[str, Any]]:
    return frames_of(connection.data_to_send())


def subscribe(connection: Connection, channel: str, **extra: str) -> list[dict[str, Any]]:
    data = {"channel": channel, **extra}
    connection.receive_text(json.dumps({"event": "pusher:subscribe", "data": data}), 1.0)
    return sent(connection)


def error(message: str | None = None, code: int | None = None) -> dict[str, Any]:
    return {"event": "pusher:error", "data": {"code": code, "message": message}}


def assert_error(frames_sent: list[dict[str, Any]], code: int | None = None) -> str:
    assert len(frames_sent) == 1, frames_sent
    [frame] = frames_sent
    assert frame["event"] == "pusher:error"
    assert frame["data"]["code"] == code
    message: str = frame["data"]["message"]
    return message


def succeeded(channel: str) -> dict[str, Any]:
    return {"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": "{}"}


class TestHandshake:
    def test_known_key_gets_connection_established(self) -> None:
        connection = make()
        connection.open(KEY, 5.0)
        [frame] = sent(connection)
        assert frame["event"] == "pusher:connection_established"
        data = json.loads(frame["data"])
        assert data == {"socket_id": connection.socket_id, "activity_timeout": 120}
        assert is_socket_id(data["socket_id"])
        assert connection.state is State.OPEN
        assert connection.next_deadline() == 5.0 + ACTIVITY

    def test_unknown_key_gets_error_4001_then_close_4001(self) -> None:
        connection = make()
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
        connection = make()
        connection.open("wrong", 0.0)
        connection.data_to_send()
        connection.receive_text('{"event":"pusher:ping"}', 1.0)
        connection.receive_ping(b"x", 1.0)
        connection.receive_binary(b"x", 1.0)
        connection.tick(1e9)
        connection.open(KEY, 1.0)
        assert connection.data_to_send() == []

    def test_long_keys_give_a_close_reason_that_fits_a_control_frame(self) -> None:
        connection = make()
        connection.open("\u00e9" * 200, 0.0)
        close = connection.data_to_send()[-1]
        assert isinstance(close, Close)
        assert len(close.reason.encode()) <= 123

    def test_fault_unknown_key_accepted(self) -> None:
        connection = make([Fault.UNKNOWN_KEY_ACCEPTED])
        connection.open("wrong", 0.0)
        assert sent(connection)[0]["event"] == "pusher:connection_established"

    def test_fault_socket_id_without_dot(self) -> None:
        settings = ConnectionSettings(KEY, ACTIVITY, PONG, frozenset())
        allocator = SocketIdAllocator(random.Random(0), with_dot=False)
        connection = Connection(settings, ChannelRegistry(), allocator)
        connection.open(KEY, 0.0)
        assert connection.socket_id is not None
        assert connection.socket_id.isdigit()

    def test_fault_established_data_as_object(self) -> None:
        connection = make([Fault.ESTABLISHED_DATA_AS_OBJECT])
        connection.open(KEY, 0.0)
        [frame] = sent(connection)
        assert frame["data"] == {"socket_id": connection.socket_id, "activity_timeout": 120}


class TestMessages:
    @pytest.mark.parametrize("text", ["nope", "[1]", "{}", '{"event":3}', '{"data":{}}'])
    def test_malformed_frames_get_a_null_code_error_and_stay_open(self, text: str) -> None:
        connection = opened()
        connection.receive_text(text, 1.0)
        assert_error(sent(connection))
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
        assert event in assert_error(sent(connection))

    def test_client_events_are_refused_when_disabled(self) -> None:
        connection = opened()
        subscribe(connection, "private-a")
        connection.receive_text('{"event":"client-x","channel":"a","data":{}}', 1.0)
        assert "client-x" in assert_error(sent(connection))
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

    def test_fault_pong_as_binary(self) -> None:
        connection = opened([Fault.PONG_AS_BINARY])
        connection.receive_text('{"event":"pusher:ping"}', 1.0)
        assert connection.data_to_send() == [SendBinary(frames.PONG.encode())]
        # Other frames stay text.
        assert subscribe(connection, "a") == [succeeded("a")]

    def test_fault_no_pong(self) -> None:
        connection = opened([Fault.NO_PONG])
        connection.receive_text('{"event":"pusher:ping"}', 1.0)
        assert connection.data_to_send() == []
        connection.receive_ping(b"", 1.0)
        assert connection.data_to_send() == [SendPong(b"")]

    def test_fault_ws_ping_ignored(self) -> None:
        connection = opened([Fault.WS_PING_IGNORED])
        connection.receive_ping(b"abc", 1.0)
        assert connection.data_to_send() == []
        connection.receive_text('{"event":"pusher:ping"}', 1.0)
        assert connection.data_to_send() == [SendText(frames.PONG)]


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

    def test_fault_no_idle_ping_still_closes_with_4201(self) -> None:
        connection = opened([Fault.NO_IDLE_PING])
        connection.tick(ACTIVITY)
        assert connection.data_to_send() == []
        connection.tick(ACTIVITY + PONG)
        assert connection.data_to_send()[-1] == Close(4201, "Pong reply not received")

    def test_fault_pong_timeout_not_enforced(self) -> None:
        connection = opened([Fault.PONG_TIMEOUT_NOT_ENFORCED])
        connection.tick(ACTIVITY)
        assert connection.data_to_send() == [SendText(frames.PING)]
        assert connection.next_deadline() is None
        connection.tick(1e9)
        assert connection.data_to_send() == []
        connection.receive_text('{"event":"pusher:pong"}', 1e9)
        assert connection.next_deadline() == 1e9 + ACTIVITY


class TestSubscriptions:
    def test_public_subscribe_succeeds(self) -> None:
        registry = ChannelRegistry()
        connection = opened(registry=registry)
        assert subscribe(connection, "my-channel") == [succeeded("my-channel")]
        assert registry.subscribers("my-channel") == [connection.socket_id]
        assert connection.subscriptions == ("my-channel",)

    def test_auth_is_ignored_on_public_channels(self) -> None:
        connection = opened()
        assert subscribe(connection, "a", auth="anything:at-all") == [succeeded("a")]

    @pytest.mark.parametrize("name", ["", "a" * 165, "bad name", "#server-to-user-1", "é"])
    def test_invalid_names_are_refused(self, name: str) -> None:
        registry = ChannelRegistry()
        connection = opened(registry=registry)
        assert_error(subscribe(connection, name))
        assert len(registry) == 0

    def test_longest_name_is_accepted(self) -> None:
        assert subscribe(opened(), "a" * 164) == [succeeded("a" * 164)]

    def test_missing_name_is_refused(self) -> None:
        connection = opened()
        connection.receive_text('{"event":"pusher:subscribe","data":{}}', 1.0)
        assert_error(sent(connection))

    def test_second_subscribe_is_an_error(self) -> None:
        connection = opened()
        subscribe(connection, "foo")
        message = assert_error(subscribe(connection, "foo"))
        assert message == "Existing subscription to channel foo"

    @pytest.mark.parametrize(
        "name", ["private-a", "presence-a", "private-encrypted-a", "private-cache-a"]
    )
    def test_authenticated_channel_types_refuse_a_bad_auth(self, name: str) -> None:
        registry = ChannelRegistry()
        connection = opened(registry=registry)
        assert_error(subscribe(connection, name, auth="k:s"))
        assert len(registry) == 0

    def test_unsubscribe_has_no_reply_and_stops_delivery(self) -> None:
        registry = ChannelRegistry()
        connection = opened(registry=registry)
        subscribe(connection, "a")
        connection.receive_text('{"event":"pusher:unsubscribe","data":{"channel":"a"}}', 1.0)
        assert connection.data_to_send() == []
        assert registry.subscribers("a") == []
        assert subscribe(connection, "a") == [succeeded("a")]

    def test_unsubscribe_from_unknown_channel_is_silent(self) -> None:
        connection = opened()
        connection.receive_text('{"event":"pusher:unsubscribe","data":{"channel":"zz"}}', 1.0)
        assert connection.data_to_send() == []

    def test_eof_forgets_subscriptions_and_socket_id(self) -> None:
        registry = ChannelRegistry()
        connection = opened(registry=registry)
        subscribe(connection, "a")
        subscribe(connection, "b")
        connection.receive_eof()
        assert len(registry) == 0
        assert connection.state is State.CLOSED
        connection.receive_eof()  # Idempotent.

    def test_shutdown_closes_going_away(self) -> None:
        registry = ChannelRegistry()
        connection = opened(registry=registry)
        subscribe(connection, "a")
        connection.shutdown()
        assert connection.data_to_send() == [Close(1001, "Server shutting down")]
        assert len(registry) == 0

    def test_fault_public_auth_checked(self) -> None:
        connection = opened([Fault.PUBLIC_AUTH_CHECKED])
        assert_error(subscribe(connection, "a", auth="k:s"))
        assert subscribe(connection, "b", auth="") == [succeeded("b")]
        assert subscribe(connection, "c") == [succeeded("c")]

    def test_fault_subscription_succeeded_without_data(self) -> None:
        connection = opened([Fault.SUBSCRIPTION_SUCCEEDED_WITHOUT_DATA])
        [frame] = subscribe(connection, "a")
        assert frame == {"event": "pusher_internal:subscription_succeeded", "channel": "a"}

    def test_fault_duplicate_subscribe_silent(self) -> None:
        registry = ChannelRegistry()
        connection = opened([Fault.DUPLICATE_SUBSCRIBE_SILENT], registry=registry)
        subscribe(connection, "a")
        assert subscribe(connection, "a") == [succeeded("a")]
        assert registry.subscribers("a") == [connection.socket_id]

    def test_fault_unsubscribe_ignored(self) -> None:
        registry = ChannelRegistry()
        connection = opened([Fault.UNSUBSCRIBE_IGNORED], registry=registry)
        subscribe(connection, "a")
        connection.receive_text('{"event":"pusher:unsubscribe","data":{"channel":"a"}}', 1.0)
        assert connection.data_to_send() == []
        assert registry.subscribers("a") == [connection.socket_id]
        # Resubscribing is still a fresh subscription, not a duplicate.
        assert subscribe(connection, "a") == [succeeded("a")]
        connection.receive_eof()
        assert len(registry) == 0

    def test_fault_channel_name_length_100(self) -> None:
        connection = opened([Fault.CHANNEL_NAME_LENGTH_100])
        assert subscribe(connection, "a" * 100) == [succeeded("a" * 100)]
        assert_error(subscribe(connection, "b" * 101))


CHANNELS = ["a", "b", "c", "private-d", "bad name"]


class SubscriptionMachine(RuleBasedStateMachine):
    """Two connections subscribe and unsubscribe at random; the registry follows a model."""

    def __init__(self) -> None:
        super().__init__()
        self.registry = ChannelRegistry()
        allocator = SocketIdAllocator(random.Random(0))
        self.connections = [opened(registry=self.registry, allocator=allocator) for _ in range(2)]
        self.model: list[set[str]] = [set(), set()]

    @rule(who=st.integers(0, 1), channel=st.sampled_from(CHANNELS))
    def subscribe(self, who: int, channel: str) -> None:
        [frame] = subscribe(self.connections[who], channel)
        if channel in ("a", "b", "c") and channel not in self.model[who]:
            assert frame == succeeded(channel)
            self.model[who].add(channel)
        else:
            assert frame["event"] == "pusher:error"

    @rule(who=st.integers(0, 1), channel=st.sampled_from(CHANNELS))
    def unsubscribe(self, who: int, channel: str) -> None:
        text = json.dumps({"event": "pusher:unsubscribe", "data": {"channel": channel}})
        self.connections[who].receive_text(text, 1.0)
        assert self.connections[who].data_to_send() == []
        self.model[who].discard(channel)

    @invariant()
    def registry_matches_model(self) -> None:
        for channel in CHANNELS:
            expected = [
                c.socket_id or ""
                for c, subs in zip(self.connections, self.model, strict=True)
                if channel in subs
            ]
            assert sorted(self.registry.subscribers(channel)) == sorted(expected)


TestSubscriptionMachine = SubscriptionMachine.TestCase
TestSubscriptionMachine.settings = settings(max_examples=50, stateful_step_count=20)
