"""The webhook receiver in its own process: it starts, says where it listens, serves the
checks' control URL, and stops when told."""

from __future__ import annotations

import json
import urllib.request

import pytest

from conformance.errors import UsageError
from conformance.receiver_process import spawn_receiver_process, start_receiver_process


def test_it_listens_on_a_free_loopback_port_and_stops() -> None:
    receiver = start_receiver_process("http://127.0.0.1:0/pusher/webhooks")
    try:
        assert receiver.listen_url.startswith("http://127.0.0.1:")
        assert not receiver.listen_url.endswith(":0/pusher/webhooks")
        body = b'{"time_ms": 1, "events": [{"name": "channel_occupied", "channel": "c"}]}'
        posted = urllib.request.Request(receiver.listen_url, data=body, method="POST")
        with urllib.request.urlopen(posted, timeout=5) as answer:
            assert answer.status == 200
        with urllib.request.urlopen(f"{receiver.control_url}/records", timeout=5) as answer:
            records = json.loads(answer.read())
        assert records["last"] == 1
    finally:
        receiver.stop()
    assert receiver.process.returncode == 0


def test_a_listen_address_off_loopback_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="loopback"):
        start_receiver_process("http://192.0.2.1:9000/hooks")


def test_its_address_is_known_before_it_serves_and_a_taken_port_is_a_usage_error() -> None:
    receiver = spawn_receiver_process("http://127.0.0.1:0/hooks")
    try:
        # Known at once: the server that posts to it may start while the child does.
        assert receiver.control_url == ""
        port = int(receiver.listen_url.rsplit(":", 1)[1].split("/")[0])
        assert port > 0
        with pytest.raises(UsageError, match=f"cannot listen for webhooks on 127.0.0.1:{port}"):
            spawn_receiver_process(f"http://127.0.0.1:{port}/again")
        assert receiver.wait_ready().control_url.startswith(f"http://127.0.0.1:{port}/")
    finally:
        receiver.stop()
    assert receiver.process.returncode == 0
