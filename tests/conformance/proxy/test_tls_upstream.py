"""The proxy in front of a TLS-only server: it speaks TLS upstream (verified, trusting the CA
file it is given), plain loopback to its client, and its faults still reach the server."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from conformance.bundled import BundledTls
from conformance.proxy import FaultProxy, Reset

from .helpers import Client, Upstream

TlsSetup = tuple[Upstream, str, BundledTls]


@pytest_asyncio.fixture
async def tls_upstream(
    tmp_path: Path, tls_files: Callable[..., BundledTls]
) -> AsyncIterator[TlsSetup]:
    files = tls_files(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.cert, files.key)
    upstream = Upstream()
    host, port = await upstream.start(ssl=context)
    yield upstream, f"wss://{host}:{port}", files
    await upstream.close()


async def _until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return condition()


@pytest.mark.asyncio
async def test_plain_client_bytes_reach_a_tls_server_and_back(tls_upstream: TlsSetup) -> None:
    upstream, url, files = tls_upstream
    async with FaultProxy(url, ca_file=str(files.ca_file)) as proxy:
        assert proxy.url.startswith("ws://127.0.0.1:")
        client = await Client.open(proxy.address)
        client.send(b"hello over tls")
        assert await client.wait_until(lambda: client.data == b"hello over tls", 3)
        assert upstream.received == [bytearray(b"hello over tls")]
        assert proxy.connections[0].bytes_up == len(b"hello over tls")
        client.close()


@pytest.mark.asyncio
async def test_a_client_fin_closes_the_tls_upstream(tls_upstream: TlsSetup) -> None:
    """TLS cannot be half-closed from asyncio: the server must still learn that the client
    left, at once, rather than at its next ping timeout."""
    upstream, url, files = tls_upstream
    async with FaultProxy(url, ca_file=str(files.ca_file)) as proxy:
        client = await Client.open(proxy.address)
        client.send(b"x")
        assert await client.wait_until(lambda: client.data == b"x", 3)
        assert client.transport is not None
        client.transport.write_eof()
        assert await _until(lambda: upstream.writers[0].is_closing(), 3)
        assert await client.wait_until(lambda: client.eof or client.lost, 3)
        assert await _until(lambda: proxy.connections[0].state == "closed", 3)
        client.close()


@pytest.mark.asyncio
async def test_a_reset_reaches_the_tls_server(tls_upstream: TlsSetup) -> None:
    upstream, url, files = tls_upstream
    async with FaultProxy(url, ca_file=str(files.ca_file)) as proxy:
        client = await Client.open(proxy.address)
        client.send(b"x")
        assert await client.wait_until(lambda: client.data == b"x", 3)
        proxy.inject(Reset())
        assert await client.wait_until(lambda: client.lost, 2)
        assert isinstance(client.error, ConnectionResetError)
        assert await _until(lambda: upstream.writers[0].is_closing(), 3)
        assert proxy.connections[0].state == "reset"


@pytest.mark.asyncio
async def test_an_untrusted_certificate_is_logged_and_the_client_dropped(
    tls_upstream: TlsSetup,
) -> None:
    """Verification is on unless --insecure: without the CA file the system store does not know the
    test CA, and the client is dropped as for an unreachable upstream."""
    upstream, url, _ = tls_upstream
    log: list[dict[str, Any]] = []
    async with FaultProxy(url, log=log.append) as proxy:
        client = await Client.open(proxy.address)
        assert await client.wait_until(lambda: client.lost, 3)
    (entry,) = log
    assert entry["where"] == "connect upstream"
    assert "CERTIFICATE_VERIFY_FAILED" in entry["error"]
    assert upstream.received == []


@pytest.mark.asyncio
async def test_insecure_reaches_a_tls_server_whose_ca_it_was_not_given(
    tls_upstream: TlsSetup,
) -> None:
    """``--insecure``: the certificate the previous test was dropped for is taken unverified."""
    upstream, url, _ = tls_upstream
    log: list[dict[str, Any]] = []
    async with FaultProxy(url, insecure=True, log=log.append) as proxy:
        client = await Client.open(proxy.address)
        client.send(b"unverified")
        assert await client.wait_until(lambda: client.data == b"unverified", 3)
        assert upstream.received == [bytearray(b"unverified")]
        client.close()
    assert log == []
