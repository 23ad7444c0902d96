"""A minimal WebSocket client codec (RFC 6455), sans I/O, for the benchmark's load generator.

The load generator's receiving side is what most often runs out of CPU first: a fan-out phase
hands it hundreds of thousands of frames a second. So the parser works on whole chunks as they
come off the socket, keeps the common case (a complete, unfragmented, unmasked text frame) to a
few integer operations and one slice, and copies a partial frame only once it is complete.
No extensions are offered, so no frame may set a reserved bit.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass

__all__ = [
    "CLOSE_NO_STATUS",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONTINUATION",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "Close",
    "FrameError",
    "FrameParser",
    "Handshake",
    "HandshakeError",
    "accept_for",
    "encode_close",
    "encode_frame",
    "encode_pong",
    "encode_text",
    "parse_close",
]

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

#: The code a close frame without a payload stands for (it is never sent on the wire).
CLOSE_NO_STATUS = 1005

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: The most a server's upgrade answer may take before we give up on it (it has no body).
_MAX_HANDSHAKE_BYTES = 16_384
_KNOWN_OPCODES = frozenset({OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG})


class FrameError(ValueError):
    """The server sent something RFC 6455 forbids; the connection should fail with 1002."""


class HandshakeError(ValueError):
    """The server did not accept the WebSocket upgrade; the message says what it answered."""


# --- the opening handshake -------------------------------------------------------------------


def accept_for(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` a server must answer to ``key``."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _GUID).digest()).decode("ascii")


class Handshake:
    """One client upgrade: ``request`` is what to send; ``feed`` the answer until it returns the
    bytes that followed it (the first frames, often already there)."""

    def __init__(self, host: str, path: str, key: str | None = None) -> None:
        self.key = key or base64.b64encode(os.urandom(16)).decode("ascii")
        self.request = (
            f"GET {path} HTTP/1.1\r\n"
            f"Host: {host}\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {self.key}\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            "\r\n"
        ).encode("ascii")
        self._answer = bytearray()

    def feed(self, data: bytes) -> bytes | None:
        """``None`` while the answer is incomplete; then what came after it.

        Raises:
            HandshakeError: not a 101 with the right accept key (or an answer too long).
        """
        self._answer += data
        end = self._answer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._answer) > _MAX_HANDSHAKE_BYTES:
                raise HandshakeError(f"upgrade answer longer than {_MAX_HANDSHAKE_BYTES} bytes")
            return None
        head = bytes(self._answer[:end]).decode("latin-1")
        rest = bytes(self._answer[end + 4 :])
        self._check(head)
        return rest

    def _check(self, head: str) -> None:
        status_line, *lines = head.split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise HandshakeError(f"not an HTTP answer to the upgrade: {status_line[:80]!r}")
        if parts[1] != "101":
            raise HandshakeError(f"HTTP {' '.join(parts[1:])[:80]} instead of 101 to the upgrade")
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("upgrade", "").lower() != "websocket":
            raise HandshakeError("101 without 'Upgrade: websocket'")
        if "upgrade" not in headers.get("connection", "").lower():
            raise HandshakeError("101 without 'Connection: Upgrade'")
        if headers.get("sec-websocket-accept") != accept_for(self.key):
            raise HandshakeError("101 with a wrong or missing Sec-WebSocket-Accept")
        if headers.get("sec-websocket-extensions"):
            raise HandshakeError("101 with an extension the client did not offer")


# --- client frames (masked) ------------------------------------------------------------------


def _mask(payload: bytes, key: bytes) -> bytes:
    if not payload:
        return payload
    n = len(payload)
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def encode_frame(
    opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None
) -> bytes:
    """One masked client frame; ``mask`` is for tests (default: four random bytes)."""
    key = os.urandom(4) if mask is None else mask
    n = len(payload)
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        header = bytes((first, 0x80 | n))
    elif n < 65536:
        header = bytes((first, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((first, 0x80 | 127)) + n.to_bytes(8, "big")
    return header + key + _mask(payload, key)


def encode_text(text: str | bytes) -> bytes:
    return encode_frame(OP_TEXT, text.encode("utf-8") if isinstance(text, str) else text)


def encode_pong(payload: bytes = b"") -> bytes:
    return encode_frame(OP_PONG, payload)


def encode_close(code: int = 1000, reason: str = "") -> bytes:
    return encode_frame(OP_CLOSE, code.to_bytes(2, "big") + reason.encode("utf-8"))


# --- server frames (unmasked) ----------------------------------------------------------------


@dataclass(frozen=True)
class Close:
    """A close frame's content; ``code`` is 1005 for an empty one."""

    code: int
    reason: str


