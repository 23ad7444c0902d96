"""The "WSS only" step: what a client that tries plain ws:// gets.

The production checklist asks for encrypted connections only. A deployment meets it by not
answering plain traffic at all or by redirecting it to TLS; the step reports which, since the
two look different to a user (a dead port or a redirect). Only an accepted plain upgrade, or a
redirect to another plain address, fails it.

The probe sends one HTTP upgrade request by hand (a WebSocket library would follow the redirect
or hide the status) and reads at most the response head; ``classify`` judges what came back
and is pure, so each kind of answer is tested without a server.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["PlainAnswer", "PlainVerdict", "classify", "plain_url_for", "probe_plain"]

#: Enough for a status line and the headers of any redirect.
_HEAD_LIMIT = 8192


@dataclass(frozen=True)
class PlainAnswer:
    """What the plain address did: the response head it sent (possibly empty: the peer closed
    without a word), or how the connection failed."""

    head: bytes = b""
    #: ``refused``, ``timeout`` (no TCP answer), ``silent`` (connected, no HTTP answer),
    #: ``closed`` (reset or closed before a whole head) or ``None``.
    failure: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class PlainVerdict:
    ok: bool
    #: How plain traffic is turned away (``refused: ...`` or ``redirected to ...``), or, when
    #: ``ok`` is false, what it was allowed to do instead.
    text: str


def plain_url_for(ws_url: str) -> str:
    """Where a client with a plain URL would knock: the same host, on port 80 when the wss://
    URL uses TLS's default port (a plain-port redirect lives there), else on the same port
    (a TLS server's port should not speak plain HTTP as well)."""
    parts = urlsplit(ws_url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    port = parts.port
    if port is not None and port != 443:
        netloc = f"{netloc}:{port}"
    return f"ws://{netloc}{parts.path}"


def _status_and_location(head: bytes) -> tuple[int | None, str | None]:
    lines = head.decode("latin-1").split("\r\n")
    words = lines[0].split(" ", 2)
    if len(words) < 2 or not words[0].startswith("HTTP/") or not words[1].isdigit():
        return None, None
    location = None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "location":
            location = value.strip()
    return int(words[1]), location


def classify(answer: PlainAnswer, url: str) -> PlainVerdict:
    """Judge the plain address's answer (``url``: where it was asked)."""
    if answer.failure == "refused":
        return PlainVerdict(True, f"refused: nothing listens at {url}")
    if answer.failure == "timeout":
        return PlainVerdict(True, f"refused: no answer from {url} (dropped)")
    if answer.failure == "silent":
        return PlainVerdict(True, f"refused: {url} took the connection but never answered")
    if answer.failure is not None or not answer.head:
        return PlainVerdict(True, f"refused: {url} closed the connection without an answer")
    status, location = _status_and_location(answer.head)
    if status is None:
        return PlainVerdict(True, f"refused: {url} does not speak plain HTTP")
    if status == 101:
        return PlainVerdict(False, f"plain ws:// accepted at {url} (upgrade 101)")
    if 300 <= status < 400 and location:
        scheme = urlsplit(location).scheme.lower()
        if scheme in ("https", "wss"):
            return PlainVerdict(True, f"redirected ({status}) to {location}")
        if scheme in ("http", "ws") or not scheme:
            return PlainVerdict(False, f"plain request redirected ({status}) to plain {location}")
    return PlainVerdict(True, f"refused with HTTP {status} at {url}")


async def probe_plain(url: str, path: str, timeout: float) -> PlainAnswer:
    """Send a WebSocket upgrade for ``path`` to the plain ``url`` and read the response head.

    Never raises for what the peer does: every way it can turn the request away is an answer.
    ``timeout`` bounds the whole exchange, connecting included.
    """
    ends = time.monotonic() + timeout
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or 80
    key = base64.b64encode(os.urandom(16)).decode()
    netloc = f"[{host}]" if ":" in host else host
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {netloc}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "User-Agent: pusher-conformance-smoke\r\n\r\n"
    ).encode()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except ConnectionRefusedError as exc:
        return PlainAnswer(failure="refused", detail=str(exc))
    except TimeoutError:
        return PlainAnswer(failure="timeout")
    except OSError as exc:
        return PlainAnswer(failure="refused", detail=exc.strerror or str(exc))
    head = b""
    try:
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(
            reader.readuntil(b"\r\n\r\n"), max(0.01, ends - time.monotonic())
        )
    except asyncio.IncompleteReadError as exc:
        head = exc.partial
    except asyncio.LimitOverrunError:
        head = await reader.read(_HEAD_LIMIT)
    except TimeoutError:
        return PlainAnswer(failure="silent")
    except OSError as exc:
        return PlainAnswer(head, failure="closed", detail=exc.strerror or str(exc))
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
    return PlainAnswer(head[:_HEAD_LIMIT])
