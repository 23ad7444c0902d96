"""``conformance client [options] -- COMMAND...``: certify a client library through its driver.

The run: load the client specs, make a throwaway CA, start the driver once to read its hello
(a driver that cannot say hello ends the run with one line and status 3), run the selected
checks a few at a time, each with its own scripted server and driver process, then write the
same report files as ``conformance run`` and print the same console summary.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import TargetUnreachable, UsageError
from ..outcomes import CheckOutcome
from ..report import write_all
from ..results import CheckResult, build_report
from ..spec import Check, SpecSet, load_specs
from .driver_link import DriverError, Hello
from .runner import ClientRun, make_tls, probe_driver, run_checks
from .scenarios import SCENARIOS, scenario_names

__all__ = ["add_client_arguments", "client_command", "load_client_specs"]


def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--report-dir",
        default="client-report",
        metavar="DIR",
        help="where the report files go (default: client-report)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        action="extend",
        default=[],
        metavar="ID",
        help="run only these requirements or checks (CLIENT-PING-01, CLIENT-PING-01/pong)",
    )
    parser.add_argument(
        "--parallel",
        type=int,
        default=3,
        metavar="N",
        help="checks run at once, each with its own server and driver (3)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="a DISPUTED MUST counts as a failure for the exit code",
    )
    parser.add_argument(
        "--keep-transcripts", action="store_true", help="write the timeline of passing checks too"
    )
    parser.add_argument("--specs", metavar="DIR", help="a specs directory (default: bundled)")
    parser.add_argument(
        "driver",
        nargs="*",
        metavar="COMMAND",
        help="after --: the driver command line (docs/client-driver.md)",
    )


def load_client_specs(specs: str | None) -> SpecSet:
    """The client specs, each check's scenario known and its params ones the scenario takes."""
    loaded = load_specs(
        Path(specs) if specs else None, subject="client", known_properties=scenario_names()
    )
    for check in loaded.checks:
        SCENARIOS[str(check.property_name)].check_params(check.params or {}, check.full_id)
    return loaded


def _selected(specs: SpecSet, only: list[str]) -> list[Check]:
    checks = list(specs.checks)
    if not only:
        return checks
    known = {c.full_id for c in checks} | {r.id for r in specs.requirements}
    unknown = [name for name in only if name not in known]
    if unknown:
        raise UsageError(
            f"client: --only names no client requirement or check: {', '.join(unknown)}"
        )
    return [c for c in checks if c.requirement_id in only or c.full_id in only]


def _progress(result: CheckResult) -> None:
    first = result.message.splitlines()[0] if result.message else ""
    tail = f": {first[:120]}" if first and result.outcome is not CheckOutcome.PASSED else ""
    print(
        f"{result.outcome.value:<12} {result.check_id} ({result.duration_s:.1f} s){tail}",
        file=sys.stderr,
        flush=True,
    )


def _target(hello: Hello, command: list[str]) -> dict[str, Any]:
    return {
        "kind": "client",
        "name": f"{hello.client} {hello.version}",
        "client": hello.client,
        "version": hello.version,
        "command": shlex.join(command),
        "capabilities": sorted(hello.features),
        "defaults": dict(hello.defaults),
    }


def client_command(args: argparse.Namespace) -> int:
    command = list(args.driver)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UsageError(
            "client: give the driver command after --, e.g. conformance client -- "
            "node drivers/pusher-js.mjs"
        )
    if args.parallel < 1:
        raise UsageError("client: --parallel must be at least 1")
    specs = load_client_specs(args.specs)
    checks = _selected(specs, list(args.only))
    report_dir = Path(args.report_dir).resolve()
    report_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="conformance-client-") as scratch:
        tls = make_tls(Path(scratch))
        try:
            hello = asyncio.run(probe_driver(command, tls))
        except DriverError as exc:
            raise TargetUnreachable(f"client: the driver {shlex.join(command)!r}: {exc}") from None
        print(
            f"certifying {hello.client} {hello.version} "
            f"(features: {', '.join(sorted(hello.features)) or 'none'}); {len(checks)} checks, "
            f"{args.parallel} at a time",
            file=sys.stderr,
            flush=True,
        )
        run = ClientRun(
            tuple(command), report_dir, args.parallel, args.keep_transcripts, on_result=_progress
        )
        results = asyncio.run(run_checks(checks, run, tls))
    report = build_report(
        specs,
        results,
        target=_target(hello, command),
        run={
            "subject": "client",
            "started_at": started,
            "parallel": args.parallel,
            **({"only": list(args.only)} if args.only else {}),
        },
        strict=args.strict,
    )
    write_all(report, report_dir)
    print(report.console())
    return int(report.exit)
