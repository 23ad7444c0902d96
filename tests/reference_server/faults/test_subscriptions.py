"""Fault switches in subscribing: channel names, auth, presence, the cache and sign-in."""

from __future__ import annotations

from reference_server.faults import Fault
from reference_server.protocol.connection import Close

from ..harness import (
    App,
    auth_for,
    delivered,
    is_error,
    is_refusal,
    join,
    opened,
    roster,
    send,
    subscribe,
    succeeded,
)


def test_fault_public_auth_checked() -> None:
    connection = opened([Fault.PUBLIC_AUTH_CHECKED])
    is_refusal(subscribe(connection, "a", auth="k:s"))
    assert subscribe(connection, "b", auth="") == [succeeded("b")]
    assert subscribe(connection, "c") == [succeeded("c")]


def test_fault_subscription_succeeded_without_data() -> None:
    connection = opened([Fault.SUBSCRIPTION_SUCCEEDED_WITHOUT_DATA])
    [frame] = subscribe(connection, "a")
    assert frame == {"event": "pusher_internal:subscription_succeeded", "channel": "a"}


def test_fault_duplicate_subscribe_silent() -> None:
    app = App([Fault.DUPLICATE_SUBSCRIBE_SILENT])
    connection = app.connect()
    registry = app.registry
    subscribe(connection, "a")
    assert subscribe(connection, "a") == [succeeded("a")]
    assert registry.subscribers("a") == [connection.socket_id]


def test_fault_unsubscribe_ignored() -> None:
    app = App([Fault.UNSUBSCRIBE_IGNORED])
    connection = app.connect()
    registry = app.registry
    subscribe(connection, "a")
    connection.receive_text('{"event":"pusher:unsubscribe","data":{"channel":"a"}}', 1.0)
    assert connection.data_to_send() == []
    assert registry.subscribers("a") == [connection.socket_id]
    # Resubscribing is still a fresh subscription, not a duplicate.
    assert subscribe(connection, "a") == [succeeded("a")]
    connection.receive_eof()
    assert len(registry) == 0


def test_fault_channel_name_length_100() -> None:
    connection = opened([Fault.CHANNEL_NAME_LENGTH_100])
    assert subscribe(connection, "a" * 100) == [succeeded("a" * 100)]
    is_error(subscribe(connection, "b" * 101))


def test_fault_private_without_auth_accepted() -> None:
    app = App([Fault.PRIVATE_WITHOUT_AUTH_ACCEPTED])
    connection = app.connect()
    assert subscribe(connection, "private-a") == [succeeded("private-a")]
    assert subscribe(connection, "private-b", auth="") == [succeeded("private-b")]
    is_refusal(subscribe(connection, "private-c", auth="app-key:bad"))
    is_refusal(subscribe(connection, "private-encrypted-a"))
    is_refusal(subscribe(connection, "presence-a"))


def test_fault_encrypted_without_auth_accepted() -> None:
    app = App([Fault.ENCRYPTED_WITHOUT_AUTH_ACCEPTED])
    connection = app.connect()
    frames = subscribe(connection, "private-encrypted-a", auth="junk")
    assert frames == [succeeded("private-encrypted-a")]
    is_refusal(subscribe(connection, "private-a"))


def test_fault_unanchored_private_prefix() -> None:
    connection = App([Fault.UNANCHORED_PRIVATE_PREFIX]).connect()
    is_refusal(subscribe(connection, "my-private-a"))
    assert subscribe(connection, "privatefoo") == [succeeded("privatefoo")]


def test_fault_invalid_channel_names_accepted() -> None:
    connection = App([Fault.INVALID_CHANNEL_NAMES_ACCEPTED]).connect()
    assert subscribe(connection, "bad name") == [succeeded("bad name")]
    assert subscribe(connection, "a" * 200) == [succeeded("a" * 200)]
    is_error(subscribe(connection, ""))
    is_refusal(subscribe(connection, "#server-to-user-1"))


