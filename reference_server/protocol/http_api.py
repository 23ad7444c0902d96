"""HTTP API request validation: ``POST /apps/{app_id}/events``, the channel queries and
``terminate_connections``.

Checks run in the documented order (docs/reference-server.md, "Behaviour"), so that a
request with several faults is always refused for the first one. The clock is passed in.
Every endpoint is authenticated by the same ``authenticate``; GET requests sign their query
and have no body, hence no ``body_md5``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from ..faults import Fault, FaultSet
from . import frames
from .channels import ChannelRegistry, Delivery
from .errors import BadRequest, NotFound, PayloadTooLarge, Unauthorized
from .names import (
    ChannelType,
    channel_type,
    is_cache_channel,
    is_valid_channel_name,
    server_to_user_id,
)
from .signing import body_md5, sign_http_request, signatures_match

__all__ = [
    "ApiLimits",
    "AppCredentials",
    "HttpRequest",
    "TriggerEvent",
    "authenticate",
    "channel_info",
    "channel_users",
    "check_app",
    "deliveries",
    "parse_trigger",
    "store_in_cache",
    "success_body",
    "terminate_targets",
    "validate_request",
    "validate_trigger",
]

_AUTH_PARAMS = ("auth_key", "auth_timestamp", "auth_version", "auth_signature")
_INTEGER = re.compile(r"-?[0-9]+")
_SOCKET_ID = re.compile(r"[0-9]+\.[0-9]+")
_FAULTY_SOCKET_ID = re.compile(r"[0-9]+(?:\.[0-9]+)?")


@dataclass(frozen=True)
class AppCredentials:
    app_id: str
    key: str
    secret: str


@dataclass(frozen=True)
class ApiLimits:
    """Hosted Pusher's documented limits; only ``max_event_bytes`` is configurable."""

    max_event_bytes: int = 10240
    max_body_bytes: int = 1024 * 1024
    max_name_length: int = 200
    max_channels: int = 100
    #: Seconds ``auth_timestamp`` may differ from the server clock.
    timestamp_tolerance: int = 600


@dataclass(frozen=True)
class HttpRequest:
    """The parts of an HTTP request that signing and validation look at."""

    method: str
    path: str
    #: Decoded query parameters, in request order, repeats kept.
    query: tuple[tuple[str, str], ...]
    body: bytes

    def param(self, name: str) -> str | None:
        """First value of a query parameter, as aiohttp's ``MultiDict.get`` would give."""
        for key, value in self.query:
            if key == name:
                return value
        return None


@dataclass(frozen=True)
class TriggerEvent:
    """A validated trigger: publish ``name``/``data`` on each channel, except to ``socket_id``."""

    name: str
    data: str
    #: Distinct, in request order.
    channels: tuple[str, ...]
    socket_id: str | None = None


def authenticate(
    request: HttpRequest,
    app: AppCredentials,
    now: float,
    limits: ApiLimits,
    faults: FaultSet = frozenset(),
) -> None:
    """Steps 2-6: auth parameters, key, version, timestamp, body MD5 and signature.

    Raises:
        Unauthorized: for the first check that fails.
    """
    params = {name: request.param(name) for name in (*_AUTH_PARAMS, "body_md5")}
    for name in _AUTH_PARAMS:
        if params[name] is None:
            raise Unauthorized(f"Missing {name}")
    if request.body and params["body_md5"] is None:
        raise Unauthorized("Missing body_md5")
    if params["auth_key"] != app.key and Fault.SKIP_AUTH_KEY_CHECK not in faults:
        raise Unauthorized(f"Unknown auth_key {params['auth_key']}")
    if params["auth_version"] != "1.0":
        raise Unauthorized(f"Unsupported auth_version {params['auth_version']}")
    if Fault.SKIP_TIMESTAMP_CHECK not in faults:
        timestamp = params["auth_timestamp"]
        assert timestamp is not None
        if _INTEGER.fullmatch(timestamp) is None:
            raise Unauthorized("auth_timestamp must be an integer")
        if abs(now - int(timestamp)) > limits.timestamp_tolerance:
            raise Unauthorized(
                f"Timestamp expired: given {timestamp}, now {int(now)}; "
                f"tolerance is {limits.timestamp_tolerance} s"
            )
    given_md5 = params["body_md5"]
    if (
        given_md5 is not None
        and Fault.SKIP_BODY_MD5_CHECK not in faults
        and not signatures_match(body_md5(request.body), given_md5)
    ):
        raise Unauthorized("body_md5 does not match the body")
    if Fault.SKIP_SIGNATURE_CHECK not in faults:
        expected = sign_http_request(app.secret, request.method, request.path, request.query)
        signature = params["auth_signature"]
        assert signature is not None
        if not signatures_match(expected, signature):
            raise Unauthorized("Invalid auth_signature")


