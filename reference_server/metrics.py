"""Prometheus metrics: one ``Metrics`` per process, one ``AppMetrics`` per app it serves.

The adapters count into plain attributes of their app's ``AppMetrics`` (``metrics.x += 1``)
and ``Metrics``, a prometheus_client collector, turns every app's numbers into samples
labelled ``app_id`` only when ``GET /metrics`` is scraped. A prometheus_client ``Counter.inc``
takes a lock (0.4 to 1 µs measured on a busy 2-core machine), an attribute increment tens of
nanoseconds, and the WebSocket counters move on every message. Nothing here is thread-safe,
nor needs to be: the counting and the scrape both happen on the event loop.

Every name starts with ``pusher_``; docs/reference-server.md ("Operating it") lists them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

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

    @staticmethod
    def _families(apps: list[AppMetrics]) -> Iterator[Metric]:
        for kind, name, documentation, labels, samples in _FAMILIES:
            family = kind(name, documentation, labels=["app_id", *labels])
            for app in apps:
                for values, value in samples(app):
                    family.add_metric([app.app_id, *values], value)
            yield family


#: An app's samples of one family: (values of the labels after ``app_id``, value) each.
_Samples = Callable[[AppMetrics], Iterable[tuple[list[str], float]]]


def _one(value: Callable[[AppMetrics], float]) -> _Samples:
    """The family's one sample per app, labelled ``app_id`` alone."""
    return lambda app: [([], value(app))]


def _by(counts: Callable[[AppMetrics], Mapping[Any, int]]) -> _Samples:
    """One sample per key of a count, in key order (the key is the one other label)."""
    return lambda app: [([str(key)], count) for key, count in sorted(counts(app).items())]


#: Every family: (kind, name, help, labels besides ``app_id``, samples). A counter's name is
#: given without ``_total``, which prometheus_client adds.
_FAMILIES: tuple[
    tuple[type[GaugeMetricFamily] | type[CounterMetricFamily], str, str, list[str], _Samples], ...
] = (
    (
        GaugeMetricFamily,
        "pusher_connections",
        "WebSocket connections open now (established: with a socket id).",
        [],
        _one(lambda app: app.connections),
    ),
    (
        CounterMetricFamily,
        "pusher_connections_opened",
        "WebSocket connections established.",
        [],
        _one(lambda app: app.connections_opened),
    ),
    (
        CounterMetricFamily,
        "pusher_connections_closed",
        "WebSocket connections closed, by close code (1006: no close frame).",
        ["code"],
        _by(lambda app: app.connections_closed),
    ),
    (
        GaugeMetricFamily,
        "pusher_subscriptions",
        "Channel subscriptions open now, by channel type (every cache channel is cache).",
        ["type"],
        lambda app: [([kind], app.subscriptions[kind]) for kind in SUBSCRIPTION_TYPES],
    ),
    (
        CounterMetricFamily,
        "pusher_websocket_messages_received",
        "WebSocket data messages received from clients.",
        [],
        _one(lambda app: app.messages_received),
    ),
    (
        CounterMetricFamily,
        "pusher_websocket_messages_sent",
        "WebSocket data messages queued for clients (a broadcast counts each recipient).",
        [],
        _one(lambda app: app.messages_sent),
    ),
    (
        CounterMetricFamily,
        "pusher_http_api_requests",
        "HTTP API requests answered, by endpoint and status.",
        ["endpoint", "status"],
        lambda app: [
            ([endpoint, str(status)], count)
            for (endpoint, status), count in sorted(app.api_requests.items())
        ],
    ),
    (
        CounterMetricFamily,
        "pusher_client_events_relayed",
        "Client events accepted and relayed to the channel's other subscribers.",
        [],
        _one(lambda app: app.client_events),
    ),
    (
        GaugeMetricFamily,
        "pusher_webhook_queue_length",
        "Webhook requests waiting: queued, waiting for a retry, or held back (vacated and"
        " member_removed wait for a quick return).",
        ["state"],
        lambda app: [([state], count) for state, count in app.webhooks_waiting().items()],
    ),
    (
        CounterMetricFamily,
        "pusher_webhook_failures",
        "Webhook POSTs that failed: a non-2xx answer, a timeout or a connection error.",
        [],
        _one(lambda app: app.webhook_failures),
    ),
    (
        CounterMetricFamily,
        "pusher_webhooks_dropped",
        "Webhook requests given up on, by reason (queue_full, retries_over, shutdown).",
        ["reason"],
        _by(lambda app: app.webhooks_dropped),
    ),
)


def process_registry() -> CollectorRegistry:
    """A registry for a whole process: its CPU, memory and file descriptors
    (``process_*``), plus whatever ``Metrics`` adds. Tests use a bare ``CollectorRegistry``."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    return registry
