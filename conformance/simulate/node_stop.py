"""Stopping one node of a cluster for a simulation's ``stop_node`` incident, and not starting
it again: its tabs must find the other nodes.

The bundled nodes are the suite's children: each gets SIGTERM, so it drains (503 to new
handshakes, close 4200 to open WebSockets) and exits. A target file's node is stopped by the
``stop`` command its ``nodes:`` entry gives, which must return once the node is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from typing import Protocol

from ..errors import HarnessError

__all__ = ["STOP_WITHIN", "BundledNodeStopper", "CommandNodeStopper", "NodeStopper"]

#: Seconds a node may take to stop (the bundled server drains in about 2 s, and then closes
#: every socket; a busy machine needs room).
STOP_WITHIN = 60.0


class NodeStopper(Protocol):
    async def stop(self, node: int) -> None:
        """Stop node ``node`` and return once it is down (or raise ``HarnessError``)."""


class _Stoppable(Protocol):
    """A bundled node (``bundled.BundledServer``)."""

    def terminate(self) -> None: ...

    def wait_stopped(self, timeout: float = ...) -> int: ...


class BundledNodeStopper:
    """SIGTERM to the bundled node's process; the wait for its exit runs on a thread."""

    def __init__(self, nodes: Sequence[_Stoppable]) -> None:
        self.nodes = nodes

    async def stop(self, node: int) -> None:
        server = self.nodes[node]
        try:
            server.terminate()
            await asyncio.to_thread(server.wait_stopped, STOP_WITHIN)
        except Exception as exc:  # the launcher's own error says what went wrong
            raise HarnessError(f"could not stop bundled node {node}: {exc}") from None


class CommandNodeStopper:
    """The ``stop`` commands of a target file's nodes (node -> shell command)."""

    def __init__(self, commands: Mapping[int, str], within: float = STOP_WITHIN) -> None:
        self.commands = commands
        self.within = within

    async def stop(self, node: int) -> None:
        command = self.commands.get(node)
        if command is None:
            raise HarnessError(f"node {node} has no stop command")
        try:
            process = await asyncio.create_subprocess_shell(
                command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # its own process group: a bound stops what it started
            )
        except OSError as exc:
            raise HarnessError(f"could not run node {node}'s stop command: {exc}") from None
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), self.within)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            raise HarnessError(
                f"node {node}'s stop command did not finish within {self.within:g}s: {command}"
            ) from None
        if process.returncode != 0:
            tail = stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
            raise HarnessError(
                f"node {node}'s stop command exited with {process.returncode}: {command}"
                + (f" ({' / '.join(tail)})" if tail else "")
            )
