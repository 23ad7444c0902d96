"""aiohttp adapter: WebSocket endpoint, HTTP API and ``/health`` on one port.

It only moves bytes and fires timers. Every protocol decision is made in ``protocol/``:
frames go in through ``Connection.receive_*``, and whatever ``data_to_send()`` returns goes
out, in order, through one writer task per connection. That task is also what fan-out feeds,
so a slow or dead subscriber delays nobody else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import WSMsgType, web

from .config import ServerConfig
from .faults import Fault, FaultSet
from .protocol.channels import ChannelRegistry, Delivery
from .protocol.connection import (
    Close,
    Connection,
    ConnectionSettings,
    Output,
    SendBinary,
    SendPong,
    SendText,
    State,
)
from .protocol.delivery_faults import DeliveryShaper, Step, shaper_for
from .protocol.errors import HttpApiError, PayloadTooLarge
from .protocol.http_api import (
    ApiLimits,
    AppCredentials,
    HttpRequest,
    TriggerEvent,
    batch_reply,
    channel_info,
    channel_users,
    deliveries,
    keep_alive,
    list_channels,
    store_in_cache,
    terminate_targets,
    trigger_reply,
    validate_batch,
    validate_request,
    validate_terminate,
    validate_trigger,
)
from .protocol.socket_ids import RandomSource, SocketIdAllocator
from .webhook_sender import WebhookSender

__all__ = ["ReferenceServer", "RunningServer", "run_server"]

logger = logging.getLogger("reference_server")

#: Seconds to wait for the client's close frame after ours (aiohttp's default is 10).
CLOSE_TIMEOUT = 2.0
#: Seconds graceful shutdown waits for handlers before cancelling them.
SHUTDOWN_TIMEOUT = 3.0
#: Bodies up to this size are read so that the documented check order (auth before size)
#: holds; larger ones are refused with 413 before anything else to bound memory.
MAX_READ_BYTES = 16 * 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")
#: The core's ``validate_*(app_id, request, app, now, limits, faults)`` functions.
BodyValidator = Callable[[str, HttpRequest, AppCredentials, float, ApiLimits, FaultSet], T]


def log(level: int, event: str, **fields: Any) -> None:
    """Emit one structured log record; the CLI renders it as a JSON line."""
    logger.log(level, event, extra={"fields": fields})


async def _read_body(request: web.Request) -> bytes:
    """The raw body; one over what aiohttp will read is a 413 before any other check."""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"Body is over {MAX_READ_BYTES} bytes") from None


def _json_error(status: int, message: str, **kwargs: Any) -> web.Response:
    return web.json_response({"error": message}, status=status, **kwargs)


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown routes (404) and wrong methods (405) answer in JSON like everything else."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return _json_error(exc.status, exc.reason, headers=headers)


class _Peer:
    """One WebSocket's outbound side: a queue drained by a single writer task.

    Queueing never blocks, so fan-out never waits on a subscriber; a write error ends only
    this peer's writer. ``shaper`` is only for the delivery faults (``delivery_faults.py``):
    it decides what each text frame becomes; this class just fires its release timer.
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        connection: Connection,
        shaper: DeliveryShaper | None = None,
    ) -> None:
        self.ws = ws
        self.connection = connection
        self._queue: asyncio.Queue[Output] = asyncio.Queue()
        self._dead = False
        self._closing = False
        #: Set on every client frame; wakes a heartbeat that had no deadline.
        self.activity = asyncio.Event()
        self._writer = asyncio.create_task(self._write())
        self._shaper = shaper
        self._release_timer: asyncio.TimerHandle | None = None

    def send(self, output: Output, fanout: int = 1) -> None:
        """``fanout``: how many connections this frame goes to (only the faults read it)."""
        if self._shaper is not None and isinstance(output, SendText | Close):
            self._send_shaped(self._shaper, output, fanout)
            return
        if self._dead or self._closing:
            return
        if isinstance(output, Close):
            self._closing = True
        self._queue.put_nowait(output)

    def _send_shaped(self, shaper: DeliveryShaper, output: SendText | Close, fanout: int) -> None:
        """Delivery faults: queue what the core makes of the frame; a close drains it first."""
        if isinstance(output, Close):
            self._apply(shaper.drain())
            self._shaper = None
            self.send(output)
        else:
            self._apply(shaper.offer(output.text, asyncio.get_running_loop().time(), fanout))

    def _apply(self, step: Step) -> None:
        for text in step.write:
            if self._dead or self._closing:
                break
            self._queue.put_nowait(SendText(text))
        if self._release_timer is not None:
            self._release_timer.cancel()
            self._release_timer = None
        if step.release_at is not None and not (self._dead or self._closing):
            self._release_timer = asyncio.get_running_loop().call_at(step.release_at, self._release)

    def _release(self) -> None:
        """A held frame's window may have passed (the timer may fire a little early)."""
        self._release_timer = None
        if self._shaper is not None:
            self._apply(self._shaper.tick(asyncio.get_running_loop().time()))

    def flush(self) -> None:
        """Queue everything the protocol core wants written."""
        for output in self.connection.data_to_send():
            self.send(output)

    async def _write(self) -> None:
        while True:
            output = await self._queue.get()
            try:
                match output:
                    case SendText(text):
                        await self.ws.send_str(text)
                    case SendBinary(data):
                        await self.ws.send_bytes(data)
                    case SendPong(payload):
                        await self.ws.pong(payload)
                    case Close(code, reason):
                        await self.ws.close(code=code, message=reason.encode())
                        return
            except (ConnectionError, RuntimeError) as exc:
                # The client went away mid-write; the reader will notice and clean up.
                log(
                    logging.DEBUG,
                    "write_failed",
                    socket_id=self.connection.socket_id,
                    error=repr(exc),
                )
                self._dead = True
                return

    async def finish(self) -> None:
        """Let a requested close complete; drop anything else still queued."""
        if self._release_timer is not None:
            self._release_timer.cancel()
        if self._closing:
            # ``asyncio.wait`` neither raises the writer's errors nor swallows our cancellation.
            await asyncio.wait([self._writer], timeout=CLOSE_TIMEOUT)
        self._writer.cancel()
        await asyncio.wait([self._writer])
        self._dead = True
        if not self.ws.closed:
            with contextlib.suppress(Exception):
                await self.ws.close()


