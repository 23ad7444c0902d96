"""The one harness of the real-client tests: the reference server as deployed (its own
process, started by its CLI on a free loopback port), an auth endpoint the test serves
(aiohttp on loopback, signing with the Python ``pusher`` SDK), and a Node scenario script
of drivers/real-clients/ driven through its JSON lines (see drivers/real-clients/lib.mjs).

They need Node, ``npm ci --prefix drivers`` and the Python SDK (the ``realclients``
extra). With ``CONFORMANCE_REAL_CLIENTS_REQUIRED=1`` (the tox env that runs them) a missing
piece is a failure, not a skip."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

DRIVERS = Path(__file__).resolve().parents[3] / "drivers"
SCRIPTS = DRIVERS / "real-clients"
#: The app every scenario uses; the server gets it through its flags.
APP = {"app_id": "4242", "key": "real-clients-key", "secret": "real-clients-secret"}
#: Bounds: a server's start and stop, one wait of a script, a whole script.
START_SECONDS = 15.0
STOP_SECONDS = 10.0
WAIT_MS = 5000
SESSION_SECONDS = 60.0

StepHandler = Callable[[dict[str, Any]], Awaitable[Any]]


def _missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    for package in ("pusher-js", "laravel-echo", "pusher"):
        if not (DRIVERS / "node_modules" / package).is_dir():
            return f"drivers/node_modules/{package} is missing (npm ci --prefix drivers)"
    try:
        import pusher  # noqa: F401
    except ImportError:
        return "the Python pusher SDK is missing (pip install -e '.[realclients]')"
    return None


@pytest.fixture(scope="package", autouse=True)
def _real_clients_installed() -> None:
    missing = _missing()
    if missing is None:
        return
    if os.environ.get("CONFORMANCE_REAL_CLIENTS_REQUIRED") == "1":
        pytest.fail(missing)
    pytest.skip(missing)


class ServerProcess:
    """The reference server started by its CLI, as a team would deploy it; its log (stderr)
    goes to a file so that a failing test can show it."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.port = 0
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, port: int = 0) -> None:
        """Start (again, on ``port``) and wait for the ready line."""
        with self.log.open("a", encoding="utf-8") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "reference_server", "--host", "127.0.0.1",
                "--port", str(port), "--app-id", APP["app_id"], "--key", APP["key"],
                "--secret", APP["secret"], "--client-events", "--drain-timeout", "1",
                stdout=asyncio.subprocess.PIPE, stderr=log,
            )  # fmt: skip
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), START_SECONDS)
        if not line:
            await self.process.wait()
            raise AssertionError(f"the server did not start:\n{self.log.read_text()}")
        self.port = int(json.loads(line)["port"])

    async def sigterm(self) -> int:
        """SIGTERM, as an orchestrator stops a node; returns the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), STOP_SECONDS)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


class AuthEndpoint:
    """Channel authorization and user sign-in as an app serves them, signed with the Python
    SDK; pusher-js posts ``socket_id`` and ``channel_name`` form fields plus the ``user_id``
    the scenario adds. Every request is kept, in order."""

    def __init__(self, port: int) -> None:
        import pusher

        self.sdk = pusher.Pusher(
            app_id=APP["app_id"], key=APP["key"], secret=APP["secret"],
            ssl=False, host="127.0.0.1", port=port,
        )  # fmt: skip
        self.requests: list[dict[str, str]] = []

    def routes(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/pusher/auth", self._channel)
        app.router.add_post("/pusher/user-auth", self._user)
        return app

    async def _form(self, request: web.Request, kind: str) -> dict[str, str]:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.requests.append({"kind": kind, **form})
        return form

    async def _channel(self, request: web.Request) -> web.Response:
        form = await self._form(request, "channel")
        user = form["user_id"]
        member = {"user_id": user, "user_info": {"name": user.capitalize()}}
        presence = form["channel_name"].startswith("presence-")
        signed = self.sdk.authenticate(
            form["channel_name"], form["socket_id"], member if presence else None
        )
        return web.json_response(signed)

    async def _user(self, request: web.Request) -> web.Response:
        form = await self._form(request, "user")
        user = form["user_id"]
        signed = self.sdk.authenticate_user(
            form["socket_id"], {"id": user, "name": user.capitalize()}
        )
        return web.json_response(signed)


@dataclass
class NodeSession:
    """What one scenario script reported, what the test observed at its steps, and the
    output of everything involved, for the failure messages."""

    results: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    steps: dict[str, Any] = field(default_factory=dict, repr=False)
    auth_requests: list[dict[str, str]] = field(default_factory=list, repr=False)
    output: str = field(default="", repr=False)
    #: Why the script did not end normally (timed out, or its exit status), if it did not.
    problem: str | None = None

    def observed(self, scenario: str) -> dict[str, Any]:
        """The scenario's observations; a scenario that did not finish fails here (the
        report adds the script's and the server's output)."""
        result = self.results.get(scenario)
        assert result is not None, f"scenario {scenario} never reported ({self.problem})"
        assert result["ok"], f"scenario {scenario}: {result.get('error')}"
        observed: dict[str, Any] = result["observed"]
        return observed


async def _talk(
    node: asyncio.subprocess.Process, steps: Mapping[str, StepHandler], session: NodeSession
) -> None:
    assert node.stdout is not None
    assert node.stdin is not None
    while True:
        line = await node.stdout.readline()
        if not line:
            return
        message = json.loads(line)
        if message["type"] == "result":
            session.results[message["scenario"]] = message
        elif message["type"] == "step":
            name = message["step"]
            session.steps[name] = await steps[name](message)
            node.stdin.write(json.dumps({"type": "continue", "step": name}).encode() + b"\n")
            await node.stdin.drain()
        elif message["type"] == "done":
            return


@contextlib.asynccontextmanager
async def _auth_endpoint(server_port: int) -> AsyncIterator[tuple[AuthEndpoint, str]]:
    endpoint = AuthEndpoint(server_port)
    runner = web.AppRunner(endpoint.routes())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        yield endpoint, f"http://127.0.0.1:{port}/pusher"
    finally:
        await runner.cleanup()


async def run_scenarios(
    script: str,
    folder: Path,
    steps: Callable[[ServerProcess, AuthEndpoint], Mapping[str, StepHandler]],
) -> NodeSession:
    """Start a server and the auth endpoint, run ``drivers/real-clients/<script>`` against
    them with ``steps`` answering its steps, and stop everything (by process)."""
    session = NodeSession()
    server = ServerProcess(folder / "server.log")
    node_log = folder / "node.log"
    node: asyncio.subprocess.Process | None = None
    try:
        await server.start()
        async with _auth_endpoint(server.port) as (endpoint, auth_url):
            settings = {"host": "127.0.0.1", "port": server.port, "wait_ms": WAIT_MS,
                        "auth_endpoint": f"{auth_url}/auth",
                        "user_auth_endpoint": f"{auth_url}/user-auth", **APP}  # fmt: skip
            with node_log.open("w", encoding="utf-8") as log:
                node = await asyncio.create_subprocess_exec(
                    "node", str(SCRIPTS / script), json.dumps(settings),
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log,
                )  # fmt: skip
            try:
                await asyncio.wait_for(
                    _talk(node, steps(server, endpoint), session), SESSION_SECONDS
                )
                status = await asyncio.wait_for(node.wait(), STOP_SECONDS)
                if status != 0:
                    session.problem = f"the script exited with status {status}"
            except TimeoutError:
                session.problem = f"the script did not finish within {SESSION_SECONDS:.0f} s"
            session.auth_requests = endpoint.requests
    finally:
        if node is not None and node.returncode is None:
            node.kill()
            await node.wait()
        await server.stop()
        session.output = "\n".join(
            f"--- {path.name} ---\n{path.read_text(encoding='utf-8')[-20000:]}"
            for path in (node_log, server.log)
            if path.exists()
        )
    return session


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failing test shows the Node script's and the server's output beside its assert."""
    report = yield
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, NodeSession):
                report.sections.append(
                    ("real clients: Node script and server output", value.output)
                )
    return report


@pytest.fixture(scope="module")
def scenarios(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[..., NodeSession]:
    """``scenarios(script, steps)`` runs one scenario script against a fresh server (see
    ``run_scenarios``); module-scoped so that each library's script runs once per module."""

    def run(
        script: str,
        steps: Callable[[ServerProcess, AuthEndpoint], Mapping[str, StepHandler]] = lambda s, e: {},
    ) -> NodeSession:
        folder = tmp_path_factory.mktemp(script.removesuffix(".mjs"))
        return asyncio.run(run_scenarios(script, folder, steps))

    return run
