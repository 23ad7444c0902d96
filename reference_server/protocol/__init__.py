"""Sans-I/O core of the reference server.

Nothing in this package opens a socket, touches an event loop or reads a clock: time and
randomness are passed in, so every protocol decision can be tested synchronously.
"""

from __future__ import annotations

__all__: list[str] = []
