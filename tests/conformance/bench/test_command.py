"""``conformance bench`` with a made-up load generator: every usage mistake is one line and
status 2, a server that cannot be reached is status 3, phases alternate which server goes
first, and a run writes bench.json and bench.md with the status its loss decides."""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

import jsonschema
import pytest
from rich.console import Console

from conformance.bench.command import bench_command, measure
from conformance.bench.display import BenchProgress
from conformance.bench.model import ALL_PHASES, BenchSettings, BenchTarget, PhaseResult
from conformance.bench.options import (
    FD_MARGIN,
    QUICK_SETTINGS,
    add_bench_arguments,
    expand_phases,
    fit_file_limit,
    parse_subscribers,
    settings_from_args,
)
from conformance.bench.servers import REFERENCE_NAME, pid_is_running, reference_server
from conformance.cli import main
from conformance.errors import UsageError


class FakeGenerator:
    """Answers every phase with one figure; ``loss`` and ``failing`` say which phases go wrong."""

    def __init__(
        self, settings: BenchSettings, *, loss: str = "", failing: str = "", calls: list[str]
    ) -> None:
        self.settings = settings
        self.loss = loss
        self.failing = failing
        self.calls = calls
        self.entered = self.exited = False

    def __enter__(self) -> FakeGenerator:
        self.entered = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.exited = True

    def run_phase(
        self, target: BenchTarget, phase: str, on_progress: Callable[[str, float], None]
    ) -> PhaseResult:
        assert self.entered
        assert not self.exited
        self.calls.append(f"{phase}@{target.name}")
        on_progress("half way", 0.5)
        if phase == self.failing:
            raise RuntimeError("the workers fell over")
        return PhaseResult(
            phase,
            {"deliveries_per_s": 1000.0},
            loss=1 if phase == self.loss else 0,
            server_cpu_percent=50.0 if target.server_pid else None,
            loadgen_cpu_percent=30.0,
            seconds=0.01,
        )


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    return parser.parse_args(list(argv))


def _run(tmp_path: Path, *argv: str, loss: str = "", failing: str = "") -> tuple[int, list[str]]:
    calls: list[str] = []

    def factory(settings: BenchSettings) -> FakeGenerator:
        return FakeGenerator(settings, loss=loss, failing=failing, calls=calls)

    code = bench_command(_args("--out", str(tmp_path / "out"), *argv), factory)
    return code, calls


