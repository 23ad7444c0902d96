"""One way to build connections for the server's protocol and fault-switch tests.

``App`` plays the server's part: connections share one registry and one socket id allocator,
and are opened (``connection_established`` drained) before a test sees them. With faults,
it builds the fault-switched connection and registry the faulty server would.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from typing import Any

from reference_server.faults import Fault
from reference_server.faults.channels import LeakyChannelRegistry
from reference_server.faults.server import FaultyConnection
from reference_server.protocol.channels import ChannelRegistry
from reference_server.protocol.connection import Connection, ConnectionSettings, Output, SendText
from reference_server.protocol.signing import sign_channel, sign_user
from reference_server.protocol.socket_ids import SocketIdAllocator

KEY, SECRET = "app-key", "app-secret"
ACTIVITY = 120.0
PONG = 30.0


class App:
    """Connections sharing one registry, as in the server."""

    def __init__(
        self,
        faults: Iterable[Fault] = (),
        *,
        client_events: bool = True,
        allocator: SocketIdAllocator | None = None,
    ) -> None:
        self.faults = frozenset(faults)
        self.registry: ChannelRegistry = (
            LeakyChannelRegistry() if self.faults else ChannelRegistry()
        )
        self.allocator = allocator if allocator is not None else SocketIdAllocator(random.Random(0))
        self.settings = ConnectionSettings(
            KEY, ACTIVITY, PONG, app_secret=SECRET, client_events=client_events
        )

    def new(self) -> Connection:
        """A connection before its handshake."""
        if not self.faults:
            return Connection(self.settings, self.registry, self.allocator)
        assert isinstance(self.registry, LeakyChannelRegistry)
        return FaultyConnection(self.settings, self.registry, self.allocator, self.faults)

    def connect(self, now: float = 0.0) -> Connection:
        """An open connection, its ``connection_established`` already drained."""
        connection = self.new()
        connection.open(KEY, now)
        connection.data_to_send()
        return connection


def opened(faults: Iterable[Fault] = (), *, client_events: bool = True) -> Connection:
    """One open connection with an app of its own."""
    return App(faults, client_events=client_events).connect()


def frames_of(outputs: list[Output]) -> list[dict[str, Any]]:
    """Decode text outputs; fail on anything else."""
    decoded = []
    for output in outputs:
        assert isinstance(output, SendText), output
        decoded.append(json.loads(output.text))
    return decoded


def sent(connection: Connection) -> list[dict[str, Any]]:
    return frames_of(connection.data_to_send())


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


def unsubscribe(connection: Connection, channel: str) -> None:
    send(connection, "pusher:unsubscribe", {"channel": channel})


def join(connection: Connection, channel: str, user_id: Any, info: Any = None) -> list[Any]:
    member: dict[str, Any] = {"user_id": user_id}
    if info is not None:
        member["user_info"] = info
    channel_data = json.dumps(member)
    auth = auth_for(connection, channel, channel_data)
    return subscribe(connection, channel, auth=auth, channel_data=channel_data)


def signin(connection: Connection, user_id: str, now: float = 1.0) -> list[dict[str, Any]]:
    assert connection.socket_id is not None
    user_data = json.dumps({"id": user_id})
    auth = f"{KEY}:{sign_user(SECRET, connection.socket_id, user_data)}"
    send(connection, "pusher:signin", {"auth": auth, "user_data": user_data}, now)
    return sent(connection)


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


def succeeded(channel: str, data: str = "{}") -> dict[str, Any]:
    return {"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": data}


def is_error(frames: list[dict[str, Any]], code: int | None = None) -> str:
    """Assert the frames are exactly one ``pusher:error`` with ``code``; return its message."""
    assert len(frames) == 1, frames
    assert frames[0]["event"] == "pusher:error"
    assert frames[0]["data"]["code"] == code
    message: str = frames[0]["data"]["message"]
    return message


def is_refusal(frames: list[dict[str, Any]]) -> str:
    """Assert the frames are a refused subscription: ``pusher:error`` (code null) for the
    connection, then ``pusher:subscription_error`` for the channel, with the same message."""
    assert len(frames) == 2, frames
    message = is_error(frames[:1])
    assert frames[1]["event"] == "pusher:subscription_error", frames
    assert frames[1]["channel"]
    assert json.loads(frames[1]["data"]) == {"type": "AuthError", "error": message, "status": 401}
    return message


def roster(frame: dict[str, Any]) -> dict[str, Any]:
    assert frame["event"] == "pusher_internal:subscription_succeeded"
    presence: dict[str, Any] = json.loads(frame["data"])["presence"]
    return presence
