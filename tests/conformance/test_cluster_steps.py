"""Stopping a user's node with its ``stop`` command: bounded in time, and a failure is one
line naming the command, never a hang."""

from __future__ import annotations

import asyncio
import time

import pytest

from conformance.cluster_steps import CommandNodeStopper
from conformance.errors import HarnessError


def test_a_command_that_succeeds_stops_the_node() -> None:
    asyncio.run(CommandNodeStopper("true").stop_last())


def test_a_failing_command_names_its_status_and_its_last_words() -> None:
    stopper = CommandNodeStopper("echo no such node >&2; exit 3")
    with pytest.raises(HarnessError, match=r"exited with 3: .*\(no such node\)"):
        asyncio.run(stopper.stop_last())


def test_a_command_that_hangs_is_stopped_at_its_bound() -> None:
    started = time.monotonic()
    with pytest.raises(HarnessError, match=r"did not finish within 0\.3s"):
        asyncio.run(CommandNodeStopper("sleep 30", within=0.3).stop_last())
    assert time.monotonic() - started < 5
