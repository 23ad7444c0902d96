from __future__ import annotations

import asyncio

import pytest

from conformance.errors import HarnessError
from conformance.restart import BundledRestarter, CommandRestarter


async def _restart(restarter: CommandRestarter | BundledRestarter) -> None:
    await restarter.begin()
    await restarter.finish()


def test_a_command_that_succeeds_is_a_restart() -> None:
    asyncio.run(_restart(CommandRestarter("true", within=5)))


def test_a_failing_command_is_named_with_its_status_and_last_words() -> None:
    restarter = CommandRestarter("echo 'no such unit' >&2; exit 3", within=5)
    with pytest.raises(HarnessError, match=r"exited with 3: .*\(no such unit\)"):
        asyncio.run(_restart(restarter))


def test_a_command_that_hangs_is_stopped_at_its_bound() -> None:
    with pytest.raises(HarnessError, match=r"did not finish within 0\.3s"):
        asyncio.run(_restart(CommandRestarter("sleep 10", within=0.3)))


def test_the_bundled_launchers_error_is_named() -> None:
    class Broken:
        def terminate(self) -> None:
            pass

        def wait_stopped(self) -> int:
            return 0

        def start_again(self) -> None:
            raise RuntimeError("port 4242 taken")

    with pytest.raises(HarnessError, match="could not restart the bundled server: port 4242"):
        asyncio.run(_restart(BundledRestarter(Broken())))
