"""What a connection's messages ask for: subscriptions, private and presence channels, the
cache, sign-in and client events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from reference_server.protocol.channels import Delivery
from reference_server.protocol.connection import Close, Connection, SendText, State
from reference_server.protocol.lifecycle import SHUTDOWN_REASON
from reference_server.protocol.signing import sign_channel

from ..harness import (
    SECRET,
    App,
    auth_for,
    client_event,
    delivered,
    is_error,
    is_refusal,
    join,
    opened,
    roster,
    send,
    sent,
    signin,
    subscribe,
    succeeded,
)


class TestSubscriptions:
    def test_public_subscribe_succeeds(self) -> None:
        app = App()
        connection = app.connect()
        registry = app.registry
        assert subscribe(connection, "my-channel") == [succeeded("my-channel")]
        assert registry.subscribers("my-channel") == [connection.socket_id]
        assert connection.subscriptions == ("my-channel",)

    def test_auth_is_ignored_on_public_channels(self) -> None:
        connection = opened()
        assert subscribe(connection, "a", auth="anything:at-all") == [succeeded("a")]

    @pytest.mark.parametrize("name", ["", "a" * 165, "bad name", "#server-to-user-1", "é"])
    def test_invalid_names_are_refused(self, name: str) -> None:
        app = App()
        connection = app.connect()
        registry = app.registry
        frames = subscribe(connection, name)
        # #server-to-user- is a valid name but only for that signed-in user: a refusal.
        is_refusal(frames) if name.startswith("#") else is_error(frames)
        assert len(registry) == 0

    def test_longest_name_is_accepted(self) -> None:
        assert subscribe(opened(), "a" * 164) == [succeeded("a" * 164)]

    def test_missing_name_is_refused(self) -> None:
        connection = opened()
        connection.receive_text('{"event":"pusher:subscribe","data":{}}', 1.0)
        is_error(sent(connection))

    def test_second_subscribe_is_an_error(self) -> None:
        connection = opened()
        subscribe(connection, "foo")
        message = is_error(subscribe(connection, "foo"))
        assert message == "Existing subscription to channel foo"

    @pytest.mark.parametrize(
        "name", ["private-a", "presence-a", "private-encrypted-a", "private-cache-a"]
    )
    def test_authenticated_channel_types_refuse_a_bad_auth(self, name: str) -> None:
        app = App()
        connection = app.connect()
        registry = app.registry
        is_refusal(subscribe(connection, name, auth="k:s"))
        assert len(registry) == 0

    def test_unsubscribe_has_no_reply_and_stops_delivery(self) -> None:
        app = App()
        connection = app.connect()
        registry = app.registry
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
        app = App()
        connection = app.connect()
        registry = app.registry
        subscribe(connection, "a")
        subscribe(connection, "b")
        connection.receive_eof()
        assert len(registry) == 0
        assert connection.state is State.CLOSED
        connection.receive_eof()  # Idempotent.

    def test_shutdown_asks_for_a_reconnect_with_4200(self) -> None:
        app = App()
        connection = app.connect()
        registry = app.registry
        subscribe(connection, "a")
        connection.shutdown()
        error, close = connection.data_to_send()
        assert isinstance(error, SendText)
        assert json.loads(error.text)["data"] == {"code": 4200, "message": SHUTDOWN_REASON}
        assert close == Close(4200, SHUTDOWN_REASON)
        assert len(registry) == 0
        connection.shutdown()  # Once only.
        assert connection.data_to_send() == []


CHANNELS = ["a", "b", "c", "private-d", "bad name"]


class SubscriptionMachine(RuleBasedStateMachine):
    """Two connections subscribe and unsubscribe at random; the registry follows a model."""

    def __init__(self) -> None:
        super().__init__()
        app = App()
        self.registry = app.registry
        self.connections = [app.connect() for _ in range(2)]
        self.model: list[set[str]] = [set(), set()]

    @rule(who=st.integers(0, 1), channel=st.sampled_from(CHANNELS))
    def subscribe(self, who: int, channel: str) -> None:
        frames = subscribe(self.connections[who], channel)
        if channel in ("a", "b", "c") and channel not in self.model[who]:
            assert frames == [succeeded(channel)]
            self.model[who].add(channel)
        elif channel.startswith("private-"):
            is_refusal(frames)
        else:
            assert [f["event"] for f in frames] == ["pusher:error"]

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
        is_refusal(subscribe(connection, channel, auth=auth))
        assert connection.state is State.OPEN
        assert len(app.registry) == 0
        # A later, right subscribe works.
        assert subscribe(connection, channel, auth=auth_for(connection, channel)) == [
            succeeded(channel)
        ]

    def test_auth_of_another_connection_is_refused(self) -> None:
        app = App()
        a, b = app.connect(), app.connect()
        is_refusal(subscribe(a, "private-a", auth=auth_for(b, "private-a")))
        is_refusal(subscribe(a, "private-a", auth=auth_for(a, "private-b")))


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
        is_refusal(subscribe(connection, "presence-r", auth=auth, channel_data=channel_data))
        assert len(app.registry) == 0

    def test_changed_channel_data_is_refused(self) -> None:
        connection = App().connect()
        auth = auth_for(connection, "presence-r", '{"user_id":"a"}')
        is_refusal(subscribe(connection, "presence-r", auth=auth, channel_data='{"user_id":"b"}'))

    def test_at_most_100_users_but_existing_members_may_add_connections(self) -> None:
        app = App()
        for n in range(100):
            join(app.connect(), "presence-r", f"u{n}")
        assert "full" in is_refusal(join(app.connect(), "presence-r", "new"))
        assert roster(join(app.connect(), "presence-r", "u0")[0])["count"] == 100


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
        is_refusal(subscribe(a, "#server-to-user-u2"))
        is_refusal(subscribe(b, "#server-to-user-u1"))
        is_refusal(subscribe(a, "#server-to-user-"))
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


class TestClientEvents:
    def setup_private(self, *, client_events: bool = True) -> tuple[App, list[Connection]]:
        app = App(client_events=client_events)
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
