"""Restarting the target, for the checks of its graceful shutdown.

A restart takes the server away from every check, so the checks that ask for one run alone,
after all the others (``runner.Job.alone``). The bundled server is restarted by the suite
itself (SIGTERM, then the same command on the same port); a target of the user's is restarted
by the shell command its target file gives (``restart: {command: ..., within: SECONDS}``).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from .errors import HarnessError
from .shell_commands import finish_command, start_command

__all__ = ["BundledRestarter", "CommandRestarter", "Restarter", "restart"]


class Restarter(Protocol):
    """Two halves, so that a check sees a failure to stop apart from what the drain did."""

    async def begin(self) -> None:
        """Tell the server to stop (or start the restart); return at once (or raise
        ``HarnessError`` saying why it could not)."""

    async def finish(self) -> None:
        """Return once the server has started again (or raise ``HarnessError``)."""


class _RestartsBundled(Protocol):
    def terminate(self) -> None: ...

    def wait_stopped(self) -> int: ...

    def start_again(self) -> None: ...


class BundledRestarter:
    """The bundled server: SIGTERM, then (once the drain has ended and the process exited)
    the same command on the same port; the launcher's calls block, so they run on a thread."""

    def __init__(self, bundled: _RestartsBundled) -> None:
        self.bundled = bundled

    async def begin(self) -> None:
        try:
            self.bundled.terminate()
        except Exception as exc:  # the launcher's own error says what went wrong
            raise HarnessError(f"could not stop the bundled server: {exc}") from None

    async def finish(self) -> None:
        try:
            await asyncio.to_thread(self.bundled.wait_stopped)
            await asyncio.to_thread(self.bundled.start_again)
        except Exception as exc:
            raise HarnessError(f"could not restart the bundled server: {exc}") from None


class CommandRestarter:
    """A user's server: their command, which must return once the server is back."""

    def __init__(self, command: str, within: float) -> None:
        self.command = command
        self.within = within
        self._process: asyncio.subprocess.Process | None = None

    async def begin(self) -> None:
        self._process = await start_command(self.command, "the restart command")

    async def finish(self) -> None:
        process = self._process
        if process is None:
            raise HarnessError("the restart command was never started")
        await finish_command(process, self.command, "the restart command", self.within)


async def restart(restarter: Restarter) -> None:
    """Both halves at once, for callers with nothing to watch in between (a simulation's
    restart incident, bringing back a target that died)."""
    await restarter.begin()
    await restarter.finish()