class ReferenceServer:
    """One app's server state plus the aiohttp application that exposes it.

    Args:
        config: the validated configuration.
        random: source of socket ids; ``random.SystemRandom()`` by default.
        wall_clock: Unix time, for ``auth_timestamp``; the heartbeat uses the loop's clock.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        random_source: RandomSource | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.faults = config.faults
        self.registry = ChannelRegistry()
        self.socket_ids = SocketIdAllocator(
            random_source if random_source is not None else random.SystemRandom(),
            with_dot=Fault.SOCKET_ID_WITHOUT_DOT not in config.faults,
        )
        self.settings = ConnectionSettings(
            app_key=config.key,
            activity_timeout=config.activity_timeout,
            pong_timeout=config.pong_timeout,
            faults=config.faults,
            app_secret=config.secret,
            client_events=config.client_events,
        )
        self.credentials = AppCredentials(config.app_id, config.key, config.secret)
        self.limits = ApiLimits(max_event_bytes=config.max_event_bytes)
        self._wall_clock = wall_clock
        #: Established connections by socket id: the fan-out targets.
        self._peers: dict[str, _Peer] = {}
        #: Every open WebSocket, including refused ones, so shutdown can close them all.
        self._all_peers: set[_Peer] = set()
        #: Only for the ``malformed_sender_address_blocked`` fault: client address -> its open
        #: connections that sent malformed input.
        self._offenders: dict[str, set[_Peer]] = {}
        #: Only for the ``wrong_content_type_desync`` fault: HTTP connections whose next JSON
        #: trigger is answered but lost.
        self._desynced: weakref.WeakSet[asyncio.BaseTransport] = weakref.WeakSet()
        #: Webhooks (issue 4): ``None`` unless ``--webhook-url`` is set.
        self.webhooks: WebhookSender | None = None
        if config.webhook_url is not None:
            self.webhooks = WebhookSender(
                config.webhook_url,
                key=config.key,
                secret=config.secret,
                delay=config.webhook_delay,
                retry_for=config.webhook_retry_for,
                queue_size=config.webhook_queue_size,
                faults=config.faults,
                wall_clock=wall_clock,
            )

    def make_app(self) -> web.Application:
        app = web.Application(
            middlewares=[_json_errors, self._keep_alive], client_max_size=MAX_READ_BYTES
        )
        app.router.add_get("/health", self._health)
        app.router.add_get("/app/{key}", self._websocket)
        app.router.add_post("/apps/{app_id}/events", self._trigger)
        app.router.add_post("/apps/{app_id}/batch_events", self._batch)
        app.router.add_get("/apps/{app_id}/channels", self._channels)
        app.router.add_get("/apps/{app_id}/channels/{channel}", self._channel)
        app.router.add_get("/apps/{app_id}/channels/{channel}/users", self._users)
        app.router.add_post("/apps/{app_id}/users/{user_id}/terminate_connections", self._terminate)
        app.on_shutdown.append(self._on_shutdown)
        if self.webhooks is not None:
            sender = self.webhooks
            app.on_startup.append(lambda _app: sender.start())
            app.on_cleanup.append(lambda _app: sender.stop())
        return app

    # HTTP.

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    @staticmethod
    def _http_request(request: web.Request, body: bytes = b"") -> HttpRequest:
        return HttpRequest(
            method=request.method,
            path=request.path,
            query=tuple(request.query.items()),
            body=body,
        )

    def _validate(self, request: web.Request, http_request: HttpRequest) -> None:
        """Steps 1-6 (app id and request signature) for any endpoint.

        Raises:
            HttpApiError: for the first check that fails.
        """
        validate_request(
            request.match_info["app_id"],
            http_request,
            self.credentials,
            self._wall_clock(),
            self.limits,
            self.faults,
        )

    async def _validated_body(self, request: web.Request, validate: BodyValidator[T]) -> T:
        """Read the body and hand the whole request to one of the core's ``validate_*``.

        Raises:
            HttpApiError: for the first check that fails.
        """
        return validate(
            request.match_info["app_id"],
            self._http_request(request, await _read_body(request)),
            self.credentials,
            self._wall_clock(),
            self.limits,
            self.faults,
        )

    async def _channel(self, request: web.Request) -> web.Response:
        http_request = self._http_request(request)
        try:
            self._validate(request, http_request)
            body = channel_info(
                request.match_info["channel"],
                http_request,
                self.registry,
                asyncio.get_running_loop().time(),
                self.faults,
            )
        except HttpApiError as exc:
            return _json_error(exc.status, exc.message)
        return web.json_response(body)

    async def _users(self, request: web.Request) -> web.Response:
        try:
            self._validate(request, self._http_request(request))
            body = channel_users(request.match_info["channel"], self.registry, self.faults)
        except HttpApiError as exc:
            return _json_error(exc.status, exc.message)
        return web.json_response(body)

    async def _terminate(self, request: web.Request) -> web.Response:
        try:
            await self._validated_body(request, validate_terminate)
        except HttpApiError as exc:
            return _json_error(exc.status, exc.message)
        user_id = request.match_info["user_id"]
        targets = terminate_targets(user_id, self.registry, self.faults)
        for socket_id in targets:
            peer = self._peers.get(socket_id)
            if peer is not None:
                peer.connection.terminate()
                self._flush(peer)
        log(logging.DEBUG, "terminate_connections", user_id=user_id, connections=len(targets))
        return web.json_response({})

    async def _trigger(self, request: web.Request) -> web.Response:
        try:
            event = await self._validated_body(request, validate_trigger)
        except HttpApiError as exc:
            log(logging.DEBUG, "trigger_refused", status=exc.status, error=exc.message)
            return _json_error(exc.status, exc.message)
        reply = trigger_reply(event, self.registry, self.faults)
        if not self._lost_to_desync(request):
            self.publish(event)
        return web.json_response(reply)

    def _lost_to_desync(self, request: web.Request) -> bool:
        """``wrong_content_type_desync``: after a trigger with a non-JSON content type, the next
        JSON trigger on the same HTTP connection is answered but not published."""
        transport = request.transport
        if Fault.WRONG_CONTENT_TYPE_DESYNC not in self.faults or transport is None:
            return False
        if request.content_type != "application/json":
            self._desynced.add(transport)
            return False
        if transport in self._desynced:
            self._desynced.discard(transport)
            return True
        return False

    async def _batch(self, request: web.Request) -> web.Response:
        try:
            plan = await self._validated_body(request, validate_batch)
        except HttpApiError as exc:
            return _json_error(exc.status, exc.message)
        reply = batch_reply(plan.events, self.registry, self.faults)
        for event in plan.events:
            self.publish(event)
        if plan.error is not None:
            log(logging.DEBUG, "batch_refused", status=plan.error.status, error=plan.error.message)
            return _json_error(plan.error.status, plan.error.message)
        return web.json_response(reply)

    async def _channels(self, request: web.Request) -> web.Response:
        http_request = self._http_request(request)
        try:
            self._validate(request, http_request)
            body = list_channels(http_request, self.registry, self.faults)
        except HttpApiError as exc:
            return _json_error(exc.status, exc.message)
        return web.json_response(body)

    @web.middleware
    async def _keep_alive(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Keep-alive is the core's decision (``keep_alive``); aiohttp keeps it by default."""
        response = await handler(request)
        if not isinstance(response, web.WebSocketResponse) and not keep_alive(self.faults):
            response.force_close()
        return response

    def publish(self, event: TriggerEvent, now: float | None = None) -> int:
        """Cache and fan an event out; return the number of frames queued.

        ``now`` is the loop's clock (the one connections see), for the cache's lifetime.
        """
        if now is None:
            now = asyncio.get_running_loop().time()
        store_in_cache(event, self.registry, now, self.faults)
        queued = self._route(deliveries(event, self.registry, self.faults))
        log(
            logging.DEBUG,
            "trigger",
            name=event.name,
            channels=list(event.channels),
            socket_id=event.socket_id,
            frames=queued,
        )
        return queued

    def _route(self, outgoing: list[Delivery]) -> int:
        """Queue each frame for its targets; return the number queued.

        Each frame was serialised once and the same ``str`` is queued for every target.
        """
        queued = 0
        for delivery in outgoing:
            output = SendText(delivery.text)
            fanout = len(delivery.socket_ids)
            for socket_id in delivery.socket_ids:
                peer = self._peers.get(socket_id)
                if peer is not None:
                    peer.send(output, fanout)
                    queued += 1
        return queued

    def _flush(self, peer: _Peer) -> None:
        """Queue what the core wants written to this peer, then to the others."""
        peer.flush()
        self._route(peer.connection.deliveries_to_send())
        self._webhook(peer.connection)

    def _webhook(self, connection: Connection) -> None:
        """Hand the webhook events the core produced to the sender (never blocks)."""
        events = connection.webhooks_to_send()
        if self.webhooks is not None:
            self.webhooks.submit(events)

    # WebSocket.

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=False, timeout=CLOSE_TIMEOUT)
        if not ws.can_prepare(request).ok:
            return _json_error(426, "This endpoint expects a WebSocket upgrade")
        if self._offenders.get(request.remote or ""):
            return _json_error(403, "Address blocked after malformed input")
        await ws.prepare(request)
        loop = asyncio.get_running_loop()
        connection = Connection(self.settings, self.registry, self.socket_ids)
        peer = _Peer(ws, connection, shaper_for(self.faults))
        self._all_peers.add(peer)
        connection.open(request.match_info["key"], loop.time())
        socket_id = connection.socket_id
        if socket_id is not None:
            self._peers[socket_id] = peer
            log(logging.DEBUG, "connection_opened", socket_id=socket_id)
        else:
            log(logging.DEBUG, "connection_refused", key=request.match_info["key"])
        self._flush(peer)
        heartbeat = asyncio.create_task(self._heartbeat(peer, loop))
        remote = request.remote or ""
        try:
            await self._read(peer, loop, remote)
        finally:
            self._offenders.get(remote, set()).discard(peer)
            heartbeat.cancel()
            connection.receive_eof()
            if socket_id is not None:
                self._peers.pop(socket_id, None)
            # E.g. member_removed for the presence channels this connection was in.
            self._route(connection.deliveries_to_send())
            self._webhook(connection)
            await peer.finish()
            self._all_peers.discard(peer)
            if socket_id is not None:
                log(
                    logging.DEBUG,
                    "connection_closed",
                    socket_id=socket_id,
                    close_code=connection.close_code or ws.close_code,
                )
        return ws

    async def _read(self, peer: _Peer, loop: asyncio.AbstractEventLoop, remote: str) -> None:
        connection, ws = peer.connection, peer.ws
        while True:
            message = await ws.receive()
            now = loop.time()
            match message.type:
                case WSMsgType.TEXT:
                    connection.receive_text(message.data, now)
                case WSMsgType.BINARY:
                    connection.receive_binary(message.data, now)
                case WSMsgType.PING:
                    connection.receive_ping(message.data, now)
                case WSMsgType.PONG:
                    connection.receive_pong(message.data, now)
                case _:  # CLOSE, CLOSING, CLOSED, ERROR: the connection is over.
                    return
            self._flush(peer)
            peer.activity.set()
            blocking = Fault.MALFORMED_SENDER_ADDRESS_BLOCKED in self.faults
            if blocking and connection.malformed_inputs:
                self._offenders.setdefault(remote, set()).add(peer)

    async def _heartbeat(self, peer: _Peer, loop: asyncio.AbstractEventLoop) -> None:
        """Sleep until the core's next deadline, then let it decide what is due."""
        connection = peer.connection
        while connection.state is not State.CLOSED:
            deadline = connection.next_deadline()
            if deadline is None:
                await peer.activity.wait()
                peer.activity.clear()
                continue
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            connection.tick(loop.time())
            self._flush(peer)

    async def _on_shutdown(self, app: web.Application) -> None:
        for peer in list(self._all_peers):
            peer.connection.shutdown()
            self._flush(peer)


