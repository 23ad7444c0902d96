"""``conformance proxy``: one-line errors with status 2, a clean stop on SIGTERM, and a wss://
upstream trusted through --ca-file or the target file's ca_file."""

from __future__ import annotations

import asyncio
import json
import signal
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.bundled import BundledTls
from conformance.cli import main
from conformance.proxy import FaultProxy

from .helpers import Client, Upstream

TARGETS = Path(__file__).resolve().parents[3] / "fixtures" / "targets"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "one of the arguments --target --upstream is required"),
        (["--upstream", "ws://a", "--target", "t.yaml"], "not allowed with argument"),
        (["--upstream", "tcp://example.com"], "upstream must be a ws://, wss://"),
        (["--upstream", "ws://127.0.0.1:1", "--ca-file", "ca.pem"], "for a wss:// upstream"),
        (["--upstream", "wss://127.0.0.1:1", "--ca-file", "none.pem"], "CA file not found"),
        (["--upstream", "ws://127.0.0.1:1", "--listen", "0.0.0.0:80"], "loopback only"),
        (["--upstream", "ws://127.0.0.1:1", "--listen", "8000"], "--listen must be HOST:PORT"),
        (["--upstream", "ws://127.0.0.1:1", "--duration", "-1"], "must be positive"),
        (["--upstream", "ws://127.0.0.1:1", "--seed", "x"], "invalid int value"),
        (["--upstream", "ws://127.0.0.1:1", "--schedule", "none.yaml"], "schedule file not found"),
        (["--target", "none.yaml"], "target file not found"),
    ],
)
def test_bad_input_is_one_line_and_status_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["proxy", *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.strip().count("\n") == 0
    assert "Traceback" not in err


def test_a_bad_schedule_names_the_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "s.yaml"
    file.write_text("name: s\nsteps:\n  - {at: 1, fault: stall, direction: left}\n", "utf-8")
    assert main(["proxy", "--upstream", "ws://127.0.0.1:1", "--schedule", str(file)]) == 2
    err = capsys.readouterr().err
    assert f"{file}: step 1 (stall): stall: direction must be one of up, down, both" in err


def test_a_target_file_gives_the_upstream(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["proxy", "--target", str(TARGETS / "soketi.yaml"), "--duration", "0.1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("listening on ws://127.0.0.1:")
    assert out.rstrip().endswith("-> ws://127.0.0.1:6001")


@pytest.mark.asyncio
async def test_standalone_proxy_forwards_logs_and_stops_on_sigterm(tmp_path: Path) -> None:
    upstream = Upstream()
    host, port = await upstream.start()
    schedule = tmp_path / "s.yaml"
    schedule.write_text("name: s\nsteps: [{at: 0, fault: latency, ms: 5}]\n", "utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "conformance", "proxy", "--upstream", f"ws://{host}:{port}",
        "--schedule", str(schedule), "--seed", "3", "--duration", "20",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        first = (await asyncio.wait_for(process.stdout.readline(), 10)).decode()
        assert first.startswith("listening on ws://127.0.0.1:")
        assert first.rstrip().endswith(f"-> ws://{host}:{port}")
        proxy_port = int(first.split()[2].rsplit(":", 1)[1])
        client = await Client.open(("127.0.0.1", proxy_port))
        client.send(b"ping")
        assert await client.wait_until(lambda: client.data == b"ping", 2)
        entry = json.loads(await asyncio.wait_for(process.stdout.readline(), 2))
        assert {k: entry[k] for k in ("connection", "fault", "ms", "step")} == {
            "connection": 0, "fault": "latency", "ms": 5, "step": 1,
        }  # fmt: skip
        assert {"t", "wall"} <= set(entry)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 5) == 0
        assert await client.wait_until(lambda: client.eof or client.lost, 1)
        client.close()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await upstream.close()
    assert b"Traceback" not in await process.stderr.read()  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_a_wss_upstream_is_reached_over_tls_with_the_ca_file(
    tmp_path: Path, tls_files: Callable[..., BundledTls]
) -> None:
    files = tls_files(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.cert, files.key)
    upstream = Upstream()
    host, port = await upstream.start(ssl=context)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "conformance", "proxy", "--upstream", f"wss://{host}:{port}",
        "--ca-file", str(files.ca_file), "--duration", "20",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        first = (await asyncio.wait_for(process.stdout.readline(), 10)).decode()
        assert first.startswith("listening on ws://127.0.0.1:")
        assert first.rstrip().endswith(f"-> wss://{host}:{port}")
        client = await Client.open(("127.0.0.1", int(first.split()[2].rsplit(":", 1)[1])))
        client.send(b"ping")
        assert await client.wait_until(lambda: client.data == b"ping", 3)
        assert upstream.received == [bytearray(b"ping")]
        client.close()
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 5) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await upstream.close()


def test_a_target_files_ca_file_is_the_default(
    tmp_path: Path,
    tls_files: Callable[..., BundledTls],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    given: list[str | None] = []

    class Spy(FaultProxy):
        def __init__(self, *args: Any, ca_file: str | None = None, **kwargs: Any) -> None:
            given.append(ca_file)
            super().__init__(*args, ca_file=ca_file, **kwargs)

    monkeypatch.setattr("conformance.proxy.command.FaultProxy", Spy)
    files = tls_files(tmp_path)
    fields = {"ws_url": "wss://127.0.0.1:1", "http_url": "https://127.0.0.1:1", "app_id": "1"}
    fields |= {"key": "k", "secret": "s", "ca_file": "ca.pem"}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(fields))
    assert main(["proxy", "--target", str(tmp_path / "t.yaml"), "--duration", "0.1"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("-> wss://127.0.0.1:1")
    assert given == [str(files.ca_file.resolve())]
