"""Everything one check runs with: the target, the run's settings, its connections, its
variables and its transcript. One context per check, thrown away afterwards.

``CheckContext`` is the one object a check receives; it answers for the run's clock and the
protocol's chores (signing, subscribing, publishing) itself and hands the rest on: the
``${...}`` variables to ``templates``, the named connections and barriers to ``connections``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from . import templates
from .app_clients import CheckApps
from .connections import DEFAULT_QUERY, Connections
from .errors import CheckFailed, PreconditionFailed, UsageError
from .httpclient import ApiClient, NodeApiClients
from .restart import Restarter
from .signing import channel_auth, hmac_sha256_hex
from .spec import Check
from .target import Target
from .target_apps import OtherApp
from .templates import nonce, unique_channel
from .transcript import Transcript
from .webhooks import WebhookClient
from .wsclient import Frame, RawConnection

if TYPE_CHECKING:
    from .cluster_steps import NodeStopper

# ``DEFAULT_QUERY``, ``nonce`` and ``unique_channel`` live in ``connections`` and ``templates``;
# they stay importable from here for code written before the split.
__all__ = ["DEFAULT_QUERY", "CheckContext", "RunSettings", "Runner", "nonce", "unique_channel"]

T = TypeVar("T")


class Runner(Protocol):
    """What runs a check's coroutines: ``LoopThread`` (or ``asyncio.Runner`` in tests)."""

    def run(self, coro: Coroutine[Any, Any, T]) -> T: ...


#: Recommended pong timeout of the protocol, used when a target does not declare its own.
DEFAULT_PONG_TIMEOUT = 30.0
DEFAULT_ACTIVITY_TIMEOUT = 120.0


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
    #: What the pre-flight probe found: False when the target ignores ``pusher:ping``, so that
    #: checks use a WebSocket ping as the sign of life instead of waiting on a pong each time.
    answers_pusher_ping: bool = True
    #: What restarts the target for the shutdown checks (``restart.py``), when something can.
    restarter: Restarter | None = field(default=None, compare=False, repr=False)
    #: What stops a cluster's last node for the dead-node check (``cluster_steps.py``).
    node_stopper: NodeStopper | None = field(default=None, compare=False, repr=False)


