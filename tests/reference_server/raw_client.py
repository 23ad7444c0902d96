"""A WebSocket client written by hand over a bare TCP stream, for what no library will do:
go silent without answering anything (a stalled peer), vanish without a close frame, or send
a frame that breaks RFC 6455.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from dataclasses import dataclass
from typing import Any

from reference_server.app import RunningServer

TIMEOUT = 3.0


@dataclass
class RawClient:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    socket_id: str

    async def send_text(self, text: str, *, first_byte: int = 0x81) -> None:
        """One masked frame (a client must mask); ``first_byte`` 0x81 is FIN + text."""
        payload = text.encode()
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            header = bytes([first_byte, 0x80 | length])
        elif length < 1 << 16:
            header = bytes([first_byte, 0x80 | 126]) + struct.pack("!H", length)
        else:
            header = bytes([first_byte, 0x80 | 127]) + struct.pack("!Q", length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(header + mask + masked)
        await self.writer.drain()

    async def send_json(self, value: Any) -> None:
        await self.send_text(json.dumps(value))

    async def read_frame(self, timeout: float = TIMEOUT) -> tuple[int, bytes]:
        """The next server frame: (opcode, payload)."""
        return await asyncio.wait_for(_read_frame(self.reader), timeout)

    async def read_json(self, timeout: float = TIMEOUT) -> Any:
        opcode, payload = await self.read_frame(timeout)
        assert opcode == 1, (opcode, payload)
        return json.loads(payload)

    async def read_close(self, timeout: float = TIMEOUT) -> tuple[int, str]:
        """Skip to the close frame; return its code and reason."""
        while True:
            opcode, payload = await self.read_frame(timeout)
            if opcode == 8:
                return struct.unpack("!H", payload[:2])[0], payload[2:].decode()

    def drop(self) -> None:
        """Vanish: close the TCP connection without a close frame."""
        self.writer.close()


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", await reader.readexactly(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", await reader.readexactly(8))[0]
    return first & 0x0F, await reader.readexactly(length)


async def upgrade(
    server: RunningServer, key: str = "app-key", *, receive_buffer: int | None = None
) -> tuple[int, bytes, RawClient]:
    """Send the upgrade request; return the status, the rest of the answer's head, and the
    client (usable only after a 101). ``receive_buffer`` shrinks the socket's receive buffer,
    so that a client which stops reading fills the server's side soon."""
    host, port = server.http_url.removeprefix("http://").rsplit(":", 1)
    if receive_buffer is None:
        reader, writer = await asyncio.open_connection(host, int(port))
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        reader, writer = await asyncio.open_connection(sock=sock, limit=receive_buffer)
    nonce = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /app/{key}?protocol=7 HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {nonce}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    status = int(head.split(b" ", 2)[1])
    return status, head, RawClient(reader, writer, "")


async def raw_client(
    server: RunningServer, key: str = "app-key", *, receive_buffer: int | None = None
) -> RawClient:
    """A connected client, ``connection_established`` read."""
    status, head, client = await upgrade(server, key, receive_buffer=receive_buffer)
    assert status == 101, head
    established = await client.read_json()
    assert established["event"] == "pusher:connection_established", established
    client.socket_id = json.loads(established["data"])["socket_id"]
    return client
