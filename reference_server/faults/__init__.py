"""Test-only fault switches: deliberate bugs that live outside the code they break.

The protocol core (``reference_server/protocol``) knows nothing of them. Each module here
subclasses or wraps one area of the server and breaks its rules only when a switch is on;
``app.build_server`` builds these variants (``server.FaultyReferenceServer``) only when
``PUSHER_REF_FAULTS`` names at least one fault, so a normal server never runs this code.

Only the catalogue is imported here: the configuration parses fault names before aiohttp or
the protocol core are loaded.
"""

from __future__ import annotations

from .catalogue import ClusterFault, ClusterFaultSet, Fault, FaultSet, parse_faults, split_faults

__all__ = ["ClusterFault", "ClusterFaultSet", "Fault", "FaultSet", "parse_faults", "split_faults"]
