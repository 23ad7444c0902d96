"""The delivery driver's own bookkeeping, with a stand-in connection: a server that closes the
connection after refusing a subscription ends that session in the model."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from conformance.delivery.driver import DeliveryDriver
from conformance.target import target_from_mapping

TARGET = target_from_mapping(
    {"ws_url": "ws://127.0.0.1:1", "http_url": "http://127.0.0.1:1", "app_id": "42",
     "key": "the-key", "secret": "the-secret"}
)  # fmt: skip


class Socket:
    """Refuses every subscribe, closing the connection when ``closes``."""

    def __init__(self, closes: bool) -> None:
        self.frames: list[Any] = []
        self.closes = closes
        self.closed = False

    async def send_json(self, value: Any) -> None:
        assert value["event"] == "pusher:subscribe"
        self.closed = self.closes

    def has_closed(self) -> bool:
        return self.closed


def _refused(closes: bool) -> DeliveryDriver:
    async def ping_barrier(name: str) -> None:
        return None

    ctx: Any = SimpleNamespace(
        target=TARGET,
        ping_barrier=ping_barrier,
        channel_data_text=lambda data: None,
    )
    driver = DeliveryDriver(ctx, {"c0": "u0"}, ["public0", "private0"])
    session = driver.model.open("c0")
    driver.model.subscribed("c0", "public0")
    driver.sockets[session] = Socket(closes)  # type: ignore[assignment]
    driver.socket_ids[session] = "1.2"
    asyncio.run(driver._subscribe("c0", "private0", valid=False, racing=False))
    return driver


def test_a_refusal_on_a_connection_that_stays_open_keeps_the_session() -> None:
    driver = _refused(closes=False)
    assert driver.model.is_open("c0")
    assert driver.model.subscribers("public0") == {"c0#1"}


def test_a_close_after_refusing_ends_the_session() -> None:
    driver = _refused(closes=True)
    assert not driver.model.is_open("c0")
    assert driver.model.subscribers("public0") == set()
