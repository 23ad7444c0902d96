"""The WebSocket client codec: handshake, masked client frames, and the server-frame parser."""

from __future__ import annotations

import pytest

from conformance.bench.frames import (
    CLOSE_NO_STATUS,
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Close,
    FrameError,
    FrameParser,
    Handshake,
    HandshakeError,
    accept_for,
    encode_close,
    encode_frame,
    encode_pong,
    encode_text,
    parse_close,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def server_frame(
    opcode: int, payload: bytes, *, fin: bool = True, first: int | None = None
) -> bytes:
    """An unmasked frame as a server sends it, with the shortest length encoding."""
    head = first if first is not None else (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        return bytes((head, n)) + payload
    if n < 65536:
        return bytes((head, 126)) + n.to_bytes(2, "big") + payload
    return bytes((head, 127)) + n.to_bytes(8, "big") + payload


def unmask(frame: bytes) -> tuple[int, int, bytes]:
    """(first byte, payload length, unmasked payload) of one masked client frame."""
    assert frame[1] & 0x80, "client frames must be masked"
    n = frame[1] & 0x7F
    pos = 2
    if n == 126:
        n, pos = int.from_bytes(frame[2:4], "big"), 4
    elif n == 127:
        n, pos = int.from_bytes(frame[2:10], "big"), 10
    key, body = frame[pos : pos + 4], frame[pos + 4 :]
    assert len(body) == n
    return frame[0], n, bytes(b ^ key[i % 4] for i, b in enumerate(body))


def answer(key: str, status: str = "101 Switching Protocols", **extra: str) -> bytes:
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Accept": accept_for(key),
    }
    headers.update({k.replace("_", "-"): v for k, v in extra.items()})
    lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers.items() if v]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# --- handshake --------------------------------------------------------------------------------


def test_accept_key_is_the_rfc_example() -> None:
    assert accept_for(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_request_asks_for_an_upgrade_without_extensions() -> None:
    request = Handshake("127.0.0.1:80", "/app/K?protocol=7", KEY).request.decode()
    assert request.startswith("GET /app/K?protocol=7 HTTP/1.1\r\n")
    assert f"Sec-WebSocket-Key: {KEY}\r\n" in request
    assert "Sec-WebSocket-Version: 13\r\n" in request
    assert "Extensions" not in request
    assert request.endswith("\r\n\r\n")


def test_a_fresh_key_each_handshake() -> None:
    assert Handshake("h", "/").key != Handshake("h", "/").key


def test_answer_in_pieces_then_the_frames_that_followed() -> None:
    handshake = Handshake("h", "/", KEY)
    data = answer(KEY) + server_frame(OP_TEXT, b"hi")
    for byte in data[:10]:
        assert handshake.feed(bytes([byte])) is None
    assert handshake.feed(data[10:]) == server_frame(OP_TEXT, b"hi")


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (answer(KEY, "404 Not Found"), "HTTP 404 Not Found instead of 101"),
        (answer(KEY, Sec_WebSocket_Accept="wrong"), "wrong or missing Sec-WebSocket-Accept"),
        (answer(KEY, Upgrade=""), "without 'Upgrade: websocket'"),
        (answer(KEY, Connection="close"), "without 'Connection: Upgrade'"),
        (answer(KEY, Sec_WebSocket_Extensions="permessage-deflate"), "extension"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP answer"),
    ],
)
def test_refused_upgrades_say_what_was_wrong(reply: bytes, message: str) -> None:
    with pytest.raises(HandshakeError, match=message):
        Handshake("h", "/", KEY).feed(reply)


def test_an_endless_answer_is_refused() -> None:
    handshake = Handshake("h", "/", KEY)
    for _ in range(32):  # 16,384 bytes
        assert handshake.feed(b"X-Filler: " + b"a" * 500 + b"\r\n") is None
    with pytest.raises(HandshakeError, match="longer than"):
        handshake.feed(b"X-Filler: " + b"a" * 500 + b"\r\n")


# --- client frames ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_client_frames_are_masked_and_round_trip(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    first, n, body = unmask(encode_frame(OP_BINARY, payload))
    assert (first, n, body) == (0x80 | OP_BINARY, size, payload)


def test_masking_with_a_given_key_changes_the_bytes() -> None:
    frame = encode_frame(OP_TEXT, b"abcd", mask=b"\x01\x02\x03\x04")
    assert frame == b"\x81\x84\x01\x02\x03\x04" + bytes((0x60, 0x60, 0x60, 0x60))


