"""Prometheus metrics: one ``Metrics`` per process, one ``AppMetrics`` per app it serves.

The adapters count into plain attributes of their app's ``AppMetrics`` (``metrics.x += 1``)
and ``Metrics``, a prometheus_client collector, turns every app's numbers into samples
labelled ``app_id`` only when ``GET /metrics`` is scraped. A prometheus_client ``Counter.inc``
takes a lock and costs about 1 µs; an attribute increment about 40 ns, and the WebSocket
counters move on every message. Nothing here is thread-safe, nor needs to be: the counting
and the scrape both happen on the event loop.

Every name starts with ``pusher_``; docs/reference-server.md ("Operating it") lists them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["SUBSCRIPTION_TYPES", "AppMetrics", "Metrics", "process_registry"]

#: The ``type`` label of ``pusher_subscriptions``: a channel's type by its prefix, except that
#: every cache channel (``cache-``, ``private-cache-``, ...) counts as ``cache``.
SUBSCRIPTION_TYPES = ("public", "private", "encrypted", "presence", "cache", "server_to_user")


def _no_webhooks() -> Mapping[str, int]:
    return {}


@dataclass(eq=False)
class AppMetrics:
    """One app's numbers; the adapters add to them, ``Metrics`` reads them when scraped."""

    app_id: str
    #: Established WebSocket connections (with a socket id) open now.
    connections: int = 0
    connections_opened: int = 0
    #: Closed connections by close code (1006: the client went without a close frame).
    connections_closed: Counter[int] = field(default_factory=Counter)
    #: Subscriptions open now, by ``SUBSCRIPTION_TYPES``.
    subscriptions: Counter[str] = field(default_factory=Counter)
    #: WebSocket data messages (text or binary) read from clients.
    messages_received: int = 0
    #: WebSocket data messages queued for clients; a broadcast adds its recipient count.
    messages_sent: int = 0
    #: HTTP API requests by (endpoint, status).
    api_requests: Counter[tuple[str, int]] = field(default_factory=Counter)
    #: Client events accepted and relayed to the channel's other subscribers.
    client_events: int = 0
    #: Webhook requests waiting, by state (``queued``, ``retrying``, ``held``); set by the
    #: webhook sender, read when scraped.
    webhooks_waiting: Callable[[], Mapping[str, int]] = _no_webhooks
    #: Webhook POSTs that failed (a non-2xx answer, a timeout, a refused connection).
    webhook_failures: int = 0
    #: Webhook requests given up on, by reason (``queue_full``, ``retries_over``, ``shutdown``).
    webhooks_dropped: Counter[str] = field(default_factory=Counter)


class Metrics(Collector):
    """Every app's metrics, collected on one ``CollectorRegistry``.

    One per process, built by whoever builds the servers and shared by them all; each
    ``ReferenceServer`` asks for its ``AppMetrics`` once (``app``). Apps with the same id share
    one ``AppMetrics``.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        #: What ``GET /metrics`` serves.
        self.registry = registry if registry is not None else CollectorRegistry()
        self._apps: dict[str, AppMetrics] = {}
        self.registry.register(self)

    def app(self, app_id: str) -> AppMetrics:
        """The numbers of ``app_id``, created on first use."""
        metrics = self._apps.get(app_id)
        if metrics is None:
            metrics = self._apps[app_id] = AppMetrics(app_id)
        return metrics

    def describe(self) -> Iterator[Metric]:
        return self._families([])

    def collect(self) -> Iterator[Metric]:
        return self._families(list(self._apps.values()))

    def _families(self, apps: list[AppMetrics]) -> Iterator[Metric]:
        app_id = ["app_id"]

        def gauge(name: str, documentation: str, value: Callable[[AppMetrics], int]) -> Metric:
            family = GaugeMetricFamily(name, documentation, labels=app_id)
            for app in apps:
                family.add_metric([app.app_id], value(app))
            return family

        def counter(name: str, documentation: str, value: Callable[[AppMetrics], int]) -> Metric:
            family = CounterMetricFamily(name, documentation, labels=app_id)
            for app in apps:
                family.add_metric([app.app_id], value(app))
            return family

        yield gauge(
            "pusher_connections",
            "WebSocket connections open now (established: with a socket id).",
            lambda app: app.connections,
        )
        yield counter(
            "pusher_connections_opened",
            "WebSocket connections established.",
            lambda app: app.connections_opened,
        )
        closed = CounterMetricFamily(
            "pusher_connections_closed",
            "WebSocket connections closed, by close code (1006: no close frame).",
            labels=["app_id", "code"],
        )
        for app in apps:
            for code, count in sorted(app.connections_closed.items()):
                closed.add_metric([app.app_id, str(code)], count)
        yield closed
        subscriptions = GaugeMetricFamily(
            "pusher_subscriptions",
            "Channel subscriptions open now, by channel type (every cache channel is cache).",
            labels=["app_id", "type"],
        )
        for app in apps:
            for kind in SUBSCRIPTION_TYPES:
                subscriptions.add_metric([app.app_id, kind], app.subscriptions[kind])
        yield subscriptions
        yield counter(
            "pusher_websocket_messages_received",
            "WebSocket data messages received from clients.",
            lambda app: app.messages_received,
        )
        yield counter(
            "pusher_websocket_messages_sent",
            "WebSocket data messages queued for clients (a broadcast counts each recipient).",
            lambda app: app.messages_sent,
        )
        requests = CounterMetricFamily(
            "pusher_http_api_requests",
            "HTTP API requests answered, by endpoint and status.",
            labels=["app_id", "endpoint", "status"],
        )
        for app in apps:
            for (endpoint, status), count in sorted(app.api_requests.items()):
                requests.add_metric([app.app_id, endpoint, str(status)], count)
        yield requests
        yield counter(
            "pusher_client_events_relayed",
            "Client events accepted and relayed to the channel's other subscribers.",
            lambda app: app.client_events,
        )
        waiting = GaugeMetricFamily(
            "pusher_webhook_queue_length",
            "Webhook requests waiting: queued, waiting for a retry, or held back (vacated and"
            " member_removed wait for a quick return).",
            labels=["app_id", "state"],
        )
        for app in apps:
            for state, count in app.webhooks_waiting().items():
                waiting.add_metric([app.app_id, state], count)
        yield waiting
        yield counter(
            "pusher_webhook_failures",
            "Webhook POSTs that failed: a non-2xx answer, a timeout or a connection error.",
            lambda app: app.webhook_failures,
        )
        dropped = CounterMetricFamily(
            "pusher_webhooks_dropped",
            "Webhook requests given up on, by reason (queue_full, retries_over, shutdown).",
            labels=["app_id", "reason"],
        )
        for app in apps:
            for reason, count in sorted(app.webhooks_dropped.items()):
                dropped.add_metric([app.app_id, reason], count)
        yield dropped


def process_registry() -> CollectorRegistry:
    """A registry for a whole process: its CPU, memory and file descriptors
    (``process_*``), plus whatever ``Metrics`` adds. Tests use a bare ``CollectorRegistry``."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    return registry
