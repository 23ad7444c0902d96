"""``conformance smoke`` against the bundled reference server: over wss with a private CA it
passes in well under its deadline; a broken server, a plain one, an untrusted certificate, a
silent port and an absent one each end with the status and the line the docs promise."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from conformance.bundled import BundledServer, BundledTls, start_bundled
from conformance.cli import main
from conformance.httpclient import ApiClient
from conformance.target import Target
from conformance.transcript import Transcript


def _flags(target: Target, *extra: str) -> list[str]:
    return [
        "smoke", "--target", target.ws_url, "--app-id", target.app_id,
        "--key", target.key, "--secret", target.secret, *extra,
    ]  # fmt: skip


def _smoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], float]:
    began = time.monotonic()
    code = main(list(args))
    took = time.monotonic() - began
    out = capsys.readouterr()
    return code, (out.out + out.err).splitlines(), took


@pytest.fixture(scope="module")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory, tls_files: Callable[..., BundledTls]
) -> Iterator[BundledServer]:
    folder = tmp_path_factory.mktemp("smoke-tls")
    server = start_bundled(folder / "server.log", tls=tls_files(folder / "certs"))
    try:
        yield server
    finally:
        server.stop()


def _occupied(target: Target, channel: str) -> bool:
    async def ask() -> bool:
        api = ApiClient(target, Transcript("after-smoke"), 5.0)
        try:
            reply = await api.request("GET", f"/apps/{target.app_id}/channels/{channel}")
        finally:
            await api.aclose()
        assert reply.status == 200, reply.text
        return bool(reply.json["occupied"])

    return asyncio.run(ask())


def test_passes_over_wss_and_leaves_nothing_behind(
    tls_server: BundledServer, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tls_server.target
    assert target.ca_file is not None
    code, lines, took = _smoke(
        capsys,
        *_flags(target, "--ca-file", target.ca_file, "--health-url", f"{target.http_url}/health"),
        "--json",
    )
    data = json.loads("\n".join(lines))
    assert code == 0, lines
    assert took < 10
    assert [s["status"] for s in data["steps"]] == ["passed"] * 9
    assert data["steps"][0]["figure"].startswith("refused:")
    assert data["connections_closed"] == 6
    refused = data["steps"][4]
    assert refused["name"] == "private auth enforced"
    assert refused["figure"] == (
        "refused: no auth, wrong secret, another socket's auth, socket id unsigned"
    )
    # The connections are gone, so every channel the run used is vacant again.
    deadline = time.monotonic() + 5
    while any(_occupied(target, c) for c in data["channels"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_occupied(target, c) for c in data["channels"])


def test_a_target_file_with_its_ca_beside_it(
    tls_server: BundledServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tls_server.target
    assert target.ca_file is not None
    (tmp_path / "ca.pem").write_bytes(Path(target.ca_file).read_bytes())
    fields = {"ws_url": target.ws_url, "http_url": target.http_url, "app_id": target.app_id}
    fields |= {"key": target.key, "secret": target.secret, "ca_file": "ca.pem", "name": "staging"}
    (tmp_path / "staging.yaml").write_text(yaml.safe_dump(fields))
    code, lines, _ = _smoke(capsys, "smoke", "--target", str(tmp_path / "staging.yaml"))
    assert code == 0, lines
    assert lines[0].startswith("smoke: staging (wss://")
    assert sum(line.startswith("✓ ") for line in lines) == 8
    assert "- health" in "\n".join(lines)
    assert lines[-1].startswith("smoke: PASS")


def test_an_untrusted_certificate_fails_connect_with_a_hint(
    tls_server: BundledServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, _ = _smoke(capsys, *_flags(tls_server.target))
    assert code == 1
    (connect,) = [line for line in lines if "connect " in line]
    assert connect.startswith("✗ connect")
    assert "TLS certificate not trusted" in connect
    assert "--ca-file" in connect
    assert "--insecure" in connect


def test_insecure_passes_an_untrusted_certificate_and_says_so(
    tls_server: BundledServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, _ = _smoke(capsys, *_flags(tls_server.target, "--insecure"))
    assert code == 0, lines
    (warning,) = [line for line in lines if "--insecure" in line]
    assert warning.startswith("smoke: warning: --insecure: the TLS certificate of wss://")
    assert "NOT verified" in warning
    assert any(line.startswith("smoke: PASS") for line in lines), lines


def test_a_plain_port_redirect_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tls_files: Callable[..., BundledTls]
) -> None:
    server = start_bundled(tmp_path / "server.log", tls=tls_files(tmp_path, plain_port=True))
    try:
        target = server.target
        assert target.ca_file is not None
        assert server.plain_url is not None
        plain = server.plain_url.replace("http://", "ws://")
        code, lines, _ = _smoke(
            capsys, *_flags(target, "--ca-file", target.ca_file, "--plain-url", plain)
        )
    finally:
        server.stop()
    assert code == 0, lines
    assert lines[1].startswith("✓ wss only")
    assert f"redirected (308) to {target.ws_url}/app/{target.key}" in lines[1]


@pytest.mark.parametrize(
    ("fault", "step", "says"),
    [
        ("event_data_reencoded", "trigger to two users", "got data"),
        ("presence_roster_excludes_self", "presence subscribe", "not in its own roster"),
        ("private_without_auth_accepted", "private auth enforced", "accepted with no auth"),
        ("auth_socket_id_ignored", "private auth enforced", "accepted with socket id unsigned"),
    ],
)
def test_a_broken_server_fails_with_a_clear_line(
    fault: str,
    step: str,
    says: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tls_files: Callable[..., BundledTls],
) -> None:
    monkeypatch.setenv("PUSHER_REF_FAULTS", fault)
    server = start_bundled(tmp_path / "server.log", tls=tls_files(tmp_path))
    try:
        target = server.target
        assert target.ca_file is not None
        code, lines, _ = _smoke(capsys, *_flags(target, "--ca-file", target.ca_file))
    finally:
        server.stop()
    assert code == 1
    failed = [line for line in lines if line.startswith("✗ ")]
    assert len(failed) == 1, lines
    assert failed[0].startswith(f"✗ {step}")
    assert says in failed[0]
    assert lines[-1].startswith(f"smoke: FAIL, 1 of 9 steps failed ({step})")


def test_a_plain_target_fails_wss_only_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = start_bundled(tmp_path / "server.log")
    try:
        code, lines, _ = _smoke(capsys, *_flags(server.target))
        allowed, allowed_lines, _ = _smoke(capsys, *_flags(server.target), "--allow-plain")
    finally:
        server.stop()
    assert code == 1
    assert lines[1].startswith("✗ wss only")
    assert "not TLS-only" in lines[1]
    assert all(line.startswith("✓ ") for line in lines[2:-2])
    assert allowed == 0, allowed_lines
    assert allowed_lines[1].startswith("- wss only")


def test_an_absent_target_is_exit_3_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    target = Target("gone", f"wss://127.0.0.1:{port}", f"https://127.0.0.1:{port}", "1", "k", "s")
    code, lines, took = _smoke(capsys, *_flags(target))
    assert code == 3
    assert took < 2
    assert lines[-1].startswith("smoke: UNREACHABLE")


def test_a_silent_target_is_cut_at_the_deadline(capsys: pytest.CaptureFixture[str]) -> None:
    """A port that takes TCP connections and never says a word: every step waits, and the run
    still ends within --timeout, each unfinished step named."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        target = Target(
            "silent", f"wss://127.0.0.1:{port}", f"https://127.0.0.1:{port}", "1", "k", "s"
        )
        code, lines, took = _smoke(capsys, *_flags(target, "--timeout", "2"))
    assert code == 1
    assert took < 3
    assert lines[-1].startswith("smoke: FAIL")
    assert any(line.startswith("✗ connect") for line in lines), lines


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["smoke", "--target", "wss://h.test"], "also needs --app-id, --key, --secret"),
        (["smoke", "--target", "missing.yaml"], "neither a URL nor a target file"),
        (["smoke", "--target", "wss://h.test", "--app-id", "1", "--key", "k", "--secret", "s",
          "--ca-file", "missing.pem"], "CA file not found"),
        (["smoke", "--target", "wss://h.test", "--app-id", "1", "--key", "k", "--secret", "s",
          "--health-url", "ftp://h.test/"], "--health-url must be"),
        (["smoke"], "--target"),
    ],
)  # fmt: skip
def test_usage_mistakes_are_exit_2_one_line(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert says in err
