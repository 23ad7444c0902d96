"""A webhook receiver on 127.0.0.1 port 0, for the tests of webhook delivery and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TIMEOUT = 5.0


@dataclass
class Receiver:
    """Records POSTs; answers ``statuses`` in turn (then 200), optionally slowly."""

    statuses: list[int] = field(default_factory=list)
    stall: float = 0.0
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    #: Requests whose stall is over; lets tests order their own work against a stall.
    answered: int = 0
    url: str = ""
    #: When each request arrived (the loop's clock).
    arrival_times: list[float] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((dict(request.headers), body))
        self.arrival_times.append(asyncio.get_running_loop().time())
        self.arrived.set()
        if self.stall:
            await asyncio.sleep(self.stall)
        self.answered += 1
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status)

    async def next(self, count: int) -> None:
        async def enough() -> None:
            while len(self.requests) < count:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(enough(), TIMEOUT)

    def events(self) -> list[dict[str, Any]]:
        """Every event received so far, in order."""
        return [event for _, body in self.requests for event in json.loads(body)["events"]]


@contextlib.asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[Receiver]:
    app = web.Application()
    app.router.add_post("/hooks", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    receiver.url = f"http://127.0.0.1:{port}/hooks"
    try:
        yield receiver
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def black_hole() -> AsyncIterator[str]:
    """A webhook URL whose server takes each request and never answers it; a connection ends
    when the sender gives up on it."""

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.read()
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hooks"
    finally:
        server.close()
