"""The scripted test server: ``protocol`` on real sockets, steered by a scenario.

One server per check, on ephemeral ports of 127.0.0.1: a plain WebSocket listener, a TLS one
(its certificate from a throwaway CA the driver is told to trust) and an HTTP listener for the
app's auth endpoints (``POST /pusher/auth``, ``POST /pusher/user-auth``, form-encoded as
pusher-js sends them). Every handshake, frame, close and HTTP request lands in the check's
``Timeline``.

A scenario steers it in two ways: the ``Script`` knobs, read as each connection opens (the
activity timeout to advertise, pongs to withhold, handshakes to refuse, presence members to
show), and actions on a ``Link``, one accepted connection (send a frame, close with a code, drop
TCP without a close frame, send a WebSocket ping).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response

from .protocol import App, Session, answer_channel_auth, answer_user_auth, connection_established
from .timeline import Timeline

__all__ = ["Link", "Script", "ScriptedServer"]

#: How long a server-initiated close waits for the client's close frame before dropping TCP.
CLOSE_TIMEOUT_S = 1.0


@dataclass
class Script:
    """What the server does with each new connection; a scenario may change it at any time."""

    #: Seconds advertised in connection_established (protocol 7's ``activity_timeout``).
    activity_timeout: int = 120
    #: False: ignore the client's pusher:ping and WebSocket pings (a dead link).
    answer_pings: bool = True
    #: How many of the next handshakes to refuse with HTTP 503.
    refuse_handshakes: int = 0
    #: Seconds to wait before sending connection_established.
    establish_delay: float = 0.0
    #: False: send no connection_established (the scenario sends what it likes instead).
    greet: bool = True
    #: Scripted presence members per channel besides the client (user id -> info).
    others: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: Channels the channel-auth endpoint refuses with 403.
    refuse_channels: frozenset[str] = frozenset()


class _WatchedConnection(ServerConnection):
    """A server connection that reports the client's WebSocket pings and can leave them
    unanswered: websockets answers pings inside its sans-I/O protocol, out of a handler's
    sight, so the one frame kind a dead-link scenario must withhold is intercepted here."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_ping: Callable[[], None] | None = None
        self.answer_pings = True
        answer = self.protocol.recv_frame

        def recv_frame(frame: Frame) -> None:
            if frame.opcode is Opcode.PING:
                if self.on_ping is not None:
                    self.on_ping()
                if not self.answer_pings:
                    return
            answer(frame)

        self.protocol.recv_frame = recv_frame  # type: ignore[method-assign]


class Link:
    """One accepted WebSocket connection, as a scenario sees and steers it."""

    def __init__(
        self, name: str, ws: _WatchedConnection, session: Session, tls: bool, timeline: Timeline
    ) -> None:
        self.name = name
        self.ws = ws
        self.session = session
        self.tls = tls
        self.timeline = timeline
        self.opened_at = timeline.now()
        self.closed = asyncio.Event()

    @property
    def socket_id(self) -> str:
        return self.session.socket_id

    async def send(self, text: str) -> None:
        """Send a text frame (quietly nothing once the connection is gone)."""
        self.timeline.record("send", self.name, text=text)
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(text)

    async def close(self, code: int | None, reason: str = "") -> None:
        """Close with a close frame carrying ``code`` and ``reason``; ``None`` sends a close
        frame without a status, as a WebSocket without close codes does (the client sees
        1005)."""
        self.timeline.record("server_close", self.name, code=code, reason=reason)
        with contextlib.suppress(ConnectionClosed):
            # websockets' sans-I/O layer sends an empty close frame for a code of None.
            await self.ws.close(cast(int, code), reason)

    def drop(self) -> None:
        """End TCP without a close frame: the client sees an abnormal closure (1006)."""
        self.timeline.record("server_drop", self.name)
        transport = self.ws.transport
        if transport is not None:
            transport.abort()

    async def ws_ping(self, timeout: float) -> float | None:
        """Send a WebSocket ping; the seconds until its pong, or None if none came in time."""
        self.timeline.record("send_ws_ping", self.name)
        try:
            waiter = await self.ws.ping()
            latency = await asyncio.wait_for(waiter, timeout)
        except (TimeoutError, ConnectionClosed):
            self.timeline.record("ws_pong_missing", self.name)
            return None
        self.timeline.record("ws_pong", self.name, latency=round(latency, 4))
        return latency


