"""What the people who run the server use: ``GET /ready``, ``GET /metrics``, and the log line
and count of every HTTP API request.

``GET /health`` (``http_endpoints.py``) is liveness: 200 while the process serves. ``GET /ready``
is readiness: 503 with the reasons while the server should get no new traffic (it drains, or a
variant's dependency is down; ``ReferenceServer.ready``). ``GET /metrics`` is the process's
Prometheus registry (``metrics.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from .logs import log, logger
from .metrics import AppMetrics
from .responses import Handler

__all__ = ["add_routes", "observe_requests"]

#: Every HTTP API path starts so; the rest (``/health``, ``/ready``, ``/metrics``, WebSocket
#: upgrades) is neither counted nor logged.
_API_PREFIX = "/apps/"
#: The route of every API endpoint starts so; the rest of it is the ``endpoint`` label.
_API_ROUTE_PREFIX = "/apps/{app_id}/"


def add_routes(
    app: web.Application, *, registry: CollectorRegistry, ready: Callable[[], list[str]]
) -> None:
    """``GET /ready``, answered by ``ready`` (the reasons not to send traffic; none: ready),
    and ``GET /metrics``, the samples of ``registry``."""

    async def readiness(request: web.Request) -> web.Response:
        reasons = ready()
        if reasons:
            return web.json_response({"ready": False, "reasons": reasons}, status=503)
        return web.json_response({"ready": True})

    app.router.add_get("/ready", readiness)
    app.router.add_get("/metrics", make_aiohttp_handler(registry))


def _endpoint(request: web.Request) -> str:
    """The ``endpoint`` label: the route after ``/apps/{app_id}/`` (``events``,
    ``channels/{channel}``, ...), or ``unknown`` for a path no route serves."""
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else ""
    if not route.startswith(_API_ROUTE_PREFIX):
        return "unknown"
    return route.removeprefix(_API_ROUTE_PREFIX)


def observe_requests(metrics_of: Callable[[web.Request], AppMetrics]) -> Middleware:
    """A middleware that counts each HTTP API request by endpoint and status, in the metrics
    of the app ``metrics_of`` says serves it, and logs it at info (``api_request``: method,
    path, status, milliseconds); the other paths pass through. Outermost, so that it sees the
    answer that goes out (JSON errors included)."""

    def observe(request: web.Request, status: int, started: float) -> None:
        metrics_of(request).api_requests[(_endpoint(request), status)] += 1
        if logger.isEnabledFor(logging.INFO):
            log(
                logging.INFO,
                "api_request",
                method=request.method,
                path=request.path,
                status=status,
                milliseconds=round((time.perf_counter() - started) * 1000, 3),
            )

    @web.middleware
    async def observed(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(_API_PREFIX):
            return await handler(request)
        started = time.perf_counter()
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            observe(request, exc.status, started)
            raise
        except Exception:
            observe(request, 500, started)  # What aiohttp answers for it.
            raise
        observe(request, response.status, started)
        return response

    return observed
