"""What ``POST /apps/{app_id}/events`` and ``batch_events`` ask to publish: steps 7-12.

After authentication (``http_requests.py``), a trigger's body is checked for size and shape,
then its name, data, channels, ``socket_id``, ``info`` and data size, in that order, so that
the first broken rule is the one reported. A batch is checked whole before anything in it
is published.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..serves import serves
from .errors import BadRequest, HttpApiError, PayloadTooLarge
from .http_requests import AUTH_PARAMS, ApiLimits, HttpRequest
from .messages import JsonTooDeep, loads_bounded
from .names import is_valid_channel_name, server_to_user_id
from .socket_ids import is_socket_id

__all__ = ["TRIGGER_ATTRIBUTES", "BatchPlan", "EventParser", "TriggerEvent", "load_body"]

#: Attributes a trigger or batch item may ask for with ``info``.
TRIGGER_ATTRIBUTES = ("user_count", "subscription_count")


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


@dataclass(frozen=True)
class BatchPlan:
    """What to do with a ``batch_events`` request: publish ``events`` (in order), then answer
    ``error`` if there is one."""

    events: tuple[TriggerEvent, ...]
    error: HttpApiError | None = None


def load_body(body: bytes) -> dict[str, Any]:
    """The body as a JSON object.

    Raises:
        BadRequest: not JSON, not an object, or nested too deep.
    """
    try:
        value = loads_bounded(body)
    except JsonTooDeep as exc:
        serves("HTTP-GEN-02", "ROBUST-HTTP-01")
        raise BadRequest(f"Body is {exc}") from None
    except ValueError:  # Covers invalid UTF-8 (UnicodeDecodeError) too.
        serves("HTTP-GEN-02", "ROBUST-HTTP-01")
        raise BadRequest("Body must be a JSON object") from None
    if not isinstance(value, dict):
        raise BadRequest("Body must be a JSON object")
    return value


def _info(value: Any) -> tuple[str, ...]:
    """``info``: a comma-separated list of the attributes a trigger may ask for."""
    if value is None:
        return ()
    if not isinstance(value, str):
        raise BadRequest("info must be a comma-separated string")
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    for name in names:
        if name not in TRIGGER_ATTRIBUTES:
            raise BadRequest(f"Unknown info attribute {name!r}")
    return names


class EventParser:
    """Turns an authenticated trigger or batch request into events, or refuses it."""

    def __init__(self, limits: ApiLimits) -> None:
        self.limits = limits

    def trigger(self, request: HttpRequest) -> TriggerEvent:
        """Steps 7-12 of ``POST events``.

        Raises:
            BadRequest, PayloadTooLarge: for the first check that fails.
        """
        self._check_body_size(request.body)
        return self._event(self.payload(request))

    def parse_trigger(self, body: bytes) -> TriggerEvent:
        """Steps 7-12 for a JSON body.

        Raises:
            BadRequest, PayloadTooLarge: for the first check that fails.
        """
        if len(body) > self.limits.max_body_bytes:
            raise PayloadTooLarge(f"Body is over {self.limits.max_body_bytes} bytes")
        return self._event(load_body(body))

    def payload(self, request: HttpRequest) -> dict[str, Any]:
        """The trigger's parameters: the JSON body, or, for an empty body, the query string.

        Pusher HTTP API, "General": POST parameters SHOULD be a JSON body but MAY travel in
        the query string, arrays as ``channels[]=a&channels[]=b``.

        Raises:
            BadRequest: the body is not a JSON object.
        """
        if request.body:
            serves("HTTP-GEN-01")
            return load_body(request.body)
        serves("HTTP-GEN-05")
        payload: dict[str, Any] = {}
        for key, value in request.query:
            if key in AUTH_PARAMS or key == "body_md5":
                continue
            if key == "channels[]":
                payload.setdefault("channels", []).append(value)
            else:
                payload.setdefault(key, value)
        return payload

    def batch(self, body: bytes) -> BatchPlan:
        """``{"batch": [event, ...]}``: 1 to 10 items, each validated like a trigger but
        naming one ``channel``; data over the limit in any item is a 413. A refused batch
        publishes nothing."""
        try:
            if len(body) > self.limits.max_body_bytes:
                raise PayloadTooLarge(f"Body is over {self.limits.max_body_bytes} bytes")
            items = load_body(body).get("batch")
            if not isinstance(items, list) or not items:
                raise BadRequest("batch must be a non-empty array of events")
            most = self._max_batch_events()
            if most is not None and len(items) > most:
                serves("HTTP-BATCH-01")
                raise BadRequest(f"A batch holds at most {self.limits.max_batch_events} events")
        except HttpApiError as exc:
            return BatchPlan((), exc)
        events: list[TriggerEvent] = []
        for index, item in enumerate(items):
            try:
                if not isinstance(item, dict):
                    raise BadRequest("Each batch item must be a JSON object")
                if "channel" not in item:
                    raise BadRequest("Each batch item needs a channel")
                events.append(self._batch_item(item))
            except HttpApiError as exc:
                serves("HTTP-BATCH-02", "HTTP-BATCH-03")
                exc.message = f"batch[{index}]: {exc.message}"
                return self._refused_batch(tuple(events), exc)
        serves("HTTP-BATCH-01")
        return BatchPlan(tuple(events))

    # Seams: one rule each.

    def _check_body_size(self, body: bytes) -> None:
        if len(body) > self.limits.max_body_bytes:
            raise PayloadTooLarge(f"Body is over {self.limits.max_body_bytes} bytes")

    def _max_batch_events(self) -> int | None:
        """How many items a batch may hold; ``None``: any number."""
        return self.limits.max_batch_events

    def _batch_item(self, item: dict[str, Any]) -> TriggerEvent:
        return self._event(item, single_channel=True)

    def _refused_batch(self, accepted: tuple[TriggerEvent, ...], error: HttpApiError) -> BatchPlan:
        """A bad item refuses the whole batch, including the good items before it."""
        serves("HTTP-BATCH-03")
        return BatchPlan((), error)

    def _event(self, payload: dict[str, Any], *, single_channel: bool = False) -> TriggerEvent:
        """Steps 8-12 on one event object (a trigger body or a batch item)."""
        name = self._event_name(payload)
        data = payload.get("data")
        if not isinstance(data, str):
            serves("HTTP-GEN-02")
            raise BadRequest("data must be a string")
        if single_channel and "channels" in payload:
            raise BadRequest("A batch event names one channel, with channel")
        channels = self._channels(payload)
        socket_id = payload.get("socket_id")
        if socket_id is not None and (
            not isinstance(socket_id, str) or not self._is_socket_id(socket_id)
        ):
            raise BadRequest(f"Invalid socket_id {socket_id!r}")
        info = _info(payload.get("info"))
        self._check_data_size(data)
        serves("HTTP-EVT-08")
        return TriggerEvent(name=name, data=data, channels=channels, socket_id=socket_id, info=info)

    def _event_name(self, payload: dict[str, Any]) -> str:
        name = payload.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest("name must be a non-empty string")
        self._check_name_length(name)
        return name

    def _check_name_length(self, name: str) -> None:
        if len(name) > self.limits.max_name_length:
            serves("HTTP-EVT-05")
            raise BadRequest(f"name is over {self.limits.max_name_length} characters")

    def _channels(self, payload: dict[str, Any]) -> tuple[str, ...]:
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
            most = self._max_channels()
            if (
                not isinstance(names, list)
                or not names
                or (most is not None and len(names) > most)
                or not all(isinstance(name, str) for name in names)
            ):
                serves("HTTP-EVT-09")
                raise BadRequest(
                    f"channels must be an array of 1 to {self.limits.max_channels} strings"
                )
        for name in names:
            self._check_channel_name(name)
        serves("HTTP-EVT-01", "CHAN-NAME-02")
        return tuple(dict.fromkeys(names))

    def _max_channels(self) -> int | None:
        """How many channels one trigger may name; ``None``: any number."""
        return self.limits.max_channels

    def _check_channel_name(self, name: str) -> None:
        """A channel published to follows the subscribe grammar, or is a user's own."""
        if not is_valid_channel_name(name) and server_to_user_id(name) is None:
            serves("HTTP-EVT-06")
            raise BadRequest(f"Invalid channel name {name!r}")

    def _is_socket_id(self, value: str) -> bool:
        return is_socket_id(value)

    def _check_data_size(self, data: str) -> None:
        # "surrogatepass": data may hold a lone surrogate (valid JSON when escaped).
        if len(data.encode("utf-8", "surrogatepass")) > self.limits.max_event_bytes:
            serves("HTTP-EVT-03", "HTTP-BATCH-02")
            raise PayloadTooLarge(f"data is over {self.limits.max_event_bytes} bytes")
