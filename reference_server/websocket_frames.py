"""Server-to-client WebSocket frames (RFC 6455, section 5.2), built in full before writing.

A broadcast encodes its frame once and writes the very same bytes to every subscriber: a
server's frames are never masked, and the server does not negotiate permessage-deflate, so
nothing in a frame depends on the connection it goes to.
"""

from __future__ import annotations

__all__ = ["binary_frame", "pong_frame", "text_frame"]

_FIN = 0x80
_TEXT = 0x1
_BINARY = 0x2
_PONG = 0xA


def _frame(opcode: int, payload: bytes) -> bytes:
    length = len(payload)
    if length < 126:
        header = bytes((_FIN | opcode, length))
    elif length < 1 << 16:
        header = bytes((_FIN | opcode, 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((_FIN | opcode, 127)) + length.to_bytes(8, "big")
    return header + payload


def text_frame(text: str) -> bytes:
    return _frame(_TEXT, text.encode())


def binary_frame(data: bytes) -> bytes:
    return _frame(_BINARY, data)


def pong_frame(payload: bytes) -> bytes:
    """Control frames carry at most 125 bytes; a ping's payload is echoed as it came, and
    aiohttp has already refused a ping with more."""
    return _frame(_PONG, payload)
