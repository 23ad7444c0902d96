"""Stopping a node for a ``stop_node`` incident: a bundled node's process gets SIGTERM and is
waited for; a target file's node runs its stop command, bounded, and a command that fails or
hangs is one line naming the node and the command."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

import pytest

from conformance.errors import HarnessError
from conformance.simulate.node_stop import BundledNodeStopper, CommandNodeStopper

#: A child that says when it got SIGTERM, then exits with 7 (as a node exits after its drain).
DRAINS = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: (print('drained', flush=True), sys.exit(7)))\n"
    "print('up', flush=True)\n"
    "time.sleep(30)\n"
)


class ChildNode:
    """A real child process standing for a bundled node: what ``BundledServer`` offers."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", DRAINS], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "up"

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def wait_stopped(self, timeout: float = 10.0) -> int:
        return self.process.wait(timeout=timeout)


def test_a_bundled_node_gets_sigterm_and_is_waited_for() -> None:
    nodes = [ChildNode(), ChildNode()]
    try:
        asyncio.run(BundledNodeStopper(nodes).stop(1))
        assert nodes[1].process.returncode == 7
        assert nodes[1].process.stdout is not None
        assert nodes[1].process.stdout.read().strip() == "drained"
        assert nodes[0].process.poll() is None  # the other node is left alone
    finally:
        for node in nodes:
            node.process.kill()
            node.process.wait(timeout=5)
            assert node.process.stdout is not None
            node.process.stdout.close()


def test_a_stop_command_that_succeeds() -> None:
    asyncio.run(CommandNodeStopper({1: "true"}).stop(1))


@pytest.mark.parametrize(
    ("command", "within", "message"),
    [
        (
            "echo cannot reach node >&2; exit 3",
            5.0,
            "node 1's stop command exited with 3: echo cannot reach node >&2; exit 3"
            " (cannot reach node)",
        ),
        ("sleep 5", 0.3, "node 1's stop command did not finish within 0.3s: sleep 5"),
    ],
)
def test_a_stop_command_that_fails_or_hangs_is_one_line(
    command: str, within: float, message: str
) -> None:
    with pytest.raises(HarnessError) as caught:
        asyncio.run(CommandNodeStopper({1: command}, within).stop(1))
    assert str(caught.value) == message


def test_a_node_without_a_stop_command() -> None:
    with pytest.raises(HarnessError, match=r"^node 2 has no stop command$"):
        asyncio.run(CommandNodeStopper({1: "true"}).stop(2))
