"""Error answers: every HTTP error the server gives, routing ones included, is JSON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .serves import serves

__all__ = ["Handler", "json_error", "json_errors"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error(status: int, message: str, **kwargs: Any) -> web.Response:
    return web.json_response({"error": message}, status=status, **kwargs)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown routes (404) and wrong methods (405) answer in JSON like everything else."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 404 and request.headers.get("Upgrade", "").lower() == "websocket":
            serves("PROTO-CONN-12")  # an upgrade on a path other than /app/{key}
        else:
            serves("ROBUST-HTTP-01")
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return json_error(exc.status, exc.reason, headers=headers)
