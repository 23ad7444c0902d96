"""Faults in the HTTP API: authentication, trigger and batch validation, publishing and the
channel queries. Each class overrides the seams of one core class."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

from ..protocol.channels import ChannelRegistry
from ..protocol.errors import HttpApiError, PayloadTooLarge, Unauthorized
from ..protocol.frames import compact_json
from ..protocol.http_events import BatchPlan, EventParser, TriggerEvent, load_body
from ..protocol.http_publish import Publisher
from ..protocol.http_queries import ChannelQueries
from ..protocol.http_requests import ApiLimits, AppCredentials, HttpRequest, RequestAuthenticator
from ..protocol.names import ChannelType, channel_type
from ..protocol.signing import body_md5, signatures_match
from .catalogue import Fault, FaultSet
from .channels import LeakyChannelRegistry

__all__ = [
    "ChannelQueriesWithFaults",
    "EventParserWithFaults",
    "PublisherWithFaults",
    "RequestAuthenticatorWithFaults",
]

# Under ``socket_id_without_dot`` the server's own (dotless) ids must stay usable as a trigger's
# ``socket_id``, so that the fault breaks only the socket id shape and not the exclusion.
_SOCKET_ID_DOT_OPTIONAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")

#: ``large_body_signature_truncated``: how much of a body its ``body_md5`` is checked against.
TRUNCATED_BODY_BYTES = 8192


def _without_incomplete_items(body: bytes) -> bytes:
    """``batch_incomplete_items_skipped``: the batch body without its items that lack
    ``channel`` or ``data``; a body that is not such a batch is left as it is."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return body
    items = payload.get("batch") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        return body
    kept = [
        item
        for item in items
        if not isinstance(item, dict) or ("channel" in item and "data" in item)
    ]
    return json.dumps({**payload, "batch": kept}).encode()


class RequestAuthenticatorWithFaults(RequestAuthenticator):
    def __init__(self, app: AppCredentials, limits: ApiLimits, faults: FaultSet) -> None:
        super().__init__(app, limits)
        self.faults = faults

    def check_app(self, app_id: str) -> None:
        if app_id != self.app.app_id and Fault.UNKNOWN_APP_ID_401 in self.faults:
            raise Unauthorized(f"Unknown app id {app_id}")
        super().check_app(app_id)

    def authenticate(self, request: HttpRequest, now: float) -> None:
        if request.method == "GET" and Fault.QUERIES_UNSIGNED_ACCEPTED in self.faults:
            # The channel queries trust anyone who knows the app id.
            return
        super().authenticate(request, now)

    def _check_key(self, key: str) -> None:
        if Fault.SKIP_AUTH_KEY_CHECK not in self.faults:
            super()._check_key(key)

    def _check_timestamp(self, timestamp: str, now: float) -> None:
        if Fault.SKIP_TIMESTAMP_CHECK not in self.faults:
            super()._check_timestamp(timestamp, now)

    def _check_body_md5(self, body: bytes, given: str) -> None:
        if Fault.SKIP_BODY_MD5_CHECK in self.faults:
            return
        if Fault.LARGE_BODY_SIGNATURE_TRUNCATED in self.faults:
            # Only the first bytes of a large body are hashed, so a correct body_md5 fails.
            if not signatures_match(body_md5(body[:TRUNCATED_BODY_BYTES]), given):
                raise Unauthorized("body_md5 does not match the body")
            return
        super()._check_body_md5(body, given)

    def _check_signature(self, request: HttpRequest, signature: str) -> None:
        if Fault.SKIP_SIGNATURE_CHECK not in self.faults:
            super()._check_signature(request, signature)


