"""Stopping a node for a ``stop_node`` incident: a bundled node's process gets SIGTERM and is
waited for, bounded; a target file's node runs its stop command, bounded, and a command that
fails or hangs is one line naming the node and the command; a run that ends first cancels the
stop and leaves nothing running."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance.errors import HarnessError
from conformance.simulate.node_stop import BundledNodeStopper, CommandNodeStopper

#: A child that says when it got SIGTERM, then exits with 7 (as a node exits after its drain).
#: The handler writes with ``os.write``: a signal landing while ``print('up')`` still holds
#: stdout's lock would make a ``print`` in the handler a reentrant call.
DRAINS = (
    "import os, signal, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: (os.write(1, b'drained\\n'), os._exit(7)))\n"
    "print('up', flush=True)\n"
    "time.sleep(30)\n"
)
#: A child that hears SIGTERM and stays (as a node that hangs in its shutdown).
HANGS = (
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: None)\n"
    "print('up', flush=True)\n"
    "time.sleep(30)\n"
)


class ChildNode:
    """A real child process standing for a bundled node: what ``BundledServer`` offers."""

    def __init__(self, code: str = DRAINS) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "up"

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def end(self) -> None:
        self.process.kill()
        self.process.wait(timeout=5)
        assert self.process.stdout is not None
        self.process.stdout.close()


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
            node.end()


def test_a_bundled_node_that_does_not_exit_is_one_line() -> None:
    node = ChildNode(HANGS)
    try:
        with pytest.raises(HarnessError) as caught:
            asyncio.run(BundledNodeStopper([node], within=0.3).stop(0))
        assert str(caught.value) == "bundled node 0 did not exit within 0.3s of SIGTERM"
        assert node.process.poll() is None  # it heard SIGTERM and stayed
    finally:
        node.end()


def test_a_run_that_ends_first_cancels_the_stop_and_its_command(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    command = f"sleep 30 & echo $! > {pid_file}; wait"

    async def end_early() -> None:
        stopping = asyncio.ensure_future(CommandNodeStopper({1: command}).stop(1))
        for _ in range(400):  # until the command has started its child (at most 20 s: busy CI)
            if pid_file.exists() and pid_file.read_text().strip():
                break
            await asyncio.sleep(0.05)
        assert pid_file.read_text().strip(), "the stop command never started its child"
        stopping.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stopping

    asyncio.run(end_early())
    child = int(pid_file.read_text())
    for _ in range(400):  # the group was killed: the child goes (at most 20 s)
        if not Path(f"/proc/{child}").exists() or "Z" in _state(child):
            break
        time.sleep(0.05)
    assert not Path(f"/proc/{child}").exists() or "Z" in _state(child)


def _state(pid: int) -> str:
    """The process's state letter from /proc (Z: a zombie, gone but not yet reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


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
