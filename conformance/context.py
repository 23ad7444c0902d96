"""Everything one check runs with: the target, the run's settings, its connections, its
variables and its transcript. One context per check, thrown away afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
import secrets
import string
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

from . import __version__
from .errors import CheckFailed, PreconditionFailed, UsageError
from .httpclient import ApiClient
from .signing import channel_auth, hmac_sha256_hex
from .spec import Check
from .target import Target
from .transcript import Transcript
from .webhooks import WebhookClient
from .wsclient import Frame, RawConnection

__all__ = ["DEFAULT_QUERY", "CheckContext", "RunSettings", "Runner", "unique_channel"]

T = TypeVar("T")


class Runner(Protocol):
    """What runs a check's coroutines: ``LoopThread`` (or ``asyncio.Runner`` in tests)."""

    def run(self, coro: Coroutine[Any, Any, T]) -> T: ...


#: What pusher-js puts in the connection URL; servers must accept it.
DEFAULT_QUERY = {
    "protocol": "7",
    "client": "pusher-conformance",
    "version": __version__,
    "flash": "false",
}

#: A property's connection that has sent nothing for this long is pinged between examples: far
#: below any activity timeout a server announces (Pusher's is 120 s, the bundled run's 3 s).
KEEPALIVE_AFTER = 1.0
#: Recommended pong timeout of the protocol, used when a target does not declare its own.
DEFAULT_PONG_TIMEOUT = 30.0
DEFAULT_ACTIVITY_TIMEOUT = 120.0

_TEMPLATE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\}")


@dataclass(frozen=True)
class RunSettings:
    profile: str = "ci"
    seed: int = 0
    timeout_multiplier: float = 1.0
    response_timeout: float = 5.0
    report_dir: Path = Path("conformance-report")
    replay_prefix: str = "conformance run"
    #: ``--max-examples``: examples per property check, over the profile's and the spec's.
    max_examples: int | None = None
    #: The webhook receiver's private URL (it runs in the controller), when webhooks are on.
    webhook_control: str | None = None
    #: Where a property saves the counterexample it found as a regression case (None: nowhere).
    regressions_dir: Path | None = None


def unique_channel(prefix: str) -> str:
    """A channel name no other run uses, within the allowed character set."""
    alphabet = string.ascii_lowercase + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(20))


def nonce() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(16))


