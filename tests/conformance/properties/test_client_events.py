"""The pacer keeps a sender under the rate it is given."""

from __future__ import annotations

import asyncio
import time

from conformance.properties.client_events import Pacer


def test_pacer_never_exceeds_its_rate_in_a_rolling_second() -> None:
    async def go() -> list[float]:
        pacer = Pacer(5)
        stamps = []
        for _ in range(12):
            await pacer.wait()
            stamps.append(time.monotonic())
        return stamps

    stamps = asyncio.run(go())
    for i in range(len(stamps) - 5):
        assert stamps[i + 5] - stamps[i] >= 1.0
