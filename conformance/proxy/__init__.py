"""A fault-injecting TCP proxy for testing how clients and servers live through a bad network.

``faults`` and ``schedule`` say what to inject and when (pure values and logic), ``frames`` finds
WebSocket frame boundaries in a byte stream, ``connection`` and ``server`` move the bytes, and
``command`` runs the proxy from ``conformance proxy``. See docs/proxy.md.
"""

from __future__ import annotations

from .faults import (
    Bandwidth,
    CutAfter,
    Fault,
    HalfOpen,
    Latency,
    ProxyScheduleError,
    Reset,
    Resume,
    Stall,
    WsClose,
)
from .schedule import Schedule, load_schedule, schedule_from_mapping
from .server import ConnectionInfo, FaultProxy

__all__ = [
    "Bandwidth",
    "ConnectionInfo",
    "CutAfter",
    "Fault",
    "FaultProxy",
    "HalfOpen",
    "Latency",
    "ProxyScheduleError",
    "Reset",
    "Resume",
    "Schedule",
    "Stall",
    "WsClose",
    "load_schedule",
    "schedule_from_mapping",
]
