"""What every test package shares: test certificates for TLS (``tls_files``), nginx
terminating TLS in front of a server (``nginx_front``), a private Redis for the cluster tests
(``redis_server``), and the mutation self-test's summary
(how many fault switches the suite killed, how many with exactly their named requirements, and
which faults took longest: the tier's cost). The run's spec-validation cache lives in a
directory of its own (``PUSHER_CONFORMANCE_CACHE``), shared with every ``conformance`` process
the tests start and removed at the end, so no test reads or writes the user's cache."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

from conformance.bundled import BundledTls

#: How many of the slowest faults the summary names.
SLOWEST_SHOWN = 5
#: The cache directory this session made (and removes), if it made one.
_OWN_CACHE = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    # Set in the controlling process before xdist starts its workers, which inherit it.
    if "PUSHER_CONFORMANCE_CACHE" not in os.environ:
        folder = tempfile.mkdtemp(prefix="pusher-conformance-cache-")
        os.environ["PUSHER_CONFORMANCE_CACHE"] = folder
        config.stash[_OWN_CACHE] = folder


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = config.stash.get(_OWN_CACHE, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
        del os.environ["PUSHER_CONFORMANCE_CACHE"]


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


#: The configuration users copy (docs/reference-server.md, "Behind nginx"), with placeholders.
NGINX_SITE = Path(__file__).resolve().parents[1] / "fixtures" / "nginx" / "pusher.conf"

#: Seconds nginx may take to listen, and to exit and free its port when stopped.
NGINX_START_TIMEOUT = 10.0
NGINX_STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class NginxFront:
    """A running nginx: its TLS port on 127.0.0.1, and its error log for failure messages."""

    port: int
    error_log: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.error_log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no nginx error log)"
        return "\n".join(text.splitlines()[-lines:]) or "(nginx error log empty)"


def _nginx_binary() -> str | None:
    # /usr/sbin is not on every user's PATH, though nginx is installed there.
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _nginx_conf(folder: Path, port: int, upstream: str, tls: BundledTls) -> str:
    """The main configuration around the users' file: in the foreground, everything in
    ``folder``, listening on loopback only. ``user root;`` only when run as root: nginx would
    otherwise run its worker as nobody, who cannot write the temp folders under a root-only
    pytest directory (a request body over 16 KB goes to one)."""
    site = NGINX_SITE.read_text(encoding="utf-8")
    for placeholder, value in (
        ("@LISTEN@", f"127.0.0.1:{port}"),
        ("@UPSTREAM@", upstream),
        ("@CERT@", str(tls.cert)),
        ("@KEY@", str(tls.key)),
    ):
        assert placeholder in site, f"{NGINX_SITE} has lost its {placeholder} placeholder"
        site = site.replace(placeholder, value)
    (folder / "pusher.conf").write_text(site, encoding="utf-8")
    temp = {name: folder / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(exist_ok=True)
    return "\n".join(
        [
            "daemon off;",
            *(["user root;"] if os.geteuid() == 0 else []),
            "worker_processes 1;",
            f"pid {folder / 'nginx.pid'};",
            f"error_log {folder / 'error.log'} info;",
            "events { worker_connections 4096; }",
            "http {",
            f"    access_log {folder / 'access.log'};",
            f"    client_body_temp_path {temp['body']};",
            f"    proxy_temp_path {temp['proxy']};",
            f"    fastcgi_temp_path {temp['fastcgi']};",
            f"    uwsgi_temp_path {temp['uwsgi']};",
            f"    scgi_temp_path {temp['scgi']};",
            f"    include {folder / 'pusher.conf'};",
            "}",
            "",
        ]
    )


def _stop_nginx(front: NginxFront) -> None:
    """SIGTERM to our own nginx by its PID (a fast shutdown), then wait for its port to be
    free, so that the next test can bind it."""
    if front.process.poll() is None:
        front.process.terminate()
        try:
            front.process.wait(timeout=NGINX_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            front.process.kill()
            front.process.wait(timeout=5)
    deadline = time.monotonic() + NGINX_STOP_TIMEOUT
    while _listening(front.port) and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.fixture
def nginx_front(tmp_path: Path) -> Iterator[Callable[[str, BundledTls], NginxFront]]:
    """``nginx_front(upstream, tls)`` starts nginx with fixtures/nginx/pusher.conf in front of
    ``upstream`` (``HOST:PORT``, plain), terminating TLS with ``tls`` on a free 127.0.0.1 port,
    and returns once that port takes connections; every nginx started is stopped afterwards.

    Skipped when nginx is not installed, unless CONFORMANCE_DEPLOY_REQUIRED=1 (then it fails):
    a CI job that certifies deployments must not pass by skipping.
    """
    binary = _nginx_binary()
    if binary is None:
        if os.environ.get("CONFORMANCE_DEPLOY_REQUIRED") == "1":
            pytest.fail("nginx is not installed, and CONFORMANCE_DEPLOY_REQUIRED=1")
        pytest.skip("nginx is not installed")
    started: list[NginxFront] = []

    def start(upstream: str, tls: BundledTls) -> NginxFront:
        folder = tmp_path / f"nginx-{len(started)}"
        folder.mkdir()
        port = _free_port()
        (folder / "nginx.conf").write_text(_nginx_conf(folder, port, upstream, tls))
        error_log = folder / "error.log"
        with (folder / "stderr.log").open("wb") as stderr:
            process = subprocess.Popen(
                [binary, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", str(error_log)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        front = NginxFront(port, error_log, process)
        started.append(front)
        deadline = time.monotonic() + NGINX_START_TIMEOUT
        while not _listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                stderr = (folder / "stderr.log").read_text(errors="replace").strip()
                pytest.fail(
                    f"nginx did not listen on 127.0.0.1:{port} (exit {process.poll()}):"
                    f" {stderr}\n{front.log_tail()}"
                )
            time.sleep(0.05)
        return front

    yield start
    for front in started:
        _stop_nginx(front)


#: Seconds a test Redis gets to start answering.
REDIS_START_TIMEOUT = 10.0


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
