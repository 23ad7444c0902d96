"""The servers a bench measures: the reference server as a user deploys it, Soketi 1.6.1 from the
peers folder, or a server someone else runs. Each is a context manager that yields a
``BenchTarget`` and, for the ones it started, stops them again, whatever happened in between.

Soketi listens on every interface and broadcasts cluster discovery unless its config says
otherwise, so the config is checked (a pure function on the parsed JSON) before anything runs,
and only the two ports are changed in the copy that Soketi is started with.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..bundled import _handshake_once, _launch, stop_child
from ..errors import HarnessError
from ..target import Target, check_reachable
from .model import BenchTarget

__all__ = [
    "LOOPBACK_KEYS",
    "REFERENCE_NAME",
    "SOKETI_NAME",
    "ServerStartError",
    "check_loopback",
    "config_value",
    "default_peers_dir",
    "default_soketi_dir",
    "external_target",
    "first_app",
    "install_soketi",
    "pid_is_running",
    "read_soketi_config",
    "reference_server",
    "soketi_server",
    "with_ports",
]

REFERENCE_NAME = "reference-server"
SOKETI_NAME = "soketi 1.6.1"

#: Every socket Soketi opens is bound by one of these: all must say 127.0.0.1.
LOOPBACK_KEYS: tuple[str, ...] = ("host", "metrics.host", "cluster.address", "cluster.unicast")
LOOPBACK = "127.0.0.1"

#: Where npm puts the server's entry point inside the scratch folder.
SOKETI_SERVER_JS = Path("node_modules/@soketi/soketi/bin/server.js")

#: Seconds ``npm install`` may take (a cold cache downloads a few hundred packages).
INSTALL_TIMEOUT = 600.0
#: Seconds Soketi may take to answer a WebSocket handshake after it is started.
SOKETI_START_TIMEOUT = 30.0
#: Seconds the port may stay taken after the server exited, before the stop says so.
PORT_FREE_TIMEOUT = 3.0


class ServerStartError(HarnessError):
    """A server the bench needs could not be installed, started or reached (exit status 3)."""


def _local_target(name: str, port: int, app: tuple[str, str, str], pid: int) -> BenchTarget:
    """A server this command started on a loopback port: plain ws:// and http://."""
    app_id, key, secret = app
    return BenchTarget(
        name=name,
        ws_url=f"ws://{LOOPBACK}:{port}",
        http_url=f"http://{LOOPBACK}:{port}",
        app_id=app_id,
        key=key,
        secret=secret,
        server_pid=pid,
    )


def pid_is_running(pid: int) -> bool:
    """Whether ``pid`` is a live process here (a zombie is not): its CPU and memory are only
    readable from ``/proc`` while it is."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[:1]
    return bool(state) and state[0] not in ("Z", "X")


# --- the reference server -------------------------------------------------------------------


@contextlib.contextmanager
def reference_server(
    log_path: Path, server_args: Sequence[str] = (), startup_timeout: float = 20.0
) -> Iterator[BenchTarget]:
    """The reference server with one app and client events on, as the README tells a user to
    run it: not the conformance apps file, whose quotas and short timers would be measured
    instead of the server. ``server_args`` go on its command line as they are."""
    app_id = str(secrets.randbelow(900_000) + 100_000)
    key, secret = secrets.token_hex(10), secrets.token_hex(16)
    command = [
        sys.executable, "-m", "reference_server", "--host", LOOPBACK, "--port", "0",
        "--app-id", app_id, "--key", key, "--secret", secret, "--client-events", *server_args,
    ]  # fmt: skip
    try:
        process, ready = _launch(command, log_path, startup_timeout)
    except HarnessError as exc:
        raise ServerStartError(str(exc)) from None
    port = int(ready["port"])
    try:
        yield _local_target(REFERENCE_NAME, port, (app_id, key, secret), process.pid)
    finally:
        stop_child(process, process.terminate)
        _warn_if_listening(port, REFERENCE_NAME)


# --- Soketi: its config -------------------------------------------------------------------------


def config_value(config: Mapping[str, Any], dotted: str) -> Any:
    """A setting of a Soketi config, written flat (``"metrics.host": ...``, as the peers' file
    does) or nested (``"metrics": {"host": ...}``); ``None`` when absent."""
    if dotted in config:
        return config[dotted]
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def check_loopback(config: Mapping[str, Any], source: str = "soketi.json") -> None:
    """Refuse a config that would bind a socket, or send discovery packets, beyond 127.0.0.1:
    an absent key counts as not loopback, since Soketi's default is every interface."""
    wrong = [
        f"{key}={config_value(config, key)!r}"
        for key in LOOPBACK_KEYS
        if config_value(config, key) != LOOPBACK
    ]
    if wrong:
        raise ServerStartError(
            f"{source} does not bind every socket to {LOOPBACK} ({', '.join(wrong)});"
            " refusing to start Soketi"
        )


