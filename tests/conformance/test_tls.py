"""The suite against a wss:// target with a private CA: --ca-file (or a target file's
ca_file) is checked before a run starts, and a run over wss passes against the bundled server
under a test certificate, the checks that break the network through the fault proxy included."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from conformance.bundled import BundledServer, BundledTls, start_bundled
from conformance.errors import UsageError
from conformance.options import RunOptions
from conformance.target import Target, load_target_file, target_from_options
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


def _target_file(server: BundledServer, folder: Path) -> Path:
    """The bundled server as a user's target file, with a restart command that asks the test
    (a request file) to restart it, and returns once the test says it is back (a done file):
    the server is the test's child, so only the test can restart it."""
    fields = dataclasses.asdict(server.target)
    target = {k: fields[k] for k in ("ws_url", "http_url", "app_id", "key", "secret")}
    request, done = folder / "restart.request", folder / "restart.done"
    command = (
        f"touch {request}; for _ in $(seq {RESTART_POLLS}); do"
        f" if [ -e {done} ]; then rm -f {done}; exit 0; fi; sleep 0.1; done; exit 1"
    )
    target |= {
        "name": "tls",
        "timings": {"activity_timeout": fields["timings"]["activity_timeout"],
                    "pong_timeout": fields["timings"]["pong_timeout"]},
        "restart": {"command": command, "within": RESTART_POLLS / 10 + 5},
    }  # fmt: skip
    (folder / "t.yaml").write_text(yaml.safe_dump(target))
    return folder / "t.yaml"


def test_the_fault_proxy_checks_pass_over_wss(
    tmp_path: Path, tls_files: Callable[..., BundledTls]
) -> None:
    server = start_bundled(tmp_path / "server.log", tls=tls_files(tmp_path / "certs"))
    restarts = 0
    try:
        selection = [word for rid in PROXIED_RECON for word in ("--check", rid)]
        run = subprocess.Popen(
            [
                sys.executable, "-m", "conformance", "run",
                "--target", str(_target_file(server, tmp_path)),
                "--ca-file", str(server.target.ca_file), "--report-dir", str(tmp_path / "r"),
                "--no-save-regressions", *selection,
            ],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ),
        )  # fmt: skip
        deadline = time.monotonic() + 180
        while run.poll() is None and time.monotonic() < deadline:
            if (tmp_path / "restart.request").exists():
                (tmp_path / "restart.request").unlink()
                server.restart()
                restarts += 1
                (tmp_path / "restart.done").touch()
            time.sleep(0.05)
        if run.poll() is None:
            run.kill()
        output, _ = run.communicate(timeout=10)
    finally:
        server.stop()
    assert run.returncode == 0, output
    assert restarts == 1
    data = json.loads((tmp_path / "r" / "results.json").read_text())
    outcomes = {r["id"]: r["outcome"] for r in data["requirements"] if r["id"] in PROXIED_RECON}
    assert outcomes == dict.fromkeys(PROXIED_RECON, "PASS"), output
