"""The cluster's bus over Redis pub/sub (redis-py's asyncio client): several server
processes given the same ``--redis-url`` serve one app as one server.

Each app has one pub/sub channel, ``pusher-ref:<app id>:bus``; every node publishes its
``ClusterMessage`` values there (JSON, ``protocol/cluster_messages.py``) and applies the others'
through its ``ClusterLink``. Redis delivers one connection's messages in the order they
were published, so one writer task publishes them all, in order, in pipelined batches.

Nothing is stored in Redis: each node holds what it heard, and a node that (re)connects
says ``Hello`` so that every node sends its whole state again. While the connection is
down the node reports "redis not connected" (``not_ready_reasons``), keeps serving its own
clients, drops what it would have sent (its state goes again on reconnect) and retries with
back-off. Its heartbeats stop meanwhile, so the other nodes take it for dead after the node
timeout and remove its members, as they do for a node that was killed.

Imported only when ``--redis-url`` is given, so a single process never loads redis-py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .cluster_link import ClusterLink
from .logs import log, logger
from .peers import Fanout
from .protocol.channels import ChannelRegistry
from .protocol.cluster_messages import ClusterMessage, Sync, decode, encode

__all__ = ["BUS_PREFIX", "RedisCluster"]

#: First part of every Redis channel name the server uses.
BUS_PREFIX = "pusher-ref"
#: Messages waiting to be published; beyond that the oldest are dropped (and counted).
MAX_QUEUED = 100_000
#: Messages per pipelined publish.
BATCH = 500
#: Seconds between reconnection attempts: doubling from the first to the last.
BACKOFF = (0.1, 2.0)
#: Seconds the start waits, after its Hello, for the other nodes' state to arrive.
SETTLE = 0.3
#: Seconds the start waits for Redis at all before listening anyway (not ready).
CONNECT_WAIT = 3.0
#: Seconds ``caught_up`` waits for its marker at most.
SYNC_WAIT = 1.0
#: Seconds the stop waits for queued messages (its Goodbye last) to be published.
STOP_WAIT = 1.0
#: Seconds the stop, or the end of a session, waits for its tasks to end, and then for the
#: Redis connections to close.
END_WAIT = 1.0
#: Seconds between two cancels of a task that has not ended yet.
RECANCEL_EVERY = 0.05


async def end_tasks(tasks: list[asyncio.Task[None]], seconds: float) -> set[asyncio.Task[None]]:
    """Cancel ``tasks`` until they end, for at most ``seconds``; return those still running.

    One ``cancel()`` is not enough: on Python 3.11, ``asyncio.wait_for`` loses a
    cancellation that arrives as the operation it wraps completes, and redis-py wraps every
    command it sends in one (the socket timeout). A writer cancelled in that instant goes on
    publishing, then waits for more, and whoever awaited it waited for ever.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(RECANCEL_EVERY, remaining))
    return pending


