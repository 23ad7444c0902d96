"""What every test package shares: test certificates for TLS (``tls_files``), a private
Redis for the cluster tests (``redis_server``), and the mutation self-test's summary (how
many fault switches the suite killed, how many with exactly their named requirements, and
which faults took longest: the tier's cost)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from conformance.bundled import BundledTls

#: How many of the slowest faults the summary names.
SLOWEST_SHOWN = 5


def _make_tls(folder: Path, *, plain_port: bool = False) -> BundledTls:
    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    cert, key, ca_file = folder / "server.pem", folder / "server.key", folder / "ca.pem"
    server.cert_chain_pems[0].write_to_path(str(cert))
    for extra in server.cert_chain_pems[1:]:
        extra.write_to_path(str(cert), append=True)
    server.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    return BundledTls(cert, key, ca_file, plain_port=plain_port)


@pytest.fixture(scope="session")
def tls_files() -> Callable[..., BundledTls]:
    """``tls_files(folder, plain_port=False)`` writes a fresh CA and a server certificate for
    127.0.0.1 and localhost into ``folder`` (``server.pem``, ``server.key``, ``ca.pem``) and
    returns them as the bundled server's ``BundledTls``.

    Made when a test asks (trustme), never committed, and a new CA each call: a certificate
    that leaked from a test run is trusted by nothing. A factory, session-wide, so that
    module-scoped servers can use it too.
    """
    return _make_tls


#: Seconds a test Redis gets to start answering.
REDIS_START_TIMEOUT = 10.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[str]:
    """A Redis of the test's own on a free 127.0.0.1 port, nothing saved, in a temporary
    directory; yields its URL ``redis://127.0.0.1:PORT/0`` and stops it (by its PID).

    Skips when ``redis-server`` is not installed, unless ``CONFORMANCE_DEPLOY_REQUIRED=1``
    (CI), which makes that a failure.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed"
        if os.environ.get("CONFORMANCE_DEPLOY_REQUIRED") == "1":
            pytest.fail(message + " (CONFORMANCE_DEPLOY_REQUIRED=1)")
        pytest.skip(message)
    folder = tmp_path / "redis"
    folder.mkdir()
    port = _free_port()
    args = ["--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(
        [binary, *args, "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + REDIS_START_TIMEOUT
        while not _redis_answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start on 127.0.0.1:{port}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    faults: dict[str, dict[str, Any]] = {}
    for outcome in ("passed", "failed"):
        for report in terminalreporter.getreports(outcome):
            if report.when != "call":
                continue
            found = dict(report.user_properties)
            if "selftest_fault" in found:
                tier = "full" if "whole_suite" in report.nodeid else "fast"
                faults[f"{tier}:{found['selftest_fault']}"] = found
    if not faults:
        return
    terminalreporter.section("mutation self-test")
    for tier in ("fast", "full"):
        runs = {k.split(":", 1)[1]: v for k, v in faults.items() if k.startswith(f"{tier}:")}
        if not runs:
            continue
        killed = sum(1 for v in runs.values() if v["selftest_killed"])
        exact = sum(1 for v in runs.values() if v["selftest_exact"])
        slowest = sorted(runs.items(), key=lambda item: -float(item[1]["selftest_seconds"]))
        terminalreporter.write_line(
            f"{tier} tier: {len(runs)} faults, killed {killed} ({100 * killed / len(runs):.1f}%),"
            f" exactly their requirements {exact}; slowest: "
            + ", ".join(f"{name} {v['selftest_seconds']} s" for name, v in slowest[:SLOWEST_SHOWN])
        )
        missed = sorted(name for name, v in runs.items() if not v["selftest_killed"])
        if missed:
            terminalreporter.write_line(f"  not killed: {', '.join(missed)}")
