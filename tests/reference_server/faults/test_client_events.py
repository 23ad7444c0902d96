"""Fault switches in relaying client events."""

from __future__ import annotations

from reference_server.faults import Fault
from reference_server.protocol.connection import Connection

from ..harness import App, auth_for, client_event, delivered, is_error, join, sent, subscribe


def setup_private(*faults: Fault) -> tuple[App, list[Connection]]:
    """Three connections; the first two subscribed to ``private-r``."""
    app = App(faults)
    connections = [app.connect() for _ in range(3)]
    for connection in connections[:2]:
        subscribe(connection, "private-r", auth=auth_for(connection, "private-r"))
    return app, connections


def test_fault_client_event_rate_unlimited() -> None:
    _, [a, _, _] = setup_private(Fault.CLIENT_EVENT_RATE_UNLIMITED)
    for _ in range(20):
        client_event(a, "private-r")
    assert len(a.deliveries_to_send()) == 20


def test_fault_non_client_events_relayed() -> None:
    _, [a, b, _] = setup_private(Fault.NON_CLIENT_EVENTS_RELAYED)
    client_event(a, "private-r", event="my-event")
    assert [targets for _, targets in delivered(a)] == [(b.socket_id,)]
    client_event(a, None, event="my-event")
    is_error(sent(a))


def test_fault_client_events_on_public() -> None:
    _, [a, b, _] = setup_private(Fault.CLIENT_EVENTS_ON_PUBLIC)
    subscribe(a, "public")
    subscribe(b, "public")
    client_event(a, "public")
    assert [targets for _, targets in delivered(a)] == [(b.socket_id,)]


def test_fault_client_events_from_unsubscribed() -> None:
    _, [a, b, c] = setup_private(Fault.CLIENT_EVENTS_FROM_UNSUBSCRIBED)
    client_event(c, "private-r")
    assert [targets for _, targets in delivered(c)] == [(a.socket_id, b.socket_id)]


def test_fault_client_event_echo() -> None:
    _, [a, b, _] = setup_private(Fault.CLIENT_EVENT_ECHO)
    client_event(a, "private-r")
    assert [targets for _, targets in delivered(a)] == [(a.socket_id, b.socket_id)]


def test_fault_client_event_no_user_id() -> None:
    app = App([Fault.CLIENT_EVENT_NO_USER_ID])
    a, b = app.connect(), app.connect()
    join(a, "presence-r", "a")
    join(b, "presence-r", "b")
    delivered(b)
    client_event(a, "presence-r")
    [(frame, _)] = delivered(a)
    assert "user_id" not in frame


def test_fault_client_event_relayed_twice() -> None:
    _, [a, b, _] = setup_private(Fault.CLIENT_EVENT_RELAYED_TWICE)
    client_event(a, "private-r")
    [(frame, targets)] = delivered(a)
    assert frame["event"] == "client-x"
    assert targets == (b.socket_id, b.socket_id)
