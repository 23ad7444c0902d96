"""Starting the bundled reference server as a child process, when no target is given.

The suite talks to it only over the network, like to any other target: it is started with
``python -m reference_server`` and never imported, so the two implementations stay independent.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import selectors
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .errors import HarnessError
from .target import Target, Timings

__all__ = [
    "BUNDLED_ACTIVITY_TIMEOUT",
    "BUNDLED_PONG_TIMEOUT",
    "BUNDLED_WEBHOOK_LISTEN",
    "BundledServer",
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


@dataclass
class BundledServer:
    process: subprocess.Popen[str]
    target: Target
    log_path: Path
    faults: str

    def stop(self) -> None:
        stop_child(self.process, self.process.terminate)


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
    log_path: Path, *, startup_timeout: float = 20.0, webhook_url: str | None = None
) -> BundledServer:
    """Start the server; with ``webhook_url`` it posts webhooks there and declares them."""
    app_id = str(secrets.randbelow(900000) + 100000)
    key = secrets.token_hex(10)
    secret = secrets.token_hex(16)
    command = [
        sys.executable, "-m", "reference_server",
        "--host", "127.0.0.1", "--port", "0",
        "--app-id", app_id, "--key", key, "--secret", secret,
        "--activity-timeout", str(BUNDLED_ACTIVITY_TIMEOUT),
        "--pong-timeout", str(BUNDLED_PONG_TIMEOUT),
        "--client-events",
    ]  # fmt: skip
    if webhook_url is not None:
        command += ["--webhook-url", webhook_url, "--webhook-delay", str(BUNDLED_WEBHOOK_DELAY)]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w", encoding="utf-8") as log:
        try:
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=log, text=True, stdin=subprocess.DEVNULL
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
        tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        raise HarnessError(
            "the bundled reference server did not start"
            + (f": {' | '.join(tail)}" if tail else "")
            + f" (log: {log_path})"
        )
    try:
        ready = json.loads(line)
        port = int(ready["port"])
    except (ValueError, KeyError, TypeError):
        process.kill()
        raise HarnessError(f"unexpected ready line from the reference server: {line!r}") from None
    target = Target(
        name="reference-server (bundled)",
        ws_url=f"ws://127.0.0.1:{port}",
        http_url=f"http://127.0.0.1:{port}",
        app_id=app_id,
        key=key,
        secret=secret,
        capabilities=BUNDLED_CAPABILITIES | ({"webhooks"} if webhook_url else set()),
        timings=Timings(float(BUNDLED_ACTIVITY_TIMEOUT), float(BUNDLED_PONG_TIMEOUT)),
        bundled=True,
        webhook_listen=webhook_url,
    )
    return BundledServer(process, target, log_path, os.environ.get("PUSHER_REF_FAULTS", ""))
