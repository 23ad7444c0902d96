"""Named properties: checks written in Python, referenced from the YAML by name, whose inputs
hypothesis generates within the bounds the YAML gives. One module per protocol area; importing
this package registers them all."""

from __future__ import annotations

from . import (
    channel_auth,
    channels,
    client_events,
    connection,
    delivery,
    http_api,
    presence,
    robustness_http,
    robustness_ws,
)
from .http_api import TAMPERS
from .registry import PROPERTIES, Property, known_property_names, run_property

__all__ = [
    "PROPERTIES",
    "TAMPERS",
    "Property",
    "channel_auth",
    "channels",
    "client_events",
    "connection",
    "delivery",
    "http_api",
    "known_property_names",
    "presence",
    "robustness_http",
    "robustness_ws",
    "run_property",
]
