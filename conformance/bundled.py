"""Starting the bundled reference server as a child process, when no target is given.

The suite talks to it only over the network, like to any other target: it is started with
``python -m reference_server`` and never imported, so the two implementations stay independent.
``BundledServer`` can also stop it with SIGTERM and start it again on the same port, for the
checks of what a client sees while a server drains and comes back.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .errors import HarnessError
from .target import Target, Timings
from .target_apps import OtherApp, bundled_apps
from .tls import client_context

__all__ = [
    "BUNDLED_ACTIVITY_TIMEOUT",
    "BUNDLED_PONG_TIMEOUT",
    "BUNDLED_WEBHOOK_LISTEN",
    "BundledServer",
    "BundledTls",
    "Restart",
    "start_bundled",
    "stop_child",
]

#: Short heartbeat timings keep the heartbeat checks fast against the bundled server. The pong
#: timeout is the suite's own allowance to answer the server's pings: checks run side by side
#: and the self-test runs suites side by side, so on a busy 2-core machine an answer can take
#: seconds, and a 2 s allowance cost connections (4201) that had done nothing wrong.
BUNDLED_ACTIVITY_TIMEOUT = 3
BUNDLED_PONG_TIMEOUT = 5

#: What the bundled server is started with and so declares.
BUNDLED_CAPABILITIES = frozenset(
    {"client_events", "user_authentication", "cache_channels", "encrypted_channels"}
)

#: Where the suite's receiver listens for the bundled server's webhooks (port 0: a free one,
#: bound before the server starts).
BUNDLED_WEBHOOK_LISTEN = "http://127.0.0.1:0/pusher/webhooks"

#: The bundled server holds back channel_vacated and member_removed for 1.5 s rather than its
#: default 3 s, like the short heartbeat timings: the webhook checks wait on the event, so a
#: shorter hold only makes them quicker, and 1.5 s still leaves room for a "quick return".
BUNDLED_WEBHOOK_DELAY = 1.5


#: The connection quota of the bundled server's quota app (PROTO-CONN-11 opens this many).
BUNDLED_QUOTA = 3


#: Seconds a stopping server may take to drain and exit: its drain timeout (2 s), the close
#: handshakes' own 2 s, and room for a busy machine.
STOP_TIMEOUT = 10.0

#: Seconds a restarted server may take to accept a WebSocket handshake again.
RESTART_TIMEOUT = 20.0


@dataclass(frozen=True)
class BundledTls:
    """TLS for the bundled server: its certificate chain and key (PEM files, made at test time:
    none is committed), and the CA file that the suite then trusts for it. With
    ``plain_port``, the server also redirects plain requests from a port of its own."""

    cert: Path
    key: Path
    ca_file: Path
    plain_port: bool = False


@dataclass(frozen=True)
class Restart:
    """How a restart went: the old process's exit status and how long each half took."""

    exit_code: int
    stopped_in: float
    back_in: float


