"""Where the frames of a WebSocket byte stream end, found as the bytes go by.

The proxy forwards bytes as they arrive and never reassembles messages, but an injected close
frame must land between two frames, or it would corrupt the one in flight. ``StreamScanner``
follows one direction of a connection: first the HTTP head of the upgrade (request or response),
then frame headers, skipping payloads without keeping them. It is fed however the bytes happen to
be split and reports the same boundaries whatever the split, so it is tested without sockets.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

__all__ = ["OPCODE_CLOSE", "Boundary", "ScanMode", "StreamScanner", "close_frame"]

OPCODE_CLOSE = 0x8

#: ``head``: reading the HTTP head; ``frames``: a WebSocket frame stream; ``opaque``: not a
#: WebSocket (the upgrade was refused, or the head was too long): no boundaries are known.
ScanMode = Literal["head", "frames", "opaque"]

_HEAD_END = b"\r\n\r\n"


@dataclass(frozen=True)
class Boundary:
    """A point in the stream where a frame may be inserted: just after the HTTP head
    (``opcode`` None) or just after a complete frame."""

    offset: int
    opcode: int | None = None
    fin: bool = True


class StreamScanner:
    """Feed it one direction's bytes in order; it returns the boundaries each piece completes.

    ``head``: ``"request"`` for the client's side, ``"response"`` for the server's (only a 101
    answer starts a frame stream), None for a stream that starts with frames. Frames may be
    masked or not (the mask bit says which); lengths may use the 7, 16 or 64-bit forms. Fragments
    of a message are frames like any other: RFC 6455 lets a control frame sit between them.
    """

    def __init__(
        self, head: Literal["request", "response"] | None = None, *, max_head: int = 65536
    ):
        self._head_kind = head
        self._max_head = max_head
        self.mode: ScanMode = "head" if head else "frames"
        #: Bytes fed so far: the stream offset of the next byte.
        self.offset = 0
        self._head = bytearray()
        self._header = bytearray()
        self._header_needed = 2
        self._payload_left = 0
        self._opcode = 0
        self._fin = True

    @property
    def at_boundary(self) -> bool:
        """Whether everything fed so far ends exactly at a boundary."""
        return self.mode == "frames" and not self._header and self._payload_left == 0

    def feed(self, data: bytes | bytearray | memoryview) -> list[Boundary]:
        view = memoryview(data)
        found: list[Boundary] = []
        start = self.offset
        self.offset += len(view)
        position = 0
        if self.mode == "head":
            position = self._feed_head(view, start, found)
        if self.mode != "frames":
            return found
        while position < len(view):
            if self._payload_left:
                taken = min(self._payload_left, len(view) - position)
                self._payload_left -= taken
                position += taken
                if self._payload_left == 0:
                    found.append(Boundary(start + position, self._opcode, self._fin))
                continue
            wanted = self._header_needed - len(self._header)
            self._header += view[position : position + wanted]
            position += min(wanted, len(view) - position)
            if len(self._header) == self._header_needed and self._header_done():
                found.append(Boundary(start + position, self._opcode, self._fin))
        return found

    def _feed_head(self, view: memoryview, start: int, found: list[Boundary]) -> int:
        """Take bytes up to the end of the HTTP head; returns how many of ``view`` it took."""
        searched_from = max(0, len(self._head) - len(_HEAD_END) + 1)
        self._head += view
        end = self._head.find(_HEAD_END, searched_from)
        if end < 0:
            if len(self._head) > self._max_head:
                self.mode = "opaque"
                self._head.clear()
            return len(view)
        head_length = end + len(_HEAD_END)
        taken = head_length - (len(self._head) - len(view))
        status_line = bytes(self._head[: self._head.find(b"\r\n")])
        self._head.clear()
        upgraded = self._head_kind == "request" or status_line.split(b" ")[1:2] == [b"101"]
        self.mode = "frames" if upgraded else "opaque"
        if upgraded:
            found.append(Boundary(start + taken))
        return taken

    def _header_done(self) -> bool:
        """Called each time the header bytes asked for have arrived: either asks for more (the
        extended length, the mask key) or starts the payload. True when the frame is complete
        (an empty payload)."""
        first, second = self._header[0], self._header[1]
        length = second & 0x7F
        needed = (
            2 + (2 if length == 126 else 8 if length == 127 else 0) + (4 if second & 0x80 else 0)
        )
        if len(self._header) < needed:
            self._header_needed = needed
            return False
        if length == 126:
            length = struct.unpack_from("!H", self._header, 2)[0]
        elif length == 127:
            length = struct.unpack_from("!Q", self._header, 2)[0]
        self._fin = bool(first & 0x80)
        self._opcode = first & 0x0F
        self._payload_left = length
        self._header.clear()
        self._header_needed = 2
        return length == 0


def close_frame(code: int, reason: str = "", *, mask_key: bytes | None = None) -> bytes:
    """A close frame: unmasked as a server sends it, or masked with ``mask_key`` (4 bytes) as a
    client must. The caller has checked the code and the reason's length (faults.WsClose)."""
    payload = struct.pack("!H", code) + reason.encode("utf-8")
    if mask_key is None:
        return bytes((0x80 | OPCODE_CLOSE, len(payload))) + payload
    if len(mask_key) != 4:
        raise ValueError("a mask key is 4 bytes")
    masked = bytes(b ^ mask_key[i % 4] for i, b in enumerate(payload))
    return bytes((0x80 | OPCODE_CLOSE, 0x80 | len(payload))) + mask_key + masked
