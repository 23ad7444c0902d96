"""Socket id generation.

Pusher protocol: socket ids look like ``123.456``; official server libraries refuse anything
that does not match ``^\\d+\\.\\d+$``. The random source is passed in so tests are repeatable.
"""

from __future__ import annotations

import re
from typing import Protocol

from ..serves import serves

__all__ = ["RandomSource", "SocketIdAllocator", "is_socket_id"]

_SOCKET_ID = re.compile(r"[0-9]+\.[0-9]+")

# Same range as hosted ids seen in the wild; large enough that collisions are rare.
_PART_MIN = 1
_PART_MAX = 10**10 - 1


class RandomSource(Protocol):
    """The slice of ``random.Random`` we need; ``random.SystemRandom()`` in production."""

    def randint(self, a: int, b: int, /) -> int: ...


def is_socket_id(value: str) -> bool:
    """Tell whether ``value`` has the ``digits.digits`` shape (ASCII digits only)."""
    return _SOCKET_ID.fullmatch(value) is not None


class SocketIdAllocator:
    """Hands out socket ids that are unique among live connections.

    Args:
        random: where the digits come from.
    """

    def __init__(self, random: RandomSource) -> None:
        self._random = random
        self._live: set[str] = set()

    def allocate(self) -> str:
        """Return a fresh id; retries on the (rare) clash with a live one."""
        while True:
            first = self._random.randint(_PART_MIN, _PART_MAX)
            second = self._random.randint(_PART_MIN, _PART_MAX)
            socket_id = self._compose(first, second)
            if socket_id not in self._live:
                serves("PROTO-CONN-06", "RECON-08")
                self._live.add(socket_id)
                return socket_id

    def _compose(self, first: int, second: int) -> str:
        return f"{first}.{second}"

    def release(self, socket_id: str) -> None:
        """Make an id available again once its connection is gone."""
        self._live.discard(socket_id)

    def __contains__(self, socket_id: object) -> bool:
        return socket_id in self._live
