"""``conformance bench``: throughput, latency and memory of a Pusher-protocol server, alone or
side by side with Soketi (docs/bench.md).

Exit status: 0 every phase measured with no loss and no duplicates, 1 loss, duplicates or a
phase that could not be measured, 2 a usage mistake (one line naming it), 3 a server could not
be reached or started.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Protocol

from rich.console import Console

from ..errors import UsageError
from ..smoke.command import smoke_target
from ..tls import insecure_warning
from .display import BenchProgress
from .loadgen import LoadGenerator
from .model import BenchSettings, BenchTarget, PhaseResult
from .options import (
    add_bench_arguments,
    check_combinations,
    fit_file_limit,
    raise_file_limit,
    settings_from_args,
)
from .report import BenchRun, console_table, outcome_code, run_headline, to_json, to_markdown
from .servers import (
    default_peers_dir,
    default_soketi_dir,
    external_target,
    pid_is_running,
    read_soketi_config,
    reference_server,
    soketi_server,
)

__all__ = ["Generator", "GeneratorFactory", "add_bench_arguments", "bench_command", "measure"]


class Generator(Protocol):
    """What the bench needs of a load generator (``loadgen.LoadGenerator``)."""

    def __enter__(self) -> Generator: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    def run_phase(
        self, target: BenchTarget, phase: str, on_progress: Callable[[str, float], None]
    ) -> PhaseResult: ...


GeneratorFactory = Callable[[BenchSettings], Generator]


# --- the run ------------------------------------------------------------------------------------


def _load_generator(settings: BenchSettings) -> Generator:
    generator: Generator = LoadGenerator(settings)
    return generator


ServerFactory = Callable[[], contextlib.AbstractContextManager[BenchTarget]]


def _servers(args: argparse.Namespace, out: Path) -> list[ServerFactory]:
    """How to get at each server to measure, in the order they are started."""
    if args.target:
        target = smoke_target(args, command="bench")
        if target.insecure:
            print(f"bench: {insecure_warning(target.ws_url)}", file=sys.stderr, flush=True)
        return [lambda: external_target(target, args.server_pid)]
    reference: ServerFactory = lambda: reference_server(  # noqa: E731
        out / "reference-server.log", tuple(args.server_arg)
    )
    if not args.compare:
        return [reference]
    peers = Path(args.soketi_peers) if args.soketi_peers else default_peers_dir()
    if not peers.is_dir():
        raise UsageError(f"bench: the Soketi peers folder {peers} does not exist (--soketi-peers)")
    read_soketi_config(peers)  # a config that is not loopback-only stops the run here
    return [reference, lambda: soketi_server(peers, default_soketi_dir(), out / "soketi.log")]


def measure(
    generator: Generator,
    targets: Sequence[BenchTarget],
    phases: Sequence[str],
    progress: BenchProgress,
) -> dict[str, tuple[PhaseResult, ...]]:
    """Every phase against every target, phase by phase; who goes first alternates, so that
    a machine growing busier or cooler weighs on both alike. A phase that raises is reported
    as an error, and a server whose process is gone is not measured again."""
    results: dict[str, list[PhaseResult]] = {t.name: [] for t in targets}
    gone: dict[str, str] = {}
    for index, phase in enumerate(phases):
        for target in targets if index % 2 == 0 else list(reversed(targets)):
            if target.name in gone:
                results[target.name].append(PhaseResult(phase, {}, error=gone[target.name]))
                continue
            progress.start(phase, target.name)
            try:
                result = generator.run_phase(target, phase, progress.update)
            except Exception as exc:  # reported in the table; the other phases still run
                result = PhaseResult(phase, {}, error=f"{type(exc).__name__}: {exc}")
            progress.done(result)
            results[target.name].append(result)
            if target.server_pid is not None and not pid_is_running(target.server_pid):
                gone[target.name] = f"the server process {target.server_pid} is gone"
    return {name: tuple(found) for name, found in results.items()}


@contextlib.contextmanager
def _started(factories: Sequence[ServerFactory]) -> Iterator[list[BenchTarget]]:
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(factory()) for factory in factories]


def bench_command(args: argparse.Namespace, make_generator: GeneratorFactory | None = None) -> int:
    check_combinations(args)
    settings = settings_from_args(args)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"bench: cannot create --out {out}: {exc.strerror or exc}") from None
    factories = _servers(args, out)
    settings, lowered = fit_file_limit(settings, raise_file_limit())
    notes = (lowered,) if lowered else ()
    console = Console(stderr=True)
    for note in notes:
        console.print(f"bench: {note}", highlight=False, soft_wrap=True)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    began = time.monotonic()
    with _started(factories) as targets:
        names = ", ".join(f"{t.name} ({t.ws_url})" for t in targets)
        console.print(
            f"bench: {len(settings.phases)} phase(s) against {names};"
            f" {settings.workers} load-generator worker(s)",
            highlight=False,
            soft_wrap=True,
        )
        progress = BenchProgress(
            console, len(settings.phases) * len(targets), live=not args.no_progress
        )
        with progress, (make_generator or _load_generator)(settings) as generator:
            results = measure(generator, targets, settings.phases, progress)
    run = BenchRun(settings, tuple(targets), results, started_at, time.monotonic() - began, notes)
    code = outcome_code(results)
    data = to_json(run, code)
    (out / "bench.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    (out / "bench.md").write_text(to_markdown(run), encoding="utf-8")
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        table_console = Console(width=max(220, Console().width))  # as wide as it needs
        table_console.print(f"conformance bench: {run_headline(run)}", highlight=False)
        table_console.print(console_table(run))
        console.print(
            f"bench: report written to {out}/bench.{{json,md}}", highlight=False, soft_wrap=True
        )
    return code
