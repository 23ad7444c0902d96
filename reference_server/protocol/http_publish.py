"""Publishing a validated trigger: caching it, fanning it out and answering the publisher.

Each frame is serialised once per channel and the same text goes to every recipient.
``#server-to-user-<id>`` reaches every connection signed in as ``<id>``, subscribed or not;
other channels reach their subscribers, minus the trigger's ``socket_id``.
"""

from __future__ import annotations

from typing import Any

from ..serves import serves
from . import frames
from .channels import Cached, ChannelRegistry, Delivery, Relay
from .http_events import TriggerEvent
from .names import ChannelType, channel_type, is_cache_channel, server_to_user_id

__all__ = ["Publisher", "channel_attributes"]


def channel_attributes(
    channel: str, attributes: tuple[str, ...], registry: ChannelRegistry
) -> dict[str, Any]:
    """The ``info`` attributes of one channel in a trigger, batch or channel-list reply.

    An attribute that does not apply to the channel's type (``user_count`` off presence,
    ``subscription_count`` on presence) is left out: the docs let a channel's hash be empty.
    """
    presence = channel_type(channel) is ChannelType.PRESENCE
    body: dict[str, Any] = {}
    for attribute in attributes:
        if attribute == "user_count" and presence:
            body["user_count"] = len(registry.presence.get(channel))
        elif attribute == "subscription_count" and not presence:
            body["subscription_count"] = registry.subscription_count(channel)
    return body


class Publisher:
    """Publishes HTTP-triggered events to one app's channels."""

    def __init__(self, registry: ChannelRegistry) -> None:
        self.registry = registry

    def store_in_cache(self, event: TriggerEvent, now: float) -> None:
        """Pusher docs, "Cache channels": keep the last event of each cache channel, occupied
        or not."""
        for channel in event.channels:
            if is_cache_channel(channel) and self._caches(channel):
                serves("CHAN-CACHE-02")
                self.registry.cache.store(channel, event.name, event.data, now)
                self.registry.note(Cached(channel, event.name, event.data))

    def deliveries(self, event: TriggerEvent) -> list[Delivery]:
        """One frame per channel somebody gets, with its recipients, in request order."""
        serves("HTTP-EVT-01", "CHAN-SUB-06", "DELIV-01", "DELIV-04", "RECON-10")
        exclude = self._excluded(event)
        deliveries: list[Delivery] = []
        for channel in dict.fromkeys(self._channels_to_deliver(event)):
            user_id = server_to_user_id(channel)
            if user_id is None:
                targets = self._subscriber_targets(channel, exclude)
            else:
                serves("AUTH-USER-05")
                targets = self._user_targets(user_id, exclude)
            frame = self._frame(event, channel)
            if targets:
                deliveries.append(Delivery(frame, targets))
            # The other nodes of a cluster route the same frame to their own recipients.
            self.registry.note(Relay(channel, frame, exclude))
        return deliveries

    def trigger_reply(self, event: TriggerEvent) -> dict[str, Any]:
        """The 200 body of a trigger: ``{}``, or with ``info`` the attributes of each channel.

        Pusher HTTP API, "POST event": with ``info`` the reply is
        ``{"channels": {name: {attributes}}}`` over the distinct channels triggered to.
        """
        if not event.info:
            serves("HTTP-EVT-04", "HTTP-EVT-07")
            return self.success_body()
        serves("HTTP-EVT-10")
        return {
            "channels": {
                channel: channel_attributes(channel, event.info, self.registry)
                for channel in event.channels
            }
        }

    def batch_reply(self, events: tuple[TriggerEvent, ...]) -> dict[str, Any]:
        """``{}``, or when any item asked for ``info``, ``{"batch": [attributes, ...]}`` in
        request order with ``{}`` for the items that did not (Pusher HTTP API, "POST batch
        events")."""
        if not any(event.info for event in events):
            serves("HTTP-BATCH-04")
            return self._plain_batch_reply()
        serves("HTTP-BATCH-02")
        return {
            "batch": [
                channel_attributes(event.channels[0], event.info, self.registry) for event in events
            ]
        }

    def success_body(self) -> dict[str, Any]:
        """``{}``, as hosted Pusher answers."""
        return {}

    # Seams: one rule each.

    def _plain_batch_reply(self) -> dict[str, Any]:
        """A batch reply when no item asked for ``info``."""
        return self.success_body()

    def _caches(self, channel: str) -> bool:
        """Whether a cache channel keeps this event."""
        return True

    def _channels_to_deliver(self, event: TriggerEvent) -> tuple[str, ...]:
        return event.channels

    def _excluded(self, event: TriggerEvent) -> str | None:
        """The publisher's own connection, named by ``socket_id``, does not get the event."""
        serves("HTTP-EVT-02", "DELIV-03")
        return event.socket_id

    def _subscriber_targets(self, channel: str, exclude: str | None) -> tuple[str, ...]:
        return self.registry.targets(channel, exclude=exclude)

    def _user_targets(self, user_id: str, exclude: str | None) -> tuple[str, ...]:
        return tuple(s for s in self.registry.users.sockets_of(user_id) if s != exclude)

    def _frame(self, event: TriggerEvent, channel: str) -> str:
        return frames.channel_event(event.name, channel, event.data)
