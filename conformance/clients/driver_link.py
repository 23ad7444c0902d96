"""The driver: the client library under test, wrapped in a process that speaks JSON lines
(docs/client-driver.md).

The certifier never trusts the driver to behave: every read has a deadline, a line that is not a
JSON object is recorded and ends the check as an error, a process that hangs is killed with its
process group, and what it writes to stderr is kept (bounded) in the timeline. A driver's fault
is never a verdict about the library: it is reported as the check's ERROR, with the evidence.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConformanceError
from .timeline import Timeline

__all__ = ["Driver", "DriverError", "Hello", "NotApplicable", "Reply"]

HELLO_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 5.0
QUIT_GRACE_S = 5.0
#: Lines of stderr kept in the timeline; the rest are only counted.
STDERR_LINES = 200
#: The longest stdout line read (a roster or an event can be long, but not unbounded).
LINE_LIMIT = 1 << 20
#: Report fields that would clash with the timeline's own keys are renamed.
_RESERVED = ("t", "kind", "conn")


class DriverError(ConformanceError):
    """The driver broke the driver protocol (crashed, wrote garbage, stayed silent): the check
    says nothing about the library, so it ends as an ERROR naming what went wrong."""


class NotApplicable(ConformanceError):
    """The library lacks what the check needs (a feature missing from hello, a command the
    driver reports unsupported): the check is skipped, not failed."""


@dataclass(frozen=True)
class Hello:
    """The driver's first line: what it wraps and what it can do."""

    client: str
    version: str
    features: frozenset[str]
    defaults: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, message: Mapping[str, Any]) -> Hello:
        features = message.get("features", [])
        defaults = message.get("defaults", {})
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            raise DriverError("hello: features must be a list of strings")
        if not isinstance(defaults, dict):
            raise DriverError("hello: defaults must be an object")
        return cls(
            str(message.get("client", "?")),
            str(message.get("version", "?")),
            frozenset(features),
            defaults,
        )


@dataclass(frozen=True)
class Reply:
    """The driver's answer to one command: ``ok``, ``unsupported`` or ``failed``."""

    type: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def why(self) -> str:
        return str(self.fields.get("why", ""))