def parse_close(payload: bytes) -> Close:
    if not payload:
        return Close(CLOSE_NO_STATUS, "")
    if len(payload) == 1:
        raise FrameError("close frame with a 1-byte payload")
    return Close(int.from_bytes(payload[:2], "big"), payload[2:].decode("utf-8", "replace"))


class FrameParser:
    """Server frames from a byte stream, in whole messages.

    ``feed`` returns the complete text messages (fragments joined) and, apart, every other
    message as ``(opcode, payload)``: binary ones and control frames. Each list keeps the order
    in which its messages completed; the order between the two lists is not kept (nothing a
    Pusher client does depends on it). Text messages come as bare payloads, with no tuple
    around each: a fan-out phase hands the parser hundreds of thousands a second.
    """

    def __init__(self, max_message: int = 64 * 1024 * 1024) -> None:
        self.max_message = max_message
        #: Bytes of a frame not yet complete, and how many the buffer must hold to finish it
        #: (0 until its header is known): chunks are joined once, not once per read.
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._needed = 0
        #: A fragmented message being put together: its opcode and the pieces so far.
        self._fragment_opcode = 0
        self._fragments: list[bytes] = []
        self._fragments_size = 0

    def feed(self, data: bytes) -> tuple[list[bytes], list[tuple[int, bytes]]]:
        texts: list[bytes] = []
        others: list[tuple[int, bytes]] = []
        if self._pending:
            self._pending.append(data)
            self._pending_size += len(data)
            if self._pending_size < self._needed:
                return texts, others
            data = b"".join(self._pending)
            self._pending.clear()
        text = texts.append
        fragments = self._fragments  # mutated in place by _other, never replaced
        limit = self.max_message
        pos = 0
        end = len(data)
        while pos < end:
            if end - pos < 2:
                self._keep(data, pos, end, 0)
                break
            first = data[pos]
            size = data[pos + 1]
            if size < 126:
                start = pos + 2
            elif size == 126:
                start = pos + 4
                if start > end:
                    self._keep(data, pos, end, 0)
                    break
                size = (data[pos + 2] << 8) | data[pos + 3]
                if size > limit:
                    raise FrameError(f"frame of {size} bytes, over the {limit} allowed")
            elif size == 127:
                start = pos + 10
                if start > end:
                    self._keep(data, pos, end, 0)
                    break
                size = int.from_bytes(data[pos + 2 : start], "big")
                if size > limit:
                    raise FrameError(f"frame of {size} bytes, over the {limit} allowed")
            else:
                raise FrameError("masked frame from the server")
            stop = start + size
            if stop > end:
                self._keep(data, pos, end, stop - pos)
                break
            if first == 0x81 and not fragments:
                text(data[start:stop])
            else:
                self._other(first, data[start:stop], texts, others)
            pos = stop
        return texts, others

    def _keep(self, data: bytes, pos: int, end: int, needed: int) -> None:
        rest = data[pos:end] if pos else data
        self._pending.append(rest)
        self._pending_size = len(rest)
        # Until the header is complete, any new chunk is worth a look.
        self._needed = needed

    def _other(
        self, first: int, payload: bytes, texts: list[bytes], others: list[tuple[int, bytes]]
    ) -> None:
        """Everything but a whole text frame: reserved bits, control frames, fragments."""
        if first & 0x70:
            raise FrameError("frame with a reserved bit set (no extension was negotiated)")
        fin = bool(first & 0x80)
        opcode = first & 0x0F
        if opcode not in _KNOWN_OPCODES:
            raise FrameError(f"frame with the reserved opcode {opcode:#x}")
        if opcode >= OP_CLOSE:
            if not fin:
                raise FrameError("fragmented control frame")
            if len(payload) > 125:
                raise FrameError(f"control frame with a {len(payload)}-byte payload (over 125)")
            if opcode == OP_CLOSE:
                parse_close(payload)
            others.append((opcode, payload))
            return
        if opcode == OP_CONTINUATION:
            if not self._fragments:
                raise FrameError("continuation frame with no message to continue")
        elif self._fragments:
            raise FrameError("new data frame while a fragmented message was unfinished")
        else:
            self._fragment_opcode = opcode
        self._fragments_size += len(payload)
        if self._fragments_size > self.max_message:
            raise FrameError(f"message over the {self.max_message} bytes allowed")
        if fin and opcode != OP_CONTINUATION:  # a whole binary frame
            others.append((opcode, payload))
            self._fragments_size = 0
            return
        self._fragments.append(payload)
        if fin:
            message = b"".join(self._fragments)
            if self._fragment_opcode == OP_TEXT:
                texts.append(message)
            else:
                others.append((self._fragment_opcode, message))
            self._fragments.clear()
            self._fragments_size = 0
