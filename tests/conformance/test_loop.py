"""The check's event loop keeps running while synchronous code (hypothesis) holds the thread."""

from __future__ import annotations

import asyncio
import time

import pytest

from conformance.loop import LoopThread


def test_background_tasks_run_between_calls() -> None:
    ticks: list[float] = []

    async def start_ticker() -> None:
        async def tick() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        asyncio.get_running_loop().create_task(tick())

    with LoopThread() as loop:
        loop.run(start_ticker())
        before = len(ticks)
        time.sleep(0.2)  # the main thread is busy, as hypothesis is between examples
        assert len(ticks) - before >= 5


def test_results_and_exceptions_come_back() -> None:
    async def answer() -> int:
        return 42

    async def fail() -> None:
        raise ValueError("boom")

    with LoopThread() as loop:
        assert loop.run(answer()) == 42
        with pytest.raises(ValueError, match="boom"):
            loop.run(fail())


def test_close_cancels_leftover_tasks() -> None:
    cancelled = []

    async def start() -> None:
        async def forever() -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.append(True)
                raise

        asyncio.get_running_loop().create_task(forever())

    loop = LoopThread()
    loop.run(start())
    loop.close()
    assert cancelled == [True]
    assert loop.loop.is_closed()
