"""TLS for a server teams deploy: wss:// and https:// on one port, and a plain port that only
points elsewhere.

The production guide wants "SSL/WSS connections only". Serving TLS on the one port keeps a
single address for WebSockets and the HTTP API (as a TLS proxy in front would); the optional
plain port answers every request with a redirect to that port, so a client configured with
ws:// or http:// gets told where to go rather than a silent refusal, and no frame or API call
is ever carried in clear.
"""

from __future__ import annotations

import logging
import ssl

from aiohttp import web

from .config import ConfigError
from .logs import log

__all__ = ["redirect_app", "server_context"]


def server_context(cert: str, key: str) -> ssl.SSLContext:
    """The server side of TLS from a PEM chain and key, with the standard library's defaults
    (TLS 1.2 at least, its cipher choice): the server has no reason to be more lenient.

    Raises:
        ConfigError: one line naming the files and what is wrong with them, so the CLI can
            exit 2 without a traceback (a key that does not match the certificate, a file
            that is not PEM, ...).
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise ConfigError(
            f"cannot use TLS certificate {cert} with key {key}: {_what_is_wrong(cert, key, exc)}"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read TLS certificate {cert} or key {key}: {exc.strerror or exc}"
        ) from None
    return context


def _what_is_wrong(cert: str, key: str, error: ssl.SSLError) -> str:
    """OpenSSL says "PEM lib" for most mistakes; a look at the files says which one is wrong."""
    if error.reason == "KEY_VALUES_MISMATCH":
        return "the key does not belong to the certificate"
    for path, marker, what in (
        (cert, "-----BEGIN CERTIFICATE-----", "no PEM certificate in the certificate file"),
        (key, "PRIVATE KEY-----", "no PEM private key in the key file"),
    ):
        try:
            with open(path, encoding="ascii", errors="replace") as file:
                if marker not in file.read():
                    return what
        except OSError as exc:
            return f"cannot read {path}: {exc.strerror or exc}"
    return error.reason.lower().replace("_", " ") if error.reason else "OpenSSL refused them"


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def redirect_app(tls_port: int) -> web.Application:
    """The plain port's whole application: 308 to the same path on the TLS port.

    A WebSocket upgrade is sent to ``wss://``, anything else to ``https://``: a WebSocket
    client that follows redirects only follows them to a WebSocket URL. The host is the one
    the client asked for (its Host header), as a TLS proxy's redirect would use.
    """

    async def redirect(request: web.Request) -> web.StreamResponse:
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        scheme = "wss" if upgrade else "https"
        host = request.url.host or "localhost"
        location = f"{scheme}://{_netloc(host, tls_port)}{request.path_qs}"
        log(logging.DEBUG, "plain_redirect", path=request.path, location=location)
        return web.Response(
            status=308,
            headers={"Location": location},
            text=f"This server takes TLS only: {location}\n",
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect)
    return app
