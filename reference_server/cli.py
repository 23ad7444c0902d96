"""``reference-server`` / ``python -m reference_server``: run until SIGINT or SIGTERM.

A stop signal drains the server first (``ReferenceServer.drain``): handshakes are refused
with 503 and every WebSocket is closed with 4200 while the listener is still open, so a
client can tell a deliberate restart from a crash. Then the webhooks still waiting are sent
(``shutdown.py``); the process exits 0 at most ``--shutdown-timeout`` seconds after the signal,
plus ``teardown.BACKSTOP_MARGIN`` should the loop itself not get there (``teardown.py``).

With ``--serves-file PATH`` the server counts its requirement marks (``serves.py``) and
appends them to PATH on SIGUSR1 or, failing that, at exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import os
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from . import serves, teardown
from .config import ConfigError, ServerConfig, load_config

__all__ = ["JsonFormatter", "main"]

_PROG = "reference-server"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``event``, then the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.name != "reference_server":
            entry["logger"] = record.name
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class BatchingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes lines in batches: a write and a flush per line would cost a busy server a
    system call for every connection opened and closed.

    A line waits at most ``FLUSH_AFTER`` seconds (on the event loop's timer; at once where no
    loop runs, as in the exit-deadline thread), and never behind a warning or worse, which
    goes out at once with everything before it. ``logging.shutdown`` flushes at exit.
    """

    FLUSH_AFTER = 0.1
    MAX_WAITING = 1 << 16

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._waiting: list[str] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._waiting.append(line)
        self._size += len(line)
        if record.levelno >= logging.WARNING or self._size >= self.MAX_WAITING:
            self.flush()
            return
        if self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer = loop.call_later(self.FLUSH_AFTER, self.flush)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._waiting:
                lines, self._waiting, self._size = self._waiting, [], 0
                with contextlib.suppress(OSError, ValueError):
                    self.stream.write("\n".join(lines) + "\n")
            super().flush()


def configure_logging(level: str) -> None:
    # What a record would otherwise collect and never print (the logging HOWTO's
    # "Optimization"): at info a busy server logs twice per connection.
    logging._srcfile = None  # no caller lookup
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = BatchingHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


async def serve(config: ServerConfig) -> None:
    """Print the ready line once listening, then wait for a stop signal."""
    # Imported here so that bad configuration is refused before aiohttp loads.
    from .app import run_server
    from .apps import AppsServer
    from .logs import log
    from .metrics import Metrics, process_registry
    from .shutdown import shut_down

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if config.serves_file is not None:
        loop.add_signal_handler(signal.SIGUSR1, serves.finish, config.serves_file)
    metrics = Metrics(process_registry())
    try:
        # The bound is armed by the stop signal; it covers closing the listener too.
        async with (
            asyncio.timeout(None) as bound,
            run_server(config, metrics=metrics) as running,
        ):
            print(json.dumps(running.ready_line()), flush=True)
            log(
                logging.INFO,
                "listening",
                host=running.host,
                port=running.port,
                faults=sorted(config.faults),
            )
            await stop.wait()
            bound.reschedule(loop.time() + config.shutdown_timeout)
            # A thread's deadline too: the bound above needs a loop that gets to it, and
            # asyncio.run's own end waits for every task without one.
            serves_file = config.serves_file
            teardown.arm_exit_deadline(
                config.shutdown_timeout + teardown.BACKSTOP_MARGIN,
                before_exit=None if serves_file is None else lambda: serves.finish(serves_file),
            )
            server = running.server
            await shut_down(
                server.servers if isinstance(server, AppsServer) else [server],
                timeout=config.shutdown_timeout,
                spread=config.shutdown_spread,
                drain_timeout=config.drain_timeout,
            )
            log(logging.INFO, "stopping")
    except TimeoutError:
        if not bound.expired():
            raise
        log(logging.WARNING, "shutdown_timeout", timeout=config.shutdown_timeout, phase="exit")
    # Here rather than in ``asyncio.run``, which waits for them without a bound.
    await teardown.end_leftover_tasks()


def _run(main: Coroutine[Any, Any, None], event_loop: str) -> None:
    """Run ``main`` on uvloop when asked or, with ``auto``, when it is installed: its event
    loop and transports are written in C, which the hot path (a write per recipient of each
    broadcast) spends most of its time in."""
    if event_loop != "asyncio":
        try:
            import uvloop
        except ImportError:
            if event_loop == "uvloop":  # Checked by the configuration; uninstalled since.
                raise
        else:
            uvloop.run(main)
            return
    asyncio.run(main)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad configuration or address)."""
    try:
        config = load_config(sys.argv[1:] if argv is None else argv, os.environ)
    except ConfigError as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_level)
    if config.serves_file is not None:
        serves.enable()
    try:
        _run(serve(config), config.event_loop)
    except ConfigError as exc:  # a TLS certificate or key that cannot be used
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(
            f"{_PROG}: error: cannot listen on {config.host}:{config.port}: {reason}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:  # A second Ctrl-C while stopping.
        pass
    finally:
        if config.serves_file is not None:
            serves.finish(config.serves_file)
    return 0