class EventParserWithFaults(EventParser):
    def __init__(self, limits: ApiLimits, faults: FaultSet) -> None:
        super().__init__(limits)
        self.faults = faults
        #: Set while a batch item is checked, for ``batch_item_size_unchecked``.
        self._in_batch = False

    def payload(self, request: HttpRequest) -> dict[str, Any]:
        if Fault.POST_QUERY_PARAMS_IGNORED in self.faults:
            return load_body(request.body)
        return super().payload(request)

    def _check_body_size(self, body: bytes) -> None:
        if len(body) > self.limits.max_body_bytes and Fault.OVERSIZED_BODY_500 in self.faults:
            raise RuntimeError("oversized_body_500: the size check escapes as an internal error")
        limit = self.limits.max_event_bytes
        if len(body) > limit and Fault.EVENT_LIMIT_ON_WHOLE_BODY in self.faults:
            # The event-data limit measured on the whole request, envelope included.
            raise PayloadTooLarge(f"Body is over {limit} bytes")
        super()._check_body_size(body)

    def _max_batch_events(self) -> int | None:
        if Fault.BATCH_SIZE_UNCHECKED in self.faults:
            return None
        return super()._max_batch_events()

    def batch(self, body: bytes) -> BatchPlan:
        if Fault.BATCH_INCOMPLETE_ITEMS_SKIPPED in self.faults:
            body = _without_incomplete_items(body)
        return super().batch(body)

    def _batch_item(self, item: dict[str, Any]) -> TriggerEvent:
        self._in_batch = True
        try:
            return super()._batch_item(item)
        finally:
            self._in_batch = False

    def _refused_batch(self, accepted: tuple[TriggerEvent, ...], error: HttpApiError) -> BatchPlan:
        if Fault.BATCH_PARTIAL_DELIVERY in self.faults:
            # The items before the bad one are published all the same.
            return BatchPlan(accepted, error)
        return super()._refused_batch(accepted, error)

    def _event_name(self, payload: dict[str, Any]) -> str:
        if "name" not in payload and Fault.MISSING_NAME_ACCEPTED in self.faults:
            return ""
        return super()._event_name(payload)

    def _check_name_length(self, name: str) -> None:
        if Fault.EVENT_NAME_LENGTH_UNCHECKED not in self.faults:
            super()._check_name_length(name)

    def _channels(self, payload: dict[str, Any]) -> tuple[str, ...]:
        if (
            payload.get("channels") == []
            and "channel" not in payload
            and Fault.EMPTY_CHANNELS_ACCEPTED in self.faults
        ):
            return ()
        return super()._channels(payload)

    def _max_channels(self) -> int | None:
        if Fault.TOO_MANY_CHANNELS_ACCEPTED in self.faults:
            return None
        return super()._max_channels()

    def _check_channel_name(self, name: str) -> None:
        # ``publish_channel_names_unchecked`` lifts the naming rules only; text that is not
        # well-formed Unicode (a lone surrogate) stays refused, as malformed input.
        well_formed = name.encode("utf-8", "replace").decode() == name
        if Fault.PUBLISH_CHANNEL_NAMES_UNCHECKED in self.faults and well_formed:
            return
        super()._check_channel_name(name)

    def _is_socket_id(self, value: str) -> bool:
        if Fault.EXCLUDE_SOCKET_ID_UNVALIDATED in self.faults:
            # Any string is taken; a malformed one simply excludes nobody.
            return True
        if Fault.SOCKET_ID_WITHOUT_DOT in self.faults:
            return _SOCKET_ID_DOT_OPTIONAL.fullmatch(value) is not None
        return super()._is_socket_id(value)

    def _check_data_size(self, data: str) -> None:
        if Fault.NO_EVENT_SIZE_LIMIT in self.faults:
            return
        if self._in_batch and Fault.BATCH_ITEM_SIZE_UNCHECKED in self.faults:
            return
        super()._check_data_size(data)


class PublisherWithFaults(Publisher):
    def __init__(self, registry: ChannelRegistry, faults: FaultSet) -> None:
        super().__init__(registry)
        self.faults = faults

    def trigger_reply(self, event: TriggerEvent) -> dict[str, Any]:
        if Fault.TRIGGER_INFO_IGNORED in self.faults:
            return self.success_body()
        return super().trigger_reply(event)

    def batch_reply(self, events: tuple[TriggerEvent, ...]) -> dict[str, Any]:
        if Fault.BATCH_INFO_IGNORED in self.faults:
            return self._plain_batch_reply()
        return super().batch_reply(events)

    def success_body(self) -> dict[str, Any]:
        # Soketi's answer.
        return {"ok": True} if Fault.SUCCESS_BODY_OK_TRUE in self.faults else super().success_body()

    def _plain_batch_reply(self) -> dict[str, Any]:
        if Fault.BATCH_REPLY_BATCH_OBJECT in self.faults:
            return {"batch": {}}
        return super()._plain_batch_reply()

    def _caches(self, channel: str) -> bool:
        if Fault.CACHE_ONLY_WHILE_OCCUPIED in self.faults:
            return bool(self.registry.subscribers(channel))
        return super()._caches(channel)

    def _channels_to_deliver(self, event: TriggerEvent) -> tuple[str, ...]:
        channels = super()._channels_to_deliver(event)
        return channels[:1] if Fault.FIRST_CHANNEL_ONLY in self.faults else channels

    def _excluded(self, event: TriggerEvent) -> str | None:
        if Fault.IGNORE_SOCKET_ID_EXCLUSION in self.faults:
            return None
        return super()._excluded(event)

    def _subscriber_targets(self, channel: str, exclude: str | None) -> tuple[str, ...]:
        leaky = self.registry
        if Fault.LEAK_TO_UNSUBSCRIBED in self.faults and isinstance(leaky, LeakyChannelRegistry):
            return leaky.targets_with_former(channel, exclude=exclude)
        return super()._subscriber_targets(channel, exclude)

    def _user_targets(self, user_id: str, exclude: str | None) -> tuple[str, ...]:
        if Fault.SERVER_TO_USER_NOT_DELIVERED in self.faults:
            return ()
        return super()._user_targets(user_id, exclude)

    def _frame(self, event: TriggerEvent, channel: str) -> str:
        if Fault.EVENT_DATA_REENCODED not in self.faults:
            return super()._frame(event, channel)
        # Data that parses as JSON is embedded as the parsed value instead of the string.
        payload: Any = event.data
        with contextlib.suppress(ValueError):
            payload = json.loads(event.data)
        return compact_json({"event": event.name, "channel": channel, "data": payload})


