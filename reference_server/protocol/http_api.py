"""HTTP API request validation: ``POST /apps/{app_id}/events`` and ``batch_events``, the
channel queries and ``terminate_connections``.

Checks run in the documented order (docs/reference-server.md, "Behaviour"), so that a
request with several faults is always refused for the first one. The clock is passed in.
Every endpoint is authenticated by the same ``authenticate``; GET requests sign their query
and have no body, hence no ``body_md5``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ..faults import Fault, FaultSet
from . import frames
from .channels import ChannelRegistry, Delivery
from .errors import BadRequest, HttpApiError, NotFound, PayloadTooLarge, Unauthorized
from .messages import JsonTooDeep, loads_bounded
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
    "BatchPlan",
    "HttpRequest",
    "TriggerEvent",
    "authenticate",
    "batch_reply",
    "channel_attributes",
    "channel_info",
    "channel_users",
    "check_app",
    "deliveries",
    "keep_alive",
    "list_channels",
    "parse_batch",
    "parse_trigger",
    "store_in_cache",
    "success_body",
    "terminate_targets",
    "trigger_payload",
    "trigger_reply",
    "validate_batch",
    "validate_request",
    "validate_terminate",
    "validate_trigger",
]

_AUTH_PARAMS = ("auth_key", "auth_timestamp", "auth_version", "auth_signature")
_INTEGER = re.compile(r"-?[0-9]+")
_SOCKET_ID = re.compile(r"[0-9]+\.[0-9]+")
_FAULTY_SOCKET_ID = re.compile(r"[0-9]+(?:\.[0-9]+)?")
#: Attributes a trigger or batch item may ask for with ``info``.
_TRIGGER_ATTRIBUTES = ("user_count", "subscription_count")


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
    #: Events in one ``batch_events`` request (multi-tenant clusters).
    max_batch_events: int = 10
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
    #: Attributes the reply should report per channel (``info``), in request order.
    info: tuple[str, ...] = ()


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
        # Over 18 digits is far outside any window (and int() refuses over 4300 digits).
        if len(timestamp) > 18 or abs(now - int(timestamp)) > limits.timestamp_tolerance:
            raise Unauthorized(
                f"Timestamp expired: given {timestamp[:20]}, now {int(now)}; "
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
        value = loads_bounded(body)
    except JsonTooDeep as exc:
        raise BadRequest(f"Body is {exc}") from None
    except ValueError:  # Covers invalid UTF-8 (UnicodeDecodeError) too.
        raise BadRequest("Body must be a JSON object") from None
    if not isinstance(value, dict):
        raise BadRequest("Body must be a JSON object")
    return value


def trigger_payload(request: HttpRequest, faults: FaultSet = frozenset()) -> dict[str, Any]:
    """The trigger's parameters: the JSON body, or, for an empty body, the query string.

    Pusher HTTP API, "General": POST parameters SHOULD be a JSON body but MAY travel in the
    query string, arrays as ``channels[]=a&channels[]=b``.

    Raises:
        BadRequest: the body is not a JSON object.
    """
    if request.body or Fault.POST_QUERY_PARAMS_IGNORED in faults:
        return _load_body(request.body)
    payload: dict[str, Any] = {}
    for key, value in request.query:
        if key in _AUTH_PARAMS or key == "body_md5":
            continue
        if key == "channels[]":
            payload.setdefault("channels", []).append(value)
        else:
            payload.setdefault(key, value)
    return payload


def parse_trigger(body: bytes, limits: ApiLimits, faults: FaultSet = frozenset()) -> TriggerEvent:
    """Steps 7-12 for a JSON body: body size and shape, name, data, channels, socket_id, size.

    Raises:
        BadRequest, PayloadTooLarge: for the first check that fails.
    """
    if len(body) > limits.max_body_bytes:
        raise PayloadTooLarge(f"Body is over {limits.max_body_bytes} bytes")
    return _event(_load_body(body), limits, faults)


def _event(
    payload: dict[str, Any],
    limits: ApiLimits,
    faults: FaultSet,
    *,
    single_channel: bool = False,
    size_checked: bool = True,
) -> TriggerEvent:
    """Steps 8-12 on one event object (a trigger body or a batch item)."""
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

    if single_channel and "channels" in payload:
        raise BadRequest("A batch event names one channel, with channel")
    channels = _channels(payload, limits, faults)

    socket_id = payload.get("socket_id")
    # Under ``socket_id_without_dot`` the server's own (dotless) ids must stay usable here, so
    # that the fault breaks only the socket id shape and not socket_id exclusion.
    shape = _FAULTY_SOCKET_ID if Fault.SOCKET_ID_WITHOUT_DOT in faults else _SOCKET_ID
    if socket_id is not None and (
        not isinstance(socket_id, str) or shape.fullmatch(socket_id) is None
    ):
        raise BadRequest(f"Invalid socket_id {socket_id!r}")

    info = _info(payload.get("info"))

    # "surrogatepass": data may hold a lone surrogate (valid JSON when escaped).
    size = len(data.encode("utf-8", "surrogatepass"))
    too_big = size_checked and size > limits.max_event_bytes
    if too_big and Fault.NO_EVENT_SIZE_LIMIT not in faults:
        raise PayloadTooLarge(f"data is over {limits.max_event_bytes} bytes")

    return TriggerEvent(name=name, data=data, channels=channels, socket_id=socket_id, info=info)


def _info(value: Any) -> tuple[str, ...]:
    """``info``: a comma-separated list of the attributes a trigger may ask for."""
    if value is None:
        return ()
    if not isinstance(value, str):
        raise BadRequest("info must be a comma-separated string")
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    for name in names:
        if name not in _TRIGGER_ATTRIBUTES:
            raise BadRequest(f"Unknown info attribute {name!r}")
    return names


def _channels(payload: dict[str, Any], limits: ApiLimits, faults: FaultSet) -> tuple[str, ...]:
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
        most = None if Fault.TOO_MANY_CHANNELS_ACCEPTED in faults else limits.max_channels
        if (
            not isinstance(names, list)
            or not names
            or (most is not None and len(names) > most)
            or not all(isinstance(name, str) for name in names)
        ):
            raise BadRequest(f"channels must be an array of 1 to {limits.max_channels} strings")
    # ``publish_channel_names_unchecked`` lifts the naming rules only; text that is not
    # well-formed Unicode (a lone surrogate) stays refused, as malformed input.
    grammar = Fault.PUBLISH_CHANNEL_NAMES_UNCHECKED not in faults
    for name in names:
        if not grammar and name.encode("utf-8", "replace").decode() == name:
            continue
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
    if len(request.body) > limits.max_body_bytes:
        if Fault.OVERSIZED_BODY_500 in faults:
            raise RuntimeError("oversized_body_500: the size check escapes as an internal error")
        raise PayloadTooLarge(f"Body is over {limits.max_body_bytes} bytes")
    return _event(trigger_payload(request, faults), limits, faults)


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
    channel: str,
    request: HttpRequest,
    registry: ChannelRegistry,
    now: float,
    faults: FaultSet = frozenset(),
) -> dict[str, Any]:
    """``GET /apps/{app_id}/channels/{channel}`` (after ``validate_request``).

    Pusher HTTP API: ``occupied`` always; ``info=user_count`` for presence channels only,
    ``info=subscription_count`` for the others, ``info=cache`` for cache channels (the cached
    event's data and remaining ttl in whole seconds, or null); asking for one that does not
    apply is a 400 (``channel_attribute_not_applicable_dropped`` leaves it out instead, as
    Reverb does). ``now`` is the clock the cache was filled with.

    Raises:
        BadRequest: invalid channel name, or an attribute that does not apply.
    """
    if not is_valid_channel_name(channel):
        raise BadRequest(f"Invalid channel name {channel!r}")
    presence = channel_type(channel) is ChannelType.PRESENCE
    body: dict[str, Any] = {"occupied": bool(registry.subscribers(channel))}
    lenient = Fault.CHANNEL_ATTRIBUTE_NOT_APPLICABLE_DROPPED in faults
    for attribute in _info_attributes(request):
        if attribute == "user_count":
            if not presence:
                if lenient:
                    continue
                raise BadRequest("user_count is only available for presence channels")
            body["user_count"] = len(registry.presence.get(channel))
        elif attribute == "subscription_count":
            if presence:
                if lenient:
                    continue
                raise BadRequest("subscription_count is not available for presence channels")
            body["subscription_count"] = len(registry.subscribers(channel))
        elif attribute == "cache":
            if not is_cache_channel(channel):
                if lenient:
                    continue
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


def channel_users(
    channel: str, registry: ChannelRegistry, faults: FaultSet = frozenset()
) -> dict[str, Any]:
    """``GET /apps/{app_id}/channels/{channel}/users``: distinct users of a presence channel.

    Raises:
        BadRequest: not a (valid) presence channel name (``users_on_non_presence``: an empty
            list instead).
    """
    if not is_valid_channel_name(channel) or channel_type(channel) is not ChannelType.PRESENCE:
        if Fault.USERS_ON_NON_PRESENCE in faults:
            return {"users": []}
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
            routes.extend(
                registry.route(
                    [channel],
                    exclude=exclude,
                    with_former=Fault.LEAK_TO_UNSUBSCRIBED in faults,
                )
            )
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


def channel_attributes(
    channel: str, attributes: tuple[str, ...], registry: ChannelRegistry
) -> dict[str, Any]:
    """The ``info`` attributes of one channel in a trigger or batch reply.

    An attribute that does not apply to the channel's type (``user_count`` off presence,
    ``subscription_count`` on presence) is left out: the docs let a channel's hash be empty.
    """
    presence = channel_type(channel) is ChannelType.PRESENCE
    body: dict[str, Any] = {}
    for attribute in attributes:
        if attribute == "user_count" and presence:
            body["user_count"] = len(registry.presence.get(channel))
        elif attribute == "subscription_count" and not presence:
            body["subscription_count"] = len(registry.subscribers(channel))
    return body


def trigger_reply(
    event: TriggerEvent, registry: ChannelRegistry, faults: FaultSet = frozenset()
) -> dict[str, Any]:
    """The 200 body of a trigger: ``{}``, or with ``info`` the attributes of each channel.

    Pusher HTTP API, "POST event": with ``info`` the reply is
    ``{"channels": {name: {attributes}}}`` over the distinct channels triggered to.
    """
    if not event.info or Fault.TRIGGER_INFO_IGNORED in faults:
        return success_body(faults)
    return {
        "channels": {
            channel: channel_attributes(channel, event.info, registry) for channel in event.channels
        }
    }


@dataclass(frozen=True)
class BatchPlan:
    """What to do with a ``batch_events`` request: publish ``events`` (in order), then answer
    ``error`` if there is one. A refused batch publishes nothing, except under
    ``batch_partial_delivery``, which publishes the items before the bad one."""

    events: tuple[TriggerEvent, ...]
    error: HttpApiError | None = None


def parse_batch(body: bytes, limits: ApiLimits, faults: FaultSet = frozenset()) -> BatchPlan:
    """``{"batch": [event, ...]}``: 1 to 10 items, each validated like a trigger but naming one
    ``channel``; data over the limit in any item is a 413. The whole batch is checked before
    anything is published.
    """
    try:
        if len(body) > limits.max_body_bytes:
            raise PayloadTooLarge(f"Body is over {limits.max_body_bytes} bytes")
        items = _load_body(body).get("batch")
        if not isinstance(items, list) or not items:
            raise BadRequest("batch must be a non-empty array of events")
        if len(items) > limits.max_batch_events and Fault.BATCH_SIZE_UNCHECKED not in faults:
            raise BadRequest(f"A batch holds at most {limits.max_batch_events} events")
    except HttpApiError as exc:
        return BatchPlan((), exc)
    events: list[TriggerEvent] = []
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise BadRequest("Each batch item must be a JSON object")
            if "channel" not in item:
                raise BadRequest("Each batch item needs a channel")
            events.append(
                _event(
                    item,
                    limits,
                    faults,
                    single_channel=True,
                    size_checked=Fault.BATCH_ITEM_SIZE_UNCHECKED not in faults,
                )
            )
        except HttpApiError as exc:
            exc.message = f"batch[{index}]: {exc.message}"
            done = tuple(events) if Fault.BATCH_PARTIAL_DELIVERY in faults else ()
            return BatchPlan(done, exc)
    return BatchPlan(tuple(events))


def validate_batch(
    app_id: str,
    request: HttpRequest,
    app: AppCredentials,
    now: float,
    limits: ApiLimits,
    faults: FaultSet = frozenset(),
) -> BatchPlan:
    """``POST /apps/{app_id}/batch_events``: steps 1-6, then ``parse_batch``.

    Raises:
        HttpApiError: the app id or the signature is wrong (the body is not looked at).
    """
    validate_request(app_id, request, app, now, limits, faults)
    return parse_batch(request.body, limits, faults)


def batch_reply(
    events: tuple[TriggerEvent, ...], registry: ChannelRegistry, faults: FaultSet = frozenset()
) -> dict[str, Any]:
    """``{}``, or when any item asked for ``info``, ``{"batch": [attributes, ...]}`` in request
    order with ``{}`` for the items that did not (Pusher HTTP API, "POST batch events")."""
    if not any(event.info for event in events) or Fault.BATCH_INFO_IGNORED in faults:
        return {"batch": {}} if Fault.BATCH_REPLY_BATCH_OBJECT in faults else success_body(faults)
    return {
        "batch": [channel_attributes(event.channels[0], event.info, registry) for event in events]
    }


def list_channels(
    request: HttpRequest, registry: ChannelRegistry, faults: FaultSet = frozenset()
) -> dict[str, Any]:
    """``GET /apps/{app_id}/channels`` (after ``validate_request``): the occupied channels
    starting with ``filter_by_prefix``, each with ``{}`` or the ``info`` attributes asked for.

    Only ``user_count`` is defined, and only when the prefix limits the answer to presence
    channels (Pusher HTTP API, "GET channels").

    Raises:
        BadRequest: an unknown attribute, or ``user_count`` without a ``presence-`` prefix.
    """
    prefix = request.param("filter_by_prefix") or ""
    attributes = _info_attributes(request)
    for attribute in attributes:
        if attribute != "user_count":
            raise BadRequest(f"Unknown info attribute {attribute!r} for GET channels")
        if (
            not prefix.startswith("presence-")
            and Fault.CHANNELS_USER_COUNT_UNRESTRICTED not in faults
        ):
            raise BadRequest("user_count needs filter_by_prefix=presence-")
    if Fault.CHANNELS_FILTER_IGNORED in faults:
        prefix = ""
    channels: dict[str, Any] = {}
    for entry in registry:
        if not entry.name.startswith(prefix) or not registry.subscribers(entry.name):
            continue
        if server_to_user_id(entry.name) is not None:
            continue
        channels[entry.name] = channel_attributes(entry.name, tuple(attributes), registry)
    return {"channels": channels}


def validate_terminate(
    app_id: str,
    request: HttpRequest,
    app: AppCredentials,
    now: float,
    limits: ApiLimits,
    faults: FaultSet = frozenset(),
) -> None:
    """``terminate_connections`` is authenticated like every endpoint
    (``terminate_unauthenticated`` checks only the app id).

    Raises:
        HttpApiError: for the first check that fails.
    """
    if Fault.TERMINATE_UNAUTHENTICATED in faults:
        check_app(app_id, app, faults)
        return
    validate_request(app_id, request, app, now, limits, faults)


def keep_alive(faults: FaultSet = frozenset()) -> bool:
    """Whether an API response leaves the TCP connection open for the next request (Pusher
    HTTP API, "HTTP Keep-Alive"); ``no_keep_alive`` closes it after every response."""
    return Fault.NO_KEEP_ALIVE not in faults