class CheckContext:
    def __init__(
        self,
        target: Target,
        settings: RunSettings,
        check: Check,
        runner: Runner,
        *,
        models: Mapping[str, Any] | None = None,
    ) -> None:
        self.target = target
        self.settings = settings
        self.check = check
        self.runner = runner
        self.transcript = Transcript(check.full_id)
        self.connections: dict[str, RawConnection] = {}
        self.variables: dict[str, Any] = {
            "target": {
                "key": target.key,
                "app_id": target.app_id,
                "max_event_bytes": target.max_event_bytes,
            }
        }
        self.api = ApiClient(target, self.transcript, self.response_timeout)
        self.advertised_activity_timeout: float | None = None
        #: Counters a check reports in ``results.json`` (e.g. malformed inputs sent).
        self.stats: dict[str, int] = {}
        #: Figures an auditor reads, reported whether the check passes or not (JSON-able):
        #: ``{"title": str, "summary": {name: scalar}, "table": {"columns": [...],
        #: "rows": [[...], ...]}}``, each key optional.
        self.figures: dict[str, Any] = {}
        #: The specs' ``models:`` (name -> configuration); a copy, so a property may not change
        #: what the next check sees.
        self.models: Mapping[str, Any] = copy.deepcopy(dict(models)) if models else {}
        #: Webhooks that arrived since this check began (earlier ones belong to others).
        self._started_wall = time.time()
        self._webhooks: WebhookClient | None = None
        self._keep_alive_task: asyncio.Task[None] | None = None
        self._keep_alive_lock = asyncio.Lock()
        self._keep_alive_paused = True

    # -- running -----------------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on this check's event loop (properties are synchronous)."""
        return self.runner.run(coro)

    async def aclose(self) -> None:
        await self.stop_keep_alive()
        for conn in self.connections.values():
            await conn.close()
        await self.api.aclose()
        if self._webhooks is not None:
            await self._webhooks.aclose()

    def webhooks(self) -> WebhookClient:
        """This check's view of the webhook receiver."""
        if self._webhooks is None:
            if self.settings.webhook_control is None:
                raise PreconditionFailed(
                    "no webhook receiver: the target declares no webhooks capability"
                )
            # One second of slack: the receiver's clock is this machine's, but ``since`` is
            # compared with arrival times taken on another thread or process.
            self._webhooks = WebhookClient(
                self.settings.webhook_control,
                self.transcript,
                self.response_timeout,
                since=self._started_wall - 1.0,
            )
        return self._webhooks

    # -- time --------------------------------------------------------------------------------

    @property
    def response_timeout(self) -> float:
        return self.settings.response_timeout * self.settings.timeout_multiplier

    def timing(self, name: str) -> float:
        activity = (
            self.target.timings.activity_timeout
            or self.advertised_activity_timeout
            or DEFAULT_ACTIVITY_TIMEOUT
        )
        pong = self.target.timings.pong_timeout or DEFAULT_PONG_TIMEOUT
        values = {
            "activity_timeout": activity,
            "pong_timeout": pong,
            "idle_close": activity + pong,
            "response": self.settings.response_timeout,
        }
        if name not in values:
            raise UsageError(f"unknown timing {name!r}")
        return values[name]

    def duration(self, spec: Any) -> float:
        """Seconds to wait for a ``within``/``for`` value, with the multiplier applied."""
        if spec is None:
            return self.response_timeout
        if isinstance(spec, int | float):
            return float(spec) * self.settings.timeout_multiplier
        base = self.timing(spec["timing"]) + float(spec.get("plus", 0))
        return base * self.settings.timeout_multiplier

    # -- variables ---------------------------------------------------------------------------

    def define(self, let: Mapping[str, Any]) -> None:
        for name, generator in let.items():
            self.variables[name] = self._generate(generator)

    def _generate(self, generator: Mapping[str, Any]) -> Any:
        if "channel" in generator:
            prefix = self.render(generator["channel"])
            if "count" in generator:
                return [unique_channel(prefix) for _ in range(int(generator["count"]))]
            return unique_channel(prefix)
        if "nonce" in generator:
            return nonce()
        if "repeat" in generator:
            length = generator["length"]
            if isinstance(length, Mapping):
                base = self.lookup(length["var"])
                if isinstance(base, bool) or not isinstance(base, int):
                    raise UsageError(f"length variable {length['var']!r} is not an integer")
                length = base + int(length.get("plus", 0))
            return str(generator["repeat"]) * (int(length) // len(generator["repeat"]))
        if "value" in generator:
            return self.render(generator["value"])
        if "unix_time" in generator:
            return int(time.time()) + int(generator["unix_time"].get("plus", 0))
        raise UsageError(f"unknown let generator: {dict(generator)!r}")

    def lookup(self, dotted: str) -> Any:
        head, *rest = dotted.split(".")
        if head not in self.variables:
            raise UsageError(f"undefined variable ${{{dotted}}} in {self.check.full_id}")
        value = self.variables[head]
        for part in rest:
            if isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
                continue
            if not isinstance(value, Mapping) or part not in value:
                raise UsageError(f"undefined variable ${{{dotted}}} in {self.check.full_id}")
            value = value[part]
        return value

    def _render_key(self, key: Any) -> Any:
        if not isinstance(key, str):
            return key
        return _TEMPLATE.sub(lambda m: str(self.lookup(m.group(1))), key)

    def render(self, value: Any) -> Any:
        """Substitute ``${...}`` in every string of a (nested) value."""
        if isinstance(value, str):
            whole = _TEMPLATE.fullmatch(value)
            if whole:
                return self.lookup(whole.group(1))
            return _TEMPLATE.sub(lambda m: str(self.lookup(m.group(1))), value)
        if isinstance(value, Mapping):
            # Keys are templated too (a pattern may name a generated channel), always as text.
            return {self._render_key(k): self.render(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.render(v) for v in value]
        return value

    # -- connections -------------------------------------------------------------------------

    def connection(self, name: str) -> RawConnection:
        try:
            return self.connections[name]
        except KeyError:
            raise UsageError(
                f"{self.check.full_id}: connection {name!r} is used before it is opened"
            ) from None

    def ws_url(
        self,
        *,
        key: str | None = None,
        path: str | None = None,
        query: Mapping[str, str] | str | None = None,
    ) -> str:
        path = path if path is not None else f"/app/{key if key is not None else self.target.key}"
        if query is None:
            query = DEFAULT_QUERY
        query_text = query if isinstance(query, str) else urlencode(dict(query))
        return f"{self.target.ws_url}{path}" + (f"?{query_text}" if query_text else "")

    async def connect(
        self,
        name: str,
        *,
        key: str | None = None,
        path: str | None = None,
        query: Mapping[str, str] | str | None = None,
        auto_pong: bool = True,
        local_address: str | None = None,
    ) -> RawConnection:
        if name in self.connections:
            await self.connections[name].close()
        conn = await RawConnection.open(
            name,
            self.ws_url(key=key, path=path, query=query),
            self.transcript,
            auto_pong=auto_pong,
            timeout=self.response_timeout,
            local_address=local_address,
        )
        self.connections[name] = conn
        return conn

    async def open(self, name: str, *, auto_pong: bool = True) -> RawConnection:
        """Connect and wait for ``pusher:connection_established`` (a precondition)."""
        conn = await self.connect(name, auto_pong=auto_pong)
        if conn.closed is not None:
            raise PreconditionFailed(f"could not open {name}: {conn.closed.describe()}")
        frame = await conn.wait_for(
            lambda f: f.event == "pusher:connection_established", self.response_timeout
        )
        if frame is None:
            raise PreconditionFailed(f"{name} received no pusher:connection_established")
        info = frame.data()
        socket_id = info.get("socket_id") if isinstance(info, Mapping) else None
        if not isinstance(socket_id, str):
            raise PreconditionFailed(f"{name}: connection_established carries no socket_id")
        activity = info.get("activity_timeout") if isinstance(info, Mapping) else None
        if isinstance(activity, int | float) and not isinstance(activity, bool) and activity > 0:
            self.advertised_activity_timeout = float(activity)
        self.variables[name] = {"socket_id": socket_id, "activity_timeout": activity}
        return conn

    def channel_data_text(self, channel_data: Any) -> str | None:
        """``channel_data`` as sent: a string as is, an object JSON-encoded compactly."""
        if channel_data is None or isinstance(channel_data, str):
            return channel_data
        return json.dumps(channel_data, ensure_ascii=False, separators=(",", ":"))

    def sign_channel(self, name: str, channel: str, channel_data: Any = None) -> dict[str, str]:
        """A valid channel auth for connection ``name`` (which must be open)."""
        socket_id = self._socket_id(name)
        data_text = self.channel_data_text(channel_data)
        auth = channel_auth(
            self.target.key, self.target.secret, socket_id, channel, data_text or ""
        )
        signed = {"auth": auth}
        if data_text is not None:
            signed["channel_data"] = data_text
        return signed

    def sign_user(self, name: str, user_data: Any) -> dict[str, str]:
        """A valid ``pusher:signin`` payload for connection ``name``."""
        text = self.channel_data_text(user_data) or ""
        signature = hmac_sha256_hex(self.target.secret, f"{self._socket_id(name)}::user::{text}")
        return {"auth": f"{self.target.key}:{signature}", "user_data": text}

    def _socket_id(self, name: str) -> str:
        info = self.variables.get(name)
        if not isinstance(info, Mapping) or not isinstance(info.get("socket_id"), str):
            raise UsageError(f"{self.check.full_id}: {name!r} has no socket id (use open first)")
        socket_id: str = info["socket_id"]
        return socket_id

    async def subscribe(
        self,
        name: str,
        channel: str,
        *,
        auth: str | None = None,
        channel_data: Any = None,
    ) -> None:
        """Subscribe and wait for ``pusher_internal:subscription_succeeded`` (a precondition).

        ``auth="signed"`` asks the suite to sign the subscription itself.
        """
        data: dict[str, str] = {"channel": channel}
        if auth == "signed":
            data.update(self.sign_channel(name, channel, channel_data))
        else:
            if auth is not None:
                data["auth"] = auth
            data_text = self.channel_data_text(channel_data)
            if data_text is not None:
                data["channel_data"] = data_text
        try:
            frame = await self.send_subscribe(name, data)
        except CheckFailed as exc:
            raise PreconditionFailed(str(exc)) from None
        if frame is None:
            raise PreconditionFailed(f"{name} could not subscribe to {channel!r}")

    async def send_subscribe(self, name: str, data: Mapping[str, Any]) -> Frame | None:
        """Send ``pusher:subscribe`` with exactly this ``data`` and wait for the
        ``subscription_succeeded`` of its channel; None if it does not come."""
        conn = self.connection(name)
        await conn.send_json({"event": "pusher:subscribe", "data": dict(data)})
        channel = data.get("channel")
        return await conn.wait_for(
            lambda f: (
                f.event == "pusher_internal:subscription_succeeded"
                and f.parsed.get("channel") == channel
            ),
            self.response_timeout,
        )

    async def signin(self, name: str, user_data: Any) -> None:
        """Sign in and wait for ``pusher:signin_success`` (a precondition)."""
        conn = self.connection(name)
        try:
            await conn.send_json(
                {"event": "pusher:signin", "data": self.sign_user(name, user_data)}
            )
        except CheckFailed as exc:
            raise PreconditionFailed(str(exc)) from None
        frame = await conn.wait_for(
            lambda f: f.event == "pusher:signin_success", self.response_timeout
        )
        if frame is None:
            raise PreconditionFailed(f"{name} could not sign in")

    async def trigger(
        self,
        name: str,
        data: str,
        *,
        channel: str | None = None,
        channels: list[str] | None = None,
        socket_id: str | None = None,
    ) -> None:
        """Publish through the HTTP API (a precondition: it must answer 200)."""
        response = await self.api.trigger(
            name, data, channel=channel, channels=channels, socket_id=socket_id
        )
        if response.status != 200:
            raise PreconditionFailed(
                f"trigger of {name!r} answered HTTP {response.status}: {response.text[:200]}"
            )

    async def barrier(self, name: str, marker_channel: str | None = None) -> None:
        """Make sure the server has processed everything sent before: a marker event through the
        HTTP API (for asynchronous fan-out), then a ping round trip. A connection the server
        has closed needs no barrier: nothing more can reach it."""
        conn = self.connection(name)
        if conn.has_closed():
            return
        if marker_channel is not None:
            token = nonce()
            await self.trigger("conformance-marker", token, channel=marker_channel)
            frame = await conn.wait_for(
                lambda f: (
                    f.event == "conformance-marker"
                    and f.parsed.get("channel") == marker_channel
                    and f.parsed.get("data") == token
                ),
                self.response_timeout,
            )
            if frame is None and not conn.has_closed():
                raise PreconditionFailed(
                    f"barrier: the marker event on {marker_channel!r} never reached {name}"
                )
        await self.ping_barrier(name)

    # -- keeping a property's connections alive between examples -----------------------------
    #
    # A property keeps its connections across examples, and its receivers may say nothing for
    # longer than the server's activity timeout; hypothesis itself may pause for seconds
    # between examples (building a strategy's character tables on a loaded machine, say).
    # Whether the connections then survive would hang on the server's idle pings, which are
    # PROTO-PING's business, not the property's: so, like a live client, they speak up. Only
    # while no example runs, so that a keep-alive pong never meets a check's own wait for one.

    async def resume_keep_alive(self) -> None:
        """Between examples: ping quiet connections from now on (see ``_keep_alive_loop``)."""
        self._keep_alive_paused = False
        if self._keep_alive_task is None or self._keep_alive_task.done():
            self._keep_alive_task = asyncio.ensure_future(self._keep_alive_loop())

    async def pause_keep_alive(self) -> None:
        """An example begins: wait out a round trip in flight, then catch up on any due now."""
        async with self._keep_alive_lock:
            self._keep_alive_paused = True
        await self._keep_alive_quiet()

    async def stop_keep_alive(self) -> None:
        self._keep_alive_paused = True
        task, self._keep_alive_task = self._keep_alive_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _keep_alive_loop(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_AFTER / 4)
            async with self._keep_alive_lock:
                if not self._keep_alive_paused:
                    await self._keep_alive_quiet()

    async def _keep_alive_quiet(self) -> None:
        """Ping each open connection that has sent nothing for ``KEEPALIVE_AFTER``; connections
        opened without ``auto_pong`` (the heartbeat checks' own) are left silent."""
        now = time.monotonic()
        quiet = [
            conn
            for conn in self.connections.values()
            if conn.auto_pong and conn.is_open and now - conn.last_sent > KEEPALIVE_AFTER
        ]
        for conn in quiet:
            if not await conn.keep_alive(self.response_timeout):
                self.transcript.record("keepalive_unanswered", conn.name)

    async def ping_barrier(self, name: str) -> None:
        """A ``pusher:ping`` round trip, or failing that a WebSocket ping round trip: either
        proves the server has read everything sent before it."""
        conn = self.connection(name)
        if conn.has_closed():
            return
        try:
            await conn.send_json({"event": "pusher:ping", "data": {}})
        except CheckFailed as exc:
            if conn.has_closed():
                return
            raise PreconditionFailed(f"barrier: {exc}") from None
        pong_task = asyncio.ensure_future(
            conn.wait_for(lambda f: f.event == "pusher:pong", self.response_timeout)
        )
        ws_task = asyncio.ensure_future(conn.ws_ping(secrets.token_bytes(8), self.response_timeout))
        done, pending = await asyncio.wait(
            {pong_task, ws_task}, return_when=asyncio.FIRST_COMPLETED
        )
        ok = any(t.result() for t in done)
        if not ok and pending:
            await asyncio.wait(pending)
            ok = any(t.result() for t in pending)
        for task in pending:
            task.cancel()
        if not ok and not conn.has_closed():
            raise PreconditionFailed(f"barrier: {name} answered neither pusher:ping nor a WS ping")
