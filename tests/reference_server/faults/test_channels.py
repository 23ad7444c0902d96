"""The fault switches' registry and socket ids: ``leak_to_unsubscribed`` and
``socket_id_without_dot``."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable

from reference_server.faults import Fault
from reference_server.faults.channels import DotlessSocketIdAllocator, LeakyChannelRegistry
from reference_server.faults.http_api import PublisherWithFaults
from reference_server.protocol.channels import Delivery
from reference_server.protocol.http_events import TriggerEvent
from reference_server.protocol.http_publish import Publisher
from reference_server.protocol.socket_ids import is_socket_id

from ..harness import App, auth_for, delivered, send, sent, subscribe, unsubscribe

LEAK = Fault.LEAK_TO_UNSUBSCRIBED


def deliveries(event: TriggerEvent, app: App, faults: Iterable[Fault]) -> list[Delivery]:
    registry = app.registry
    if not isinstance(registry, LeakyChannelRegistry):
        return Publisher(registry).deliveries(event)
    return PublisherWithFaults(registry, frozenset(faults)).deliveries(event)


def test_dotless_socket_ids() -> None:
    socket_id = DotlessSocketIdAllocator(random.Random(0)).allocate()
    assert socket_id.isdigit()
    assert not is_socket_id(socket_id)


def test_former_subscribers_are_targets_only_when_asked() -> None:
    """A socket that left still gets events, and nothing else."""
    registry = LeakyChannelRegistry()
    registry.subscribe("a", "1.1")
    registry.subscribe("a", "2.2")
    registry.unsubscribe("a", "1.1")
    registry.keep_former("a", "1.1")
    assert registry.subscribers("a") == ["2.2"]
    assert registry.targets("a") == ("2.2",)
    assert registry.targets_with_former("a", exclude=None) == ("2.2", "1.1")
    assert registry.targets_with_former("a", exclude="1.1") == ("2.2",)
    # Vacated, yet still routed to the former subscriber.
    registry.unsubscribe("a", "2.2")
    assert len(registry) == 0
    assert registry.route(["a"]) == []
    assert registry.targets_with_former("a", exclude=None) == ("1.1",)


def test_subscribing_again_or_leaving_forgets_a_former_subscriber() -> None:
    registry = LeakyChannelRegistry()
    for channel in ("a", "b"):
        registry.subscribe(channel, "1.1")
        registry.unsubscribe(channel, "1.1")
        registry.keep_former(channel, "1.1")
    registry.subscribe("a", "1.1")
    assert registry.targets_with_former("a", exclude=None) == ("1.1",)
    assert registry.former_subscribers("a") == ()
    assert registry.remove_socket("1.1") == ["a"]
    assert registry.former_subscribers("b") == ()
    assert registry.targets_with_former("b", exclude=None) == ()


def test_http_publishes_still_reach_a_connection_that_left() -> None:
    for faults, expected in [((), ()), ((LEAK,), ("A",))]:
        app = App(faults)
        a, b = app.connect(), app.connect()
        subscribe(a, "c")
        subscribe(b, "c")
        unsubscribe(a, "c")
        assert sent(a) == []
        assert app.registry.subscribers("c") == [b.socket_id]
        [delivery] = deliveries(TriggerEvent("e", "d", ("c",)), app, faults)
        names = {a.socket_id: "A", b.socket_id: "B"}
        assert tuple(names[s] for s in delivery.socket_ids) == ("B", *expected)
        # socket_id exclusion still applies to it.
        excluded = TriggerEvent("e", "d", ("c",), socket_id=a.socket_id)
        [delivery] = deliveries(excluded, app, faults)
        assert delivery.socket_ids == (b.socket_id,)


def test_the_channel_is_vacated_normally() -> None:
    app = App([LEAK])
    a = app.connect()
    subscribe(a, "c")
    unsubscribe(a, "c")
    assert len(app.registry) == 0
    [delivery] = deliveries(TriggerEvent("e", "d", ("c",)), app, {LEAK})
    assert delivery.socket_ids == (a.socket_id,)
    # Disconnecting ends the leak.
    a.receive_eof()
    assert deliveries(TriggerEvent("e", "d", ("c",)), app, {LEAK}) == []


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
