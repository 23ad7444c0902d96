"""The app's backend in a simulation: publishes the scenario's alerts through the HTTP API at
a steady rate, one at a time, recording when each was sent and when the server accepted it.

One at a time is what makes order checkable: an event is sent only after the previous one was
accepted, so a server that keeps each channel's order delivers them in sequence order.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence

import aiohttp

from ..signing import api_auth_params, sign_api_request
from ..target import Target
from .ledger import Publication

__all__ = ["Publisher"]

#: Seconds one publish may take before it counts as failed.
PUBLISH_TIMEOUT = 5.0


class Publisher:
    def __init__(
        self,
        target: Target,
        channels: Mapping[str, str],
        alerts: Sequence[tuple[str, str]],
        per_second: float,
        *,
        via: Sequence[str] = (),
    ) -> None:
        self.target = target
        #: The HTTP API URLs to post through, in turn (a cluster's live nodes,
        #: ``cluster.publish_nodes``); default the target's own.
        self.via = tuple(via) or (target.http_url,)
        self.channels = channels
        self.alerts = alerts
        self.per_second = per_second
        self.publications: list[Publication] = []
        self.failures: dict[str, int] = {}

    async def run(self, start: float, end: float) -> None:
        """Publish from wall time ``start`` until ``end``; a late publish does not make the
        next one early (no bursts to catch up)."""
        path = f"/apps/{self.target.app_id}/events"
        timeout = aiohttp.ClientTimeout(total=PUBLISH_TIMEOUT)
        context = self.target.client_tls()
        connector = aiohttp.TCPConnector(ssl=context) if context is not None else None
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            seq = 0
            next_at = start
            while next_at < end:
                delay = next_at - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                event, slot = self.alerts[seq % len(self.alerts)]
                base = self.via[seq % len(self.via)]
                seq += 1
                await self._publish(session, base, path, seq, event, slot)
                next_at = max(next_at + 1 / self.per_second, time.time())

    async def _publish(
        self,
        session: aiohttp.ClientSession,
        base: str,
        path: str,
        seq: int,
        event: str,
        slot: str,
    ) -> None:
        sent = time.time()
        data = json.dumps({"seq": seq, "t": round(sent * 1000, 3)})
        body = json.dumps({"name": event, "channels": [self.channels[slot]], "data": data})
        raw = body.encode()
        params = api_auth_params(self.target.key, raw, int(sent))
        params["auth_signature"] = sign_api_request(self.target.secret, "POST", path, params)
        acked: float | None = None
        try:
            async with session.post(
                base.rstrip("/") + path,
                params=params,
                data=raw,
                headers={"Content-Type": "application/json"},
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    acked = time.time()
                else:
                    self._failed(f"HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._failed(type(exc).__name__)
        self.publications.append(Publication(seq, slot, sent, acked))

    def _failed(self, why: str) -> None:
        self.failures[why] = self.failures.get(why, 0) + 1