class CheckContext:
    """What a check may touch, and what it must leave alone.

    A check (an exchange step or a named property) may:

    - read ``target``, ``settings``, ``check`` and ``models`` (its own deep copy of the specs'
      ``models:``, so changing it cannot leak into the next check);
    - wait with ``response_timeout``, ``timing(...)`` and ``duration(...)``, never with bare
      seconds, so that ``--timeout-multiplier`` stretches every wait alike;
    - ``define``/``render``/``lookup`` variables, and save values into ``variables`` (an
      ``expect``'s ``save:``);
    - open, look up and close connections through ``connect``/``open``/``connection`` and
      ``connections``, prove the server caught up with ``barrier``/``ping_barrier``, and use
      the protocol helpers (``subscribe``, ``signin``, ``sign_*``, ``trigger``, ``api``,
      ``webhooks()``);
    - record in ``transcript``, count in ``stats`` and report in ``figures`` (both JSON-able:
      they land in ``results.json`` whether the check passes or not);
    - run a coroutine from synchronous code (a property) with ``run``.

    It must not:

    - call ``aclose`` (the plugin closes every context once the check is over, pass or fail);
    - start, pause or stop the connections' keep-alive (``explore`` does that around each
      hypothesis example, and a keep-alive ping during an example would meet the check's own
      wait for a pong);
    - call ``run`` from inside a coroutine, or reach for ``runner`` itself: the loop is
      already running there, and waiting on it from within deadlocks;
    - keep anything (a connection, a variable) for a later check: each check gets a fresh
      context, and the servers are free to forget a closed check's state.
    """

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
        #: The ``${...}`` names this check's steps may use; ``open`` adds each connection's
        #: greeting under the connection's name (``${alice.socket_id}``).
        self.variables: dict[str, Any] = templates.target_variables(target)
        self._apis = NodeApiClients(target, self.transcript, self.response_timeout)
        self.api = self._apis.on(None)
        self.connections = Connections(
            target,
            self.transcript,
            timeout=self.response_timeout,
            owner=check.full_id,
            publish_marker=self._publish_marker,
            answers_pusher_ping=settings.answers_pusher_ping,
        )
        #: Counters a check reports in ``results.json`` (e.g. malformed inputs sent).
        self.stats: dict[str, int] = {}
        #: Figures an auditor reads, reported whether the check passes or not (JSON-able):
        #: ``{"title": str, "summary": {name: scalar}, "table": {"columns": [...],
        #: "rows": [[...], ...]}}``, each key optional.
        self.figures: dict[str, Any] = {}
        #: A restart in progress (``restart_target``), awaited by ``await_target``.
        self.restarting: asyncio.Task[None] | None = None
        #: The specs' ``models:`` (name -> configuration); a copy, so a property may not change
        #: what the next check sees.
        self.models: Mapping[str, Any] = copy.deepcopy(dict(models)) if models else {}
        #: Webhooks that arrived since this check began (earlier ones belong to others).
        self._started_wall = time.time()
        self._webhooks: WebhookClient | None = None
        #: The target's other apps (a step's ``app:``) as this check uses them.
        self.apps = CheckApps(target, self.api, self.transcript)

    # -- running -----------------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on this check's event loop (properties are synchronous)."""
        return self.runner.run(coro)

    async def aclose(self) -> None:
        await self.connections.aclose()
        await self._apis.aclose()
        await self.apps.aclose()
        if self.restarting is not None:
            # A check that ended early still leaves the target restarted for the next one.
            with contextlib.suppress(Exception):
                await self.restarting
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

    # -- the target's apps (see ``app_clients``) ---------------------------------------------

    def other_app(self, app: str) -> OtherApp:
        return self.apps.other(app)

    def api_for(self, app: str | None) -> ApiClient:
        """The HTTP API client signing as ``app`` (``None``: the main app, ``api``)."""
        return self.apps.api(app, self.response_timeout)

    # -- time --------------------------------------------------------------------------------

    @property
    def response_timeout(self) -> float:
        return self.settings.response_timeout * self.settings.timeout_multiplier

    def timing(self, name: str) -> float:
        activity = (
            self.target.timings.activity_timeout
            or self.connections.advertised_activity_timeout
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

    # -- variables (see ``templates``) ------------------------------------------------------

    def define(self, let: Mapping[str, Any]) -> None:
        templates.define(self.variables, let, where=self.check.full_id)

    def lookup(self, dotted: str) -> Any:
        return templates.lookup(self.variables, dotted, where=self.check.full_id)

    def render(self, value: Any) -> Any:
        """Substitute ``${...}`` in every string of a (nested) value."""
        return templates.render(value, self.variables, where=self.check.full_id)

    # -- connections (see ``connections``) ---------------------------------------------------

    def connection(self, name: str) -> RawConnection:
        return self.connections.named(name)

    def ws_url(
        self,
        *,
        key: str | None = None,
        path: str | None = None,
        query: Mapping[str, str] | str | None = None,
    ) -> str:
        return self.connections.ws_url(key=key, path=path, query=query)

    async def connect(
        self,
        name: str,
        *,
        key: str | None = None,
        path: str | None = None,
        query: Mapping[str, str] | str | None = None,
        auto_pong: bool = True,
        local_address: str | None = None,
        via_proxy: bool = False,
        app: str | None = None,
        node: int | None = None,
    ) -> RawConnection:
        """``app``: connect to that app of the target (its key, unless ``key`` is given)."""
        app_key = self.apps.opened(name, app)
        key = key if key is not None else app_key
        return await self.connections.connect(
            name,
            key=key,
            path=path,
            query=query,
            auto_pong=auto_pong,
            local_address=local_address,
            via_proxy=via_proxy,
            node_url=self._node_ws_url(node),
        )

    async def open(
        self,
        name: str,
        *,
        auto_pong: bool = True,
        via_proxy: bool = False,
        local_address: str | None = None,
        app: str | None = None,
        node: int | None = None,
    ) -> RawConnection:
        """Connect (to ``app``, default the main one) and wait for
        ``pusher:connection_established`` (a precondition); its ``socket_id`` and
        ``activity_timeout`` become ``${name.…}``."""
        key = self.apps.opened(name, app)
        conn, greeting = await self.connections.open(
            name,
            auto_pong=auto_pong,
            via_proxy=via_proxy,
            local_address=local_address,
            key=key,
            node_url=self._node_ws_url(node),
        )
        self.variables[name] = greeting
        return conn

    async def barrier(
        self, name: str, marker_channel: str | None = None, *, node: int | None = None
    ) -> None:
        """``node``: publish the marker through that cluster node (see ``api_on``)."""

        async def publish(token: str, channel: str) -> None:
            await self.trigger("conformance-marker", token, channel=channel, node=node)

        await self.connections.barrier(
            name, marker_channel, publish=publish if node is not None else None
        )

    # -- cluster nodes (see ``nodes``) -------------------------------------------------------

    def _node_ws_url(self, node: int | None) -> str | None:
        return None if node is None else self.target.on_node(node).ws_url

    def api_on(self, node: int | None) -> ApiClient:
        """The HTTP API client of cluster node ``node``; ``None``: ``api``, the target's own."""
        return self._apis.on(node)

    def api_via(self, app: str | None, node: int | None) -> ApiClient:
        """The API client a step's ``app:`` or ``node:`` names (the main one: neither).

        Raises:
            UsageError: a step names both: the other apps are only declared for one address.
        """
        if app is not None and node is not None:
            raise UsageError(f"a step names both app {app!r} and node {node}: name one")
        return self.api_for(app) if app is not None else self.api_on(node)

    async def ping_barrier(self, name: str) -> None:
        await self.connections.ping_barrier(name)

    async def _publish_marker(self, token: str, channel: str) -> None:
        await self.trigger("conformance-marker", token, channel=channel)

    # -- the protocol's chores ---------------------------------------------------------------

    def channel_data_text(self, channel_data: Any) -> str | None:
        """``channel_data`` as sent: a string as is, an object JSON-encoded compactly."""
        if channel_data is None or isinstance(channel_data, str):
            return channel_data
        return json.dumps(channel_data, ensure_ascii=False, separators=(",", ":"))

    def sign_channel(self, name: str, channel: str, channel_data: Any = None) -> dict[str, str]:
        """A valid channel auth for connection ``name`` (which must be open)."""
        socket_id = self._socket_id(name)
        data_text = self.channel_data_text(channel_data)
        app = self.apps.of_connection(name)
        auth = channel_auth(app.key, app.secret, socket_id, channel, data_text or "")
        signed = {"auth": auth}
        if data_text is not None:
            signed["channel_data"] = data_text
        return signed

    def sign_user(self, name: str, user_data: Any) -> dict[str, str]:
        """A valid ``pusher:signin`` payload for connection ``name``."""
        text = self.channel_data_text(user_data) or ""
        app = self.apps.of_connection(name)
        signature = hmac_sha256_hex(app.secret, f"{self._socket_id(name)}::user::{text}")
        return {"auth": f"{app.key}:{signature}", "user_data": text}

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
        app: str | None = None,
        node: int | None = None,
    ) -> None:
        """Publish through the HTTP API (a precondition: it must answer 200), signed as
        ``app`` (default the main one) or through cluster node ``node``."""
        response = await self.api_via(app, node).trigger(
            name, data, channel=channel, channels=channels, socket_id=socket_id
        )
        if response.status != 200:
            raise PreconditionFailed(
                f"trigger of {name!r} answered HTTP {response.status}: {response.text[:200]}"
            )
