"""The scripted server's protocol decisions, without I/O.

Everything the test server *decides* lives here as pure functions and one small state machine
per connection (``Session``): which frame answers which, whether a signature is right, who is in
a presence channel, what the auth endpoints answer. The asyncio adapter
(``scripted_server``) only moves bytes and carries out a scenario's scripted actions, so the
decisions can be tested without sockets or clocks, and a check's verdict never depends on how a
frame happened to travel.

The server is deliberately plain: it speaks protocol 7 as the docs describe it and nothing
more, because the certifier judges the client, and a clever server would blur which side
caused what.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "App",
    "AuthAnswer",
    "ClientFrame",
    "Observation",
    "Session",
    "answer_channel_auth",
    "answer_user_auth",
    "channel_auth",
    "channel_event",
    "connection_established",
    "error_frame",
    "member_added",
    "member_removed",
    "parse_client_frame",
    "ping_frame",
    "presence_data",
    "sign",
    "user_auth",
    "verify_channel_auth",
    "verify_user_auth",
]


@dataclass(frozen=True)
class App:
    """The one app the test server knows, and the user its auth endpoints vouch for."""

    key: str = "conformance-key"
    secret: str = "conformance-secret"
    #: The user id the user-auth endpoint signs and presence channel_data carries.
    user_id: str = "client-user"
    user_info: Mapping[str, Any] = field(default_factory=lambda: {"name": "Client Under Test"})


# --- signatures -----------------------------------------------------------------------------


def sign(secret: str, text: str) -> str:
    """HMAC-SHA256 of ``text`` with the app secret, lowercase hex (auth-signatures page)."""
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def _channel_text(socket_id: str, channel: str, channel_data: str | None) -> str:
    return f"{socket_id}:{channel}" + (f":{channel_data}" if channel_data is not None else "")


def channel_auth(app: App, socket_id: str, channel: str, channel_data: str | None = None) -> str:
    """``key:signature`` for a private or presence subscription of ``socket_id``."""
    return f"{app.key}:{sign(app.secret, _channel_text(socket_id, channel, channel_data))}"


def user_auth(app: App, socket_id: str, user_data: str) -> str:
    """``key:signature`` for a sign-in: the signed text is ``socket_id::user::user_data``."""
    return f"{app.key}:{sign(app.secret, f'{socket_id}::user::{user_data}')}"


def verify_channel_auth(
    app: App, socket_id: str, channel: str, auth: object, channel_data: object = None
) -> bool:
    """Whether ``auth`` is what the app's secret signs for this socket and channel."""
    if not isinstance(auth, str) or (
        channel_data is not None and not isinstance(channel_data, str)
    ):
        return False
    expected = channel_auth(app, socket_id, channel, channel_data)
    return hmac.compare_digest(auth.encode(), expected.encode())


def verify_user_auth(app: App, socket_id: str, user_data: object, auth: object) -> bool:
    if not isinstance(auth, str) or not isinstance(user_data, str):
        return False
    return hmac.compare_digest(auth.encode(), user_auth(app, socket_id, user_data).encode())


# --- frames the server sends ------------------------------------------------------------------


def _frame(event: str, data: Any = None, channel: str | None = None, **extra: Any) -> str:
    message: dict[str, Any] = {"event": event}
    if channel is not None:
        message["channel"] = channel
    # Pusher sends every data field as a string: JSON-encoded for its own events.
    message["data"] = (
        data if isinstance(data, str) else json.dumps(data if data is not None else {})
    )
    message.update(extra)
    return json.dumps(message)


def connection_established(socket_id: str, activity_timeout: int) -> str:
    return _frame(
        "pusher:connection_established",
        {"socket_id": socket_id, "activity_timeout": activity_timeout},
    )


def error_frame(code: int | None, message: str) -> str:
    return _frame("pusher:error", {"code": code, "message": message})


def ping_frame() -> str:
    return _frame("pusher:ping", {})


def channel_event(channel: str, event: str, data: Any, user_id: str | None = None) -> str:
    """An event on ``channel``; ``data`` is JSON-encoded unless it is already a string."""
    extra = {"user_id": user_id} if user_id is not None else {}
    return _frame(event, data, channel, **extra)