def _error_line(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(["bench", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--phases", "idle,warp"], "unknown phase 'warp'"),
        (["--phases", ","], "--phases names no phase"),
        (["--subscribers", "1,x"], "'x' is not a count"),
        (["--subscribers", "0"], "'0' is not a count"),
        (["--compare", "--target", "ws://127.0.0.1:1"], "--compare starts the reference server"),
        (["--server-pid", "1"], "--server-pid goes with --target"),
        (["--server-pid", "0", "--target", "ws://x"], "must be positive"),
        (["--target", "ws://127.0.0.1:1", "--server-arg=--x"], "--server-arg is for"),
        (["--soketi-peers", "/x"], "--soketi-peers goes with --compare"),
        (["--key", "k"], "--key go with --target"),
        (["--insecure"], "--insecure go with --target"),
        (
            ["--target", "ws://127.0.0.1:1", "--app-id", "1"],
            "bench: a URL target also needs --key, --secret",
        ),
        (["--target", "nowhere.yaml"], "bench: --target nowhere.yaml: neither a URL nor a target"),
        (
            [
                "--target",
                "ws://127.0.0.1:1",
                "--app-id",
                "1",
                "--key",
                "k",
                "--secret",
                "s",
                "--insecure",
            ],
            "--insecure is for a wss:// target",
        ),
        (["--connections", "-3"], "must be positive"),
    ],
)
def test_usage_mistakes_are_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    assert expected in _error_line(capsys, *argv)


def test_a_pid_that_is_not_running_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_is_running(child.pid)
    line = _error_line(
        capsys, "--target", "ws://127.0.0.1:1", "--app-id", "1", "--key", "k", "--secret", "s",
        "--server-pid", str(child.pid),
    )  # fmt: skip
    assert f"--server-pid {child.pid}: no such process is running" in line


def test_a_target_that_does_not_answer_is_status_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = main(
        ["bench", "--target", f"ws://127.0.0.1:{port}", "--app-id", "1", "--key", "k",
         "--secret", "s", "--out", str(tmp_path)]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    assert len(err) == 1
    assert "nothing answers" in err[0]


def test_phases_expand_by_subscribers_in_run_order() -> None:
    assert expand_phases(None, None) == ALL_PHASES
    assert expand_phases(["latency", "idle", "fanout-batch"], [10, 1]) == (
        "idle", "fanout-batch-1", "fanout-batch-10", "latency-1", "latency-10",
    )  # fmt: skip
    assert expand_phases(["latency-7", "latency", "connect"], None) == (
        "connect", "latency-1", "latency-7", "latency-100",
    )  # fmt: skip
    assert parse_subscribers("100, 1,100") == (1, 100)
    with pytest.raises(UsageError, match="unknown phase 'latency-0'"):
        expand_phases(["latency-0"], None)


def test_quick_sizes_yield_to_explicit_ones() -> None:
    quick = settings_from_args(_args("--quick", "--connections", "70"))
    assert quick.connections == 70
    assert quick.idle_connections == QUICK_SETTINGS.idle_connections
    assert "fanout-events-10" in quick.phases
    assert "fanout-events-1000" not in quick.phases
    assert settings_from_args(_args("--phase-timeout", "5")).phase_timeout == 5.0


def test_the_idle_phase_is_lowered_to_the_file_limit_or_refused() -> None:
    settings = BenchSettings(idle_connections=10_000)
    assert fit_file_limit(settings, 20_000) == (settings, None)
    lowered, note = fit_file_limit(settings, 4_000)
    assert lowered.idle_connections == 4_000 - FD_MARGIN
    assert note is not None
    assert "holds 3,488 idle connections, not 10,000" in note
    no_idle = BenchSettings(phases=("connect",), idle_connections=10_000)
    assert fit_file_limit(no_idle, 4_000) == (no_idle, None)
    with pytest.raises(UsageError, match="no room for the idle phase"):
        fit_file_limit(BenchSettings(phases=("idle",)), FD_MARGIN + 10)
    with pytest.raises(UsageError, match="too low for 1,000 connections"):
        fit_file_limit(BenchSettings(phases=("connect",)), 1_000)


def _targets() -> list[BenchTarget]:
    return [
        BenchTarget(name, f"ws://127.0.0.1:{n}", f"http://127.0.0.1:{n}", "1", "k", "s")
        for n, name in ((1, "ours"), (2, "theirs"))
    ]


def test_phases_alternate_which_server_goes_first() -> None:
    calls: list[str] = []
    generator = FakeGenerator(BenchSettings(), calls=calls, failing="relay")
    with BenchProgress(Console(), 6, live=False) as shown, generator:
        results = measure(generator, _targets(), ("idle", "connect", "relay"), shown)
    assert calls == [
        "idle@ours", "idle@theirs", "connect@theirs", "connect@ours", "relay@ours",
        "relay@theirs",
    ]  # fmt: skip
    assert [r.phase for r in results["theirs"]] == ["idle", "connect", "relay"]
    assert results["ours"][2].error == "RuntimeError: the workers fell over"


def test_a_server_that_died_is_not_measured_again() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = BenchTarget("dead", "ws://127.0.0.1:1", "http://127.0.0.1:1", "1", "k", "s", child.pid)
    calls: list[str] = []
    generator = FakeGenerator(BenchSettings(), calls=calls)
    with BenchProgress(Console(), 2, live=False) as shown, generator:
        results = measure(generator, [dead], ("a", "b"), shown)
    assert calls == ["a@dead"]
    assert results["dead"][1].error == f"the server process {child.pid} is gone"


def test_a_run_against_the_reference_server_writes_its_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, calls = _run(tmp_path, "--quick", "--phases", "connect,latency", "--no-progress")
    out = capsys.readouterr()
    assert code == 0, out.err
    assert calls == [f"{p}@{REFERENCE_NAME}" for p in ("connect", "latency-1", "latency-10")]
    data = json.loads((tmp_path / "out" / "bench.json").read_text(encoding="utf-8"))
    assert data["exit_code"] == 0
    assert data["settings"]["connections"] == QUICK_SETTINGS.connections
    [result] = [r for r in data["results"][REFERENCE_NAME] if r["phase"] == "connect"]
    assert result["server_cpu_percent"] == 50.0  # the server's PID was handed to the generator
    assert (tmp_path / "out" / "bench.md").read_text(encoding="utf-8").startswith("# conformance")
    assert (tmp_path / "out" / "reference-server.log").exists()
    assert "1,000/s" in out.out  # the table goes to standard output


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BenchTarget]:
    """A server someone else runs, for the runs that need one but not one of their own."""
    with reference_server(tmp_path_factory.mktemp("running") / "server.log") as target:
        yield target


def _flags(target: BenchTarget) -> list[str]:
    return [
        "--target", target.ws_url, "--app-id", target.app_id, "--key", target.key,
        "--secret", target.secret, "--server-pid", str(target.server_pid),
    ]  # fmt: skip


def test_loss_or_a_failed_phase_makes_the_status_1_and_json_prints_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], running: BenchTarget
) -> None:
    name = running.ws_url.removeprefix("ws://")  # a URL target is called by its host and port
    code, _ = _run(
        tmp_path, *_flags(running), "--phases", "latency-1", "--json", "--no-progress",
        loss="latency-1",
    )  # fmt: skip
    out = capsys.readouterr()
    assert code == 1
    result = json.loads(out.out)["results"][name][0]
    assert result["loss"] == 1
    assert result["server_cpu_percent"] == 50.0  # --server-pid reached the generator
    code, _ = _run(tmp_path, *_flags(running), "--phases", "relay", failing="relay")
    assert code == 1
    assert "the workers fell over" in capsys.readouterr().out


