"""Test-only faults of a node's cluster link (``ClusterFault``), for the cluster
certification: switched on with ``PUSHER_REF_FAULTS`` on one node of several.

Both live where the node hands its messages to the bus, so every kind of message (relayed
frames, channel state, heartbeats) is affected alike; all but the node's ``Sync`` marker to
itself, which no other node reads.
"""

from __future__ import annotations

from typing import Any

from ..protocol.cluster_messages import ClusterMessage, Sync
from ..redis_adapter import RedisCluster
from .catalogue import ClusterFault, ClusterFaultSet

__all__ = ["FaultyRedisCluster"]


class FaultyRedisCluster(RedisCluster):
    """``cluster_no_forward``: the node tells the other nodes nothing, so its publishes and
    client events reach only its own clients and its members are never seen elsewhere.
    ``cluster_double_forward``: every message goes out twice, so the other nodes' clients
    get each event relayed through this node twice."""

    def __init__(self, *args: Any, faults: ClusterFaultSet, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.faults = faults

    def _wire_texts(self, message: ClusterMessage) -> list[str]:
        texts = super()._wire_texts(message)
        if isinstance(message, Sync):
            # The node's marker to itself, which the others ignore: kept, or every publish
            # of the faulty node would wait out ``SYNC_WAIT`` for it.
            return texts
        if ClusterFault.CLUSTER_NO_FORWARD in self.faults:
            return []
        if ClusterFault.CLUSTER_DOUBLE_FORWARD in self.faults:
            return texts * 2
        return texts
