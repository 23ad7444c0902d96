"""Webhook core: events, signing, delays and cancellation, de-duplication, retry schedule."""

from __future__ import annotations

import json

from reference_server.protocol.connection import Connection
from reference_server.protocol.presence import Joined, Left, Member
from reference_server.protocol.signing import sign_channel
from reference_server.protocol.webhooks import (
    RetryPolicy,
    WebhookEvent,
    WebhookSchedule,
    after_join,
    after_leave,
    build_request,
    cache_miss,
    channel_occupied,
    channel_vacated,
    client_event,
    member_added,
    member_removed,
    sign_body,
    split_requests,
)

from ..harness import App, join, send

KEY, SECRET = "app-key", "app-secret"
VECTOR_SIGNATURE = "709fdb84c03664445f7698120b0edf0acc1ab1c8c6e93a0368c61841d6b998aa"


class TestRequests:
    def test_signature_vector(self) -> None:
        # Research catalogue, section 16: the webhook vector.
        body = (
            b'{"time_ms":1327078148132,"events":[{"name":"channel_occupied",'
            b'"channel":"test_channel"}]}'
        )
        assert sign_body("7ad3773142a6692b25b8", body) == (
            "709fdb84c03664445f7698120b0edf0acc1ab1c8c6e93a0368c61841d6b998aa"
        )

    def test_build_request(self) -> None:
        request = build_request(
            [channel_occupied("test_channel")],
            time_ms=1327078148132,
            key="278d425bdf160c739803",
            secret="7ad3773142a6692b25b8",
        )
        assert json.loads(request.body) == {
            "time_ms": 1327078148132,
            "events": [{"name": "channel_occupied", "channel": "test_channel"}],
        }
        assert dict(request.headers) == {
            "Content-Type": "application/json",
            "X-Pusher-Key": "278d425bdf160c739803",
            "X-Pusher-Signature": VECTOR_SIGNATURE,
        }

    def test_one_event_per_request(self) -> None:
        events = [channel_occupied("presence-a"), member_added("presence-a", "u1")]
        assert split_requests(events) == [(events[0],), (events[1],)]
        assert split_requests([]) == []

    def test_utf8_body_is_what_is_signed(self) -> None:
        event = client_event("private-a", "client-x", {"t": "é"}, "1.2", None)
        request = build_request([event], time_ms=1, key=KEY, secret=SECRET)
        assert "é".encode() in request.body
        assert dict(request.headers)["X-Pusher-Signature"] == sign_body(SECRET, request.body)


class TestEvents:
    def test_fields(self) -> None:
        assert channel_vacated("a").to_json() == {"name": "channel_vacated", "channel": "a"}
        assert member_removed("p", "u").to_json() == {
            "name": "member_removed",
            "channel": "p",
            "user_id": "u",
        }
        assert client_event("presence-p", "client-x", "d", "1.2", "u").to_json() == {
            "name": "client_event",
            "channel": "presence-p",
            "event": "client-x",
            "data": "d",
            "socket_id": "1.2",
            "user_id": "u",
        }
        private = client_event("private-p", "client-x", {"a": 1}, "1.2", None).to_json()
        assert "user_id" not in private
        assert private["data"] == {"a": 1}

    def test_members_are_per_user(self) -> None:
        member = Member("u1")
        assert after_join("p", Joined(member, first=True)) == [member_added("p", "u1")]
        assert after_join("p", Joined(member, first=False)) == []
        assert after_leave("p", Left(member, last=False)) == []
        assert after_leave("p", Left(member, last=True)) == [member_removed("p", "u1")]
        assert after_leave("p", None) == []


class TestSchedule:
    def test_no_delay(self) -> None:
        schedule = WebhookSchedule(delay=0.0)
        assert schedule.add([channel_vacated("a")], 1.0) == [channel_vacated("a")]
        assert schedule.add([channel_occupied("a")], 1.1) == [channel_occupied("a")]

    def test_vacated_is_delayed(self) -> None:
        schedule = WebhookSchedule(delay=3.0)
        assert schedule.add([channel_occupied("a")], 0.0) == [channel_occupied("a")]
        assert schedule.add([channel_vacated("a")], 1.0) == []
        assert schedule.next_deadline() == 4.0
        assert schedule.due(3.9) == []
        assert schedule.due(4.0) == [channel_vacated("a")]
        assert schedule.next_deadline() is None

    def test_return_within_the_window_cancels_both(self) -> None:
        schedule = WebhookSchedule(delay=3.0)
        schedule.add([channel_vacated("a"), member_removed("p", "u1")], 1.0)
        assert schedule.add([channel_occupied("a"), member_added("p", "u1")], 2.0) == []
        assert len(schedule) == 0
        # Another user's join cancels nothing.
        schedule.add([member_removed("p", "u1")], 3.0)
        assert schedule.add([member_added("p", "u2")], 3.5) == [member_added("p", "u2")]
        assert schedule.due(6.0) == [member_removed("p", "u1")]

    def test_due_in_creation_order(self) -> None:
        schedule = WebhookSchedule(delay=3.0)
        schedule.add([channel_vacated("b")], 1.0)
        schedule.add([channel_vacated("a")], 0.5)
        assert schedule.due(10.0) == [channel_vacated("a"), channel_vacated("b")]

    def test_cache_miss_deduplicated_per_window(self) -> None:
        schedule = WebhookSchedule(delay=3.0)
        assert schedule.add([cache_miss("c")], 0.0) == [cache_miss("c")]
        assert schedule.add([cache_miss("c")], 1.0) == []
        assert schedule.add([cache_miss("d")], 1.0) == [cache_miss("d")]
        assert schedule.add([cache_miss("c")], 3.5) == [cache_miss("c")]