def presence_data(roster: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The ``presence`` hash of a subscription_succeeded for ``roster`` (user id -> info)."""
    ids = list(roster)
    return {"presence": {"ids": ids, "hash": {i: dict(roster[i]) for i in ids}, "count": len(ids)}}


def member_added(channel: str, user_id: str, user_info: Mapping[str, Any]) -> str:
    return _frame(
        "pusher_internal:member_added", {"user_id": user_id, "user_info": dict(user_info)}, channel
    )


def member_removed(channel: str, user_id: str) -> str:
    return _frame("pusher_internal:member_removed", {"user_id": user_id}, channel)


# --- frames the client sends ----------------------------------------------------------------


@dataclass(frozen=True)
class ClientFrame:
    """A client's message as the server reads it: ``data`` decoded when it was a JSON string."""

    event: str
    channel: str | None
    data: Any


def parse_client_frame(text: str) -> ClientFrame | None:
    """The frame, or None for anything that is not a JSON object with a string ``event``."""
    try:
        message = json.loads(text)
    except ValueError:
        return None
    if not isinstance(message, dict) or not isinstance(message.get("event"), str):
        return None
    data = message.get("data")
    if isinstance(data, str):
        with contextlib.suppress(ValueError):  # a client event's data may be any string
            data = json.loads(data)
    channel = message.get("channel")
    return ClientFrame(message["event"], channel if isinstance(channel, str) else None, data)


# --- the per-connection state machine -------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    """What the server made of one client frame: the replies it sends and what it noted.

    ``kind`` names the protocol action (``subscribe``, ``unsubscribe``, ``ping``, ``pong``,
    ``signin``, ``client_event``, ``other``, ``unreadable``); ``facts`` carry what a scenario
    judges (the channel, whether the auth was valid for this socket, ...)."""

    kind: str
    replies: tuple[str, ...] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)


class Session:
    """One client connection's protocol state: its socket id and its subscriptions.

    ``others`` are the scripted members of each presence channel (user id -> info) besides the
    client; ``answer_pings`` False withholds the pong, as a dead server would."""

    def __init__(
        self,
        app: App,
        socket_id: str,
        *,
        others: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
        answer_pings: bool = True,
    ) -> None:
        self.app = app
        self.socket_id = socket_id
        self.others = others or {}
        self.answer_pings = answer_pings
        self.subscribed: dict[str, str | None] = {}  # channel -> own user id on presence
        self.signed_in_as: str | None = None

    def receive(self, text: str) -> Observation:
        frame = parse_client_frame(text)
        if frame is None:
            return Observation("unreadable", facts={"text": text[:200]})
        handler = {
            "pusher:subscribe": self._subscribe,
            "pusher:unsubscribe": self._unsubscribe,
            "pusher:ping": self._ping,
            "pusher:pong": lambda f: Observation("pong"),
            "pusher:signin": self._signin,
        }.get(frame.event)
        if handler is not None:
            return handler(frame)
        if frame.event.startswith("client-"):
            return Observation(
                "client_event",
                facts={
                    "event": frame.event,
                    "channel": frame.channel,
                    "data": frame.data,
                    "subscribed": frame.channel in self.subscribed,
                },
            )
        return Observation("other", facts={"event": frame.event, "channel": frame.channel})

    def roster(self, channel: str) -> dict[str, Mapping[str, Any]]:
        """Who a presence subscription of this client sees: the scripted others, then itself."""
        members = {uid: info for uid, info in self.others.get(channel, {}).items()}
        own = self.subscribed.get(channel)
        if own is not None:
            members[own] = self.app.user_info
        return members

    def _ping(self, frame: ClientFrame) -> Observation:
        replies = (_frame("pusher:pong", {}),) if self.answer_pings else ()
        return Observation("ping", replies, {"answered": self.answer_pings})

    def _subscribe(self, frame: ClientFrame) -> Observation:
        data = frame.data if isinstance(frame.data, dict) else {}
        channel = data.get("channel")
        if not isinstance(channel, str) or not channel:
            return Observation("subscribe", (error_frame(None, "no channel"),), {"channel": None})
        facts: dict[str, Any] = {"channel": channel, "auth": data.get("auth")}
        if channel.startswith(("private-", "presence-")):
            channel_data = data.get("channel_data") if channel.startswith("presence-") else None
            valid = verify_channel_auth(
                self.app, self.socket_id, channel, data.get("auth"), channel_data
            )
            facts["auth_valid"] = valid
            if not valid:
                message = f"Invalid signature for socket {self.socket_id} on {channel}"
                return Observation("subscribe", (error_frame(None, message),), facts)
            user = _user_id(channel_data) if channel.startswith("presence-") else None
            if channel.startswith("presence-") and user is None:
                facts["auth_valid"] = False
                return Observation("subscribe", (error_frame(None, "bad channel_data"),), facts)
            self.subscribed[channel] = user
        else:
            self.subscribed[channel] = None
        body = presence_data(self.roster(channel)) if channel.startswith("presence-") else {}
        reply = _frame("pusher_internal:subscription_succeeded", body, channel)
        return Observation("subscribe", (reply,), facts)

    def _unsubscribe(self, frame: ClientFrame) -> Observation:
        data = frame.data if isinstance(frame.data, dict) else {}
        channel = data.get("channel")
        was = self.subscribed.pop(channel, "absent") if isinstance(channel, str) else "absent"
        return Observation(
            "unsubscribe", facts={"channel": channel, "was_subscribed": was != "absent"}
        )

    def _signin(self, frame: ClientFrame) -> Observation:
        data = frame.data if isinstance(frame.data, dict) else {}
        user_data, auth = data.get("user_data"), data.get("auth")
        valid = verify_user_auth(self.app, self.socket_id, user_data, auth)
        facts = {"auth_valid": valid}
        if not valid:
            return Observation("signin", (error_frame(4009, "Invalid signin signature"),), facts)
        assert isinstance(user_data, str)
        self.signed_in_as = _user_id(user_data, key="id")
        return Observation(
            "signin", (_frame("pusher:signin_success", {"user_data": user_data}),), facts
        )


def _user_id(encoded: object, key: str = "user_id") -> str | None:
    if not isinstance(encoded, str):
        return None
    try:
        value = json.loads(encoded)
    except ValueError:
        return None
    user = value.get(key) if isinstance(value, dict) else None
    return str(user) if isinstance(user, str | int) and str(user) else None


# --- the app's auth endpoints ---------------------------------------------------------------


@dataclass(frozen=True)
class AuthAnswer:
    """An auth endpoint's HTTP answer, and what the request carried (for the timeline)."""

    status: int
    body: Mapping[str, Any]
    facts: Mapping[str, Any] = field(default_factory=dict)


def answer_channel_auth(
    app: App, form: Mapping[str, str], *, refuse: frozenset[str] = frozenset()
) -> AuthAnswer:
    """The channel-authorization endpoint: signs ``socket_id:channel_name`` (and the presence
    channel_data it makes for the app's user); 403 for the ``refuse`` channels, 400 when a
    field the docs' examples read is missing."""
    socket_id, channel = form.get("socket_id"), form.get("channel_name")
    facts = {"socket_id": socket_id, "channel_name": channel}
    if not socket_id or not channel:
        return AuthAnswer(400, {"error": "socket_id and channel_name are required"}, facts)
    if channel in refuse or not channel.startswith(("private-", "presence-")):
        return AuthAnswer(403, {"error": f"{channel} is not for you"}, facts)
    if channel.startswith("presence-"):
        channel_data = json.dumps({"user_id": app.user_id, "user_info": dict(app.user_info)})
        auth = channel_auth(app, socket_id, channel, channel_data)
        return AuthAnswer(200, {"auth": auth, "channel_data": channel_data}, facts)
    return AuthAnswer(200, {"auth": channel_auth(app, socket_id, channel)}, facts)


def answer_user_auth(app: App, form: Mapping[str, str]) -> AuthAnswer:
    """The user-authentication endpoint: signs ``socket_id::user::user_data`` for the app's
    user."""
    socket_id = form.get("socket_id")
    facts = {"socket_id": socket_id}
    if not socket_id:
        return AuthAnswer(400, {"error": "socket_id is required"}, facts)
    user_data = json.dumps({"id": app.user_id, "user_info": dict(app.user_info)})
    return AuthAnswer(
        200, {"auth": user_auth(app, socket_id, user_data), "user_data": user_data}, facts
    )
