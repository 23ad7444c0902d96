"""The webhook receiver in a process of its own.

A target sends its webhooks one request after another, so every millisecond the receiver takes
to answer holds up every webhook behind it. In the suite's own process the receiver would
share the interpreter lock with every check running side by side (hypothesis generating
examples, the delivery model judging), and webhooks arrived seconds late under load. In a
child process it answers at once; the checks read it over HTTP, as before.

The parent binds the listening socket and hands it over (``--fd``), so the receiver's address
is known at once: the bundled server that posts to it starts while the receiver is still
starting, instead of after it (each costs an interpreter start; the mutation self-test starts
both over a hundred times).

Run as ``python -m conformance.receiver_process LISTEN_URL [--fd N]``: it prints one JSON
line (``listen_url`` and ``control_url``, or ``error``) and serves until its standard input
closes.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from dataclasses import dataclass

from .bundled import stop_child
from .errors import HarnessError, UsageError
from .webhooks import WebhookReceiver, bind_listener, parse_listen_url

__all__ = ["ReceiverProcess", "spawn_receiver_process", "start_receiver_process"]

#: Seconds the child may take to start serving and say so.
START_TIMEOUT = 20.0


@dataclass
class ReceiverProcess:
    """A receiver child: where it listens is known from the start; ``control_url`` once it
    has said it serves (``wait_ready``)."""

    process: subprocess.Popen[str]
    listen_url: str
    control_url: str = ""

    def wait_ready(self) -> ReceiverProcess:
        """Wait for the child's line.

        Raises:
            HarnessError: it exited or said something else.
        """
        if self.control_url:
            return self
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        try:
            data = json.loads(line) if line.strip() else {}
        except ValueError:
            data = {}
        if "control_url" not in data:
            self.process.kill()
            self.process.wait(timeout=5)
            raise HarnessError(f"the webhook receiver did not start (it said {line.strip()!r})")
        self.control_url = str(data["control_url"])
        return self

    def stop(self) -> None:
        stop_child(self.process, self._close_stdin)

    def _close_stdin(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()  # the child's signal to stop


def spawn_receiver_process(listen_url: str) -> ReceiverProcess:
    """Bind the receiver's address here and start the child that serves it; do not wait for it.

    Raises:
        UsageError: a bad listen URL, or an address that cannot be bound.
    """
    host, port, path = parse_listen_url(listen_url)
    try:
        sock = bind_listener(host, port)
    except OSError as exc:
        raise UsageError(
            f"cannot listen for webhooks on {host}:{port}: {exc.strerror or exc}"
        ) from None
    with sock:
        # Listening from here on: the address is taken while the child starts.
        sock.listen(128)
        bound = sock.getsockname()[1]
        netloc = f"[{host}]" if ":" in host else host
        actual = f"http://{netloc}:{bound}{path}"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "conformance.receiver_process",
                actual,
                "--fd",
                str(sock.fileno()),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            pass_fds=(sock.fileno(),),
        )
    return ReceiverProcess(process, actual)


def start_receiver_process(listen_url: str) -> ReceiverProcess:
    """Start the receiver and wait until it serves."""
    return spawn_receiver_process(listen_url).wait_ready()


def main(argv: list[str]) -> int:
    usage = "usage: python -m conformance.receiver_process URL [--fd N]"
    if len(argv) not in (1, 3) or (len(argv) == 3 and argv[1] != "--fd"):
        print(json.dumps({"error": usage}), flush=True)
        return 2
    try:
        sock = socket.socket(fileno=int(argv[2])) if len(argv) == 3 else None
        receiver = WebhookReceiver(argv[0], sock=sock).start()
    except (UsageError, ValueError, OSError) as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        return 2
    print(
        json.dumps({"listen_url": receiver.listen_url, "control_url": receiver.control_url}),
        flush=True,
    )
    try:
        sys.stdin.read()  # until the parent closes it, or dies
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
