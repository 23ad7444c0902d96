"""The ``leak_to_unsubscribed`` fault in the core: events still reach a connection after
``pusher:unsubscribe``, while its subscription is otherwise gone."""

from __future__ import annotations

import json

from reference_server.faults import Fault
from reference_server.protocol.connection import Connection
from reference_server.protocol.http_api import TriggerEvent, deliveries

from .test_connection_channels import App, auth_for, delivered, send, sent, subscribe

LEAK = Fault.LEAK_TO_UNSUBSCRIBED


def unsubscribe(connection: Connection, channel: str) -> None:
    send(connection, "pusher:unsubscribe", {"channel": channel})


def test_http_publishes_still_reach_a_connection_that_left() -> None:
    for faults, expected in [((), ()), ((LEAK,), ("A",))]:
        app = App(faults)
        a, b = app.connect(), app.connect()
        subscribe(a, "c")
        subscribe(b, "c")
        unsubscribe(a, "c")
        assert sent(a) == []
        assert app.registry.subscribers("c") == [b.socket_id]
        [delivery] = deliveries(TriggerEvent("e", "d", ("c",)), app.registry, frozenset(faults))
        names = {a.socket_id: "A", b.socket_id: "B"}
        assert tuple(names[s] for s in delivery.socket_ids) == ("B", *expected)
        # socket_id exclusion still applies to it.
        excluded = TriggerEvent("e", "d", ("c",), socket_id=a.socket_id)
        [delivery] = deliveries(excluded, app.registry, frozenset(faults))
        assert delivery.socket_ids == (b.socket_id,)


def test_the_channel_is_vacated_normally() -> None:
    app = App([LEAK])
    a = app.connect()
    subscribe(a, "c")
    unsubscribe(a, "c")
    assert len(app.registry) == 0
    [delivery] = deliveries(TriggerEvent("e", "d", ("c",)), app.registry, frozenset({LEAK}))
    assert delivery.socket_ids == (a.socket_id,)
    # Disconnecting ends the leak.
    a.receive_eof()
    assert deliveries(TriggerEvent("e", "d", ("c",)), app.registry, frozenset({LEAK})) == []


def test_client_events_leak_but_presence_member_events_do_not() -> None:
    app = App([LEAK])
    a, b, c = app.connect(), app.connect(), app.connect()
    channel = "presence-room"
    for connection, user in ((a, "ua"), (b, "ub")):
        data = json.dumps({"user_id": user})
        subscribe(connection, channel, auth=auth_for(connection, channel, data), channel_data=data)
    delivered(b)
    unsubscribe(a, channel)
    [(removed, targets)] = delivered(a)
    assert removed["event"] == "pusher_internal:member_removed"
    assert targets == (b.socket_id,)
    data = json.dumps({"user_id": "uc"})
    subscribe(c, channel, auth=auth_for(c, channel, data), channel_data=data)
    [(added, targets)] = delivered(c)
    assert added["event"] == "pusher_internal:member_added"
    assert targets == (b.socket_id,)
    send(b, "client-x", {"n": 1}, channel=channel)
    [(relayed, targets)] = delivered(b)
    assert relayed["event"] == "client-x"
    assert targets == (c.socket_id, a.socket_id)
    # The former subscriber may not send on the channel any more.
    send(a, "client-x", {}, channel=channel)
    assert sent(a)[0]["event"] == "pusher:error"
    assert delivered(a) == []
