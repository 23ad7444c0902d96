"""pusher-conformance: a conformance suite for the Pusher Channels protocol.

The suite is an independent implementation: it shares no code with ``reference_server`` (only
``specs/`` and ``fixtures/``), so that each keeps the other honest.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
