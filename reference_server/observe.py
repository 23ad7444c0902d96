"""What happens to one app's connections, told to its logs and its metrics.

The WebSocket endpoint and ``Fanout`` call in here where something happened; this module
decides what is counted and what is logged, and at which level. Per connection, per
subscription and per fatal error: info. Per message (a non-fatal ``pusher:error``): debug,
and the fields are only built when that level is on. The protocol core knows nothing of it:
what is observed is what the core tells the adapter anyway (the frames it wants written, its
subscriptions, the webhook events it reports).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from .logs import log, logger
from .metrics import AppMetrics
from .protocol.connection import Connection, Output, SendBinary, SendText
from .protocol.names import ChannelType, channel_type, is_cache_channel
from .protocol.webhooks import CLIENT_EVENT, WebhookEvent

__all__ = ["DROPPED_CLOSE_CODE", "Observer", "subscription_type"]

#: The close code counted for a client that went without a close frame (RFC 6455 7.1.5).
DROPPED_CLOSE_CODE = 1006

#: How every ``pusher:error`` frame begins (``frames.error``: ``event`` comes first).
_ERROR_FRAME_PREFIX = '{"event":"pusher:error"'

#: Pusher protocol, "Error codes": 4000-4299 close the connection; 4300 and up (and null)
#: leave it open.
_FIRST_CODE_LEAVING_OPEN = 4300

_TYPE_LABELS = {
    ChannelType.PUBLIC: "public",
    ChannelType.PRIVATE: "private",
    ChannelType.ENCRYPTED: "encrypted",
    ChannelType.PRESENCE: "presence",
    ChannelType.SERVER_TO_USER: "server_to_user",
}


def subscription_type(channel: str) -> str:
    """The ``type`` label of a subscription to ``channel`` (``metrics.SUBSCRIPTION_TYPES``)."""
    if is_cache_channel(channel):
        return "cache"
    return _TYPE_LABELS[channel_type(channel)]


class Observer:
    """Logs and counts one app's connections (the app's ``Fanout`` holds it)."""

    def __init__(self, metrics: AppMetrics) -> None:
        self.metrics = metrics
        #: Each open connection's subscriptions as last accounted, by socket id.
        self._channels: dict[str, tuple[str, ...]] = {}

    def opened(self, connection: Connection, remote: str) -> None:
        """An established connection (it has a socket id)."""
        metrics = self.metrics
        metrics.connections += 1
        metrics.connections_opened += 1
        if logger.isEnabledFor(logging.INFO):
            log(logging.INFO, "connection_opened", socket_id=connection.socket_id, remote=remote)

    def closed(
        self, connection: Connection, code: int | None, seconds: float, dropped: bool
    ) -> None:
        """An established connection has been released; ``code`` is the close code, ``None``
        when no close frame went either way."""
        self.subscriptions_changed(connection)
        if connection.socket_id is not None:
            self._channels.pop(connection.socket_id, None)
        if code is None:
            code = DROPPED_CLOSE_CODE
        metrics = self.metrics
        metrics.connections -= 1
        metrics.connections_closed[code] += 1
        if logger.isEnabledFor(logging.INFO):
            log(
                logging.INFO,
                "connection_closed",
                socket_id=connection.socket_id,
                code=code,
                seconds=round(seconds, 3),
                dropped=dropped,
            )

    def sent(self, connection: Connection, outputs: Iterable[Output]) -> None:
        """What the core queued for ``connection`` itself (its replies and errors)."""
        count = 0
        for output in outputs:
            if isinstance(output, SendText):
                count += 1
                if output.text.startswith(_ERROR_FRAME_PREFIX):
                    self._error_sent(connection, output.text)
            elif isinstance(output, SendBinary):
                count += 1
        self.metrics.messages_sent += count

    def routed(self, recipients: int) -> None:
        """Frames queued for other connections: a broadcast adds its recipients at once."""
        self.metrics.messages_sent += recipients

    def reported(self, events: Iterable[WebhookEvent]) -> None:
        """The webhook events an input caused (reported whether or not webhooks are on):
        each ``client_event`` is a client event accepted and relayed."""
        for event in events:
            if event.name == CLIENT_EVENT:
                self.metrics.client_events += 1

    def subscriptions_changed(self, connection: Connection) -> None:
        """Account the subscriptions ``connection`` gained or lost since the last call."""
        socket_id = connection.socket_id
        if socket_id is None:
            return
        now = connection.subscriptions
        before = self._channels.get(socket_id, ())
        if now == before:
            return
        self._channels[socket_id] = now
        kept = set(now)
        gone = set(before)
        counts = self.metrics.subscriptions
        info = logger.isEnabledFor(logging.INFO)
        for channel in before:
            if channel not in kept:
                counts[subscription_type(channel)] -= 1
                if info:
                    log(logging.INFO, "unsubscribed", socket_id=socket_id, channel=channel)
        for channel in now:
            if channel not in gone:
                counts[subscription_type(channel)] += 1
                if info:
                    log(logging.INFO, "subscribed", socket_id=socket_id, channel=channel)

    def _error_sent(self, connection: Connection, text: str) -> None:
        """A ``pusher:error``: at info when it ends the connection, else at debug."""
        if not logger.isEnabledFor(logging.INFO):
            return
        data = json.loads(text)["data"]
        code = data.get("code")
        fatal = isinstance(code, int) and code < _FIRST_CODE_LEAVING_OPEN
        level = logging.INFO if fatal else logging.DEBUG
        if logger.isEnabledFor(level):
            log(level, "error", socket_id=connection.socket_id, code=code, message=data["message"])