class ChannelQueriesWithFaults(ChannelQueries):
    def __init__(self, registry: ChannelRegistry, faults: FaultSet) -> None:
        super().__init__(registry)
        self.faults = faults

    def terminate_targets(self, user_id: str) -> tuple[str, ...]:
        if Fault.TERMINATE_IGNORED in self.faults:
            return ()
        targets = super().terminate_targets(user_id)
        if Fault.TERMINATE_HITS_PRESENCE_MEMBERS in self.faults:
            # A presence member's user_id taken for a signed-in user.
            presence = self.registry.presence
            members = (s for ch in presence for s in presence.get(ch).connections.get(user_id, ()))
            targets = tuple(dict.fromkeys((*targets, *members)))
        return targets

    def channel_info(self, channel: str, request: HttpRequest, now: float) -> dict[str, Any]:
        body = super().channel_info(channel, request, now)
        if "user_count" in body and Fault.USER_COUNT_PER_CONNECTION in self.faults:
            body["user_count"] = self._connection_count(channel)
        return body

    def channel_users(self, channel: str) -> dict[str, Any]:
        body = super().channel_users(channel)
        if not _is_presence(channel) or not body["users"]:
            return body
        if Fault.USERS_ENDPOINT_500 in self.faults:
            raise RuntimeError("users_endpoint_500: the users list fails to serialise")
        if Fault.USERS_LISTED_PER_CONNECTION in self.faults:
            by_socket = self.registry.presence.get(channel).by_socket
            return {"users": [{"id": key} for key in by_socket.values()]}
        return body

    def _connection_count(self, channel: str) -> int:
        """How many connections (not users) are members of a presence channel."""
        return len(self.registry.presence.get(channel).by_socket)

    def _not_applicable(self, message: str) -> None:
        # Reverb leaves such an attribute out instead of refusing the request.
        if Fault.CHANNEL_ATTRIBUTE_NOT_APPLICABLE_DROPPED not in self.faults:
            super()._not_applicable(message)

    def _users_of_non_presence(self, channel: str) -> dict[str, Any]:
        if Fault.USERS_ON_NON_PRESENCE in self.faults:
            return {"users": []}
        return super()._users_of_non_presence(channel)

    def _check_user_count_scope(self, prefix: str) -> None:
        if Fault.CHANNELS_USER_COUNT_UNRESTRICTED not in self.faults:
            super()._check_user_count_scope(prefix)

    def _occupied_channels(
        self, prefix: str, attributes: tuple[str, ...]
    ) -> dict[str, dict[str, Any]]:
        if Fault.CHANNELS_FILTER_IGNORED in self.faults:
            prefix = ""
        if Fault.CHANNELS_INFO_IGNORED in self.faults:
            # Validated above, then forgotten: every channel's hash is empty.
            attributes = ()
        channels = super()._occupied_channels(prefix, attributes)
        if Fault.CHANNELS_LIST_PRESENCE_ONLY in self.faults:
            channels = {name: attrs for name, attrs in channels.items() if _is_presence(name)}
        if Fault.USER_COUNT_PER_CONNECTION in self.faults:
            for name, attrs in channels.items():
                if "user_count" in attrs:
                    attrs["user_count"] = self._connection_count(name)
        return channels


def _is_presence(channel: str) -> bool:
    return channel_type(channel) is ChannelType.PRESENCE
