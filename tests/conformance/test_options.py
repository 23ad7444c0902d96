"""The run options: one declaration read the same way by the command line and the plugin, checked
once, and handed from the one to the other as they are."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.errors import UsageError
from conformance.options import (
    RUN_OPTIONS,
    RunOptions,
    add_run_arguments,
    require_selection,
)
from conformance.spec import load_specs
from conformance.target import target_from_options

FLAG_TARGET = [
    "--ws-url", "ws://127.0.0.1:1", "--http-url", "http://127.0.0.1:1",
    "--app-id", "1", "--key", "k", "--secret", "s",
]  # fmt: skip

#: Every option given once (twice where it repeats), as the command line spells them.
EVERY_OPTION = [
    *FLAG_TARGET,
    "--capability", "webhooks", "--capability", "client_events",
    "--activity-timeout", "4", "--pong-timeout", "2.5", "--max-event-bytes", "2048",
    "--webhook-listen", "http://127.0.0.1:9/hooks",
    "--report-dir", "out", "--profile", "thorough", "--seed", "7", "--max-examples", "3",
    "--timeout-multiplier", "1.5", "--check", "PROTO-*", "--check", "HTTP-AUTH-04",
    "--level", "MUST", "--concurrency", "2", "--keep-transcripts", "--specs", "my specs",
    "--no-save-regressions",
]  # fmt: skip


def _from_cli(words: list[str]) -> RunOptions:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_run_arguments(parser)
    return RunOptions.from_namespace(parser.parse_args(words))


def _from_pytest(words: list[str], tmp_path: Path) -> RunOptions:
    """What the plugin makes of the same words, spelled its way, under a real pytest parser."""
    seen: list[RunOptions] = []

    class Grab:
        def pytest_configure(self, config: pytest.Config) -> None:
            seen.append(RunOptions.from_pytest(config))

    spelled = [w.replace("--", "--conformance-", 1) if w.startswith("--") else w for w in words]
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\n")
    args = [*spelled, "-c", str(ini), "--rootdir", str(tmp_path), "--collect-only", "-q"]
    pytest.main(
        [*args, "-p", "no:cacheprovider", "-p", "no:asyncio", str(tmp_path)], plugins=[Grab()]
    )
    (options,) = seen
    return options


def test_every_field_is_declared_once_with_its_own_flags() -> None:
    names = [option.name for option in RUN_OPTIONS]
    assert names == [field.name for field in dataclasses.fields(RunOptions)]
    flags = [flag for option in RUN_OPTIONS for flag in option.flags]
    assert len(flags) == len(set(flags))
    assert all(o.pytest_flag == "--conformance-" + o.long_flag[2:] for o in RUN_OPTIONS)


def test_both_parsers_read_the_same_words_the_same_way(tmp_path: Path) -> None:
    from_cli = _from_cli(EVERY_OPTION)
    assert from_cli == _from_pytest(EVERY_OPTION, tmp_path)
    assert from_cli.capabilities == ("webhooks", "client_events")
    assert from_cli.max_event_bytes == 2048
    assert from_cli.selected_levels == frozenset({"MUST"})


def test_both_parsers_default_to_the_dataclass_defaults(tmp_path: Path) -> None:
    assert _from_cli([]) == RunOptions() == _from_pytest([], tmp_path)
    assert RunOptions().selected_levels == frozenset({"MUST", "SHOULD", "MAY"})


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["--concurrency", "0"], "must be positive: '0'"),
        (["--activity-timeout", "soon"], "not a number: 'soon'"),
        (["--seed", "x"], "not a whole number: 'x'"),
        (["--capability", "teleport"], r"unknown capability: teleport \(known: "),
        (["--webhook-listen", "http://10.0.0.1:80/"], "loopback"),
        (["--level", "OFTEN"], "invalid choice"),
    ],
)
def test_each_value_is_checked_as_it_is_parsed(words: list[str], message: str) -> None:
    with pytest.raises(argparse.ArgumentError, match=message):
        _from_cli(words)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"target_file": "t.yaml", "ws_url": "ws://x:1"}, "give either --target FILE or the"),
        ({"ws_url": "ws://x:1", "key": "k"}, "also needs --http-url, --app-id, --secret$"),
        ({"regressions_dir": "r", "no_save_regressions": True}, "--no-save-regressions, not"),
    ],
)
def test_options_that_cannot_go_together_are_refused(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        RunOptions(**changes)  # type: ignore[arg-type]


def test_no_target_means_the_bundled_server() -> None:
    assert target_from_options(RunOptions(capabilities=("webhooks",))) is None


def test_a_target_from_flags_takes_the_timing_limit_and_webhook_flags() -> None:
    words = [*FLAG_TARGET, "--capability", "webhooks", "--pong-timeout", "2"]
    words += ["--max-event-bytes", "99", "--webhook-listen", "http://127.0.0.1:9/h"]
    target = target_from_options(_from_cli(words))
    assert target is not None
    assert target.name == "command-line target"
    assert target.capabilities == frozenset({"webhooks"})
    assert (target.timings.activity_timeout, target.timings.pong_timeout) == (None, 2.0)
    assert target.max_event_bytes == 99
    assert target.webhook_listen == "http://127.0.0.1:9/h"


def test_a_target_file_gains_the_declared_capabilities(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "ws_url: ws://127.0.0.1:1\nhttp_url: http://127.0.0.1:1\napp_id: 1\nkey: k\nsecret: s\n"
    )
    target = target_from_options(RunOptions(target_file=str(path), capabilities=("watchlist",)))
    assert target is not None
    assert target.capabilities == frozenset({"watchlist"})
    with pytest.raises(UsageError, match="capability 'webhooks' needs webhooks"):
        target_from_options(RunOptions(target_file=str(path), capabilities=("webhooks",)))


def test_the_replay_prefix_quotes_values_and_hides_the_secret() -> None:
    options = _from_cli([*FLAG_TARGET, "--specs", "my specs", "--capability", "watchlist"])
    assert options.replay_prefix() == (
        "conformance run --ws-url ws://127.0.0.1:1 --http-url http://127.0.0.1:1 --app-id 1 "
        "--key k --secret $SECRET --capability watchlist --specs 'my specs'"
    )
    assert RunOptions(target_file="$HOME/t.yaml").replay_prefix() == (
        "conformance run --target '$HOME/t.yaml'"
    )
    assert RunOptions().replay_prefix() == "conformance run"


def test_a_selection_of_nothing_is_refused() -> None:
    specs = load_specs(None)
    require_selection(specs, RunOptions(checks=("PROTO-CONN-05*",)))
    with pytest.raises(UsageError, match="no check matches NOPE-99, NOPE-98"):
        require_selection(specs, RunOptions(checks=("NOPE-99", "NOPE-98")))


CARRIED = """
import sys
import pytest
from conformance.options import OptionsCarrier, RunOptions
from conformance.spec import load_specs
from conformance.target import target_from_options

files = [str(f.path) for f in load_specs(None).files]
options = RunOptions(report_dir=sys.argv[1], checks=tuple(sys.argv[2:]))
sys.exit(pytest.main(
    [*files, "--conformance", "--collect-only", "-q", "-p", "no:cacheprovider"],
    plugins=[OptionsCarrier(options)],
))
"""


def _carried(tmp_path: Path, *checks: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CARRIED, str(tmp_path / "report"), *checks],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip


def test_the_plugin_runs_on_the_options_it_is_handed(tmp_path: Path) -> None:
    # No --conformance-check flag anywhere: the selection can only come from the carrier.
    refused = _carried(tmp_path, "NOPE-99")
    assert refused.returncode == int(pytest.ExitCode.USAGE_ERROR), refused.stderr
    assert "no check matches NOPE-99" in refused.stdout + refused.stderr
    chosen = _carried(tmp_path, "PROTO-CONN-05*")
    assert chosen.returncode == 0, chosen.stdout + chosen.stderr
    collected = [line for line in chosen.stdout.splitlines() if "::" in line]
    assert collected
    assert all("::PROTO-CONN-05::" in line for line in collected)