class RedisCluster:
    """One node's Redis connection: a subscriber, a writer and a heartbeat."""

    def __init__(
        self,
        url: str,
        node: str,
        app_id: str,
        registry: ChannelRegistry,
        fanout: Fanout,
        *,
        node_timeout: float,
    ) -> None:
        self.url = url
        self.node = node
        self.topic = f"{BUS_PREFIX}:{app_id}:bus"
        self.heartbeat_interval = min(1.0, node_timeout / 4)
        self.link = ClusterLink(
            node,
            registry,
            fanout,
            node_timeout=node_timeout,
            send=self._enqueue,
            clock=self._now,
        )
        #: Whether the subscription is up (the node is then ready as far as Redis goes).
        self.connected = False
        self._outgoing: deque[str] = deque()
        self._pending = asyncio.Event()
        self._idle = asyncio.Event()
        self._synced = asyncio.Event()
        self._dropped = 0
        self._client: aioredis.Redis | None = None
        #: ``caught_up`` markers on their way: token -> its waiter.
        self._syncs: dict[str, asyncio.Future[None]] = {}
        self._sync_tokens = 0
        self._tasks: list[asyncio.Task[None]] = []
        #: Set by ``stop``: every loop of this node's ends at its next turn, cancelled or not.
        self._stopping = False

    # ClusterOutlet: what Fanout calls.

    def flush(self) -> None:
        self.link.flush()

    def terminate_elsewhere(self, user_id: str) -> None:
        self.link.terminate_elsewhere(user_id)

    def not_ready_reasons(self) -> list[str]:
        return [] if self.connected else ["redis not connected"]

    async def caught_up(self) -> None:
        """Return once every message this node has queued, and every message any node had
        published before, has reached every node's Redis connection.

        The node sends a ``Sync`` marker to itself: Redis hands messages to subscribers in
        the order it took them, so when the marker is back, everything before it has been
        handed to every node. A publish answers only then, so that a client told "200"
        can count on subscribers elsewhere getting the event, not on one subscribing
        meanwhile; a query waits for it so that it sees what other nodes did before it.
        Bounded by ``SYNC_WAIT``; without Redis it returns at once.
        """
        if not self.connected:
            return
        self._sync_tokens += 1
        token = str(self._sync_tokens)
        waiter = self._syncs[token] = asyncio.get_running_loop().create_future()
        self._enqueue(Sync(self.node, token))
        try:
            await asyncio.wait_for(waiter, SYNC_WAIT)
        except TimeoutError:
            log(logging.WARNING, "cluster_sync_timeout", node=self.node, seconds=SYNC_WAIT)
        finally:
            self._syncs.pop(token, None)

    # Lifecycle.

    async def start(self) -> None:
        """Connect and hear the other nodes' state before the node starts listening; if
        Redis does not answer within ``CONNECT_WAIT``, listen anyway (not ready) and keep
        trying."""
        # No retries inside redis-py: a lost connection must surface here, so the node
        # knows it missed messages and says Hello again.
        self._client = aioredis.from_url(
            self.url, socket_connect_timeout=2.0, retry=Retry(NoBackoff(), 0)
        )
        self._tasks = [
            asyncio.create_task(self._stay_connected()),
            asyncio.create_task(self._beat()),
        ]
        try:
            await asyncio.wait_for(self._synced.wait(), CONNECT_WAIT + SETTLE)
        except TimeoutError:
            log(logging.WARNING, "redis_unavailable", url=self.url, node=self.node)

    async def stop(self) -> None:
        """Take in our own last messages, say Goodbye (so the others drop this node at
        once), then disconnect."""
        if self.connected:
            # Our last states (the drain's) come back first: their webhooks are ours.
            await self.caught_up()
            self.link.goodbye()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), STOP_WAIT)
        self._stopping = True
        self._pending.set()  # A writer whose cancel was lost must see the flag, not wait.
        left = await end_tasks(self._tasks, END_WAIT)
        if left:
            log(logging.WARNING, "redis_stop_tasks_left", node=self.node, tasks=len(left))
        if self._client is not None:
            closing = asyncio.ensure_future(self._client.aclose())
            done, _ = await asyncio.wait([closing], timeout=END_WAIT)
            if not done:
                log(logging.WARNING, "redis_stop_close_left", node=self.node, seconds=END_WAIT)
            elif not closing.cancelled() and closing.exception() is not None:
                log(logging.DEBUG, "redis_close_failed", error=repr(closing.exception()))
        self.connected = False

    # Sending.

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _enqueue(self, message: ClusterMessage) -> None:
        if not self.connected:
            self._dropped += 1  # Our whole state goes again once reconnected.
            return
        self._outgoing.extend(self._wire_texts(message))
        while len(self._outgoing) > MAX_QUEUED:
            self._outgoing.popleft()
            self._dropped += 1
        self._idle.clear()
        self._pending.set()

    def _wire_texts(self, message: ClusterMessage) -> list[str]:
        """What goes on the bus for one message (a test-only fault may change it)."""
        return [encode(message)]

    async def _write(self) -> None:
        assert self._client is not None
        while not self._stopping:
            await self._pending.wait()
            self._pending.clear()
            while self._outgoing and not self._stopping:
                batch = [self._outgoing.popleft() for _ in range(min(BATCH, len(self._outgoing)))]
                async with self._client.pipeline(transaction=False) as pipe:
                    for text in batch:
                        pipe.publish(self.topic, text)
                    await pipe.execute()
            self._idle.set()

    # Receiving.

    async def _read(self, pubsub: Any) -> None:
        while not self._stopping:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is None or message.get("type") != "message":
                continue
            try:
                decoded = decode(message["data"])
            except ValueError as exc:
                log(logging.WARNING, "cluster_message_refused", error=str(exc))
                continue
            if isinstance(decoded, Sync) and decoded.node == self.node:
                waiter = self._syncs.get(decoded.token)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
                continue
            self.link.receive(decoded)

    # Connection and liveness.

    async def _stay_connected(self) -> None:
        """Connect, and after every loss reconnect with back-off, for as long as the node
        runs (``stop`` cancels it)."""
        delay = BACKOFF[0]
        while not self._stopping:
            try:
                await self._session()
            except (RedisError, OSError) as exc:
                log(
                    logging.WARNING,
                    "redis_disconnected" if self.connected else "redis_connect_failed",
                    node=self.node,
                    error=str(exc) or type(exc).__name__,
                    retry_in=delay,
                )
                if self.connected:
                    delay = BACKOFF[0]
            except Exception:  # A bug of ours: logged, and the node starts afresh.
                logger.exception("cluster_session_failed", extra={"fields": {"node": self.node}})
            self.connected = False
            self._outgoing.clear()
            self._idle.set()
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF[1])

    async def _session(self) -> None:
        """One connection's life: subscribe, say Hello, then read and write until it fails."""
        assert self._client is not None
        pubsub = self._client.pubsub()
        try:
            await pubsub.subscribe(self.topic)
            self.connected = True
            log(logging.INFO, "redis_connected", node=self.node, dropped=self._dropped)
            self._dropped = 0
            self.link.hello()
            asyncio.get_running_loop().call_later(SETTLE, self._synced.set)
            tasks = [asyncio.create_task(self._read(pubsub)), asyncio.create_task(self._write())]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            finally:
                await end_tasks(tasks, END_WAIT)
            for task in done:
                task.result()
        finally:
            # Shielded inside redis-py: bounded here, or a stuck close would hold the stop.
            closing = asyncio.ensure_future(pubsub.aclose())
            await asyncio.wait([closing], timeout=END_WAIT)
            if closing.done() and not closing.cancelled():
                closing.exception()  # Retrieved: a failed close of a finished session is moot.

    async def _beat(self) -> None:
        """Heartbeats out, silent nodes given up on, for as long as the node runs.

        Not while Redis is unreachable: then it is this node that is cut off, and giving
        the others up would send their members' ``member_removed`` webhooks for nothing.
        """
        while not self._stopping:
            await asyncio.sleep(self.heartbeat_interval)
            if self.connected:
                try:
                    self.link.tick()
                except Exception:  # A bug of ours must not stop the heartbeats.
                    logger.exception("cluster_tick_failed", extra={"fields": {"node": self.node}})
