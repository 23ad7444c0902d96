"""Server frames: FIN, opcode and the shortest length encoding RFC 6455 allows."""

from __future__ import annotations

import pytest

from reference_server.websocket_frames import binary_frame, pong_frame, text_frame


@pytest.mark.parametrize(
    ("length", "header"),
    [
        (0, b"\x81\x00"),
        (125, b"\x81\x7d"),
        (126, b"\x81\x7e\x00\x7e"),
        (65535, b"\x81\x7e\xff\xff"),
        (65536, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
    ],
)
def test_text_frame_lengths(length: int, header: bytes) -> None:
    frame = text_frame("a" * length)
    assert frame == header + b"a" * length


def test_text_is_utf8_and_the_length_counts_bytes() -> None:
    assert text_frame("é") == b"\x81\x02\xc3\xa9"


def test_binary_and_pong_opcodes() -> None:
    assert binary_frame(b"\x00\x01") == b"\x82\x02\x00\x01"
    assert pong_frame(b"hi") == b"\x8a\x02hi"
