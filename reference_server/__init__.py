"""A small, correct Pusher Channels server: the conformance suite's default target.

It shares no code with ``conformance/``; the two keep each other honest through ``specs/`` and
``fixtures/`` only.
"""

from __future__ import annotations

__all__: list[str] = []
