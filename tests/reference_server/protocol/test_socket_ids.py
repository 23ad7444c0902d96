from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from reference_server.protocol.socket_ids import SocketIdAllocator, is_socket_id


class ScriptedRandom:
    """Returns the given numbers in turn, to force collisions."""

    def __init__(self, *numbers: int) -> None:
        self._numbers = list(numbers)

    def randint(self, a: int, b: int, /) -> int:
        return self._numbers.pop(0)


@given(st.integers(0, 2**32))
def test_ids_have_the_digits_dot_digits_shape(seed: int) -> None:
    socket_id = SocketIdAllocator(random.Random(seed)).allocate()
    assert is_socket_id(socket_id)


def test_ids_are_unique_among_live_connections() -> None:
    allocator = SocketIdAllocator(ScriptedRandom(1, 2, 1, 2, 3, 4))
    assert allocator.allocate() == "1.2"
    assert allocator.allocate() == "3.4"  # 1.2 was drawn again and skipped.
    assert "1.2" in allocator


def test_released_ids_can_be_reused() -> None:
    allocator = SocketIdAllocator(ScriptedRandom(1, 2, 1, 2))
    allocator.allocate()
    allocator.release("1.2")
    assert "1.2" not in allocator
    assert allocator.allocate() == "1.2"


def test_many_ids_are_distinct() -> None:
    allocator = SocketIdAllocator(random.Random(1))
    assert len({allocator.allocate() for _ in range(1000)}) == 1000


def test_is_socket_id() -> None:
    assert is_socket_id("123.456")
    for bad in ("123", "123.", ".456", "1.2.3", "a.1", "\u0661.1", "1.2\n", " 1.2"):
        assert not is_socket_id(bad), bad
