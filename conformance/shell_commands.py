"""A user's shell command, bounded: the restart command of a target, the stop command of a
cluster node. Each runs in a process group of its own, so that a bound, or a run that ends
first, stops everything it started; whatever goes wrong is one line naming the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from .errors import HarnessError

__all__ = ["finish_command", "run_command", "start_command"]

#: Lines of the command's stderr quoted when it fails.
STDERR_LINES = 3


async def start_command(command: str, what: str) -> asyncio.subprocess.Process:
    """Start ``command`` (``what`` names it in errors: "the restart command").

    Raises:
        HarnessError: it could not be started.
    """
    try:
        return await asyncio.create_subprocess_shell(
            command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        raise HarnessError(f"could not run {what} {command!r}: {exc}") from None


async def finish_command(
    process: asyncio.subprocess.Process, command: str, what: str, within: float
) -> None:
    """Wait for a started command to succeed, at most ``within`` seconds.

    Raises:
        HarnessError: it failed (with the end of its stderr) or outlived the bound (its
            process group is then killed).
        asyncio.CancelledError: the caller gave up first; its process group is killed too.
    """
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), within)
    except TimeoutError:
        _kill_group(process.pid)
        await process.wait()
        raise HarnessError(f"{what} did not finish within {within:g}s: {command}") from None
    except asyncio.CancelledError:
        _kill_group(process.pid)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 5)
        raise
    if process.returncode != 0:
        tail = stderr.decode("utf-8", "replace").strip().splitlines()[-STDERR_LINES:]
        raise HarnessError(
            f"{what} exited with {process.returncode}: {command}"
            + (f" ({' / '.join(tail)})" if tail else "")
        )


async def run_command(command: str, what: str, within: float) -> None:
    """``start_command`` then ``finish_command``."""
    await finish_command(await start_command(command, what), command, what, within)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