def _load_body(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:  # Covers invalid UTF-8 (UnicodeDecodeError) too.
        raise BadRequest("Body must be a JSON object") from None
    if not isinstance(value, dict):
        raise BadRequest("Body must be a JSON object")
    return value


def parse_trigger(body: bytes, limits: ApiLimits, faults: FaultSet = frozenset()) -> TriggerEvent:
    """Steps 7-12: body size and shape, name, data, channels, socket_id, data size.

    Raises:
        BadRequest, PayloadTooLarge: for the first check that fails.
    """
    if len(body) > limits.max_body_bytes:
        raise PayloadTooLarge(f"Body is over {limits.max_body_bytes} bytes")
    payload = _load_body(body)

    if "name" not in payload and Fault.MISSING_NAME_ACCEPTED in faults:
        name: Any = ""
    else:
        name = payload.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest("name must be a non-empty string")
        if len(name) > limits.max_name_length and Fault.EVENT_NAME_LENGTH_UNCHECKED not in faults:
            raise BadRequest(f"name is over {limits.max_name_length} characters")

    data = payload.get("data")
    if not isinstance(data, str):
        raise BadRequest("data must be a string")

    channels = _channels(payload, limits)

    socket_id = payload.get("socket_id")
    # Under ``socket_id_without_dot`` the server's own (dotless) ids must stay usable here, so
    # that the fault breaks only the socket id shape and not socket_id exclusion.
    shape = _FAULTY_SOCKET_ID if Fault.SOCKET_ID_WITHOUT_DOT in faults else _SOCKET_ID
    if socket_id is not None and (
        not isinstance(socket_id, str) or shape.fullmatch(socket_id) is None
    ):
        raise BadRequest(f"Invalid socket_id {socket_id!r}")

    if len(data.encode()) > limits.max_event_bytes and Fault.NO_EVENT_SIZE_LIMIT not in faults:
        raise PayloadTooLarge(f"data is over {limits.max_event_bytes} bytes")

    return TriggerEvent(name=name, data=data, channels=channels, socket_id=socket_id)


def _channels(payload: dict[str, Any], limits: ApiLimits) -> tuple[str, ...]:
    has_channel, has_channels = "channel" in payload, "channels" in payload
    if has_channel == has_channels:
        raise BadRequest("Exactly one of channel and channels is required")
    if has_channel:
        channel = payload["channel"]
        if not isinstance(channel, str):
            raise BadRequest("channel must be a string")
        names = [channel]
    else:
        names = payload["channels"]
        if (
            not isinstance(names, list)
            or not 1 <= len(names) <= limits.max_channels
            or not all(isinstance(name, str) for name in names)
        ):
            raise BadRequest(f"channels must be an array of 1 to {limits.max_channels} strings")
    for name in names:
        if not is_valid_channel_name(name) and server_to_user_id(name) is None:
            raise BadRequest(f"Invalid channel name {name!r}")
    return tuple(dict.fromkeys(names))


def validate_trigger(
    app_id: str,
    request: HttpRequest,
    app: AppCredentials,
    now: float,
    limits: ApiLimits,
    faults: FaultSet = frozenset(),
) -> TriggerEvent:
    """All twelve checks, in order.

    Raises:
        HttpApiError: a subclass carrying the status of the first check that fails.
    """
    validate_request(app_id, request, app, now, limits, faults)
    return parse_trigger(request.body, limits, faults)


def check_app(app_id: str, app: AppCredentials, faults: FaultSet = frozenset()) -> None:
    """Step 1: the app id in the path.

    Raises:
        NotFound: (``Unauthorized`` under ``unknown_app_id_401``) for an unknown app id.
    """
    if app_id != app.app_id:
        message = f"Unknown app id {app_id}"
        if Fault.UNKNOWN_APP_ID_401 in faults:
            raise Unauthorized(message)
        raise NotFound(message)


def validate_request(
    app_id: str,
    request: HttpRequest,
    app: AppCredentials,
    now: float,
    limits: ApiLimits,
    faults: FaultSet = frozenset(),
) -> None:
    """Steps 1-6, shared by every endpoint: app id, then ``authenticate``.

    Raises:
        HttpApiError: a subclass carrying the status of the first check that fails.
    """
    check_app(app_id, app, faults)
    authenticate(request, app, now, limits, faults)


def _info_attributes(request: HttpRequest) -> list[str]:
    info = request.param("info") or ""
    return [name.strip() for name in info.split(",") if name.strip()]


def channel_info(
    channel: str, request: HttpRequest, registry: ChannelRegistry, now: float
) -> dict[str, Any]:
    """``GET /apps/{app_id}/channels/{channel}`` (after ``validate_request``).

    Pusher HTTP API: ``occupied`` always; ``info=user_count`` for presence channels only,
    ``info=subscription_count`` for the others, ``info=cache`` for cache channels (the cached
    event's data and remaining ttl in whole seconds, or null); asking for one that does not
    apply is a 400. ``now`` is the clock the cache was filled with.

    Raises:
        BadRequest: invalid channel name, or an attribute that does not apply.
    """
    if not is_valid_channel_name(channel):
        raise BadRequest(f"Invalid channel name {channel!r}")
    presence = channel_type(channel) is ChannelType.PRESENCE
    body: dict[str, Any] = {"occupied": bool(registry.subscribers(channel))}
    for attribute in _info_attributes(request):
        if attribute == "user_count":
            if not presence:
                raise BadRequest("user_count is only available for presence channels")
            body["user_count"] = len(registry.presence.get(channel))
        elif attribute == "subscription_count":
            if presence:
                raise BadRequest("subscription_count is not available for presence channels")
            body["subscription_count"] = len(registry.subscribers(channel))
        elif attribute == "cache":
            if not is_cache_channel(channel):
                raise BadRequest("cache is only available for cache channels")
            cached = registry.cache.get(channel, now)
            body["cache"] = (
                None
                if cached is None
                else {
                    "data": cached.data,
                    "ttl": max(1, math.ceil(registry.cache.ttl - (now - cached.stored_at))),
                }
            )
    return body


def channel_users(channel: str, registry: ChannelRegistry) -> dict[str, Any]:
    """``GET /apps/{app_id}/channels/{channel}/users``: distinct users of a presence channel.

    Raises:
        BadRequest: not a (valid) presence channel name.
    """
    if not is_valid_channel_name(channel) or channel_type(channel) is not ChannelType.PRESENCE:
        raise BadRequest(f"{channel!r} is not a presence channel")
    members = registry.presence.get(channel).members
    return {"users": [{"id": key} for key in members]}


def terminate_targets(
    user_id: str, registry: ChannelRegistry, faults: FaultSet = frozenset()
) -> tuple[str, ...]:
    """``POST /apps/{app_id}/users/{user_id}/terminate_connections`` (after
    ``validate_request``): the connections to close with 4009, those signed in as the user.
    """
    if Fault.TERMINATE_IGNORED in faults:
        return ()
    return registry.users.sockets_of(user_id)


def store_in_cache(
    event: TriggerEvent, registry: ChannelRegistry, now: float, faults: FaultSet = frozenset()
) -> None:
    """Pusher docs, "Cache channels": keep the last event of each cache channel, occupied or
    not (``cache_only_while_occupied`` keeps it only for occupied ones)."""
    for channel in event.channels:
        if not is_cache_channel(channel):
            continue
        if Fault.CACHE_ONLY_WHILE_OCCUPIED in faults and not registry.subscribers(channel):
            continue
        registry.cache.store(channel, event.name, event.data, now)


def deliveries(
    event: TriggerEvent, registry: ChannelRegistry, faults: FaultSet = frozenset()
) -> list[Delivery]:
    """Serialise the event once per channel and list who receives each frame.

    ``#server-to-user-<id>`` goes to every connection signed in as ``<id>``, subscribed or
    not; other channels to their subscribers.
    """
    channels = event.channels
    if Fault.FIRST_CHANNEL_ONLY in faults:
        channels = channels[:1]
    exclude = None if Fault.IGNORE_SOCKET_ID_EXCLUSION in faults else event.socket_id
    reencode = Fault.EVENT_DATA_REENCODED in faults
    routes: list[tuple[str, tuple[str, ...]]] = []
    for channel in channels:
        user_id = server_to_user_id(channel)
        if user_id is None:
            routes.extend(registry.route([channel], exclude=exclude))
        elif Fault.SERVER_TO_USER_NOT_DELIVERED not in faults:
            targets = tuple(s for s in registry.users.sockets_of(user_id) if s != exclude)
            if targets:
                routes.append((channel, targets))
    return [
        Delivery(
            frames.channel_event(event.name, channel, event.data, reencode_json_data=reencode),
            targets,
        )
        for channel, targets in routes
    ]


def success_body(faults: FaultSet = frozenset()) -> dict[str, Any]:
    """``{}``, as hosted Pusher answers; ``{"ok": true}`` is Soketi's (and the fault's)."""
    return {"ok": True} if Fault.SUCCESS_BODY_OK_TRUE in faults else {}