def _set(config: dict[str, Any], dotted: str, value: object) -> None:
    """Set ``dotted`` where the config already has it (flat or nested); flat when absent."""
    if dotted in config or "." not in dotted:
        config[dotted] = value
        return
    head, rest = dotted.split(".", 1)
    inner = config.get(head)
    if isinstance(inner, dict):
        inner = dict(inner)
        _set(inner, rest, value)
        config[head] = inner
    else:
        config[dotted] = value


def with_ports(config: Mapping[str, Any], port: int, metrics_port: int) -> dict[str, Any]:
    """A copy of ``config`` listening on ``port`` with its metrics on ``metrics_port``;
    nothing else changes (the hosts least of all)."""
    copied = json.loads(json.dumps(config))
    assert isinstance(copied, dict)
    _set(copied, "port", port)
    _set(copied, "metrics.port", metrics_port)
    return copied


def first_app(config: Mapping[str, Any], source: str = "soketi.json") -> tuple[str, str, str]:
    """The app id, key and secret of the config's first app: the one the bench uses."""
    apps = config_value(config, "appManager.array.apps")
    app = apps[0] if isinstance(apps, list) and apps else None
    fields = tuple(app.get(name) if isinstance(app, Mapping) else None for name in _APP_FIELDS)
    if not all(isinstance(value, str | int) and str(value) for value in fields):
        raise ServerStartError(
            f"{source} has no app with id, key and secret under appManager.array.apps"
        )
    return str(fields[0]), str(fields[1]), str(fields[2])


_APP_FIELDS = ("id", "key", "secret")


# --- Soketi: installing and running -------------------------------------------------------------


def default_peers_dir() -> Path:
    """``SOKETI_PEERS``, else ``../shared/peers/soketi`` beside the checkout (as the scripts)."""
    given = os.environ.get("SOKETI_PEERS")
    if given:
        return Path(given)
    return Path(__file__).resolve().parents[2].parent / "shared" / "peers" / "soketi"


def default_soketi_dir() -> Path:
    """The scratch folder the scripts install Soketi into, so one install serves both."""
    given = os.environ.get("SOKETI_DIR")
    if given:
        return Path(given)
    return Path(os.environ.get("TMPDIR") or "/tmp") / "pusher-conformance-soketi"


def read_soketi_config(peers: Path) -> dict[str, Any]:
    """The peers' ``soketi.json``, once it is known to be loopback-only and to hold an app:
    checked before any server starts, so a bad config costs nothing."""
    config = _read_config(peers)
    source = str(peers / "soketi.json")
    check_loopback(config, source)
    first_app(config, source)
    return config


def _read_config(peers: Path) -> dict[str, Any]:
    source = peers / "soketi.json"
    try:
        config = json.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ServerStartError(f"cannot read {source}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ServerStartError(f"{source} is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise ServerStartError(f"{source} must hold a JSON object")
    return config


def install_soketi(peers: Path, scratch: Path, timeout: float = INSTALL_TIMEOUT) -> Path:
    """Soketi installed in ``scratch`` from the peers' ``package.json``; an install whose
    ``package.json`` matches is reused (the same rule as scripts/soketi-lib.sh). Returns the
    server's entry point."""
    wanted = peers / "package.json"
    if not wanted.is_file() or not (peers / "soketi.json").is_file():
        raise ServerStartError(
            f"{peers} lacks package.json or soketi.json (give --soketi-peers DIR or set"
            " SOKETI_PEERS)"
        )
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise ServerStartError("Soketi needs node and npm, and one of them is not on PATH")
    server_js = scratch / SOKETI_SERVER_JS
    installed = scratch / "package.json"
    if (
        server_js.is_file()
        and installed.is_file()
        and installed.read_bytes() == wanted.read_bytes()
    ):
        return server_js
    scratch.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(wanted, installed)
    log = scratch / "install.log"
    print(f"bench: installing Soketi into {scratch} (npm install, log: {log})", file=sys.stderr)
    try:
        with log.open("w", encoding="utf-8") as out:
            done = subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund"],
                cwd=scratch,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
                check=False,
            )
    except subprocess.TimeoutExpired:
        raise ServerStartError(f"npm install took over {timeout:g} s; see {log}") from None
    if done.returncode != 0:
        raise ServerStartError(f"npm install failed (status {done.returncode}); see {log}")
    if not server_js.is_file():
        raise ServerStartError(f"npm install did not produce {server_js}; see {log}")
    return server_js


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


