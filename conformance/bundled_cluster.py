"""Starting a bundled cluster: a redis-server of the suite's own and N reference-server nodes
sharing it (``conformance run --bundled-nodes N``).

Like the single bundled server, every process is a child the suite talks to over loopback
only, never imports, and stops by its PID. Redis runs on a free 127.0.0.1 port from a temporary
directory, persisting nothing. The nodes share one app's credentials; node 0 is where the
ordinary checks run, and the faults of ``PUSHER_REF_FAULTS`` are switched on in node 1 only,
so that a run certifies a cluster with one broken node next to sound ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .bundled import BUNDLED_QUOTA, BundledServer, start_bundled, stop_child
from .errors import HarnessError, UsageError
from .nodes import Node
from .target import Target
from .target_apps import bundled_apps

__all__ = [
    "MAX_BUNDLED_NODES",
    "BundledCluster",
    "RedisServer",
    "start_bundled_cluster",
    "start_redis",
]

#: More nodes than this prove nothing more on a loopback machine, and cost a process each.
MAX_BUNDLED_NODES = 5

#: Which node gets the faults of ``PUSHER_REF_FAULTS`` (never node 0, where the ordinary
#: checks run).
FAULTY_NODE = 1

#: Seconds redis-server may take to answer its first PING.
REDIS_STARTUP_TIMEOUT = 10.0


@dataclass
class RedisServer:
    process: subprocess.Popen[str]
    url: str
    folder: tempfile.TemporaryDirectory[str]

    def stop(self) -> None:
        stop_child(self.process, self.process.terminate)
        self.folder.cleanup()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers_ping(port: int, deadline: float) -> bool:
    """Whether redis-server on ``port`` answers PING before ``deadline`` (tried every 0.1 s)."""
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock,
        ):
            sock.sendall(b"PING\r\n")
            if sock.recv(16).startswith(b"+PONG"):
                return True
        time.sleep(0.1)
    return False


def start_redis(binary: str = "redis-server", *, log_path: Path | None = None) -> RedisServer:
    """A redis-server of the suite's own on a free loopback port, persisting nothing.

    Raises:
        UsageError: ``binary`` is not installed (the message says what needs it).
        HarnessError: it did not answer PING in time (the message quotes its log).
    """
    executable = shutil.which(binary)
    if executable is None:
        raise UsageError(
            f"--bundled-nodes needs {binary} (Redis) on PATH to share state between the nodes; "
            "install Redis or point the suite at your own cluster with a target file's nodes:"
        )
    folder = tempfile.TemporaryDirectory(prefix="conformance-redis-")
    log = log_path or Path(folder.name) / "redis.log"
    last_error = "no attempt made"
    for _ in range(3):  # the free port may be taken between the probe and redis's bind
        port = _free_port()
        command = [
            executable, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
            "--appendonly", "no", "--dir", folder.name, "--logfile", str(log),
        ]  # fmt: skip
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        if _answers_ping(port, time.monotonic() + REDIS_STARTUP_TIMEOUT):
            return RedisServer(process, f"redis://127.0.0.1:{port}/0", folder)
        stop_child(process, process.kill)
        tail = log.read_text(errors="replace").strip().splitlines()[-2:] if log.exists() else []
        last_error = " | ".join(tail) or "it did not answer PING"
    folder.cleanup()
    raise HarnessError(f"redis-server did not start: {last_error}")


@dataclass
class BundledCluster:
    redis: RedisServer
    nodes: list[BundledServer]
    target: Target

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.redis.stop()

    async def stop_last(self) -> None:
        """Kill the last node outright (SIGKILL: a crash, no drain, no goodbye to Redis)."""
        process = self.nodes[-1].process

        def kill() -> None:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)

        try:
            await asyncio.to_thread(kill)
        except subprocess.TimeoutExpired:
            raise HarnessError("the last bundled node did not die within 10 s of SIGKILL") from None


def start_bundled_cluster(
    count: int,
    log_dir: Path,
    *,
    webhook_url: str | None = None,
    serves_file: Path | None = None,
) -> BundledCluster:
    """Redis, then ``count`` nodes sharing it and one app; the target names every node and
    is ``bundled`` (so the suite may stop its last node). Node 0 alone posts webhooks and
    counts requirement marks: the ordinary checks run on it."""
    if not 2 <= count <= MAX_BUNDLED_NODES:
        raise UsageError(f"--bundled-nodes must be 2 to {MAX_BUNDLED_NODES}, got {count}")
    log_dir.mkdir(parents=True, exist_ok=True)
    redis = start_redis(log_path=log_dir / "redis.log")
    apps = bundled_apps(BUNDLED_QUOTA)
    nodes: list[BundledServer] = []
    try:
        for number in range(count):
            nodes.append(
                start_bundled(
                    log_dir / f"reference-server-node{number}.log",
                    webhook_url=webhook_url if number == 0 else None,
                    serves_file=serves_file if number == 0 else None,
                    shared_apps=apps,
                    extra_args=("--redis-url", redis.url, "--node-id", f"node{number}"),
                    faults=None if number == FAULTY_NODE else "",
                )
            )
    except BaseException:
        for node in nodes:
            node.stop()
        redis.stop()
        raise
    first = nodes[0].target
    faults = nodes[FAULTY_NODE].faults
    target = dataclasses.replace(
        first,
        # Node 0's own record of faults is empty, so the name is where the reports show them.
        name=f"reference-server cluster ({count} bundled nodes on Redis"
        + (f"; node {FAULTY_NODE} WITH FAULTS: {faults})" if faults else ")"),
        nodes=tuple(Node(n.target.ws_url, n.target.http_url) for n in nodes),
        capabilities=first.capabilities | {"cluster", "node_control"},
    )
    return BundledCluster(redis, nodes, target)
