"""Running client checks: each on its own scripted server with its own driver process, a few at
a time, every ending classified into a ``CheckResult`` (never a traceback).

How endings map to outcomes, and why:

- the scenario returned: PASSED;
- ``CheckFailed``: FAILED (the client broke the rule);
- ``PreconditionFailed``: INCONCLUSIVE (the situation could not be set up, e.g. the client never
  connected, which other requirements judge);
- ``NotApplicable``: SKIPPED (a feature missing from hello, an unsupported command);
- ``DriverError``, a spent budget, a harness bug: ERROR, because none of them says anything
  about the library; likewise a FAILED or INCONCLUSIVE check during which the driver died.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trustme

from ..errors import CheckFailed, PreconditionFailed
from ..outcomes import CheckOutcome
from ..results import CheckResult, normalize_figures
from ..spec import Check
from .driver_link import Driver, DriverError, Hello, NotApplicable
from .kit import Kit
from .scenarios import SCENARIOS
from .scripted_server import ScriptedServer
from .timeline import Timeline

__all__ = ["ClientRun", "Tls", "make_tls", "probe_driver", "run_checks"]

#: Seconds every check gets beyond its scenario's budget: starting and stopping the driver.
OVERHEAD_S = 20.0


@dataclass(frozen=True)
class Tls:
    """The run's throwaway CA: the test servers' certificate, and the file a driver trusts."""

    server_context: ssl.SSLContext
    ca_file: Path

    def driver_env(self) -> dict[str, str]:
        """The environment that makes the usual TLS stacks trust the CA (docs/client-driver.md)."""
        path = str(self.ca_file)
        return {"CONFORMANCE_CA_FILE": path, "NODE_EXTRA_CA_CERTS": path, "SSL_CERT_FILE": path}


def make_tls(directory: Path) -> Tls:
    """A CA and a certificate for 127.0.0.1 and localhost, made fresh for each run."""
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    directory.mkdir(parents=True, exist_ok=True)
    ca_file = directory / "conformance-ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    return Tls(context, ca_file)


@dataclass(frozen=True)
class ClientRun:
    """What a run of ``conformance client`` was asked for."""

    command: tuple[str, ...]
    report_dir: Path
    parallel: int = 3
    keep_transcripts: bool = False
    #: Called with each finished result (progress display).
    on_result: Callable[[CheckResult], None] | None = field(default=None, compare=False)


async def probe_driver(command: Sequence[str], tls: Tls) -> Hello:
    """Start the driver once, read its hello and stop it: a driver that cannot even say hello
    ends the run before any check, with one clear line."""
    timeline = Timeline("probe")
    driver = Driver(command, timeline, env=tls.driver_env())
    try:
        return await driver.start()
    finally:
        await driver.stop()


async def run_checks(checks: Iterable[Check], run: ClientRun, tls: Tls) -> dict[str, CheckResult]:
    gate = asyncio.Semaphore(max(1, run.parallel))
    results: dict[str, CheckResult] = {}

    async def one(check: Check) -> None:
        async with gate:
            result = await run_check(check, run, tls)
        results[check.full_id] = result
        if run.on_result is not None:
            run.on_result(result)

    await asyncio.gather(*(one(c) for c in checks))
    return results


async def run_check(check: Check, run: ClientRun, tls: Tls) -> CheckResult:
    started = time.monotonic()
    timeline = Timeline(check.full_id)
    server = ScriptedServer(timeline, tls=tls.server_context)
    driver = Driver(run.command, timeline, env=tls.driver_env())
    kit: Kit | None = None
    outcome, message = CheckOutcome.PASSED, ""
    try:
        scenario = SCENARIOS[str(check.property_name)]
        scenario.check_params(check.params or {}, check.full_id)
        await server.start()
        hello = await driver.start()
        kit = Kit(server, driver, hello, timeline)
        kit.need(*scenario.needs)
        budget = asyncio.timeout(scenario.budget_s)
        try:
            async with budget:
                await scenario.run(kit, check.params or {})
        except TimeoutError:
            if not budget.expired():
                raise
            outcome = CheckOutcome.ERROR
            message = f"the check did not finish within its budget of {scenario.budget_s:.0f} s"
    except CheckFailed as exc:
        outcome, message = CheckOutcome.FAILED, str(exc)
    except PreconditionFailed as exc:
        outcome, message = CheckOutcome.INCONCLUSIVE, str(exc)
    except NotApplicable as exc:
        outcome, message = CheckOutcome.SKIPPED, f"not applicable: {exc}"
    except DriverError as exc:
        outcome, message = CheckOutcome.ERROR, f"driver: {exc}"
    except Exception as exc:  # a harness bug still ends in a classified result
        outcome, message = CheckOutcome.ERROR, f"harness error: {type(exc).__name__}: {exc}"
    finally:
        try:
            await asyncio.wait_for(driver.stop(), OVERHEAD_S)
        except Exception as exc:
            timeline.note(f"stopping the driver failed: {exc!r}")
        await server.stop()
    if outcome in (CheckOutcome.FAILED, CheckOutcome.INCONCLUSIVE) and driver.problem is not None:
        outcome, message = CheckOutcome.ERROR, f"driver: {driver.problem} ({message})"
    elif outcome in (CheckOutcome.FAILED, CheckOutcome.INCONCLUSIVE) and driver.died:
        outcome = CheckOutcome.ERROR
        message = f"driver: exited with status {driver.exit_code} during the check ({message})"
    figures = {}
    if kit is not None and kit.figures:
        try:
            figures = normalize_figures(kit.figures)
        except ValueError as exc:
            message += f"\n(harness error, figures dropped: {exc})"
    if outcome not in (CheckOutcome.PASSED, CheckOutcome.SKIPPED) and timeline.entries:
        message += "\n--- last events ---\n" + "\n".join(timeline.tail())
    transcript = None
    if outcome is not CheckOutcome.PASSED or run.keep_transcripts:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "__", check.full_id) + ".jsonl"
        path = run.report_dir / "transcripts" / name
        timeline.write(path)
        transcript = str(path.relative_to(run.report_dir))
    return CheckResult(
        check_id=check.full_id,
        requirement_id=check.requirement_id,
        outcome=outcome,
        message=message,
        duration_s=time.monotonic() - started,
        transcript=transcript,
        figures=figures,
    )
