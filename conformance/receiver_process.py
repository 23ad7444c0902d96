"""The webhook receiver in a process of its own.

A target sends its webhooks one request after another, so every millisecond the receiver takes
to answer holds up every webhook behind it. In the suite's own process the receiver would
share the interpreter lock with every check running side by side (hypothesis generating
examples, the delivery model judging), and webhooks arrived seconds late under load. In a
child process it answers at once; the checks read it over HTTP, as before.

Run as ``python -m conformance.receiver_process LISTEN_URL``: it prints one JSON line
(``listen_url`` and ``control_url``, or ``error``) and serves until its standard input closes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

from .bundled import stop_child
from .errors import HarnessError, UsageError
from .webhooks import WebhookReceiver

__all__ = ["ReceiverProcess", "start_receiver_process"]

#: Seconds the child may take to bind and say where it listens.
START_TIMEOUT = 20.0


@dataclass
class ReceiverProcess:
    process: subprocess.Popen[str]
    listen_url: str
    control_url: str

    def stop(self) -> None:
        stop_child(self.process, self._close_stdin)

    def _close_stdin(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()  # the child's signal to stop


def start_receiver_process(listen_url: str) -> ReceiverProcess:
    """Start the receiver; a listen address that cannot be bound is a usage error."""
    process = subprocess.Popen(
        [sys.executable, "-m", "conformance.receiver_process", listen_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        line = process.stdout.readline()
        data = json.loads(line) if line.strip() else {}
    except ValueError:
        data = {}
    if "error" in data:
        process.wait(timeout=START_TIMEOUT)
        raise UsageError(str(data["error"]))
    if "control_url" not in data:
        process.kill()
        process.wait(timeout=5)
        raise HarnessError(f"the webhook receiver did not start (it said {line.strip()!r})")
    return ReceiverProcess(process, str(data["listen_url"]), str(data["control_url"]))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(json.dumps({"error": "usage: python -m conformance.receiver_process URL"}))
        return 2
    try:
        receiver = WebhookReceiver(argv[0]).start()
    except UsageError as exc:
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