def test_fault_presence_member_limit_off() -> None:
    app = App([Fault.PRESENCE_MEMBER_LIMIT_OFF])
    for n in range(101):
        [frame] = join(app.connect(), "presence-r", f"u{n}")
    assert roster(frame)["count"] == 101


def test_fault_presence_user_id_optional() -> None:
    connection = App([Fault.PRESENCE_USER_ID_OPTIONAL]).connect()
    data = '{"user_info":{}}'
    auth = auth_for(connection, "presence-r", data)
    [frame] = subscribe(connection, "presence-r", auth=auth, channel_data=data)
    assert roster(frame)["count"] == 1


def test_fault_presence_roster_excludes_self() -> None:
    app = App([Fault.PRESENCE_ROSTER_EXCLUDES_SELF])
    join(app.connect(), "presence-r", "a")
    [frame] = join(app.connect(), "presence-r", "b")
    assert roster(frame) == {"ids": ["a"], "hash": {"a": None}, "count": 1}


def test_fault_presence_counted_per_connection() -> None:
    app = App([Fault.PRESENCE_COUNTED_PER_CONNECTION])
    a, b1, b2 = app.connect(), app.connect(), app.connect()
    join(a, "presence-r", "a")
    join(b1, "presence-r", "b")
    join(b2, "presence-r", "b")
    assert [f["event"] for f, _ in delivered(b2)] == ["pusher_internal:member_added"]
    b2.receive_eof()
    assert [f["event"] for f, _ in delivered(b2)] == ["pusher_internal:member_removed"]


def test_fault_member_removed_on_first_leave() -> None:
    app = App([Fault.MEMBER_REMOVED_ON_FIRST_LEAVE])
    a, b1, b2 = app.connect(), app.connect(), app.connect()
    join(a, "presence-r", "a")
    join(b1, "presence-r", "b")
    delivered(b1)
    join(b2, "presence-r", "b")
    assert delivered(b2) == []  # member_added stays per user.
    send(b1, "pusher:unsubscribe", {"channel": "presence-r"})
    assert [f["event"] for f, _ in delivered(b1)] == ["pusher_internal:member_removed"]


def test_presence_side_effects_survive_unsubscribe_ignored() -> None:
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


def test_fault_cache_miss_always() -> None:
    app = App([Fault.CACHE_MISS_ALWAYS])
    app.registry.cache.store("cache-b", "ev", "d", 0.0)
    assert subscribe(app.connect(), "cache-b")[1]["event"] == "pusher:cache_miss"


def test_fault_cache_hit_sent_as_cache_miss() -> None:
    app = App([Fault.CACHE_HIT_SENT_AS_CACHE_MISS])
    app.registry.cache.store("cache-b", "ev", "d", 0.0)
    replay = subscribe(app.connect(), "cache-b")[1]
    assert replay == {"event": "pusher:cache_miss", "channel": "cache-b", "data": "d"}
    # An empty cache is still a plain miss.
    assert subscribe(app.connect(), "cache-c")[1] == {
        "event": "pusher:cache_miss",
        "channel": "cache-c",
    }


def test_fault_cached_event_without_channel() -> None:
    app = App([Fault.CACHED_EVENT_WITHOUT_CHANNEL])
    app.registry.cache.store("cache-b", "ev", "d", 0.0)
    assert subscribe(app.connect(), "cache-b")[1] == {"event": "ev", "data": "d"}


def test_fault_private_auth_missing_closes() -> None:
    app = App([Fault.PRIVATE_AUTH_MISSING_CLOSES])
    connection = app.connect()
    # A wrong or empty auth is refused as before, and the connection stays open.
    is_refusal(subscribe(connection, "private-a", auth="app-key:bad"))
    is_refusal(subscribe(connection, "private-a", auth=""))
    send(connection, "pusher:subscribe", {"channel": "private-a"})
    assert connection.data_to_send() == [Close(1011, "Internal server error")]
    assert app.registry.subscribers("private-a") == []