@dataclass(frozen=True)
class RunningServer:
    """Where a started server listens."""

    server: ReferenceServer
    host: str
    port: int

    @property
    def _netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self._netloc}"

    @property
    def http_url(self) -> str:
        return f"http://{self._netloc}"

    def ready_line(self) -> dict[str, Any]:
        """The object printed once on stdout when listening."""
        return {
            "event": "listening",
            "host": self.host,
            "port": self.port,
            "ws_url": self.ws_url,
            "http_url": self.http_url,
        }


def bind(host: str, port: int) -> socket.socket:
    """Bind one listening socket on the first address ``host`` resolves to.

    One socket, so ``--port 0`` yields one port even when ``host`` has several addresses.

    Raises:
        OSError: the host does not resolve or the port cannot be bound.
    """
    family, _, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return socket.create_server(address[:2], family=family)


@contextlib.asynccontextmanager
async def run_server(
    config: ServerConfig,
    *,
    random_source: RandomSource | None = None,
    wall_clock: Callable[[], float] = time.time,
) -> AsyncIterator[RunningServer]:
    """Listen on ``config.host``/``config.port`` for the duration of the block."""
    server = ReferenceServer(config, random_source=random_source, wall_clock=wall_clock)
    sock = bind(config.host, config.port)
    runner = web.AppRunner(
        server.make_app(),
        access_log=None,
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )
    try:
        await runner.setup()
        site = web.SockSite(runner, sock)
        await site.start()
        host, port = sock.getsockname()[:2]
        yield RunningServer(server, host, port)
    finally:
        await runner.cleanup()
        sock.close()
