"""Fault switches in the webhooks a connection reports and in how requests are built."""

from __future__ import annotations

import json

import pytest

from reference_server.faults import Fault
from reference_server.faults.webhooks import (
    UndelayedWebhookSchedule,
    build_request_with_faults,
    split_requests_with_faults,
)
from reference_server.protocol.webhooks import (
    CLIENT_EVENT,
    build_request,
    cache_miss,
    channel_occupied,
    channel_vacated,
    member_added,
    member_removed,
)

from ..harness import App, auth_for, client_event, join, subscribe, unsubscribe

KEY, SECRET = "app-key", "app-secret"


@pytest.mark.parametrize(
    ("fault", "broken"),
    [
        (Fault.WEBHOOK_WITHOUT_TIME_MS, "time_ms"),
        (Fault.WEBHOOK_BAD_SIGNATURE, "X-Pusher-Signature"),
        (Fault.WEBHOOK_CONTENT_TYPE_TEXT, "Content-Type"),
    ],
)
def test_request_faults(fault: Fault, broken: str) -> None:
    good = build_request([cache_miss("cache-a")], time_ms=5, key=KEY, secret=SECRET)
    bad = build_request_with_faults(
        [cache_miss("cache-a")], time_ms=5, key=KEY, secret=SECRET, faults=frozenset({fault})
    )
    if broken == "time_ms":
        assert "time_ms" not in json.loads(bad.body)
    else:
        assert json.loads(bad.body) == json.loads(good.body)
        assert dict(bad.headers)[broken] != dict(good.headers)[broken]


def test_requests_are_unchanged_by_other_faults() -> None:
    good = build_request([cache_miss("cache-a")], time_ms=5, key=KEY, secret=SECRET)
    same = build_request_with_faults(
        [cache_miss("cache-a")], time_ms=5, key=KEY, secret=SECRET, faults=frozenset()
    )
    assert same == good


def test_fault_webhook_batched_per_input() -> None:
    events = [channel_occupied("presence-a"), member_added("presence-a", "u1")]
    faulty = frozenset({Fault.WEBHOOK_BATCHED_PER_INPUT})
    assert split_requests_with_faults(events, faulty) == [tuple(events)]
    assert split_requests_with_faults([], faulty) == []
    assert split_requests_with_faults(events, frozenset()) == [(events[0],), (events[1],)]


def test_fault_webhook_vacated_not_delayed() -> None:
    schedule = UndelayedWebhookSchedule(delay=3.0)
    assert schedule.add([channel_vacated("a")], 1.0) == [channel_vacated("a")]
    assert schedule.add([channel_occupied("a")], 1.1) == [channel_occupied("a")]
    # Cache misses are still de-duplicated per window.
    assert schedule.add([cache_miss("c")], 1.0) == [cache_miss("c")]
    assert schedule.add([cache_miss("c")], 2.0) == []


def test_fault_webhook_members_per_connection() -> None:
    app = App([Fault.WEBHOOK_MEMBERS_PER_CONNECTION])
    c1, c2 = app.connect(), app.connect()
    join(c1, "presence-p", "u1")
    c1.webhooks_to_send()
    join(c2, "presence-p", "u1")
    assert c2.webhooks_to_send() == [member_added("presence-p", "u1")]
    c1.receive_eof()
    assert c1.webhooks_to_send() == [member_removed("presence-p", "u1")]


def test_fault_webhook_no_cache_miss() -> None:
    connection = App([Fault.WEBHOOK_NO_CACHE_MISS]).connect()
    assert subscribe(connection, "cache-x")[1]["event"] == "pusher:cache_miss"
    assert connection.webhooks_to_send() == [channel_occupied("cache-x")]


@pytest.mark.parametrize(
    ("fault", "fields"),
    [
        (Fault.WEBHOOK_NO_CLIENT_EVENT, None),
        (Fault.WEBHOOK_CLIENT_EVENT_WITHOUT_SOCKET_ID, {"event", "data"}),
        (Fault.NO_PONG, {"event", "data", "socket_id"}),
    ],
)
def test_client_event_webhook_faults(fault: Fault, fields: set[str] | None) -> None:
    app = App([fault])
    a, b = app.connect(), app.connect()
    for connection in (a, b):
        subscribe(connection, "private-x", auth=auth_for(connection, "private-x"))
        connection.webhooks_to_send()
    client_event(a, "private-x")
    reported = [e for e in a.webhooks_to_send() if e.name == CLIENT_EVENT]
    if fields is None:
        assert reported == []
    else:
        [event] = reported
        assert {name for name, _ in event.fields} == fields
    assert len(a.deliveries_to_send()) == 1


def test_fault_webhook_client_event_without_user_id() -> None:
    app = App([Fault.WEBHOOK_CLIENT_EVENT_WITHOUT_USER_ID])
    a, b = app.connect(), app.connect()
    join(a, "presence-p", "u1")
    join(b, "presence-p", "u2")
    a.webhooks_to_send()
    client_event(a, "presence-p")
    [event] = [e for e in a.webhooks_to_send() if e.name == CLIENT_EVENT]
    assert {name for name, _ in event.fields} == {"event", "data", "socket_id"}
    assert len(a.deliveries_to_send()) == 1


def leaves(fault: Fault, *, close: bool) -> list[str]:
    """The webhooks of u1 (alone in ``presence-p``) leaving, by closing or by unsubscribing."""
    connection = App([fault]).connect()
    join(connection, "presence-p", "u1")
    connection.webhooks_to_send()
    if close:
        connection.receive_eof()
    else:
        unsubscribe(connection, "presence-p")
    return [event.name for event in connection.webhooks_to_send()]


@pytest.mark.parametrize(
    ("fault", "lost"),
    [
        (Fault.WEBHOOK_VACATED_NOT_ON_CLOSE, "channel_vacated"),
        (Fault.WEBHOOK_MEMBER_REMOVED_NOT_ON_CLOSE, "member_removed"),
    ],
)
def test_leave_webhooks_lost_on_close(fault: Fault, lost: str) -> None:
    both = {"channel_vacated", "member_removed"}
    assert set(leaves(fault, close=False)) == both
    assert set(leaves(fault, close=True)) == both - {lost}


def test_fault_webhook_vacated_on_any_leave() -> None:
    app = App([Fault.WEBHOOK_VACATED_ON_ANY_LEAVE])
    a, b, c = app.connect(), app.connect(), app.connect()
    for connection in (a, b, c):
        subscribe(connection, "pub")
        connection.webhooks_to_send()
    unsubscribe(a, "pub")
    assert a.webhooks_to_send() == [channel_vacated("pub")]
    b.receive_eof()
    assert b.webhooks_to_send() == [channel_vacated("pub")]
    # The last leave reports it once, as it should.
    c.receive_eof()
    assert c.webhooks_to_send() == [channel_vacated("pub")]
