"""Faults in the presence wire format: member events and the subscribe roster.

Each one reproduces a bug a Pusher-compatible server shipped (the issues are cited in
docs/reference-server.md): the frames still go to the right connections at the right time
unless the fault is about exactly that, so that only the rule it names is broken.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..protocol.frames import compact_json
from ..protocol.presence import Left, Member
from .catalogue import Fault
from .connection import ConnectionWithFaults

__all__ = ["PresenceFaults"]

_MEMBER_ADDED = "pusher_internal:member_added"
_MEMBER_REMOVED = "pusher_internal:member_removed"


class PresenceFaults(ConnectionWithFaults):
    def _announce_member_added(self, channel: str, member: Member) -> None:
        as_object = self.has(Fault.MEMBER_ADDED_DATA_AS_OBJECT)
        nested = self.has(Fault.MEMBER_ADDED_USER_INFO_NESTED)
        echoed = self.has(Fault.MEMBER_ADDED_ECHOED_TO_JOINER)
        if not (as_object or nested or echoed):
            super()._announce_member_added(channel, member)
            return
        info = member.user_info
        if nested:
            # The whole channel_data again, one level too deep.
            info = {"user_id": member.user_id, "user_info": info}
        payload: dict[str, Any] = {"user_id": member.user_id}
        if info is not None:
            payload["user_info"] = info
        # The joiner is not left out of the fan-out: it hears about itself.
        exclude = None if echoed else self.socket_id
        self._deliver(
            self._member_frame(_MEMBER_ADDED, channel, payload, as_object=as_object),
            self._registry.targets(channel, exclude=exclude),
        )

    def _announce_member_removed(self, channel: str, member: Member) -> None:
        if self.leaving_on_close and self.has(Fault.MEMBER_REMOVED_NOT_SENT_ON_CLOSE):
            # The registry and the webhook still see the leave; the other members do not.
            return
        if not self.has(Fault.MEMBER_REMOVED_DATA_AS_OBJECT):
            super()._announce_member_removed(channel, member)
            return
        self._deliver(
            self._member_frame(
                _MEMBER_REMOVED, channel, {"user_id": member.user_id}, as_object=True
            ),
            self._registry.targets(channel, exclude=self.socket_id),
        )

    def _member_removed(self, channel: str, left: Left | None) -> None:
        # ``abrupt_close_drops_user``: the same, but only for a connection that went without
        # a close frame.
        drops_user = self.has(Fault.PRESENCE_USER_DROPPED_ON_FIRST_LEAVE) or (
            self.dropped and self.has(Fault.ABRUPT_CLOSE_DROPS_USER)
        )
        if left is not None and not left.last and drops_user:
            # The user's first leaving connection takes the whole user out of the channel:
            # its other connections stay subscribed but are no longer members, so their own
            # leaves go unannounced and a further connection of the user joins as new.
            entry = self._registry.presence.get(channel)
            key = left.member.key
            for socket_id in entry.connections.pop(key, {}):
                entry.by_socket.pop(socket_id, None)
            entry.members.pop(key, None)
            left = replace(left, last=True)
        super()._member_removed(channel, left)

    @staticmethod
    def _member_frame(event: str, channel: str, payload: dict[str, Any], *, as_object: bool) -> str:
        data: Any = payload if as_object else compact_json(payload)
        return compact_json({"event": event, "channel": channel, "data": data})

    def _roster(self, channel: str) -> dict[str, Any]:
        roster = super()._roster(channel)
        connections = self._registry.presence.get(channel).connections
        if self.has(Fault.PRESENCE_ROSTER_PER_CONNECTION):
            # One id per connection: a user with two tabs is listed (and counted) twice.
            ids = [key for key in roster["ids"] for _ in connections[key]]
            roster = {**roster, "ids": ids, "count": len(ids)}
        if self.has(Fault.PRESENCE_IDS_KEYED_BY_SOCKET):
            # A map from each user's first socket id to the user, where a list is due.
            roster = {
                **roster,
                "ids": {next(iter(connections[key])): key for key in roster["ids"]},
            }
        return roster
