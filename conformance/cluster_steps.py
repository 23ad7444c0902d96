"""Stopping a node of a cluster, for the check that a dead node's members are removed.

A check holding ``stop_node`` runs alone, after every other check (``items.Job``): the node
it stops stays down. It always stops the *last* node, never the first, where the ordinary
checks and a restart check run. What stops it: the suite itself for nodes it started
(``--bundled-nodes``: SIGKILL, a crash with no goodbye), or the last node's ``stop`` command
in the target file. Without either the check is never run: its requirement needs the
``node_control`` capability, which follows from the nodes (``nodes.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from .context import CheckContext
from .errors import HarnessError, PreconditionFailed
from .shell_commands import run_command
from .steps import step

__all__ = ["STOP_NODE_STEP", "CommandNodeStopper", "NodeStopper"]

#: The step that makes a check run alone.
STOP_NODE_STEP = "stop_node"

#: Seconds a node's ``stop`` command may take.
STOP_COMMAND_WITHIN = 30.0


class NodeStopper(Protocol):
    async def stop_last(self) -> None:
        """Stop the last node of the cluster; return once it is down (or raise
        ``HarnessError`` saying why not)."""


class CommandNodeStopper:
    """A user's cluster: the last node's ``stop`` command, bounded in time."""

    def __init__(self, command: str, within: float = STOP_COMMAND_WITHIN) -> None:
        self.command = command
        self.within = within

    async def stop_last(self) -> None:
        await run_command(self.command, "the stop command", self.within)


@step(STOP_NODE_STEP, "action")
async def _stop_node(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    """Kill the last node now; later steps watch what the other nodes make of it."""
    stopper = ctx.settings.node_stopper
    if stopper is None:
        raise PreconditionFailed(
            "nothing can stop a node of this target: give its last node stop: COMMAND, "
            "or let the suite start the nodes (--bundled-nodes)"
        )
    try:
        await stopper.stop_last()
    except HarnessError as exc:
        raise PreconditionFailed(str(exc)) from None
    ctx.transcript.record("node_stopped", node=len(ctx.target.nodes) - 1)
