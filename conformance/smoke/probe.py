"""Doing the smoke steps against a live deployment, each within its share of one deadline.

A smoke run goes to production minutes after a deploy, so it must be quick, bounded and
harmless: every step has a cap and never outlives what is left of the overall deadline (a
little is kept back to close what was opened); channel names carry a random suffix, so nothing
a real user reads is touched; every connection is closed before the run returns, and nothing
is configured on the server. The suite signs channel auth itself with the app secret, as
``conformance run`` does, so the smoke run needs no auth endpoint of the app's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp

from ..errors import ConformanceError, TargetError
from ..httpclient import ApiClient
from ..signing import channel_auth
from ..target import Target
from ..templates import nonce
from ..transcript import Transcript
from ..wsclient import Frame, RawConnection
from .plain import classify, plain_url_for, probe_plain
from .result import STEP_NAMES, SmokeResult, Status, StepResult, not_run
from .steps import (
    UNAUTHORISED,
    Failed,
    PresenceRoster,
    channel_reply,
    check_roster,
    names_for,
    refusal_text,
    unauthorised_subscribe,
)

__all__ = ["SmokeSettings", "run_smoke"]

#: Seconds any one step may take, at most.
STEP_CAP = 3.0
#: Seconds of the deadline kept back for closing the connections and the HTTP session.
CLEANUP_RESERVE = 0.5
#: The backstop cuts the steps off a little after their own budgets end, so that a step that
#: keeps to its budget always gets to report.
BACKSTOP_RESERVE = 0.25

_Body = Callable[[float], Awaitable["str | StepResult"]]


@dataclass(frozen=True)
class SmokeSettings:
    target: Target
    #: Seconds the whole run may take, cleanup included.
    deadline: float = 10.0
    health_url: str | None = None
    #: Where to try plain ws:// (default: ``plain.plain_url_for`` the target's wss:// URL).
    plain_url: str | None = None
    #: A plain ws:// target is reported as skipped rather than failed (a local server).
    allow_plain: bool = False


class _Run:
    def __init__(self, settings: SmokeSettings, started: float) -> None:
        self.settings = settings
        self.target = settings.target
        self.ends = started + settings.deadline
        self.transcript = Transcript("smoke")
        self.api = ApiClient(self.target, self.transcript, STEP_CAP)
        self.ssl: ssl.SSLContext | None = self.target.client_tls()
        self.names = names_for(nonce()[:10])
        self.conns: list[RawConnection] = []
        self.users: dict[str, tuple[RawConnection, str]] = {}
        self.results: list[StepResult] = []

    # -- the frame of every step: its budget, its clock, its failure ----------------------------

    async def step(self, name: str, body: _Body, *, cap: float = STEP_CAP) -> StepResult:
        budget = min(cap, self.ends - CLEANUP_RESERVE - time.monotonic())
        if budget <= 0.05:
            result = StepResult(name, Status.FAILED, reason="not run: the deadline was spent")
            self.results.append(result)
            return result
        began = time.monotonic()
        try:
            outcome = await asyncio.wait_for(body(budget), budget)
        except TimeoutError:
            outcome = StepResult(name, Status.FAILED, reason=f"no answer within {budget:.1f} s")
        except (Failed, ConformanceError) as exc:
            outcome = StepResult(name, Status.FAILED, reason=str(exc))
        if isinstance(outcome, str):
            outcome = StepResult(name, Status.PASSED, figure=outcome)
        result = replace(outcome, name=name, ms=(time.monotonic() - began) * 1000)
        self.results.append(result)
        return result

    def skip(self, name: str, why: str) -> None:
        self.results.append(not_run(name, why))

    # -- connections ------------------------------------------------------------------------------

    def app_url(self) -> str:
        query = urlencode({"protocol": "7", "client": "pusher-conformance-smoke"})
        return f"{self.target.ws_url}/app/{self.target.key}?{query}"

    async def open(self, name: str, budget: float) -> tuple[RawConnection, str, float]:
        """A connection greeted by the server: it, its socket_id, the ms the greeting took."""
        began = time.monotonic()
        try:
            conn = await RawConnection.open(
                name,
                self.app_url(),
                self.transcript,
                auto_pong=True,
                timeout=budget,
                ssl_context=self.ssl,
            )
        except TargetError as exc:
            raise Failed(f"user {name}: {self._why_not_connected(exc)}") from None
        self.conns.append(conn)
        if conn.closed is not None:
            raise Failed(f"user {name}: {conn.closed.describe()}")
        frame = await conn.wait_for(
            lambda f: f.event in ("pusher:connection_established", "pusher:error"), budget
        )
        if frame is None or frame.event != "pusher:connection_established":
            if frame is not None:
                said = frame.describe()
            else:
                said = conn.closed.describe() if conn.closed else f"nothing within {budget:.1f} s"
            raise Failed(f"user {name}: no pusher:connection_established ({said})")
        socket_id = frame.data_field("socket_id")
        if not isinstance(socket_id, str):
            raise Failed(f"user {name}: connection_established without a socket_id")
        return conn, socket_id, (time.monotonic() - began) * 1000

    def _why_not_connected(self, error: TargetError) -> str:
        cause = error.__context__
        if isinstance(cause, ssl.SSLCertVerificationError):
            hint = "" if self.target.ca_file else "; a private CA? give --ca-file (or --insecure)"
            return f"TLS certificate not trusted: {cause.verify_message.rstrip('.')}{hint}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS handshake failed: {cause.reason or cause}"
        if isinstance(cause, TimeoutError):
            return "no WebSocket handshake in time"
        if isinstance(cause, OSError):
            return cause.strerror or str(cause)
        return str(error)

    async def subscribe(self, conn: RawConnection, budget: float, data: dict[str, Any]) -> Frame:
        channel = data["channel"]
        await conn.send_json({"event": "pusher:subscribe", "data": data})
        frame = await conn.wait_for(lambda f: channel_reply(f, channel), budget)
        if frame is None:
            state = conn.closed.describe() if conn.closed else f"nothing within {budget:.1f} s"
            raise Failed(f"user {conn.name}: no answer to the subscribe ({state})")
        return frame

    def signed(self, user: str, channel: str, channel_data: str = "") -> dict[str, Any]:
        _, socket_id = self.users[user]
        auth = channel_auth(self.target.key, self.target.secret, socket_id, channel, channel_data)
        return {"channel": channel, "auth": auth} | (
            {"channel_data": channel_data} if channel_data else {}
        )

    async def close_all(self, timeout: float) -> int:
        opened = [conn for conn in self.conns if conn.is_open]
        closing = [conn.close() for conn in self.conns]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*closing, self.api.aclose()), timeout)
        return len(opened)

    # -- the steps --------------------------------------------------------------------------------

    async def wss_only(self, budget: float) -> str | StepResult:
        ws, http = (urlsplit(u).scheme for u in (self.target.ws_url, self.target.http_url))
        plain = [
            name
            for name, scheme in (("ws_url", ws), ("http_url", http))
            if scheme in ("ws", "http")
        ]
        if plain:
            if self.settings.allow_plain:
                return StepResult("", Status.SKIPPED, figure="a plain target (--allow-plain)")
            urls = ", ".join(f"{name} {getattr(self.target, name)}" for name in plain)
            raise Failed(f"the target is not TLS-only: {urls} (frames and API calls go in clear)")
        url = self.settings.plain_url or plain_url_for(self.target.ws_url)
        path = urlsplit(url).path.rstrip("/") + f"/app/{self.target.key}?protocol=7"
        # A little under the budget: a port that never answers is an answer here (silent).
        verdict = classify(await probe_plain(url, path, budget * 0.9), url)
        if not verdict.ok:
            raise Failed(verdict.text)
        return verdict.text

    async def connect(self, budget: float) -> str:
        opened = await asyncio.gather(self.open("a", budget), self.open("b", budget))
        for name, (conn, socket_id, _) in zip("ab", opened, strict=True):
            self.users[name] = (conn, socket_id)
        return f"{opened[0][2]:.0f} ms (second user {opened[1][2]:.0f} ms)"

    async def public(self, budget: float) -> str:
        frames = await asyncio.gather(
            *(
                self.subscribe(conn, budget, {"channel": self.names.public})
                for conn, _ in self.users.values()
            )
        )
        for frame in frames:
            if frame.event != "pusher_internal:subscription_succeeded":
                raise Failed(f"refused: {refusal_text(frame)}")
        return "2 users subscribed"

    async def private(self, budget: float) -> str:
        conn, _ = self.users["a"]
        frame = await self.subscribe(conn, budget, self.signed("a", self.names.private))
        if frame.event != "pusher_internal:subscription_succeeded":
            raise Failed(f"auth signed with the app secret refused: {refusal_text(frame)}")
        return "signed auth accepted"

    async def private_refused(self, budget: float) -> str:
        """Every subscribe in ``UNAUTHORISED`` refused. Each goes on a connection of its own,
        all at once: a refusal by ``pusher:error`` names no channel, so on a shared connection
        one attempt's refusal could be taken for another's answer."""
        _, other_socket_id = self.users["a"]

        async def attempt(kind: str, label: str) -> tuple[str, Frame]:
            conn, socket_id, _ = await self.open(kind, budget)
            data = unauthorised_subscribe(
                kind,
                key=self.target.key,
                secret=self.target.secret,
                channel=self.names.private,
                socket_id=socket_id,
                other_socket_id=other_socket_id,
            )
            return label, await self.subscribe(conn, budget, data)

        answers = await asyncio.gather(*(attempt(kind, label) for kind, label in UNAUTHORISED))
        accepted = [
            label
            for label, frame in answers
            if frame.event == "pusher_internal:subscription_succeeded"
        ]
        if accepted:
            raise Failed(f"a private subscribe was accepted with {', '.join(accepted)}")
        return "refused: " + ", ".join(label for label, _ in answers)

    async def presence(self, budget: float) -> str:
        rosters: list[PresenceRoster] = []
        for user, user_id in (("a", self.names.user_a), ("b", self.names.user_b)):
            conn, _ = self.users[user]
            data = json.dumps({"user_id": user_id, "user_info": {"name": "smoke"}})
            frame = await self.subscribe(conn, budget, self.signed(user, self.names.presence, data))
            rosters.append(PresenceRoster.of(user_id, frame))
        return check_roster(rosters)

    async def trigger(self, budget: float) -> str:
        event, data = "smoke-event", json.dumps({"smoke": self.names.suffix})
        began = time.monotonic()
        response = await self.api.trigger(event, data, channel=self.names.public)
        if response.status != 200:
            raise Failed(f"POST events answered HTTP {response.status}: {response.text[:120]}")

        async def received(user: str) -> float:
            conn, _ = self.users[user]
            frame = await conn.wait_for(
                lambda f: f.event == event and f.parsed.get("channel") == self.names.public,
                max(0.05, budget - (time.monotonic() - began)),
            )
            if frame is None:
                raise Failed(f"user {user} got nothing within {budget:.1f} s")
            if frame.parsed.get("data") != data:
                raise Failed(f"user {user} got data {frame.parsed.get('data')!r}, sent {data!r}")
            return (frame.at - began) * 1000

        late = max(await asyncio.gather(received("a"), received("b")))
        return f"2 of 2 users got it in {late:.0f} ms"

    async def channel_info(self, budget: float) -> str:
        path = f"/apps/{self.target.app_id}/channels/{self.names.presence}"
        response = await self.api.request("GET", path, query={"info": "user_count"})
        body = response.json if isinstance(response.json, dict) else {}
        if response.status != 200:
            raise Failed(f"GET {path} answered HTTP {response.status}: {response.text[:120]}")
        if body.get("occupied") is not True or body.get("user_count") != 2:
            raise Failed(f"expected occupied with user_count 2, got {response.text[:120]}")
        return "occupied, user_count 2"

    async def health(self, budget: float) -> str:
        url = self.settings.health_url
        assert url is not None
        connector = aiohttp.TCPConnector(ssl=self.ssl) if self.ssl is not None else None
        timeout = aiohttp.ClientTimeout(total=budget)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout, connector=connector) as session,
                session.get(url, allow_redirects=False) as response,
            ):
                status = response.status
        except (aiohttp.ClientError, OSError) as exc:
            raise Failed(f"GET {url} failed: {exc}") from None
        if not 200 <= status < 300:
            raise Failed(f"GET {url} answered HTTP {status}")
        return f"HTTP {status}"

    async def all_steps(self) -> None:
        await self.step("wss only", self.wss_only, cap=2.0)
        connected = await self.step("connect", self.connect, cap=4.0)
        if connected.status is not Status.PASSED:
            for name in STEP_NAMES[2:-1]:  # all but wss only, connect and health
                self.skip(name, "needs connect")
        else:
            public = await self.step("public subscribe", self.public)
            await self.step("private subscribe", self.private)
            await self.step("private auth enforced", self.private_refused)
            presence = await self.step("presence subscribe", self.presence)
            if public.status is Status.PASSED:
                await self.step("trigger to two users", self.trigger)
            else:
                self.skip("trigger to two users", "needs public subscribe")
            if presence.status is Status.PASSED:
                await self.step("channel info", self.channel_info)
            else:
                self.skip("channel info", "needs presence subscribe")
        if self.settings.health_url:
            await self.step("health", self.health)
        else:
            self.results.append(StepResult("health", Status.SKIPPED, figure="no --health-url"))


async def run_smoke(settings: SmokeSettings) -> SmokeResult:
    """Every step, in order, within ``settings.deadline``; connections closed before return."""
    started = time.monotonic()
    run = _Run(settings, started)
    try:
        # Each step keeps to its own budget; this is the backstop should one not.
        await asyncio.wait_for(run.all_steps(), max(0.1, run.ends - BACKSTOP_RESERVE - started))
    except TimeoutError:
        done = {step.name for step in run.results}
        run.results.extend(
            StepResult(name, Status.FAILED, reason="cut off: the deadline was spent")
            for name in STEP_NAMES
            if name not in done
        )
    finally:
        closed = await run.close_all(max(0.1, run.ends - time.monotonic()))
    target = settings.target
    return SmokeResult(
        target=target.name,
        ws_url=target.ws_url,
        http_url=target.http_url,
        deadline_s=settings.deadline,
        elapsed_s=time.monotonic() - started,
        steps=tuple(run.results),
        connections_closed=closed,
        channels=(run.names.public, run.names.private, run.names.presence),
    )
