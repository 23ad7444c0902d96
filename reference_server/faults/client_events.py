"""Faults in relaying client events."""

from __future__ import annotations

from typing import Any

from ..protocol import frames
from ..protocol.messages import ClientEvent, ClientMessage, Unrecognised, loads_bounded
from ..protocol.names import ChannelType
from ..protocol.presence import Member
from .catalogue import Fault
from .connection import ConnectionWithFaults

__all__ = ["ClientEventFaults"]


class ClientEventFaults(ConnectionWithFaults):
    def _parse(self, text: str) -> ClientMessage:
        message = super()._parse(text)
        if (
            self.has(Fault.NON_CLIENT_EVENTS_RELAYED)
            and isinstance(message, Unrecognised)
            and not message.event.startswith("pusher")
        ):
            # Any other event that names a channel is relayed as if it were ``client-*``.
            decoded = loads_bounded(text)
            channel = decoded.get("channel")
            if isinstance(channel, str):
                return ClientEvent(message.event, channel, decoded.get("data"))
        return message

    def _client_events_allowed_on(self, kind: ChannelType) -> bool:
        if kind is ChannelType.PUBLIC and self.has(Fault.CLIENT_EVENTS_ON_PUBLIC):
            return True
        return super()._client_events_allowed_on(kind)

    def _may_broadcast_on(self, channel: str) -> bool:
        return self.has(Fault.CLIENT_EVENTS_FROM_UNSUBSCRIBED) or super()._may_broadcast_on(channel)

    def _within_client_event_rate(self, now: float) -> bool:
        # The window still counts the event: the limit is lifted, not the bookkeeping.
        within = super()._within_client_event_rate(now)
        return within or self.has(Fault.CLIENT_EVENT_RATE_UNLIMITED)

    def _client_event_frame(
        self, event: str, channel: str, data: Any, member: Member | None
    ) -> str:
        if self.has(Fault.CLIENT_EVENT_NO_USER_ID):
            return frames.client_event(event, channel, data)
        return super()._client_event_frame(event, channel, data, member)

    def _client_event_recipients(self, channel: str) -> tuple[str, ...]:
        exclude = None if self.has(Fault.CLIENT_EVENT_ECHO) else self.socket_id
        if self.has(Fault.LEAK_TO_UNSUBSCRIBED):
            targets = self._leaky.targets_with_former(channel, exclude=exclude)
        else:
            targets = self._registry.targets(channel, exclude=exclude)
        if self.has(Fault.CLIENT_EVENT_RELAYED_TWICE):
            # Every recipient twice over, as when a relay also comes back from a pub/sub hop.
            return targets + targets
        return targets