def _warn_if_listening(port: int, name: str) -> None:
    deadline = time.monotonic() + PORT_FREE_TIMEOUT
    while _listening(port):
        if time.monotonic() > deadline:
            print(f"bench: warning: port {port} is still taken after {name} stopped",
                  file=sys.stderr)  # fmt: skip
            return
        time.sleep(0.1)


def _wait_for_handshake(
    process: subprocess.Popen[str], port: int, key: str, timeout: float, log: Path
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerStartError(
                f"Soketi exited (status {process.returncode}) before it accepted a connection"
                f" (log: {log})"
            )
        with contextlib.suppress(OSError, ValueError):
            if _handshake_once(port, key, max(0.1, deadline - time.monotonic())):
                return
        time.sleep(0.2)
    raise ServerStartError(
        f"Soketi did not accept a WebSocket handshake on port {port} within {timeout:g} s"
        f" (log: {log})"
    )


@contextlib.contextmanager
def soketi_server(
    peers: Path,
    scratch: Path,
    log_path: Path,
    startup_timeout: float = SOKETI_START_TIMEOUT,
) -> Iterator[BenchTarget]:
    """Soketi 1.6.1 on free loopback ports, started with ``node`` itself so that its PID is
    the server's (its CPU and memory are then read from /proc); stopped with SIGINT, then
    SIGKILL after 5 s."""
    config = read_soketi_config(peers)
    app_id, key, secret = first_app(config)
    server_js = install_soketi(peers, scratch)
    port, metrics_port = _free_port(), _free_port()
    copied = with_ports(config, port, metrics_port)
    check_loopback(copied)  # the copy is what runs: hold it to the same rule
    config_file = scratch / f"bench-soketi-{os.getpid()}-{port}.json"
    config_file.write_text(json.dumps(copied, indent=2), encoding="utf-8")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with log_path.open("w", encoding="utf-8") as log:
            process = subprocess.Popen(
                ["node", str(server_js.relative_to(scratch)), "start",
                 f"--config={config_file.name}"],
                cwd=scratch, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, text=True,
            )  # fmt: skip
    except OSError as exc:
        config_file.unlink(missing_ok=True)
        raise ServerStartError(f"could not start Soketi: {exc.strerror or exc}") from None
    try:
        _wait_for_handshake(process, port, key, startup_timeout, log_path)
        yield _local_target(SOKETI_NAME, port, (app_id, key, secret), process.pid)
    finally:
        stop_child(process, lambda: process.send_signal(signal.SIGINT))
        config_file.unlink(missing_ok=True)
        _warn_if_listening(port, SOKETI_NAME)


# --- a server someone else runs -------------------------------------------------------------


@contextlib.contextmanager
def external_target(target: Target, server_pid: int | None = None) -> Iterator[BenchTarget]:
    """A server already running: checked to answer (and, for wss://, to be trusted) before
    any phase starts; nothing to stop afterwards."""
    check_reachable(target)
    if server_pid is not None and not pid_is_running(server_pid):
        raise ServerStartError(f"--server-pid {server_pid}: no such process is running")
    yield BenchTarget(
        name=target.name,
        ws_url=target.ws_url,
        http_url=target.http_url,
        app_id=target.app_id,
        key=target.key,
        secret=target.secret,
        server_pid=server_pid,
        ca_file=target.ca_file,
        insecure=target.insecure,
    )
