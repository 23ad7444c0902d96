"""Faults of a server with several apps: ``apps_share_channels``.

The disabled-app and quota faults (``disabled_app_accepted``, ``quota_ignored``) are
connection rules and live with the handshake's in ``lifecycle.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from ..app import ReferenceServer, build_server
from ..config import ServerConfig
from ..metrics import Metrics
from ..peers import Fanout
from ..protocol.channels import ChannelRegistry
from ..protocol.socket_ids import RandomSource
from .catalogue import Fault
from .channels import LeakyChannelRegistry
from .server import FaultyReferenceServer

__all__ = ["build_faulty_servers"]


def build_faulty_servers(
    configs: Sequence[ServerConfig],
    *,
    random_source: RandomSource | None = None,
    wall_clock: Callable[[], float] = time.time,
    metrics: Metrics | None = None,
) -> list[ReferenceServer]:
    """One faulty server per app; with ``apps_share_channels`` they share one channel
    registry and one fan-out, so a channel name means the same channel in every app: an
    event published in one app reaches another's subscribers, and queries see every app's
    channels and members."""
    if Fault.APPS_SHARE_CHANNELS not in configs[0].faults:
        return [
            build_server(
                config, random_source=random_source, wall_clock=wall_clock, metrics=metrics
            )
            for config in configs
        ]
    first = FaultyReferenceServer(
        configs[0], random_source=random_source, wall_clock=wall_clock, metrics=metrics
    )
    registry, fanout = first.registry, first.fanout

    class SharingReferenceServer(FaultyReferenceServer):
        def _new_registry(self) -> ChannelRegistry:
            assert isinstance(registry, LeakyChannelRegistry)
            return registry

        def _new_fanout(self) -> Fanout:
            return fanout

    rest = [
        SharingReferenceServer(
            config, random_source=random_source, wall_clock=wall_clock, metrics=metrics
        )
        for config in configs[1:]
    ]
    return [first, *rest]
