"""Stopping one node of a cluster for a simulation's ``stop_node`` incident, and not starting
it again: its tabs must find the other nodes.

The bundled nodes are the suite's children: each gets SIGTERM, so it drains (503 to new
handshakes, close 4200 to open WebSockets) and exits. A target file's node is stopped by the
``stop`` command its ``nodes:`` entry gives, which must return once the node is down.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Mapping, Sequence
from typing import Protocol

from ..errors import HarnessError
from ..shell_commands import run_command

__all__ = ["STOP_WITHIN", "BundledNodeStopper", "CommandNodeStopper", "NodeStopper"]

#: Seconds a node may take to stop (the bundled server drains in about 2 s, and then closes
#: every socket; a busy machine needs room).
STOP_WITHIN = 60.0
#: How often a bundled node is looked at while it stops.
POLL_EVERY = 0.1


class NodeStopper(Protocol):
    async def stop(self, node: int) -> None:
        """Stop node ``node`` and return once it is down (or raise ``HarnessError``).

        Cancelled when the run ends first: a node still stopping then is a finding (the
        simulation reports it), and nothing may keep the run waiting for it.
        """


class _Stoppable(Protocol):
    """A bundled node (``bundled.BundledServer``)."""

    process: subprocess.Popen[str]

    def terminate(self) -> None: ...


class BundledNodeStopper:
    """SIGTERM to the bundled node's process, then its exit awaited by looking, not on a
    thread: a wait on a thread would hold the run's end until the node exited."""

    def __init__(self, nodes: Sequence[_Stoppable], within: float = STOP_WITHIN) -> None:
        self.nodes = nodes
        self.within = within

    async def stop(self, node: int) -> None:
        server = self.nodes[node]
        try:
            server.terminate()
        except OSError as exc:
            raise HarnessError(f"could not stop bundled node {node}: {exc}") from None
        deadline = time.monotonic() + self.within
        while server.process.poll() is None:
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"bundled node {node} did not exit within {self.within:g}s of SIGTERM"
                )
            await asyncio.sleep(POLL_EVERY)


class CommandNodeStopper:
    """The ``stop`` commands of a target file's nodes (node -> shell command)."""

    def __init__(self, commands: Mapping[int, str], within: float = STOP_WITHIN) -> None:
        self.commands = commands
        self.within = within

    async def stop(self, node: int) -> None:
        command = self.commands.get(node)
        if command is None:
            raise HarnessError(f"node {node} has no stop command")
        # Cancelled when the run ends first: nothing the command started outlives it.
        await run_command(command, f"node {node}'s stop command", self.within)
