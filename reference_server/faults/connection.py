"""The connection the fault switches build on: the core's, plus the faults and the state
only they need.

The per-area variants (``lifecycle.py``, ``subscriptions.py``, ``client_events.py``) each
subclass this and override the core's seams; ``server.py`` stacks them into the one
``FaultyConnection`` a faulty server runs.
"""

from __future__ import annotations

from ..protocol.connection import Connection, ConnectionSettings
from ..protocol.presence import Member
from ..protocol.socket_ids import SocketIdAllocator
from .catalogue import Fault, FaultSet
from .channels import LeakyChannelRegistry

__all__ = ["ConnectionWithFaults"]


class ConnectionWithFaults(Connection):
    """Holds what every per-area variant reads: the switches, and the registry as the leaky
    one so that ``leak_to_unsubscribed`` can remember who left."""

    def __init__(
        self,
        settings: ConnectionSettings,
        registry: LeakyChannelRegistry,
        socket_ids: SocketIdAllocator,
        faults: FaultSet,
    ) -> None:
        super().__init__(settings, registry, socket_ids)
        self.faults = faults
        self._leaky = registry
        #: Messages that were not valid Pusher messages, and binary frames; the server reads
        #: it for ``malformed_sender_address_blocked``.
        self.malformed_inputs = 0
        #: Set once the connection is going away (closed or lost): several real servers got
        #: their cleanup right on ``pusher:unsubscribe`` but wrong on this path.
        self.leaving_on_close = False
        #: Set by the endpoint when the client went without a close frame (EOF, reset).
        self.dropped = False
        #: The (channel, member) leaves announced while closing, for
        #: ``cleanup_twice_on_abrupt_close``.
        self.removed_on_close: list[tuple[str, Member]] = []

    def has(self, fault: Fault) -> bool:
        return fault in self.faults

    def _leave_everything(self) -> None:
        self.leaving_on_close = True
        super()._leave_everything()
