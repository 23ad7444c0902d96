"""Test-only faults of a node's cluster link (``ClusterFault``), for the cluster
certification: switched on with ``PUSHER_REF_FAULTS`` on one node of several.

Both live where the node hands its messages to the bus, so every kind of message (relayed
frames, channel state, heartbeats) is affected alike.
"""

from __future__ import annotations

from typing import Any

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

    def _wire_texts(self, text: str) -> list[str]:
        if ClusterFault.CLUSTER_NO_FORWARD in self.faults:
            return []
        if ClusterFault.CLUSTER_DOUBLE_FORWARD in self.faults:
            return [text, text]
        return super()._wire_texts(text)
