"""Judging what a plain ws:// request got: refused or redirected passes, served fails."""

from __future__ import annotations

import asyncio
import socket

import pytest

from conformance.smoke.plain import PlainAnswer, classify, plain_url_for, probe_plain

URL = "ws://ws.example.test"


def _head(status: str, *headers: str) -> bytes:
    return ("\r\n".join([f"HTTP/1.1 {status}", *headers]) + "\r\n\r\n").encode()


@pytest.mark.parametrize(
    ("answer", "ok", "says"),
    [
        (PlainAnswer(failure="refused"), True, "refused: nothing listens"),
        (PlainAnswer(failure="timeout"), True, "dropped"),
        (PlainAnswer(failure="silent"), True, "never answered"),
        (PlainAnswer(failure="closed"), True, "closed the connection"),
        (PlainAnswer(b""), True, "closed the connection"),
        (PlainAnswer(b"\x15\x03\x01\x00\x02\x02\x46"), True, "does not speak plain HTTP"),
        (PlainAnswer(_head("400 Bad Request")), True, "refused with HTTP 400"),
        (PlainAnswer(_head("426 Upgrade Required")), True, "refused with HTTP 426"),
        (
            PlainAnswer(_head("301 Moved", "Location: https://ws.example.test/app/k")),
            True,
            "redirected (301) to https://ws.example.test/app/k",
        ),
        (PlainAnswer(_head("308 Permanent", "location: wss://x.test/app/k")), True, "wss://"),
        (PlainAnswer(_head("101 Switching Protocols")), False, "plain ws:// accepted"),
        (PlainAnswer(_head("302 Found", "Location: http://other.test/")), False, "to plain"),
        (PlainAnswer(_head("302 Found", "Location: /elsewhere")), False, "to plain"),
    ],
)
def test_classify(answer: PlainAnswer, ok: bool, says: str) -> None:
    verdict = classify(answer, URL)
    assert verdict.ok is ok
    assert says in verdict.text


@pytest.mark.parametrize(
    ("ws_url", "plain"),
    [
        ("wss://ws.example.test", "ws://ws.example.test"),
        ("wss://ws.example.test:443/prefix", "ws://ws.example.test/prefix"),
        ("wss://127.0.0.1:6001", "ws://127.0.0.1:6001"),
        ("wss://[::1]:6001", "ws://[::1]:6001"),
    ],
)
def test_plain_url_for(ws_url: str, plain: str) -> None:
    assert plain_url_for(ws_url) == plain


def test_probe_of_a_closed_port_is_a_refusal() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    answer = asyncio.run(probe_plain(f"ws://127.0.0.1:{port}", "/app/k", 2.0))
    assert answer.failure == "refused"