def test_text_pong_close_and_a_non_final_fragment() -> None:
    assert unmask(encode_text("héllo"))[::2] == (0x81, "héllo".encode())
    assert unmask(encode_pong(b"p"))[::2] == (0x80 | OP_PONG, b"p")
    assert unmask(encode_close(4100, "slow"))[::2] == (0x88, b"\x10\x04slow")
    assert unmask(encode_frame(OP_TEXT, b"x", fin=False))[0] == OP_TEXT


# --- the parser -------------------------------------------------------------------------------


def test_whole_text_frames_in_one_chunk() -> None:
    data = server_frame(OP_TEXT, b"one") + server_frame(OP_TEXT, b"two")
    assert FrameParser().feed(data) == ([b"one", b"two"], [])


@pytest.mark.parametrize("size", [0, 125, 126, 300, 65535, 65536, 200_000])
def test_every_length_encoding(size: int) -> None:
    payload = b"y" * size
    assert FrameParser().feed(server_frame(OP_TEXT, payload)) == ([payload], [])


def test_a_stream_cut_at_every_byte_gives_the_same_messages() -> None:
    frames = [
        server_frame(OP_TEXT, b"a" * 5),
        server_frame(OP_PING, b"p"),
        server_frame(OP_TEXT, b"b" * 300),
        server_frame(OP_BINARY, b"c" * 70_000),
        server_frame(OP_CLOSE, b"\x03\xe8bye"),
    ]
    stream = b"".join(frames)
    expected = FrameParser().feed(stream)
    assert expected[0] == [b"a" * 5, b"b" * 300]
    assert [op for op, _ in expected[1]] == [OP_PING, OP_BINARY, OP_CLOSE]
    for cut in [*range(0, 20), 307, 308, 309, 320, 5000, len(stream) - 1]:
        parser = FrameParser()
        texts, others = parser.feed(stream[:cut])
        more_texts, more_others = parser.feed(stream[cut:])
        assert (texts + more_texts, others + more_others) == expected, cut


def test_a_large_frame_in_many_small_chunks() -> None:
    frame = server_frame(OP_TEXT, bytes(range(256)) * 1000)
    parser = FrameParser()
    got: list[bytes] = []
    for start in range(0, len(frame), 1000):
        texts, others = parser.feed(frame[start : start + 1000])
        assert others == []
        got += texts
    assert got == [bytes(range(256)) * 1000]


def test_fragments_are_joined_around_a_control_frame() -> None:
    stream = (
        server_frame(OP_TEXT, b"hel", fin=False)
        + server_frame(0, b"l", fin=False)
        + server_frame(OP_PING, b"!")
        + server_frame(0, b"o", fin=True)
        + server_frame(OP_TEXT, b"next")
    )
    assert FrameParser().feed(stream) == ([b"hello", b"next"], [(OP_PING, b"!")])


def test_a_fragmented_binary_message_keeps_its_opcode() -> None:
    stream = server_frame(OP_BINARY, b"\x00", fin=False) + server_frame(0, b"\x01")
    assert FrameParser().feed(stream) == ([], [(OP_BINARY, b"\x00\x01")])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x81\x81abcdx", "masked frame"),
        (server_frame(OP_TEXT, b"x", first=0xC1), "reserved bit"),
        (server_frame(0x3, b"x"), "reserved opcode"),
        (server_frame(OP_PING, b"x", fin=False), "fragmented control frame"),
        (server_frame(OP_PING, b"x" * 126), "over 125"),
        (server_frame(0, b"x"), "no message to continue"),
        (server_frame(OP_TEXT, b"a", fin=False) + server_frame(OP_TEXT, b"b"), "unfinished"),
        (server_frame(OP_CLOSE, b"\x03"), "1-byte payload"),
        (b"\x81\x7f" + (2**63).to_bytes(8, "big"), "over the"),
    ],
)
def test_protocol_errors_are_named(data: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        FrameParser().feed(data)


def test_a_message_over_the_limit_is_refused_even_in_fragments() -> None:
    parser = FrameParser(max_message=10)
    with pytest.raises(FrameError, match="over the 10 bytes"):
        parser.feed(server_frame(OP_TEXT, b"x" * 6, fin=False) + server_frame(0, b"y" * 6))
    with pytest.raises(FrameError, match="over the 10 allowed"):
        FrameParser(max_message=10).feed(server_frame(OP_TEXT, b"x" * 200))


def test_close_payloads() -> None:
    assert parse_close(b"") == Close(CLOSE_NO_STATUS, "")
    assert parse_close(b"\x10\x04Pong reply not received") == Close(4100, "Pong reply not received")
    assert parse_close(b"\x0f\xa0\xff") == Close(4000, "\ufffd")