class TestRetry:
    def test_exponential_and_bounded(self) -> None:
        policy = RetryPolicy(first_delay=1.0, factor=2.0, max_delay=60.0, retry_for=300.0)
        assert [policy.next_delay(n, 0.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
        assert policy.next_delay(20, 0.0) == 60.0
        assert policy.next_delay(3, 299.0) is None

    def test_zero_bound_never_retries(self) -> None:
        assert RetryPolicy(retry_for=0.0).next_delay(1, 0.0) is None


class TestConnection:
    """What the connection state machine reports, as the adapter drains it."""

    def setup_method(self) -> None:
        self.app = App()

    def connect(self) -> Connection:
        return self.app.connect()

    @staticmethod
    def send(connection: Connection, event: str, data: object) -> None:
        send(connection, event, data)

    def join(self, connection: Connection, channel: str, user_id: str) -> None:
        join(connection, channel, user_id)

    def test_occupied_and_vacated_follow_connections(self) -> None:
        c1, c2 = self.connect(), self.connect()
        self.send(c1, "pusher:subscribe", {"channel": "a"})
        assert c1.webhooks_to_send() == [channel_occupied("a")]
        self.send(c2, "pusher:subscribe", {"channel": "a"})
        assert c2.webhooks_to_send() == []
        self.send(c1, "pusher:unsubscribe", {"channel": "a"})
        assert c1.webhooks_to_send() == []
        c2.receive_eof()
        assert c2.webhooks_to_send() == [channel_vacated("a")]

    def test_presence_members_per_user(self) -> None:
        c1, c2 = self.connect(), self.connect()
        self.join(c1, "presence-p", "u1")
        assert c1.webhooks_to_send() == [
            channel_occupied("presence-p"),
            member_added("presence-p", "u1"),
        ]
        self.join(c2, "presence-p", "u1")
        assert c2.webhooks_to_send() == []
        c1.receive_eof()
        assert c1.webhooks_to_send() == []
        c2.receive_eof()
        assert c2.webhooks_to_send() == [
            channel_vacated("presence-p"),
            member_removed("presence-p", "u1"),
        ]

    def test_client_event_and_cache_miss(self) -> None:
        c1, c2 = self.connect(), self.connect()
        for connection in (c1, c2):
            assert connection.socket_id is not None
            auth = sign_channel(SECRET, connection.socket_id, "private-x")
            self.send(
                connection, "pusher:subscribe", {"channel": "private-x", "auth": f"{KEY}:{auth}"}
            )
            connection.webhooks_to_send()
        c1.receive_text(
            json.dumps({"event": "client-a", "channel": "private-x", "data": {"k": 1}}), 1.0
        )
        assert c1.webhooks_to_send() == [
            WebhookEvent(
                "client_event",
                "private-x",
                (("event", "client-a"), ("data", {"k": 1}), ("socket_id", c1.socket_id)),
            )
        ]
        self.send(c1, "pusher:subscribe", {"channel": "cache-x"})
        assert c1.webhooks_to_send() == [channel_occupied("cache-x"), cache_miss("cache-x")]

    def test_refused_client_event_reports_nothing(self) -> None:
        c1 = self.connect()
        c1.receive_text(json.dumps({"event": "client-a", "channel": "private-x", "data": {}}), 1.0)
        assert c1.webhooks_to_send() == []


def test_a_lone_surrogate_in_client_event_data_still_encodes_and_signs() -> None:
    # JSON allows an escaped lone surrogate ("\ud800"); it cannot be written as UTF-8 raw.
    event = client_event("private-a", "client-x", "\ud800", "1.2", None)
    request = build_request([event], time_ms=1, key="k", secret="s")
    assert json.loads(request.body)["events"][0]["data"] == "\ud800"
    assert dict(request.headers)["X-Pusher-Signature"] == sign_body("s", request.body)
