"""Connection core: channel auth, presence, cache, sign-in and client events."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from typing import Any

import pytest

from reference_server.faults import Fault
from reference_server.protocol.channels import ChannelRegistry, Delivery
from reference_server.protocol.connection import (
    Close,
    Connection,
    ConnectionSettings,
    SendText,
    State,
)
from reference_server.protocol.signing import sign_channel, sign_user
from reference_server.protocol.socket_ids import SocketIdAllocator

KEY, SECRET = "app-key", "app-secret"


class App:
    """Connections sharing one registry, as in the server."""

    def __init__(self, faults: Iterable[Fault] = (), *, client_events: bool = True) -> None:
        self.registry = ChannelRegistry()
        self.allocator = SocketIdAllocator(random.Random(0))
        self.settings = ConnectionSettings(
            KEY, 120.0, 30.0, frozenset(faults), app_secret=SECRET, client_events=client_events
        )

    def connect(self) -> Connection:
        connection = Connection(self.settings, self.registry, self.allocator)
        connection.open(KEY, 0.0)
        connection.data_to_send()
        return connection


def sent(connection: Connection) -> list[dict[str, Any]]:
    frames = []
    for output in connection.data_to_send():
        assert isinstance(output, SendText), output
        frames.append(json.loads(output.text))
    return frames


def delivered(connection: Connection) -> list[tuple[dict[str, Any], tuple[str, ...]]]:
    return [(json.loads(d.text), d.socket_ids) for d in connection.deliveries_to_send()]


def send(connection: Connection, event: str, data: Any, now: float = 1.0, **extra: Any) -> None:
    connection.receive_text(json.dumps({"event": event, "data": data, **extra}), now)


def auth_for(connection: Connection, channel: str, channel_data: str | None = None) -> str:
    assert connection.socket_id is not None
    return f"{KEY}:{sign_channel(SECRET, connection.socket_id, channel, channel_data)}"


def subscribe(
    connection: Connection,
    channel: str,
    *,
    auth: str | None = None,
    channel_data: str | None = None,
    now: float = 1.0,
) -> list[dict[str, Any]]:
    data: dict[str, Any] = {"channel": channel}
    if auth is not None:
        data["auth"] = auth
    if channel_data is not None:
        data["channel_data"] = channel_data
    send(connection, "pusher:subscribe", data, now)
    return sent(connection)


def join(connection: Connection, channel: str, user_id: Any, info: Any = None) -> list[Any]:
    member: dict[str, Any] = {"user_id": user_id}
    if info is not None:
        member["user_info"] = info
    channel_data = json.dumps(member)
    auth = auth_for(connection, channel, channel_data)
    return subscribe(connection, channel, auth=auth, channel_data=channel_data)


def succeeded(channel: str, data: str = "{}") -> dict[str, Any]:
    return {"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": data}


def is_error(frames: list[dict[str, Any]], code: int | None = None) -> str:
    assert len(frames) == 1, frames
    assert frames[0]["event"] == "pusher:error"
    assert frames[0]["data"]["code"] == code
    message: str = frames[0]["data"]["message"]
    return message


def roster(frame: dict[str, Any]) -> dict[str, Any]:
    assert frame["event"] == "pusher_internal:subscription_succeeded"
    presence: dict[str, Any] = json.loads(frame["data"])["presence"]
    return presence


class TestPrivateChannels:
    @pytest.mark.parametrize(
        "channel", ["private-a", "private-encrypted-a", "private-cache-a", "my-private-a"]
    )
    def test_signed_subscribe_succeeds(self, channel: str) -> None:
        app = App()
        connection = app.connect()
        frames = subscribe(connection, channel, auth=auth_for(connection, channel))
        assert frames[0] == succeeded(channel)
        assert app.registry.subscribers(channel) == [connection.socket_id]

    @pytest.mark.parametrize(
        "auth",
        [None, "", "app-key:nope", "app-key", "other:{sig}", "{sig}", "app-key:{upper}"],
    )
    @pytest.mark.parametrize("channel", ["private-a", "private-encrypted-a"])
    def test_bad_auth_is_refused_and_connection_stays_open(
        self, channel: str, auth: str | None
    ) -> None:
        app = App()
        connection = app.connect()
        assert connection.socket_id is not None
        sig = sign_channel(SECRET, connection.socket_id, channel)
        if auth is not None:
            auth = auth.format(sig=sig, upper=sig.upper())
        is_error(subscribe(connection, channel, auth=auth))
        assert connection.state is State.OPEN
        assert len(app.registry) == 0
        # A later, right subscribe works.
        assert subscribe(connection, channel, auth=auth_for(connection, channel)) == [
            succeeded(channel)
        ]

    def test_auth_of_another_connection_is_refused(self) -> None:
        app = App()
        a, b = app.connect(), app.connect()
        is_error(subscribe(a, "private-a", auth=auth_for(b, "private-a")))
        is_error(subscribe(a, "private-a", auth=auth_for(a, "private-b")))

    def test_fault_private_without_auth_accepted(self) -> None:
        app = App([Fault.PRIVATE_WITHOUT_AUTH_ACCEPTED])
        connection = app.connect()
        assert subscribe(connection, "private-a") == [succeeded("private-a")]
        assert subscribe(connection, "private-b", auth="") == [succeeded("private-b")]
        is_error(subscribe(connection, "private-c", auth="app-key:bad"))
        is_error(subscribe(connection, "private-encrypted-a"))
        is_error(subscribe(connection, "presence-a"))

    def test_fault_encrypted_without_auth_accepted(self) -> None:
        app = App([Fault.ENCRYPTED_WITHOUT_AUTH_ACCEPTED])
        connection = app.connect()
        frames = subscribe(connection, "private-encrypted-a", auth="junk")
        assert frames == [succeeded("private-encrypted-a")]
        is_error(subscribe(connection, "private-a"))

    def test_fault_unanchored_private_prefix(self) -> None:
        connection = App([Fault.UNANCHORED_PRIVATE_PREFIX]).connect()
        is_error(subscribe(connection, "my-private-a"))
        assert subscribe(connection, "privatefoo") == [succeeded("privatefoo")]

    def test_fault_invalid_channel_names_accepted(self) -> None:
        connection = App([Fault.INVALID_CHANNEL_NAMES_ACCEPTED]).connect()
        assert subscribe(connection, "bad name") == [succeeded("bad name")]
        assert subscribe(connection, "a" * 200) == [succeeded("a" * 200)]
        is_error(subscribe(connection, ""))
        is_error(subscribe(connection, "#server-to-user-1"))


class TestPresence:
    def test_two_users_two_connections_each(self) -> None:
        app = App()
        a1, a2, b1, b2 = (app.connect() for _ in range(4))
        [frame] = join(a1, "presence-r", "alice", {"name": "A"})
        assert roster(frame) == {"ids": ["alice"], "hash": {"alice": {"name": "A"}}, "count": 1}
        assert delivered(a1) == []

        [frame] = join(a2, "presence-r", "alice", {"name": "other"})
        assert roster(frame)["count"] == 1
        assert delivered(a2) == []  # Not the user's first connection.

        [frame] = join(b1, "presence-r", "bob")
        assert roster(frame) == {
            "ids": ["alice", "bob"],
            "hash": {"alice": {"name": "A"}, "bob": None},
            "count": 2,
        }
        [(added, targets)] = delivered(b1)
        assert added == {
            "event": "pusher_internal:member_added",
            "channel": "presence-r",
            "data": '{"user_id":"bob"}',
        }
        assert targets == (a1.socket_id, a2.socket_id)

        join(b2, "presence-r", "bob")
        assert delivered(b2) == []

        # Leaving: only the user's last connection causes member_removed.
        send(a1, "pusher:unsubscribe", {"channel": "presence-r"})
        assert delivered(a1) == []
        a2.receive_eof()
        [(removed, targets)] = delivered(a2)
        assert removed == {
            "event": "pusher_internal:member_removed",
            "channel": "presence-r",
            "data": '{"user_id":"alice"}',
        }
        assert targets == (b1.socket_id, b2.socket_id)

    def test_member_added_carries_user_info(self) -> None:
        app = App()
        a, b = app.connect(), app.connect()
        join(a, "presence-r", "a")
        join(b, "presence-r", 7, {"x": [1]})
        [(added, _)] = delivered(b)
        assert json.loads(added["data"]) == {"user_id": 7, "user_info": {"x": [1]}}

    def test_integer_user_ids_use_their_string_form_in_the_roster(self) -> None:
        app = App()
        [frame] = join(app.connect(), "presence-r", 10, {"name": "Mr. Channels"})
        assert roster(frame) == {
            "ids": ["10"],
            "hash": {"10": {"name": "Mr. Channels"}},
            "count": 1,
        }

    @pytest.mark.parametrize(
        "channel_data", [None, "nope", "{}", '{"user_id":""}', '{"user_id":null}']
    )
    def test_bad_channel_data_is_refused(self, channel_data: str | None) -> None:
        app = App()
        connection = app.connect()
        auth = auth_for(connection, "presence-r", channel_data)
        is_error(subscribe(connection, "presence-r", auth=auth, channel_data=channel_data))
        assert len(app.registry) == 0

    def test_changed_channel_data_is_refused(self) -> None:
        connection = App().connect()
        auth = auth_for(connection, "presence-r", '{"user_id":"a"}')
        is_error(subscribe(connection, "presence-r", auth=auth, channel_data='{"user_id":"b"}'))

    def test_at_most_100_users_but_existing_members_may_add_connections(self) -> None:
        app = App()
        for n in range(100):
            join(app.connect(), "presence-r", f"u{n}")
        assert "full" in is_error(join(app.connect(), "presence-r", "new"))
        assert roster(join(app.connect(), "presence-r", "u0")[0])["count"] == 100

    def test_fault_presence_member_limit_off(self) -> None:
        app = App([Fault.PRESENCE_MEMBER_LIMIT_OFF])
        for n in range(101):
            [frame] = join(app.connect(), "presence-r", f"u{n}")
        assert roster(frame)["count"] == 101

    def test_fault_presence_user_id_optional(self) -> None:
        connection = App([Fault.PRESENCE_USER_ID_OPTIONAL]).connect()
        data = '{"user_info":{}}'
        auth = auth_for(connection, "presence-r", data)
        [frame] = subscribe(connection, "presence-r", auth=auth, channel_data=data)
        assert roster(frame)["count"] == 1

    def test_fault_presence_roster_excludes_self(self) -> None:
        app = App([Fault.PRESENCE_ROSTER_EXCLUDES_SELF])
        join(app.connect(), "presence-r", "a")
        [frame] = join(app.connect(), "presence-r", "b")
        assert roster(frame) == {"ids": ["a"], "hash": {"a": None}, "count": 1}

    def test_fault_presence_counted_per_connection(self) -> None:
        app = App([Fault.PRESENCE_COUNTED_PER_CONNECTION])
        a, b1, b2 = app.connect(), app.connect(), app.connect()
        join(a, "presence-r", "a")
        join(b1, "presence-r", "b")
        join(b2, "presence-r", "b")
        assert [f["event"] for f, _ in delivered(b2)] == ["pusher_internal:member_added"]
        b2.receive_eof()
        assert [f["event"] for f, _ in delivered(b2)] == ["pusher_internal:member_removed"]

    def test_fault_member_removed_on_first_leave(self) -> None:
        app = App([Fault.MEMBER_REMOVED_ON_FIRST_LEAVE])
        a, b1, b2 = app.connect(), app.connect(), app.connect()
        join(a, "presence-r", "a")
        join(b1, "presence-r", "b")
        delivered(b1)
        join(b2, "presence-r", "b")
        assert delivered(b2) == []  # member_added stays per user.
        send(b1, "pusher:unsubscribe", {"channel": "presence-r"})
        assert [f["event"] for f, _ in delivered(b1)] == ["pusher_internal:member_removed"]

    def test_presence_side_effects_survive_unsubscribe_ignored(self) -> None:
        app = App([Fault.UNSUBSCRIBE_IGNORED])
        a, b = app.connect(), app.connect()
        join(a, "presence-r", "a")
        join(b, "presence-r", "b")
        delivered(b)
        send(b, "pusher:unsubscribe", {"channel": "presence-r"})
        [(removed, targets)] = delivered(b)
        assert removed["event"] == "pusher_internal:member_removed"
        assert targets == (a.socket_id,)
        b.receive_eof()
        assert delivered(b) == []


class TestCache:
    def test_miss_then_replay(self) -> None:
        app = App()
        connection = app.connect()
        assert subscribe(connection, "cache-a") == [
            succeeded("cache-a"),
            {"event": "pusher:cache_miss", "channel": "cache-a"},
        ]
        app.registry.cache.store("cache-b", "ev", '{"x":1}', 5.0)
        assert subscribe(connection, "cache-b", now=6.0) == [
            succeeded("cache-b"),
            {"event": "ev", "channel": "cache-b", "data": '{"x":1}'},
        ]

    def test_expired_events_are_not_replayed(self) -> None:
        app = App()
        app.registry.cache.store("cache-b", "ev", "d", 0.0)
        frames = subscribe(app.connect(), "cache-b", now=1800.0)
        assert frames[1] == {"event": "pusher:cache_miss", "channel": "cache-b"}

    @pytest.mark.parametrize("channel", ["private-cache-a", "private-encrypted-cache-a"])
    def test_private_cache_channels(self, channel: str) -> None:
        app = App()
        app.registry.cache.store(channel, "ev", "d", 0.0)
        connection = app.connect()
        frames = subscribe(connection, channel, auth=auth_for(connection, channel))
        assert frames == [succeeded(channel), {"event": "ev", "channel": channel, "data": "d"}]

    def test_presence_cache_channel_replays_after_the_roster(self) -> None:
        app = App()
        frames = join(app.connect(), "presence-cache-a", "u")
        assert [f["event"] for f in frames] == [
            "pusher_internal:subscription_succeeded",
            "pusher:cache_miss",
        ]

    def test_fault_cache_miss_always(self) -> None:
        app = App([Fault.CACHE_MISS_ALWAYS])
        app.registry.cache.store("cache-b", "ev", "d", 0.0)
        assert subscribe(app.connect(), "cache-b")[1]["event"] == "pusher:cache_miss"


def signin(connection: Connection, user_id: str, now: float = 1.0) -> list[dict[str, Any]]:
    assert connection.socket_id is not None
    user_data = json.dumps({"id": user_id})
    auth = f"{KEY}:{sign_user(SECRET, connection.socket_id, user_data)}"
    send(connection, "pusher:signin", {"auth": auth, "user_data": user_data}, now)
    return sent(connection)


class TestSignin:
    def test_signin_success_and_idempotence(self) -> None:
        app = App()
        connection = app.connect()
        expected = {"event": "pusher:signin_success", "data": {"user_data": '{"id": "u1"}'}}
        assert signin(connection, "u1") == [expected]
        assert signin(connection, "u1") == [expected]
        assert "another user" in is_error(signin(connection, "u2"))
        assert connection.user_id == "u1"
        assert app.registry.users.sockets_of("u1") == (connection.socket_id,)

    def test_bad_signin_is_refused_and_connection_stays_open(self) -> None:
        connection = App().connect()
        send(connection, "pusher:signin", {"auth": "app-key:bad", "user_data": '{"id":"u"}'})
        is_error(sent(connection))
        send(connection, "pusher:signin", "not an object")
        is_error(sent(connection))
        assert connection.state is State.OPEN
        assert connection.user_id is None

    def test_server_to_user_channel_only_for_that_user(self) -> None:
        app = App()
        a, b = app.connect(), app.connect()
        signin(a, "u1")
        assert subscribe(a, "#server-to-user-u1") == [succeeded("#server-to-user-u1")]
        is_error(subscribe(a, "#server-to-user-u2"))
        is_error(subscribe(b, "#server-to-user-u1"))
        is_error(subscribe(a, "#server-to-user-"))
        assert len(app.registry) == 0  # Routed by user, not by subscription.

    def test_terminate_sends_4009_and_closes_and_signs_out(self) -> None:
        app = App()
        a, b = app.connect(), app.connect()
        signin(a, "u1")
        join(a, "presence-r", "u1")
        join(b, "presence-r", "u2")
        delivered(b)
        a.terminate()
        [error, close] = a.data_to_send()
        assert isinstance(error, SendText)
        assert json.loads(error.text)["data"]["code"] == 4009
        assert isinstance(close, Close)
        assert close.code == 4009
        assert a.state is State.CLOSED
        assert app.registry.users.sockets_of("u1") == ()
        assert [f["event"] for f, _ in delivered(a)] == ["pusher_internal:member_removed"]
        a.terminate()
        assert a.data_to_send() == []

    def test_eof_signs_out(self) -> None:
        app = App()
        connection = app.connect()
        signin(connection, "u")
        connection.receive_eof()
        assert len(app.registry.users) == 0


def client_event(
    connection: Connection,
    channel: str | None,
    event: str = "client-x",
    data: Any = None,
    now: float = 1.0,
) -> None:
    message: dict[str, Any] = {"event": event, "data": {"a": 1} if data is None else data}
    if channel is not None:
        message["channel"] = channel
    connection.receive_text(json.dumps(message), now)


class TestClientEvents:
    def setup_private(
        self, *faults: Fault, client_events: bool = True
    ) -> tuple[App, list[Connection]]:
        app = App(faults, client_events=client_events)
        connections = [app.connect() for _ in range(3)]
        for connection in connections[:2]:
            subscribe(connection, "private-r", auth=auth_for(connection, "private-r"))
        return app, connections

    def test_relayed_unchanged_to_other_subscribers(self) -> None:
        _, [a, b, _] = self.setup_private()
        client_event(a, "private-r", data='{"s":"x"}')
        assert sent(a) == []
        [delivery] = a.deliveries_to_send()
        assert delivery == Delivery(
            '{"event":"client-x","channel":"private-r","data":"{\\"s\\":\\"x\\"}"}',
            (b.socket_id or "",),
        )
        client_event(a, "private-r", data={"o": [1, None]})
        [(frame, _)] = delivered(a)
        assert frame["data"] == {"o": [1, None]}

    def test_presence_client_events_carry_the_senders_user_id(self) -> None:
        app = App()
        a, b = app.connect(), app.connect()
        join(a, "presence-r", 42)
        join(b, "presence-r", "b")
        delivered(b)
        client_event(a, "presence-r")
        [(frame, targets)] = delivered(a)
        assert frame == {
            "event": "client-x",
            "channel": "presence-r",
            "data": {"a": 1},
            "user_id": "42",
        }
        assert targets == (b.socket_id,)

    @pytest.mark.parametrize(
        ("channel", "event", "data"),
        [
            ("private-r", "client-" + "x" * 194, None),
            (None, "client-x", None),
            ("public", "client-x", None),
            ("private-encrypted-r", "client-x", None),
            ("private-other", "client-x", None),
            ("private-r", "client-x", "x" * 10241),
        ],
    )
    def test_refused_with_null_code(self, channel: str | None, event: str, data: Any) -> None:
        _, [a, _, _] = self.setup_private()
        subscribe(a, "public")
        subscribe(a, "private-encrypted-r", auth=auth_for(a, "private-encrypted-r"))
        client_event(a, channel, event, data)
        is_error(sent(a))
        assert a.deliveries_to_send() == []
        assert a.state is State.OPEN

    def test_largest_data_is_accepted(self) -> None:
        _, [a, _, _] = self.setup_private()
        client_event(a, "private-r", data="x" * 10240)
        assert len(a.deliveries_to_send()) == 1

    def test_disabled(self) -> None:
        _, [a, _, _] = self.setup_private(client_events=False)
        client_event(a, "private-r")
        assert "not enabled" in is_error(sent(a))

    def test_other_names_are_refused(self) -> None:
        _, [a, _, _] = self.setup_private()
        client_event(a, "private-r", event="my-event")
        is_error(sent(a))
        assert a.deliveries_to_send() == []

    def test_rate_limit_ten_per_rolling_second(self) -> None:
        _, [a, _, _] = self.setup_private()
        for n in range(10):
            client_event(a, "private-r", now=1.0 + n * 0.01)
        assert len(a.deliveries_to_send()) == 10
        client_event(a, "private-r", now=1.5)
        assert is_error(sent(a), 4301) == "Client event rejected due to rate limit"
        assert a.deliveries_to_send() == []
        assert a.state is State.OPEN
        client_event(a, "private-r", now=2.0)
        assert len(a.deliveries_to_send()) == 1

    def test_fault_client_event_rate_unlimited(self) -> None:
        _, [a, _, _] = self.setup_private(Fault.CLIENT_EVENT_RATE_UNLIMITED)
        for _ in range(20):
            client_event(a, "private-r")
        assert len(a.deliveries_to_send()) == 20

    def test_fault_non_client_events_relayed(self) -> None:
        _, [a, b, _] = self.setup_private(Fault.NON_CLIENT_EVENTS_RELAYED)
        client_event(a, "private-r", event="my-event")
        assert [targets for _, targets in delivered(a)] == [(b.socket_id,)]
        client_event(a, None, event="my-event")
        is_error(sent(a))

    def test_fault_client_events_on_public(self) -> None:
        _, [a, b, _] = self.setup_private(Fault.CLIENT_EVENTS_ON_PUBLIC)
        subscribe(a, "public")
        subscribe(b, "public")
        client_event(a, "public")
        assert [targets for _, targets in delivered(a)] == [(b.socket_id,)]

    def test_fault_client_events_from_unsubscribed(self) -> None:
        _, [a, b, c] = self.setup_private(Fault.CLIENT_EVENTS_FROM_UNSUBSCRIBED)
        client_event(c, "private-r")
        assert [targets for _, targets in delivered(c)] == [(a.socket_id, b.socket_id)]

    def test_fault_client_event_echo(self) -> None:
        _, [a, b, _] = self.setup_private(Fault.CLIENT_EVENT_ECHO)
        client_event(a, "private-r")
        assert [targets for _, targets in delivered(a)] == [(a.socket_id, b.socket_id)]

    def test_fault_client_event_no_user_id(self) -> None:
        app = App([Fault.CLIENT_EVENT_NO_USER_ID])
        a, b = app.connect(), app.connect()
        join(a, "presence-r", "a")
        join(b, "presence-r", "b")
        delivered(b)
        client_event(a, "presence-r")
        [(frame, _)] = delivered(a)
        assert "user_id" not in frame
