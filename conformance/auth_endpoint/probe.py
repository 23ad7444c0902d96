"""The one module of the certification that talks HTTP: a ``Probe`` over aiohttp.

It posts each ``Request`` as pusher-js does (``application/x-www-form-urlencoded``, POST), with
the user's headers and cookies from the credentials file, on an event loop of its own thread
(``conformance.loop.LoopThread``) so that the synchronous checks, driven by hypothesis, can
call it. Everything else in the certification is pure and tested without a network.
"""

from __future__ import annotations

from types import TracebackType
from urllib.parse import urlsplit

import aiohttp

from ..errors import UsageError
from ..loop import LoopThread
from .files import Credentials
from .judge import Reply, Request
from .runner import EndpointGone

__all__ = ["HttpProbe", "checked_url"]

#: How much of a reply body is kept: enough to find a leaked signature in an error page.
_BODY_LIMIT = 65536


def checked_url(url: str, option: str) -> str:
    """An http(s) URL with a host, or a usage error naming the option."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{option}: not an http(s) URL with a host: {url!r}")
    return url


class HttpProbe:
    """``send`` blocks until the reply; a transport failure raises ``EndpointGone``."""

    def __init__(
        self,
        channel_url: str,
        user_auth_url: str | None,
        credentials: Credentials,
        *,
        timeout: float = 10.0,
    ) -> None:
        self._urls = {"channel": channel_url, "user": user_auth_url}
        self._credentials = credentials
        self._timeout = timeout
        self._loop = LoopThread()
        self._session: aiohttp.ClientSession | None = None

    def send(self, request: Request) -> Reply:
        return self._loop.run(self._post(request))

    async def _post(self, request: Request) -> Reply:
        url = self._urls[request.endpoint]
        if url is None:
            raise UsageError(f"no URL for the {request.endpoint} endpoint")
        if self._session is None:
            # One cookie-less session: each request carries exactly its user's cookies, and
            # nothing an endpoint sets leaks into the next user's request.
            self._session = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            )
        login = self._credentials.login(request.user)
        headers = dict(login.headers)
        if login.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in login.cookies.items())
        try:
            async with self._session.post(
                url, data=list(request.form), headers=headers, allow_redirects=False
            ) as response:
                raw = await response.content.read(_BODY_LIMIT)
                return Reply(
                    response.status,
                    response.headers.get("Content-Type", ""),
                    raw.decode("utf-8", errors="replace"),
                )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise EndpointGone(f"{url}: {type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        if self._session is not None:
            self._loop.run(self._session.close())
        self._loop.close()

    def __enter__(self) -> HttpProbe:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