class ScriptedServer:
    """The three listeners of one check and the links they accepted, in order."""

    def __init__(
        self,
        timeline: Timeline,
        *,
        app: App | None = None,
        tls: ssl.SSLContext | None = None,
        script: Script | None = None,
    ) -> None:
        self.timeline = timeline
        self.app = app or App()
        self.script = script or Script()
        self.links: list[Link] = []
        self._tls = tls
        self._servers: list[Server] = []
        self._http: web.AppRunner | None = None
        self.ws_port = self.wss_port = self.http_port = 0
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def channel_auth_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/pusher/auth"

    @property
    def user_auth_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/pusher/user-auth"

    async def start(self) -> None:
        plain = await self._listen(tls=False)
        self.ws_port = _port(plain)
        if self._tls is not None:
            self.wss_port = _port(await self._listen(tls=True))
        app = web.Application()
        app.router.add_post("/pusher/auth", self._channel_auth)
        app.router.add_post("/pusher/user-auth", self._user_auth)
        self._http = web.AppRunner(app, access_log=None)
        await self._http.setup()
        site = web.TCPSite(self._http, "127.0.0.1", 0)
        await site.start()
        self.http_port = int(self._http.addresses[0][1])

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 3)
        if self._http is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._http.cleanup(), 3)

    async def _listen(self, *, tls: bool) -> Server:
        def process_request(connection: ServerConnection, request: Request) -> Response | None:
            url = urlsplit(request.path)
            refused = self.script.refuse_handshakes > 0
            self.timeline.record(
                "handshake",
                tls=tls,
                path=url.path,
                query=dict(parse_qsl(url.query)),
                refused=refused,
            )
            if refused:
                self.script.refuse_handshakes -= 1
                return connection.respond(503, "refused by the scenario\n")
            return None

        async def handler(connection: ServerConnection) -> None:
            assert isinstance(connection, _WatchedConnection)
            await self._serve_link(connection, tls)

        server = await serve(
            handler,
            "127.0.0.1",
            0,
            ssl=self._tls if tls else None,
            process_request=process_request,
            create_connection=_WatchedConnection,
            ping_interval=None,  # the scenario decides every ping the server sends
            close_timeout=CLOSE_TIMEOUT_S,
            max_size=2**20,
        )
        self._servers.append(server)
        return server

    async def _serve_link(self, ws: _WatchedConnection, tls: bool) -> None:
        name = f"c{len(self.links) + 1}"
        socket_id = f"{secrets.randbelow(9000) + 1000}.{secrets.randbelow(9_000_000) + 1_000_000}"
        session = Session(
            self.app, socket_id, others=self.script.others, answer_pings=self.script.answer_pings
        )
        link = Link(name, ws, session, tls, self.timeline)
        ws.answer_pings = self.script.answer_pings

        def on_ping() -> None:
            self.timeline.record("recv_ws_ping", name)

        ws.on_ping = on_ping
        self.timeline.record("open", name, tls=tls, socket_id=socket_id)
        self.links.append(link)
        greeting: asyncio.Task[None] | None = None
        try:
            if self.script.greet and self.script.establish_delay:
                # A delayed greeting goes out while the client's frames are read and recorded
                # as they come: a frame sent before connection_established is seen as such.
                greeting = asyncio.create_task(
                    self._greet(link, self.script.establish_delay, self.script.activity_timeout)
                )
            elif self.script.greet:
                await link.send(connection_established(socket_id, self.script.activity_timeout))
            async for message in ws:
                if isinstance(message, bytes):
                    self.timeline.record("recv_binary", name, size=len(message))
                    continue
                observed = session.receive(message)
                facts = {k: v for k, v in observed.facts.items() if k != "text"}
                self.timeline.record("recv", name, action=observed.kind, text=message, **facts)
                for reply in observed.replies:
                    await link.send(reply)
        except ConnectionClosed:
            pass
        finally:
            if greeting is not None and not greeting.done():
                greeting.cancel()
            received, sent = ws.protocol.close_rcvd, ws.protocol.close_sent
            self.timeline.record(
                "closed",
                name,
                client_code=received.code if received else None,
                client_reason=received.reason if received else None,
                server_code=sent.code if sent else None,
            )
            link.closed.set()

    @staticmethod
    async def _greet(link: Link, delay: float, activity_timeout: int) -> None:
        await asyncio.sleep(delay)
        await link.send(connection_established(link.socket_id, activity_timeout))

    async def _form(self, request: web.Request) -> dict[str, str]:
        """The request's fields: form-encoded as pusher-js sends them, or a JSON object."""
        if request.content_type == "application/json":
            try:
                data = await request.json()
            except ValueError:
                return {}
            return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
        posted = await request.post()
        return {k: v for k, v in posted.items() if isinstance(v, str)}

    async def _channel_auth(self, request: web.Request) -> web.Response:
        form = await self._form(request)
        answer = answer_channel_auth(self.app, form, refuse=self.script.refuse_channels)
        return self._answer(request, "channel_auth", form, answer.status, answer.body)

    async def _user_auth(self, request: web.Request) -> web.Response:
        form = await self._form(request)
        answer = answer_user_auth(self.app, form)
        return self._answer(request, "user_auth", form, answer.status, answer.body)

    def _answer(
        self,
        request: web.Request,
        endpoint: str,
        form: Mapping[str, str],
        status: int,
        body: Mapping[str, Any],
    ) -> web.Response:
        self.timeline.record(
            "http",
            endpoint=endpoint,
            method=request.method,
            content_type=request.content_type,
            form=dict(form),
            status=status,
            answer=dict(body),
        )
        return web.json_response(dict(body), status=status)


def _port(server: Server) -> int:
    for sock in server.sockets:
        return int(sock.getsockname()[1])
    raise RuntimeError("the listener has no socket")
