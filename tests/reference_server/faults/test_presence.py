"""Fault switches in the presence wire format: member events and the subscribe roster."""

from __future__ import annotations

import json

from reference_server.faults import Fault
from reference_server.protocol.connection import Connection

from ..harness import App, delivered, join, roster, unsubscribe


def two_members(*faults: Fault) -> tuple[App, Connection, Connection]:
    """u1 on the first connection, then u2 joining on the second; deliveries drained."""
    app = App(faults)
    first, second = app.connect(), app.connect()
    join(first, "presence-r", "u1", {"name": "A"})
    delivered(first)
    join(second, "presence-r", "u2", {"name": "B"})
    return app, first, second


def test_without_faults_member_added_is_a_string_to_the_others() -> None:
    _, first, second = two_members()
    [(frame, targets)] = delivered(second)
    assert json.loads(frame["data"]) == {"user_id": "u2", "user_info": {"name": "B"}}
    assert targets == (first.socket_id,)


def test_fault_member_added_data_as_object() -> None:
    _, first, second = two_members(Fault.MEMBER_ADDED_DATA_AS_OBJECT)
    [(frame, targets)] = delivered(second)
    assert frame["event"] == "pusher_internal:member_added"
    assert frame["data"] == {"user_id": "u2", "user_info": {"name": "B"}}
    assert targets == (first.socket_id,)


def test_fault_member_added_user_info_nested() -> None:
    _, _, second = two_members(Fault.MEMBER_ADDED_USER_INFO_NESTED)
    [(frame, _)] = delivered(second)
    assert json.loads(frame["data"]) == {
        "user_id": "u2",
        "user_info": {"user_id": "u2", "user_info": {"name": "B"}},
    }


def test_fault_member_added_echoed_to_joiner() -> None:
    _, first, second = two_members(Fault.MEMBER_ADDED_ECHOED_TO_JOINER)
    [(frame, targets)] = delivered(second)
    assert json.loads(frame["data"])["user_id"] == "u2"
    assert set(targets) == {first.socket_id, second.socket_id}


def test_fault_member_removed_data_as_object() -> None:
    _, first, second = two_members(Fault.MEMBER_REMOVED_DATA_AS_OBJECT)
    delivered(second)
    unsubscribe(second, "presence-r")
    [(frame, targets)] = delivered(second)
    assert frame["event"] == "pusher_internal:member_removed"
    assert frame["data"] == {"user_id": "u2"}
    assert targets == (first.socket_id,)


def test_fault_member_removed_not_sent_on_close() -> None:
    app, _, second = two_members(Fault.MEMBER_REMOVED_NOT_SENT_ON_CLOSE)
    delivered(second)
    second.webhooks_to_send()
    second.receive_eof()
    assert delivered(second) == []
    # The leave itself is recorded and reported: only the frame to the others is missing.
    assert [e.name for e in second.webhooks_to_send()] == ["member_removed"]
    assert list(app.registry.presence.get("presence-r").members) == ["u1"]
    # An explicit unsubscribe is still announced.
    third = app.connect()
    join(third, "presence-r", "u3")
    delivered(third)
    unsubscribe(third, "presence-r")
    [(frame, _)] = delivered(third)
    assert frame["event"] == "pusher_internal:member_removed"


def test_fault_presence_ids_keyed_by_socket() -> None:
    app = App([Fault.PRESENCE_IDS_KEYED_BY_SOCKET])
    first, second = app.connect(), app.connect()
    join(first, "presence-r", "u1")
    [frame] = join(second, "presence-r", "u2")
    assert roster(frame) == {
        "ids": {first.socket_id: "u1", second.socket_id: "u2"},
        "hash": {"u1": None, "u2": None},
        "count": 2,
    }


def test_fault_presence_roster_per_connection() -> None:
    app = App([Fault.PRESENCE_ROSTER_PER_CONNECTION])
    join(app.connect(), "presence-r", "u1", {"name": "A"})
    [frame] = join(app.connect(), "presence-r", "u1", {"name": "A"})
    assert roster(frame) == {"ids": ["u1", "u1"], "hash": {"u1": {"name": "A"}}, "count": 2}


def test_fault_presence_user_dropped_on_first_leave() -> None:
    app = App([Fault.PRESENCE_USER_DROPPED_ON_FIRST_LEAVE])
    observer, tab1, tab2 = app.connect(), app.connect(), app.connect()
    join(observer, "presence-r", "u1")
    join(tab1, "presence-r", "u2")
    join(tab2, "presence-r", "u2")
    delivered(tab1)
    # The first tab's leave announces the user gone, though the second tab is still there...
    unsubscribe(tab1, "presence-r")
    [(frame, _)] = delivered(tab1)
    assert frame["event"] == "pusher_internal:member_removed"
    assert list(app.registry.presence.get("presence-r").members) == ["u1"]
    # ...and the second tab's leave goes unannounced.
    tab2.receive_eof()
    assert delivered(tab2) == []
    assert tab2.webhooks_to_send() == []
