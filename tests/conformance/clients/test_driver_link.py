"""The driver link never trusts the driver: silence, garbage, a crash and a hang each end the
check as a clear ERROR, and a missing feature as not applicable."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path

import pytest

from conformance.clients.driver_link import Driver, DriverError
from conformance.clients.runner import ClientRun, Tls, make_tls, run_check
from conformance.clients.timeline import Timeline
from conformance.outcomes import CheckOutcome
from conformance.spec import Check

HELLO = '{"type": "hello", "client": "fake", "version": "0", "features": [], "defaults": {}}'


def _script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "fake_driver.py"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return [sys.executable, str(path)]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("ca"))


def _check(name: str) -> Check:
    return Check("CLIENT-PING-01", "x", "t", "property", {}, property_name=name, params={})


def test_no_hello_is_a_driver_error(tmp_path: Path) -> None:
    command = _script(tmp_path, "import time\ntime.sleep(30)\n")

    async def scenario() -> str:
        driver = Driver(command, Timeline("t"))
        try:
            await driver.start(hello_timeout=0.5)
        except DriverError as exc:
            return str(exc)
        finally:
            await driver.stop()
        return "no error"

    assert "no hello within" in asyncio.run(scenario())


def test_garbage_and_unknown_replies_are_violations(tmp_path: Path) -> None:
    command = _script(
        tmp_path,
        f"""
        import sys
        print({HELLO!r}, flush=True)
        for line in sys.stdin:
            print("this is not json", flush=True)
        """,
    )

    async def scenario() -> tuple[str, bool]:
        driver = Driver(command, Timeline("t"))
        await driver.start()
        try:
            await driver.command("connect", timeout=2)
        except DriverError as exc:
            return str(exc), driver.died
        finally:
            await driver.stop()
        return "no error", False

    message, died = asyncio.run(scenario())
    assert "not JSON" in message
    assert died


def test_a_crashing_driver_ends_the_check_as_an_error(tmp_path: Path, tls: Tls) -> None:
    command = _script(tmp_path, f"print({HELLO!r}, flush=True)\nraise SystemExit(7)\n")
    run = ClientRun(tuple(command), tmp_path / "report")
    result = asyncio.run(run_check(_check("answers_pusher_ping"), run, tls))
    assert result.outcome is CheckOutcome.ERROR
    assert result.message.startswith("driver:")
    assert result.transcript is not None
    assert (tmp_path / "report" / result.transcript).is_file()


def test_a_missing_feature_makes_the_check_not_applicable(tmp_path: Path, tls: Tls) -> None:
    command = _script(
        tmp_path,
        f"""
        import sys
        print({HELLO!r}, flush=True)
        for line in sys.stdin:
            pass
        """,
    )
    run = ClientRun(tuple(command), tmp_path / "report")
    result = asyncio.run(run_check(_check("signin_request"), run, tls))
    assert result.outcome is CheckOutcome.SKIPPED
    assert "does not declare signin" in result.message


def test_a_driver_that_ignores_commands_is_killed_in_bounded_time(tmp_path: Path, tls: Tls) -> None:
    command = _script(
        tmp_path,
        f"""
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print({HELLO!r}, flush=True)
        time.sleep(120)
        """,
    )
    run = ClientRun(tuple(command), tmp_path / "report")
    result = asyncio.run(run_check(_check("answers_pusher_ping"), run, tls))
    assert result.outcome is CheckOutcome.ERROR
    assert "did not answer 'connect'" in result.message
    assert result.duration_s < 20
