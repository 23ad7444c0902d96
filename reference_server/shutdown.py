"""Graceful shutdown within a bound: what a stop signal sets off in every app of the process.

From the signal on, and for at most ``timeout`` seconds in all:

1. nothing is held back any more: a webhook sender sends the ``channel_vacated`` and
   ``member_removed`` it was holding at once, and so the ones the drain causes;
2. each app drains (``ReferenceServer.drain``): handshakes and ``GET /ready`` get 503, every
   WebSocket is closed with 4200, close handshakes are awaited up to ``drain_timeout``; in a
   cluster, the drain's own states come back over the bus, and with them their webhooks;
3. the webhooks still waiting are sent; a failed one is retried only if its next attempt
   falls within the bound;
4. whatever is unsent when that is over, or when the bound is reached, is dropped, one
   ``webhook_dropped`` line each.

The last ``exit_reserve(timeout)`` seconds are left for closing the listener and the HTTP
connections, which takes milliseconds; the caller stops waiting on that too at the bound
(``cli.serve``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from .app import ReferenceServer
from .logs import log
from .webhook_sender import WebhookSender

__all__ = ["exit_reserve", "shut_down"]


def exit_reserve(timeout: float) -> float:
    """Seconds of the bound kept for closing the listener after the drain and the webhooks."""
    return min(0.5, timeout / 4)


async def shut_down(
    servers: Sequence[ReferenceServer], *, timeout: float, spread: float, drain_timeout: float
) -> None:
    """Drain ``servers`` side by side and send their webhooks, within ``timeout`` seconds
    less ``exit_reserve``; then stop their webhook senders."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + timeout - exit_reserve(timeout)
    senders = [server.webhooks for server in servers if server.webhooks is not None]
    delivered = sum(sender.delivered for sender in senders)
    for sender in senders:
        sender.shut_down(deadline)
    phase = "drain"
    try:
        async with asyncio.timeout_at(deadline):
            await asyncio.gather(
                *(server.drain(spread=spread, timeout=drain_timeout) for server in servers)
            )
            # The connections a drain gave up on report their leaves as their handlers end.
            await asyncio.gather(*(server.fanout.wait_closed(timeout) for server in servers))
            # A node's occupancy and membership webhooks are decided in the bus's order.
            await asyncio.gather(
                *(server.cluster.caught_up() for server in servers if server.cluster is not None)
            )
            phase = "webhooks"
            await asyncio.gather(*(sender.wait_sent() for sender in senders))
    except TimeoutError:
        log(
            logging.WARNING,
            "shutdown_timeout",
            timeout=timeout,
            phase=phase,
            connections_open=sum(len(server.fanout.open) for server in servers),
            webhooks_waiting=_waiting(senders),
        )
    if senders:
        left = _waiting(senders)
        for sender in senders:
            await sender.stop()
        log(
            logging.INFO,
            "webhooks_flushed",
            sent=sum(sender.delivered for sender in senders) - delivered,
            dropped=left,
            seconds=round(loop.time() - started, 3),
        )


def _waiting(senders: list[WebhookSender]) -> int:
    return sum(sum(sender.waiting().values()) for sender in senders)
