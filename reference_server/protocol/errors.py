"""Protocol errors, one class per condition, each carrying what goes on the wire.

::

    PusherError
    ├── ProtocolError               WebSocket side: ``code`` for pusher:error, ``close_code``
    │   ├── UnknownAppKey           4001, closes
    │   ├── AppDisabled             4003, closes (the app is switched off)
    │   ├── OverConnectionQuota     4004, closes (the app's connection quota is full)
    │   ├── UnsupportedProtocol     4007, closes (protocol 1, 2 or 3)
    │   ├── OverCapacity            4100, closes (the client does not read fast enough)
    │   ├── PongTimeout             4201, closes
    │   ├── ServerShuttingDown      4200, closes (graceful shutdown: reconnect elsewhere)
    │   ├── UnsupportedFrame        binary frame, closes 1003 without pusher:error
    │   ├── InvalidMessage          code null
    │   │   └── InvalidJson         code null (not JSON at all)
    │   ├── InvalidChannelName      code null
    │   ├── ExistingSubscription    code null
    │   ├── UnsupportedChannel      code null (kept for compatibility; no longer raised)
    │   ├── SubscriptionRefused     code null (bad channel auth, channel_data, member limit)
    │   ├── UnknownEvent            code null
    │   ├── ClientEventRefused      code null
    │   ├── ClientEventRateLimited  4301, stays open
    │   ├── SigninRefused           code null
    │   └── ConnectionTerminated    4009, closes (HTTP terminate_connections)
    └── HttpApiError                HTTP side: ``status``
        ├── BadRequest              400
        ├── Unauthorized            401
        ├── NotFound                404
        └── PayloadTooLarge         413

The connection state machine turns a ``ProtocolError`` into frames in exactly one place
(``ConnectionLifecycle._fail``); the adapter turns an ``HttpApiError`` into a JSON response.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AppDisabled",
    "BadRequest",
    "ClientEventRateLimited",
    "ClientEventRefused",
    "ConnectionTerminated",
    "ExistingSubscription",
    "HttpApiError",
    "InvalidChannelName",
    "InvalidJson",
    "InvalidMessage",
    "NotFound",
    "OverCapacity",
    "OverConnectionQuota",
    "PayloadTooLarge",
    "PongTimeout",
    "ProtocolError",
    "PusherError",
    "ServerShuttingDown",
    "SigninRefused",
    "SubscriptionRefused",
    "Unauthorized",
    "UnknownAppKey",
    "UnknownEvent",
    "UnsupportedChannel",
    "UnsupportedFrame",
]


class PusherError(Exception):
    """Root of every error the core raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProtocolError(PusherError):
    """A client broke a WebSocket protocol rule.

    ``code`` is the ``pusher:error`` code; ``None`` is the hosted service's marker for a
    non-fatal error. ``close_code``, when set, means the connection is closed with it.
    """

    code: ClassVar[int | None] = None
    close_code: ClassVar[int | None] = None
    #: Whether a ``pusher:error`` frame precedes the close (if any).
    reported: ClassVar[bool] = True


class UnknownAppKey(ProtocolError):
    code = 4001
    close_code = 4001


class AppDisabled(ProtocolError):
    # Pusher protocol, error codes: "4003: Application disabled"; in the 4000-4099 range, so
    # the client must not retry with the same parameters.
    code = 4003
    close_code = 4003


class OverConnectionQuota(ProtocolError):
    # Pusher protocol, error codes: "4004: Application is over connection quota".
    code = 4004
    close_code = 4004


class OverCapacity(ProtocolError):
    # Pusher protocol, error codes: "4100: Over capacity", in the 4100-4199 range after which
    # a client reconnects after backing off. The server's limit is a connection's send
    # buffer: a client that stops reading is cut off rather than buffered for without end.
    code = 4100
    close_code = 4100


class UnsupportedProtocol(ProtocolError):
    # Pusher protocol: "Protocols 1, 2, and 3 are no longer supported"; "4007: Unsupported
    # protocol version".
    code = 4007
    close_code = 4007


class PongTimeout(ProtocolError):
    code = 4201
    close_code = 4201


class ServerShuttingDown(ProtocolError):
    # Pusher protocol: 4200-4299 mean "reconnect immediately"; 4200 is the generic one, right
    # for a server that is going away while others (or its own restart) take over.
    code = 4200
    close_code = 4200


class UnsupportedFrame(ProtocolError):
    # 1003 is a WebSocket close code, not a Pusher error code: no pusher:error frame.
    close_code = 1003
    reported = False


class InvalidMessage(ProtocolError):
    pass


class InvalidJson(InvalidMessage):
    """The text frame is not JSON at all."""


class InvalidChannelName(ProtocolError):
    pass


class ExistingSubscription(ProtocolError):
    pass


class UnsupportedChannel(ProtocolError):
    pass


class SubscriptionRefused(ProtocolError):
    """A subscribe refused for its authorization (or its signed-in user).

    Besides ``pusher:error`` (the hosted service's answer, with code null), the server tells
    the channel itself with ``pusher:subscription_error``: pusher-js hands an event carrying a
    channel to that channel's ``pusher:subscription_error`` callback, which is where the docs
    tell apps to listen for a failed authorization; a bare ``pusher:error`` reaches only the
    connection's error handler. ``channel`` is set where the subscribe is handled.
    """

    channel: str | None = None

    def on_channel(self, channel: str) -> SubscriptionRefused:
        self.channel = channel
        return self


class UnknownEvent(ProtocolError):
    pass


class ClientEventRefused(ProtocolError):
    pass


class ClientEventRateLimited(ProtocolError):
    # Pusher protocol, error codes: "4301 - Client event rejected due to rate limit". Not fatal.
    code = 4301


class SigninRefused(ProtocolError):
    pass


class ConnectionTerminated(ProtocolError):
    # Pusher docs, "Terminating user connections"; 4009 "Connection is unauthorized".
    code = 4009
    close_code = 4009


class HttpApiError(PusherError):
    """An HTTP API request was refused; ``status`` is the response status."""

    status: ClassVar[int] = 400


class BadRequest(HttpApiError):
    status = 400


class Unauthorized(HttpApiError):
    status = 401


class NotFound(HttpApiError):
    status = 404


class PayloadTooLarge(HttpApiError):
    status = 413