def test_a_log_gets_plain_progress_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], running: BenchTarget
) -> None:
    name = running.ws_url.removeprefix("ws://")
    code, _ = _run(tmp_path, *_flags(running), "--phases", "relay")
    err = capsys.readouterr().err
    assert code == 0
    assert f"bench: [1/1] relay on {name}\n" in err
    assert f"bench: [1/1] relay on {name}: deliveries_per_s 1,000/s; loss 0" in err


def test_a_quick_run_of_the_real_load_generator_against_the_reference_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    phases = ("connect", "fanout-batch-10", "latency-1")
    code = main(
        ["bench", "--quick", "--phases", ",".join(phases), "--out", str(tmp_path), "--json",
         "--no-progress"]
    )  # fmt: skip
    out = capsys.readouterr()
    data = json.loads(out.out)
    schema = json.loads(
        (Path(__file__).parents[3] / "schemas" / "bench.schema.json").read_text(encoding="utf-8")
    )
    jsonschema.Draft202012Validator(schema).validate(data)
    results = {r["phase"]: r for r in data["results"][REFERENCE_NAME]}
    assert code == 0, (out.err, results)
    assert list(results) == list(phases)
    for phase in phases:
        assert results[phase]["error"] is None
        assert results[phase]["loss"] == results[phase]["duplicates"] == 0
        assert results[phase]["server_cpu_percent"] is not None
    assert results["connect"]["figures"]["failed"] == 0
    assert results["fanout-batch-10"]["figures"]["deliveries_per_s"] > 0
    assert results["latency-1"]["figures"]["p99_ms"] > 0
    assert json.loads((tmp_path / "bench.json").read_text(encoding="utf-8")) == data


def test_a_soketi_config_beyond_loopback_is_status_3_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    peers = tmp_path / "peers"
    peers.mkdir()
    (peers / "package.json").write_text("{}", encoding="utf-8")
    (peers / "soketi.json").write_text(
        json.dumps({"host": "0.0.0.0", "metrics.host": "127.0.0.1"}), encoding="utf-8"
    )
    out = tmp_path / "out"
    code = main(["bench", "--compare", "--soketi-peers", str(peers), "--out", str(out)])
    assert code == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "refusing to start Soketi" in err[0]
    assert not (out / "reference-server.log").exists()