@dataclass
class BundledServer:
    process: subprocess.Popen[str]
    target: Target
    log_path: Path
    faults: str
    #: The command it was started with; a restart reuses it with the port it got.
    command: tuple[str, ...] = field(default=())
    #: Where it appends its requirement marks' hit counts when it exits (``--serves-file``;
    #: a restarted server appends its own line), or ``None`` when it was not asked to.
    serves_file: Path | None = None
    #: With ``BundledTls.plain_port``: the plain port's URL (``http://127.0.0.1:PORT``).
    plain_url: str | None = None
    #: The private folder of the generated apps file (it holds secrets), removed at the stop.
    apps_dir: Path | None = None

    def stop(self) -> None:
        stop_child(self.process, self.process.terminate)
        if self.apps_dir is not None:
            shutil.rmtree(self.apps_dir, ignore_errors=True)

    def collect_marks(self, timeout: float = 5.0) -> Path | None:
        """Ask the running server to write its requirement marks now (SIGUSR1) and wait
        until it has; return the file (``None`` if it was not started with one).

        Asked before the stop, so that the stop's drain is not counted as something the run
        exercised. A server that is gone, or does not answer within ``timeout``, is not
        waited for: the file holds what it holds, and the reader says what is missing.
        """
        if self.serves_file is None:
            return None
        if self.process.poll() is None:
            before = _lines_in(self.serves_file)
            self.process.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + timeout
            while _lines_in(self.serves_file) <= before and time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                time.sleep(0.05)
        return self.serves_file

    # Restarting, for the checks of what clients see while a server drains and comes back.
    # ``terminate``, ``wait_stopped`` and ``start_again`` let a check watch each step (run
    # them with ``asyncio.to_thread`` from async code: they block); ``restart`` does all three.

    def terminate(self) -> None:
        """Send SIGTERM and return at once: the server drains (503 to new handshakes, close
        4200 to open WebSockets) and then exits."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait_stopped(self, timeout: float = STOP_TIMEOUT) -> int:
        """Wait for the process to exit; return its status.

        Raises:
            HarnessError: it was still running after ``timeout`` s (it is then killed).
        """
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
            raise HarnessError(
                f"the bundled reference server did not exit within {timeout:g} s of SIGTERM"
                f" (log: {self.log_path})"
            ) from None

    def start_again(self, timeout: float = RESTART_TIMEOUT) -> None:
        """Start the stopped server again on the same port, with the same credentials,
        options and faults; return once it answers a WebSocket handshake.

        The port was free a moment ago, but another process may take it in between: a
        start that cannot bind is retried until ``timeout``.

        Raises:
            HarnessError: the old process is still running, or the new one did not accept a
                handshake within ``timeout`` s (the message names the port and the log).
        """
        if self.process.poll() is None:
            raise HarnessError("start_again: the bundled reference server is still running")
        if self.process.stdout is not None:
            self.process.stdout.close()
        port = _port_of(self.target.ws_url)
        command = _with_port(self.command, port)
        environ = {**os.environ, "PUSHER_REF_FAULTS": self.faults}
        deadline = time.monotonic() + timeout
        last_error = "no attempt made"
        while time.monotonic() < deadline:
            try:
                process, _ = _launch(
                    command, self.log_path, deadline - time.monotonic(), environ, append=True
                )
            except HarnessError as exc:
                last_error = str(exc)
                time.sleep(0.2)
                continue
            self.process = process
            if _accepts_handshake(port, self.target.key, deadline, self.target.ca_file):
                return
            last_error = "it started but did not answer a WebSocket handshake"
            break
        raise HarnessError(
            f"the bundled reference server could not be restarted on port {port}"
            f" within {timeout:g} s: {last_error}"
        )

    def restart(
        self, *, stop_timeout: float = STOP_TIMEOUT, start_timeout: float = RESTART_TIMEOUT
    ) -> Restart:
        """SIGTERM, wait for the drain and the exit, start again on the same port."""
        started = time.monotonic()
        self.terminate()
        exit_code = self.wait_stopped(stop_timeout)
        stopped = time.monotonic()
        self.start_again(start_timeout)
        return Restart(exit_code, stopped - started, time.monotonic() - stopped)


def _lines_in(path: Path) -> int:
    """Complete lines in ``path`` (0 if it does not exist yet)."""
    try:
        return path.read_text(encoding="utf-8").count("\n")
    except OSError:
        return 0


def stop_child(process: subprocess.Popen[str], ask: Callable[[], None]) -> None:
    """Stop a child the suite started: ``ask`` it to stop, give it 5 s, then kill it."""
    if process.poll() is None:
        ask()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    if process.stdout is not None:
        process.stdout.close()


def _read_line(stream: IO[str], timeout: float) -> str | None:
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    try:
        if not selector.select(timeout):
            return None
        return stream.readline()
    finally:
        selector.close()


def start_bundled(
    log_path: Path,
    *,
    startup_timeout: float = 20.0,
    webhook_url: str | None = None,
    serves_file: Path | None = None,
    tls: BundledTls | None = None,
    shared_apps: tuple[dict[str, Any], dict[str, OtherApp]] | None = None,
    extra_args: Sequence[str] = (),
    faults: str | None = None,
) -> BundledServer:
    """Start the server; with ``webhook_url`` it posts webhooks there and declares them; with
    ``serves_file`` it counts its requirement marks and appends them there when it exits (an
    old file is removed first, so the file holds this server's lines only); with ``tls`` it
    serves wss:// and https://, and the target trusts the CA that signed its certificate.
    ``shared_apps`` (the apps file's content and the other apps as declared; default: generated),
    ``extra_args`` and ``faults`` (``PUSHER_REF_FAULTS``; default: the suite's own
    environment's) let a cluster's nodes share their apps and differ in their faults
    (``bundled_cluster.py``)."""
    apps, other_apps = shared_apps if shared_apps is not None else bundled_apps(BUNDLED_QUOTA)
    main = apps["apps"][0]
    app_id, key, secret = main["id"], main["key"], main["secret"]
    # A private folder: the file holds secrets. It lives as long as the server (a restart
    # reads it again) and goes at the stop.
    apps_dir = Path(tempfile.mkdtemp(prefix="pusher-conformance-apps-"))
    apps_file = apps_dir / "apps.json"
    apps_file.write_text(json.dumps(apps), encoding="utf-8")
    command = [
        sys.executable, "-m", "reference_server",
        "--host", "127.0.0.1", "--port", "0",
        "--apps-file", str(apps_file),
        "--activity-timeout", str(BUNDLED_ACTIVITY_TIMEOUT),
        "--pong-timeout", str(BUNDLED_PONG_TIMEOUT),
        "--client-events",
    ]  # fmt: skip
    if webhook_url is not None:
        command += ["--webhook-url", webhook_url, "--webhook-delay", str(BUNDLED_WEBHOOK_DELAY)]
    if serves_file is not None:
        serves_file.parent.mkdir(parents=True, exist_ok=True)
        serves_file.unlink(missing_ok=True)
        command += ["--serves-file", str(serves_file)]
    if tls is not None:
        command += ["--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]
        if tls.plain_port:
            command += ["--plain-port", "0"]
    command += extra_args
    faults = os.environ.get("PUSHER_REF_FAULTS", "") if faults is None else faults
    environ = {**os.environ, "PUSHER_REF_FAULTS": faults}
    try:
        process, ready = _launch(command, log_path, startup_timeout, environ)
    except BaseException:
        shutil.rmtree(apps_dir, ignore_errors=True)
        raise
    port = int(ready["port"])
    secure = "s" if tls is not None else ""
    target = Target(
        name="reference-server (bundled)",
        ws_url=f"ws{secure}://127.0.0.1:{port}",
        http_url=f"http{secure}://127.0.0.1:{port}",
        app_id=app_id,
        key=key,
        secret=secret,
        capabilities=BUNDLED_CAPABILITIES | ({"webhooks"} if webhook_url else set()),
        timings=Timings(float(BUNDLED_ACTIVITY_TIMEOUT), float(BUNDLED_PONG_TIMEOUT)),
        bundled=True,
        webhook_listen=webhook_url,
        ca_file=str(tls.ca_file) if tls is not None else None,
        other_apps=other_apps,
    )
    plain_url = ready.get("plain_url")
    return BundledServer(
        process,
        target,
        log_path,
        faults,
        tuple(command),
        serves_file,
        plain_url if isinstance(plain_url, str) else None,
        apps_dir,
    )


def _launch(
    command: Sequence[str],
    log_path: Path,
    startup_timeout: float,
    environ: dict[str, str] | None = None,
    *,
    append: bool = False,
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Start the server and wait for its ready line; return the process and that line (its
    ``port`` checked to be a number).

    Raises:
        HarnessError: it could not be started, exited, or said nothing in time (the message
            quotes the end of its log).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a" if append else "w", encoding="utf-8") as log:
        try:
            process = subprocess.Popen(
                list(command),
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                stdin=subprocess.DEVNULL,
                env=environ,
            )
        except OSError as exc:
            raise HarnessError(f"could not start the bundled reference server: {exc}") from None
    assert process.stdout is not None
    deadline = time.monotonic() + startup_timeout
    line = None
    while line is None and time.monotonic() < deadline and process.poll() is None:
        line = _read_line(process.stdout, 0.2)
    if not line:
        with contextlib.suppress(Exception):
            process.kill()
        process.wait(timeout=5)
        process.stdout.close()
        tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        raise HarnessError(
            "the bundled reference server did not start"
            + (f": {' | '.join(tail)}" if tail else "")
            + f" (log: {log_path})"
        )
    try:
        ready = json.loads(line)
        int(ready["port"])
        return process, ready
    except (ValueError, KeyError, TypeError):
        process.kill()
        raise HarnessError(f"unexpected ready line from the reference server: {line!r}") from None


def _port_of(ws_url: str) -> int:
    return int(ws_url.rsplit(":", 1)[1])


def _with_port(command: Sequence[str], port: int) -> list[str]:
    """The same command, listening on ``port`` (the first start asked for port 0)."""
    rebuilt = list(command)
    rebuilt[rebuilt.index("--port") + 1] = str(port)
    return rebuilt


def _accepts_handshake(port: int, key: str, deadline: float, ca_file: str | None = None) -> bool:
    """Whether ``/app/{key}`` upgrades and sends ``connection_established`` before
    ``deadline``; tried again every 0.1 s (a draining or starting server refuses)."""
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            if _handshake_once(port, key, max(0.1, deadline - time.monotonic()), ca_file):
                return True
        time.sleep(0.1)
    return False


def _handshake_once(port: int, key: str, timeout: float, ca_file: str | None = None) -> bool:
    nonce = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /app/{key}?protocol=7&client=conformance-probe HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {nonce}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with contextlib.ExitStack() as stack:
        sock = stack.enter_context(
            socket.create_connection(("127.0.0.1", port), timeout=min(timeout, 2.0))
        )
        context = client_context(ca_file)
        if context is not None:  # a server under TLS (BundledTls)
            sock = stack.enter_context(context.wrap_socket(sock, server_hostname="127.0.0.1"))
        sock.sendall(request.encode())
        stream = sock.makefile("rb")
        status = stream.readline().split(b" ", 2)
        if len(status) < 2 or status[1] != b"101":
            return False
        while stream.readline() not in (b"\r\n", b""):
            pass
        first, length = stream.read(2)
        length &= 0x7F
        if length == 126:
            length = struct.unpack("!H", stream.read(2))[0]
        payload = stream.read(length)
        # A masked close frame (1000), so the probe leaves like a polite client.
        mask = os.urandom(4)
        sock.sendall(
            bytes([0x88, 0x82]) + mask + bytes(b ^ mask[i] for i, b in enumerate(b"\x03\xe8"))
        )
        return first & 0x0F == 1 and b"pusher:connection_established" in payload
