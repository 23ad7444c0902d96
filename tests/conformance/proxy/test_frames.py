"""The frame-boundary scanner: the same boundaries whatever the split of the byte stream."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.proxy.frames import OPCODE_CLOSE, Boundary, StreamScanner, close_frame

RESPONSE_HEAD = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: x\r\n\r\n"
)


def _frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None) -> bytes:
    """A frame built independently of the scanner, in each length form."""
    first = (0x80 if fin else 0) | opcode
    mask_bit = 0x80 if mask is not None else 0
    if len(payload) < 126:
        header = bytes((first, mask_bit | len(payload)))
    elif len(payload) < 65536:
        header = bytes((first, mask_bit | 126)) + struct.pack("!H", len(payload))
    else:
        header = bytes((first, mask_bit | 127)) + struct.pack("!Q", len(payload))
    if mask is not None:
        header += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + payload


# Sizes around each length form's edges, plus a few 16- and 64-bit payloads.
_sizes = st.sampled_from([0, 1, 125, 126, 127, 200, 65535, 65536, 70_000]) | st.integers(0, 300)


@st.composite
def _streams(draw: st.DrawFn) -> tuple[bytes, list[Boundary], bool]:
    masked = draw(st.booleans())
    stream = RESPONSE_HEAD
    expected = [Boundary(len(stream))]
    for _ in range(draw(st.integers(0, 6))):
        fragments = draw(st.integers(1, 3))
        for i in range(fragments):
            opcode = draw(st.sampled_from([0x1, 0x2])) if i == 0 else 0x0
            fin = i == fragments - 1
            if draw(st.booleans()) and i > 0:  # a control frame between fragments
                stream += _frame(0x9, b"ping", mask=b"abcd" if masked else None)
                expected.append(Boundary(len(stream), 0x9, True))
            size = draw(_sizes)
            stream += _frame(
                opcode, b"x" * size, fin=fin, mask=b"\x01\x02\x03\x04" if masked else None
            )
            expected.append(Boundary(len(stream), opcode, fin))
    return stream, expected, masked


@settings(max_examples=60, deadline=None)
@given(data=_streams(), cuts=st.lists(st.integers(0, 200_000), max_size=8))
def test_any_split_gives_the_same_boundaries(
    data: tuple[bytes, list[Boundary], bool], cuts: list[int]
) -> None:
    stream, expected, _ = data
    points = sorted({c % (len(stream) + 1) for c in cuts})
    scanner = StreamScanner("response")
    found: list[Boundary] = []
    previous = 0
    for point in [*points, len(stream)]:
        found += scanner.feed(stream[previous:point])
        previous = point
    assert found == expected
    assert scanner.at_boundary
    assert scanner.offset == len(stream)


@settings(max_examples=30, deadline=None)
@given(data=_streams())
def test_byte_by_byte_is_at_a_boundary_exactly_at_the_boundaries(
    data: tuple[bytes, list[Boundary], bool],
) -> None:
    stream, expected, _ = data
    if len(stream) > 5000:
        stream = stream[:5000]
    offsets = {b.offset for b in expected}
    scanner = StreamScanner("response")
    for i in range(len(stream)):
        scanner.feed(stream[i : i + 1])
        assert scanner.at_boundary == (i + 1 in offsets)


def test_a_refused_upgrade_is_opaque() -> None:
    scanner = StreamScanner("response")
    assert scanner.feed(b"HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\n\r\n\x81\x00") == []
    assert scanner.mode == "opaque"
    assert not scanner.at_boundary


def test_a_request_head_then_masked_client_frames() -> None:
    scanner = StreamScanner("request")
    head = b"GET /app/k HTTP/1.1\r\nHost: x\r\n\r\n"
    frame = close_frame(1001, "", mask_key=b"\x00\x00\x00\x00")
    assert scanner.feed(head + frame) == [
        Boundary(len(head)),
        Boundary(len(head) + len(frame), OPCODE_CLOSE, True),
    ]


def test_an_endless_head_turns_opaque() -> None:
    scanner = StreamScanner("response", max_head=100)
    scanner.feed(b"HTTP/1.1 101 x\r\n" + b"a" * 200)
    assert scanner.mode == "opaque"


def test_close_frames_server_and_client_forms() -> None:
    assert close_frame(4200, "bye") == b"\x88\x05" + struct.pack("!H", 4200) + b"bye"
    masked = close_frame(1001, "", mask_key=b"\x01\x02\x03\x04")
    assert masked[:2] == b"\x88\x82"
    assert masked[2:6] == b"\x01\x02\x03\x04"
    assert bytes(b ^ k for b, k in zip(masked[6:], b"\x01\x02", strict=True)) == struct.pack(
        "!H", 1001
    )
    with pytest.raises(ValueError, match="4 bytes"):
        close_frame(1000, mask_key=b"ab")
