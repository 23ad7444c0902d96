"""The suite against a wss:// target with a private CA: --ca-file (or a target file's
ca_file) is checked before a run starts, and a run over wss passes against the bundled server
under a test certificate, the checks that break the network through the fault proxy included.
A certificate the suite does not trust ends a run at the pre-flight, unless --insecure turns
verification off, which the console and the reports then say."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from conformance.bundled import BundledServer, BundledTls, start_bundled
from conformance.cli import main
from conformance.errors import TargetUnreachable, UsageError
from conformance.options import RunOptions
from conformance.report import schemas
from conformance.target import Target, check_reachable, load_target_file, target_from_options
from conformance.tls import check_ca_file, client_context


def test_ca_file_is_checked(tmp_path: Path, tls_files: Callable[..., BundledTls]) -> None:
    with pytest.raises(UsageError, match="CA file not found"):
        check_ca_file(str(tmp_path / "missing.pem"))
    (tmp_path / "junk.pem").write_text("junk\n")
    with pytest.raises(UsageError, match="no usable PEM certificate"):
        check_ca_file(str(tmp_path / "junk.pem"))
    tls = tls_files(tmp_path)
    assert check_ca_file(str(tls.ca_file)) == str(tls.ca_file.resolve())
    assert client_context(str(tls.ca_file)) is client_context(str(tls.ca_file))
    assert client_context(None) is None


def test_target_file_ca_is_taken_beside_the_file(
    tmp_path: Path, tls_files: Callable[..., BundledTls]
) -> None:
    tls_files(tmp_path / "certs")
    fields = {"ws_url": "wss://h.test", "http_url": "https://h.test", "app_id": "1"}
    fields |= {"key": "k", "secret": "s", "ca_file": "certs/ca.pem"}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(fields))
    target = load_target_file(tmp_path / "t.yaml")
    assert target.ca_file == str((tmp_path / "certs" / "ca.pem").resolve())
    assert Target.from_wire(target.to_wire()) == target
    assert target.public()["ca_file"] == target.ca_file


def test_ca_file_needs_a_target(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--ca-file is for a wss:// target"):
        target_from_options(RunOptions(ca_file=str(tmp_path / "ca.pem")))


def test_run_over_wss_with_a_private_ca(
    tmp_path: Path, tls_files: Callable[..., BundledTls]
) -> None:
    server = start_bundled(tmp_path / "server.log", tls=tls_files(tmp_path / "certs"))
    try:
        fields = dataclasses.asdict(server.target)
        target = {k: fields[k] for k in ("ws_url", "http_url", "app_id", "key", "secret")}
        (tmp_path / "t.yaml").write_text(yaml.safe_dump(target | {"name": "tls"}))
        result = subprocess.run(
            [
                sys.executable, "-m", "conformance", "run", "--target", str(tmp_path / "t.yaml"),
                "--ca-file", str(server.target.ca_file), "--report-dir", str(tmp_path / "r"),
                "--no-save-regressions", "--check", "PROTO-CONN-01", "--check", "HTTP-EVT-01",
                "--check", "HTTP-GEN-03", "--check", "CHAN-PRES-02",
            ],
            capture_output=True, text=True, timeout=120, env=dict(os.environ),
        )  # fmt: skip
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((tmp_path / "r" / "results.json").read_text())
    assert data["target"]["ws_url"].startswith("wss://")
    assert data["target"]["ca_file"] == str(server.target.ca_file)
    passed = {r["id"] for r in data["requirements"] if r["outcome"] == "PASS"}
    assert {"PROTO-CONN-01", "HTTP-EVT-01", "HTTP-GEN-03", "CHAN-PRES-02"} <= passed


#: The requirements whose checks reach the target through the fault proxy (stall, reset): over
#: wss the proxy speaks TLS upstream. RECON-13 also restarts the target.
PROXIED_RECON = ("RECON-04", "RECON-05", "RECON-06", "RECON-07", "RECON-08", "RECON-09",
                 "RECON-10", "RECON-13")  # fmt: skip

#: The restart command's wait for the test to have restarted the server, in tenths of a second.
RESTART_POLLS = 600


def _target_file(server: BundledServer, folder: Path, *, front: str | None = None) -> Path:
    """The bundled server as a user's target file, declaring what it was started with, with a
    restart command that asks the test (a request file) to restart it, and returns once the
    test says it is back (a done file): the server is the test's child, so only the test can
    restart it. ``front``: the server is reached at this ``HOST:PORT`` over TLS (nginx)."""
    fields = dataclasses.asdict(server.target)
    target = {k: fields[k] for k in ("ws_url", "http_url", "app_id", "key", "secret")}
    if front is not None:
        target |= {"ws_url": f"wss://{front}", "http_url": f"https://{front}"}
    if server.target.webhook_listen is not None:
        target["webhooks"] = {"listen": server.target.webhook_listen}
    request, done = folder / "restart.request", folder / "restart.done"
    command = (
        f"touch {request}; for _ in $(seq {RESTART_POLLS}); do"
        f" if [ -e {done} ]; then rm -f {done}; exit 0; fi; sleep 0.1; done; exit 1"
    )
    target |= {
        "name": "tls",
        "capabilities": sorted(server.target.capabilities),
        "timings": {"activity_timeout": fields["timings"]["activity_timeout"],
                    "pong_timeout": fields["timings"]["pong_timeout"]},
        "restart": {"command": command, "within": RESTART_POLLS / 10 + 5},
    }  # fmt: skip
    (folder / "t.yaml").write_text(yaml.safe_dump(target))
    return folder / "t.yaml"


def _run_serving_restarts(
    server: BundledServer, arguments: list[str], folder: Path, within: float
) -> tuple[int, str, int]:
    """``conformance run`` with ``arguments`` (its target file made by ``_target_file`` in
    ``folder``), restarting the server whenever it asks; its exit status, its output and how
    many restarts it asked for. Killed after ``within`` seconds."""
    command = [sys.executable, "-m", "conformance", "run", *arguments]
    restarts = 0
    with (folder / "run.out").open("w") as out:
        run = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, text=True, env=dict(os.environ)
        )
        deadline = time.monotonic() + within
        while run.poll() is None and time.monotonic() < deadline:
            if (folder / "restart.request").exists():
                (folder / "restart.request").unlink()
                server.restart()
                restarts += 1
                (folder / "restart.done").touch()
            time.sleep(0.05)
        if run.poll() is None:
            run.kill()
        code = run.wait(timeout=10)
    return code, (folder / "run.out").read_text(errors="replace"), restarts


def test_the_fault_proxy_checks_pass_over_wss(
    tmp_path: Path, tls_files: Callable[..., BundledTls]
) -> None:
    server = start_bundled(tmp_path / "server.log", tls=tls_files(tmp_path / "certs"))
    try:
        selection = [word for rid in PROXIED_RECON for word in ("--check", rid)]
        code, output, restarts = _run_serving_restarts(
            server,
            [
                "--target", str(_target_file(server, tmp_path)),
                "--ca-file", str(server.target.ca_file), "--report-dir", str(tmp_path / "r"),
                "--no-save-regressions", *selection,
            ],
            tmp_path,
            within=180,
        )  # fmt: skip
    finally:
        server.stop()
    assert code == 0, output
    assert restarts == 1
    data = json.loads((tmp_path / "r" / "results.json").read_text())
    outcomes = {r["id"]: r["outcome"] for r in data["requirements"] if r["id"] in PROXIED_RECON}
    assert outcomes == dict.fromkeys(PROXIED_RECON, "PASS"), output


#: Seconds a whole run may take here: about 20 s on a quiet machine, a few times that on a
#: busy one.
WHOLE_RUN_WITHIN = 600


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _assert_certified(code: int, output: str, report_dir: Path, restarts: int, more: str) -> None:
    """The run passed as a whole: exit 0, no FAIL or ERROR, and the restart check ran."""
    results = report_dir / "results.json"
    assert results.exists(), f"no results.json; exit {code}\n{output[-4000:]}\n{more}"
    data = json.loads(results.read_text())
    bad = {r["id"]: r["outcome"] for r in data["requirements"] if r["outcome"] in ("FAIL", "ERROR")}
    assert (code, bad) == (0, {}), f"exit {code}, {bad}\n{output[-4000:]}\n{more}"
    assert restarts == 1
    passed = {r["id"] for r in data["requirements"] if r["outcome"] == "PASS"}
    assert {"RECON-13", "WH-01", "PROTO-PING-02", "HTTP-GEN-03"} <= passed


@pytest.mark.nginx
def test_the_whole_suite_passes_over_wss(
    tmp_path: Path, tls_files: Callable[..., BundledTls]
) -> None:
    """The reference server serving TLS itself (--tls-cert/--tls-key), webhooks and restart
    included, certified by every check."""
    webhooks = f"http://127.0.0.1:{_free_port()}/pusher/webhooks"
    tls = tls_files(tmp_path / "certs")
    server = start_bundled(tmp_path / "server.log", webhook_url=webhooks, tls=tls)
    try:
        code, output, restarts = _run_serving_restarts(
            server,
            ["--target", str(_target_file(server, tmp_path)), "--ca-file", str(tls.ca_file),
             "--report-dir", str(tmp_path / "r"), "--no-save-regressions"],
            tmp_path,
            within=WHOLE_RUN_WITHIN,
        )  # fmt: skip
    finally:
        server.stop()
    _assert_certified(code, output, tmp_path / "r", restarts, f"server log: {server.log_path}")


@pytest.mark.nginx
def test_the_whole_suite_passes_through_nginx(
    tmp_path: Path,
    tls_files: Callable[..., BundledTls],
    nginx_front: Callable[..., Any],
) -> None:
    """nginx with fixtures/nginx/pusher.conf terminating TLS in front of the plain reference
    server: every check passes through it, the restart behind it included (nginx stays up
    while the server drains and comes back on the same port)."""
    webhooks = f"http://127.0.0.1:{_free_port()}/pusher/webhooks"
    server = start_bundled(tmp_path / "server.log", webhook_url=webhooks)
    tls = tls_files(tmp_path / "certs")
    try:
        front = nginx_front(server.target.http_url.removeprefix("http://"), tls)
        target_file = _target_file(server, tmp_path, front=f"127.0.0.1:{front.port}")
        code, output, restarts = _run_serving_restarts(
            server,
            ["--target", str(target_file), "--ca-file", str(tls.ca_file),
             "--report-dir", str(tmp_path / "r"), "--no-save-regressions"],
            tmp_path,
            within=WHOLE_RUN_WITHIN,
        )  # fmt: skip
    finally:
        server.stop()
    _assert_certified(
        code, output, tmp_path / "r", restarts, f"nginx error log:\n{front.log_tail()}"
    )
    data = json.loads((tmp_path / "r" / "results.json").read_text())
    assert data["target"]["ws_url"] == f"wss://127.0.0.1:{front.port}"


@pytest.fixture(scope="module")
def untrusted(
    tmp_path_factory: pytest.TempPathFactory, tls_files: Callable[..., BundledTls]
) -> Iterator[tuple[BundledServer, Path]]:
    """The bundled server under a test certificate, and a target file that does not name the
    CA that signed it: the system store does not know that CA."""
    folder = tmp_path_factory.mktemp("untrusted")
    server = start_bundled(folder / "server.log", tls=tls_files(folder / "certs"))
    fields = dataclasses.asdict(server.target)
    target = {k: fields[k] for k in ("ws_url", "http_url", "app_id", "key", "secret")}
    (folder / "t.yaml").write_text(yaml.safe_dump(target | {"name": "untrusted"}))
    try:
        yield server, folder / "t.yaml"
    finally:
        server.stop()


@pytest.mark.parametrize(
    "command",
    [
        ["run", "--target", "t.yaml"],
        ["smoke", "--target", "wss://127.0.0.1:1", "--app-id", "1", "--key", "k", "--secret", "s"],
        ["proxy", "--upstream", "wss://127.0.0.1:1"],
        ["simulate", "--scenario", "admin-alerts", "--target-file", "t.yaml"],
    ],
)
def test_insecure_and_a_ca_file_exclude_each_other(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([*command, "--ca-file", str(tmp_path / "ca.pem"), "--insecure"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "either --ca-file" in err
    assert "--insecure (verify nothing), not both" in err


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (["run"], "--insecure is for a wss:// target; the bundled server speaks ws://"),
        (["simulate", "--scenario", "admin-alerts"], "--insecure is for a wss:// target file"),
        (["proxy", "--upstream", "ws://127.0.0.1:1"], "--insecure is for a wss:// upstream"),
    ],
)
def test_insecure_needs_a_tls_target(
    command: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--insecure"]) == 2
    assert says in capsys.readouterr().err


def test_insecure_on_a_plain_target_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fields = {"ws_url": "ws://127.0.0.1:1", "http_url": "http://127.0.0.1:1", "app_id": "1"}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(fields | {"key": "k", "secret": "s"}))
    assert main(["run", "--target", str(tmp_path / "t.yaml"), "--insecure"]) == 2
    err = capsys.readouterr().err
    assert err == "conformance: error: --insecure is for a wss:// target, not ws://127.0.0.1:1\n"


def test_an_untrusted_certificate_ends_the_run_at_the_preflight(
    untrusted: tuple[BundledServer, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, target_file = untrusted
    args = ["run", "--target", str(target_file), "--check", "PROTO-CONN-01"]
    code = main([*args, "--report-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 3
    assert err.count("\n") == 1, err
    assert f"target's TLS certificate at 127.0.0.1:{server.target.ws_url.rsplit(':', 1)[1]}" in err
    assert "is not trusted: " in err
    assert "give --ca-file PEM" in err
    assert "--insecure" in err
    assert not (tmp_path / "r" / "results.json").exists()


def test_the_preflight_trusts_the_ca_file_or_nothing_with_insecure(
    untrusted: tuple[BundledServer, Path],
) -> None:
    server, target_file = untrusted
    target = load_target_file(target_file)
    with pytest.raises(TargetUnreachable, match="is not trusted"):
        check_reachable(target)
    check_reachable(dataclasses.replace(target, ca_file=server.target.ca_file))
    check_reachable(dataclasses.replace(target, insecure=True))
    stranger = dataclasses.replace(target, ws_url="wss://localhost:1", http_url="https://[::1]:1")
    with pytest.raises(TargetUnreachable, match="unreachable"):
        check_reachable(dataclasses.replace(stranger, insecure=True), timeout=1.0)


def test_a_run_with_insecure_passes_and_every_report_says_so(
    untrusted: tuple[BundledServer, Path], tmp_path: Path
) -> None:
    _, target_file = untrusted
    result = subprocess.run(
        [
            sys.executable, "-m", "conformance", "run", "--target", str(target_file),
            "--insecure", "--report-dir", str(tmp_path / "r"), "--no-save-regressions",
            "--check", "PROTO-CONN-01", "--check", "HTTP-EVT-01",
        ],
        capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    warnings = [line for line in output.splitlines() if "--insecure" in line]
    assert warnings[0].startswith("conformance: warning: --insecure: the TLS certificate of wss://")
    data = json.loads((tmp_path / "r" / "results.json").read_text())
    schema = json.loads(schemas.path(schemas.RESULTS).read_text())
    jsonschema.validate(data, schema)
    assert data["target"]["insecure"] is True
    assert data["target"]["ca_file"] is None
    passed = {r["id"] for r in data["requirements"] if r["outcome"] == "PASS"}
    assert passed == {"PROTO-CONN-01", "HTTP-EVT-01"}
    for report in ("summary.md", "summary.html"):
        assert "TLS certificate NOT verified (--insecure)" in (tmp_path / "r" / report).read_text()
    assert "TLS certificate NOT verified (--insecure)" in result.stdout