class Driver:
    """One driver process for one check."""

    def __init__(
        self, command: Sequence[str], timeline: Timeline, env: Mapping[str, str] | None = None
    ) -> None:
        if not command:
            raise DriverError("no driver command")
        self.command_line = list(command)
        self.timeline = timeline
        self.env = dict(env or {})
        self.hello: Hello | None = None
        self.problem: str | None = None  # the first protocol violation seen
        self.exit_code: int | None = None
        self.quitting = False
        self._process: asyncio.subprocess.Process | None = None
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[Reply]] = {}
        self._hello: asyncio.Future[Hello] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def died(self) -> bool:
        """The driver exited (or broke the protocol) without being told to quit."""
        return self.problem is not None or (self.exit_code is not None and not self.quitting)

    async def start(self, hello_timeout: float = HELLO_TIMEOUT_S) -> Hello:
        loop = asyncio.get_running_loop()
        self._hello = loop.create_future()
        try:
            self._process = await asyncio.create_subprocess_exec(
                *self.command_line,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={**os.environ, **self.env},
                limit=LINE_LIMIT,
                start_new_session=True,
            )
        except OSError as exc:
            raise DriverError(f"cannot start the driver {self.command_line[0]!r}: {exc}") from None
        self.timeline.record("driver_start", argv=self.command_line, pid=self._process.pid)
        self._tasks = [
            asyncio.create_task(self._read_stdout()),
            asyncio.create_task(self._read_stderr()),
        ]
        try:
            self.hello = await asyncio.wait_for(asyncio.shield(self._hello), hello_timeout)
        except TimeoutError:
            raise DriverError(f"the driver sent no hello within {hello_timeout:.0f} s") from None
        return self.hello

    async def command(self, do: str, timeout: float = COMMAND_TIMEOUT_S, **fields: Any) -> Reply:
        """Send a command and wait for its ok / unsupported / failed."""
        process = self._process
        if process is None or process.stdin is None or self.died:
            raise DriverError(self._death() or "the driver is not running")
        self._next_id += 1
        number = self._next_id
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[number] = future
        message = {"id": number, "do": do, **fields}
        self.timeline.record("command", **{k: v for k, v in message.items()})
        try:
            process.stdin.write((json.dumps(message) + "\n").encode())
            await process.stdin.drain()
            return await asyncio.wait_for(future, timeout)
        except (BrokenPipeError, ConnectionResetError):
            raise DriverError(self._death() or "the driver closed its stdin") from None
        except TimeoutError:
            raise DriverError(
                self._death() or f"the driver did not answer {do!r} within {timeout:.0f} s"
            ) from None
        finally:
            self._pending.pop(number, None)

    async def stop(self) -> None:
        """Ask the driver to quit, then close its stdin, then kill its process group."""
        process = self._process
        if process is None:
            return
        self.quitting = True
        if process.returncode is None and process.stdin is not None and not self.died:
            with contextlib.suppress(Exception):
                await self.command("quit", timeout=2.0)
        if process.stdin is not None:
            with contextlib.suppress(Exception):
                process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), QUIT_GRACE_S)
        except TimeoutError:
            self.timeline.note(f"the driver did not exit within {QUIT_GRACE_S:.0f} s: killed")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(process.wait(), 5)
        for task in self._tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 2)
        # Children the driver left behind in its group go too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)

    def _death(self) -> str | None:
        if self.problem is not None:
            return self.problem
        if self.exit_code is not None:
            return f"the driver exited with status {self.exit_code}"
        return None

    def _violation(self, problem: str) -> None:
        self.timeline.record("driver_violation", problem=problem)
        if self.problem is None:
            self.problem = f"driver protocol violation: {problem}"
        self._fail_waiters(DriverError(self.problem))

    def _fail_waiters(self, error: DriverError) -> None:
        if self._hello is not None and not self._hello.done():
            self._hello.set_exception(error)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)

    async def _read_stdout(self) -> None:
        process = self._process
        assert process is not None
        assert process.stdout is not None
        while True:
            try:
                raw = await process.stdout.readline()
            except ValueError:  # longer than LINE_LIMIT
                self._violation(f"a stdout line longer than {LINE_LIMIT} bytes")
                break
            if not raw:
                break
            self._take(raw.decode("utf-8", "replace").rstrip("\r\n"))
        self.exit_code = await process.wait()
        self.timeline.record("driver_exit", status=self.exit_code, asked=self.quitting)
        if not self.quitting:
            self._fail_waiters(DriverError(f"the driver exited with status {self.exit_code}"))

    def _take(self, line: str) -> None:
        if not line.strip():
            return
        try:
            message = json.loads(line)
        except ValueError:
            self._violation(f"stdout line is not JSON: {line[:200]!r}")
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            self._violation(f"stdout line is not an object with a type: {line[:200]!r}")
            return
        kind = message["type"]
        if self.hello is None and (self._hello is None or not self._hello.done()):
            if kind != "hello":
                self._violation(f"the first line must be hello, not {kind!r}")
                return
            try:
                parsed = Hello.parse(message)
            except DriverError as exc:
                self._violation(str(exc))
                return
            self.timeline.record("hello", **_safe(message))
            assert self._hello is not None
            self._hello.set_result(parsed)
            return
        if kind in ("ok", "unsupported", "failed"):
            self.timeline.record("reply", **_safe(message))
            number = message.get("re")
            future = self._pending.get(number) if isinstance(number, int) else None
            if future is None:
                self._violation(f"a {kind!r} for no pending command: {line[:200]!r}")
            elif not future.done():
                future.set_result(Reply(kind, message))
            return
        self.timeline.record("report", **_safe(message))

    async def _read_stderr(self) -> None:
        process = self._process
        assert process is not None
        assert process.stderr is not None
        kept = dropped = 0
        while True:
            try:
                raw = await process.stderr.readline()
            except ValueError:
                continue
            if not raw:
                break
            if kept < STDERR_LINES:
                kept += 1
                self.timeline.record("driver_stderr", line=raw.decode("utf-8", "replace")[:500])
            else:
                dropped += 1
        if dropped:
            self.timeline.record("driver_stderr", line=f"... {dropped} more lines not kept")


def _safe(message: Mapping[str, Any]) -> dict[str, Any]:
    return {(f"{k}_" if k in _RESERVED else k): v for k, v in message.items()}
