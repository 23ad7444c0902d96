"""ServerConfig from command-line flags and ``PUSHER_REF_*`` environment variables.

A flag beats its environment variable, which beats the default. Every bad value raises
``ConfigError`` with one line naming the value and where it came from; the CLI turns that
into exit status 2.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NoReturn, TypeVar
from urllib.parse import urlsplit

from .apps_file import AppEntry, AppsFileError, load_apps_file
from .faults import ClusterFaultSet, FaultSet, split_faults

__all__ = ["EVENT_LOOPS", "LOG_LEVELS", "ConfigError", "ServerConfig", "load_config"]

T = TypeVar("T")

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
EVENT_LOOPS = ("auto", "uvloop", "asyncio")


class ConfigError(Exception):
    """Bad configuration; the message is the one line shown to the user."""


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 6001
    app_id: str = "app-id"
    key: str = "app-key"
    secret: str = "app-secret"
    #: Seconds; advertised in ``connection_established`` and used for idle pings.
    activity_timeout: float = 120
    #: Seconds to wait for any frame after a server ``pusher:ping``.
    pong_timeout: float = 30
    #: Whether `client-*` events are relayed (`--client-events`).
    client_events: bool = False
    max_event_bytes: int = 10240
    log_level: str = "info"
    faults: FaultSet = frozenset()
    #: Where webhooks are POSTed; ``None``: no webhooks.
    webhook_url: str | None = None
    #: Seconds ``channel_vacated``/``member_removed`` are held back (Pusher: up to 3).
    webhook_delay: float = 3.0
    #: Seconds a failing webhook keeps being retried (Pusher: 5 minutes); 0: never retried.
    webhook_retry_for: float = 300.0
    #: Webhook requests waiting to be sent; beyond that new ones are dropped (and logged).
    webhook_queue_size: int = 1000
    #: Seconds over which a stopping server spaces its 4200 closes; 0: all at once.
    shutdown_spread: float = 0.0
    #: Seconds a stopping server waits for close handshakes before dropping the rest.
    drain_timeout: float = 2.0
    #: Seconds from a stop signal to the exit, whatever is still draining or unsent by then.
    shutdown_timeout: float = 10.0
    #: Where requirement marks' hit counts are appended at exit (``serves.py``); ``None``: off.
    serves_file: str | None = None
    #: PEM certificate chain and private key: with both, the one port speaks wss:// and https://
    #: only (``tls.py``); with neither, plain ws:// and http://.
    tls_cert: str | None = None
    tls_key: str | None = None
    #: With TLS, a second port for plain traffic, answered with a redirect to the TLS port (a
    #: client that typed ws:// or http:// learns where to go instead of meeting a dead port).
    plain_port: int | None = None
    #: This app's enabled flag: a disabled app refuses every connection with 4003.
    enabled: bool = True
    #: This app's connection quota (4004 beyond it); ``None``: no quota.
    max_connections: int | None = None
    #: ``--apps-file``: the apps this server serves; empty: the one app of ``app_id``/``key``.
    apps: tuple[AppEntry, ...] = ()
    #: Redis shared by the nodes of a cluster (``redis_adapter.py``); ``None``: one process.
    redis_url: str | None = None
    #: This node's name in the cluster; ``None``: a random one is drawn at start.
    node_id: str | None = None
    #: Seconds after which a node not heard of is taken for dead.
    node_timeout: float = 5.0
    #: Test-only faults of the cluster link (``faults/cluster.py``), apart from ``faults``.
    cluster_faults: ClusterFaultSet = frozenset()
    #: Bytes that may wait to be written to one connection before it is closed with 4100.
    send_buffer_limit: int = 1 << 20
    #: ``auto`` (uvloop when it is installed), ``uvloop`` or ``asyncio``.
    event_loop: str = "auto"

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    def app_configs(self) -> tuple[ServerConfig, ...]:
        """One configuration per app: each app's own settings over the server-wide ones.

        Without an apps file that is this configuration alone, so a one-app server is
        built exactly as before apps files existed.
        """
        if not self.apps:
            return (self,)
        return tuple(
            replace(
                self,
                app_id=app.app_id,
                key=app.key,
                secret=app.secret,
                enabled=app.enabled,
                max_connections=app.max_connections,
                client_events=(
                    self.client_events if app.client_events is None else app.client_events
                ),
                webhook_url=self.webhook_url if app.webhook_url is None else app.webhook_url,
                max_event_bytes=(
                    self.max_event_bytes if app.max_event_bytes is None else app.max_event_bytes
                ),
                apps=(),
            )
            for app in self.apps
        )


class _Parser(argparse.ArgumentParser):
    """argparse prints usage plus a message; we want exactly one line, via ConfigError."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="reference-server",
        description="A small, correct Pusher Channels server (the conformance suite's target).",
    )
    for flag, env, what in (
        ("--host", "PUSHER_REF_HOST", "interface to bind"),
        ("--port", "PUSHER_REF_PORT", "TCP port; 0 picks a free one"),
        ("--app-id", "PUSHER_REF_APP_ID", "app id in HTTP API paths"),
        ("--key", "PUSHER_REF_APP_KEY", "app key in WebSocket paths"),
        ("--secret", "PUSHER_REF_APP_SECRET", "app secret for signatures"),
        ("--activity-timeout", "PUSHER_REF_ACTIVITY_TIMEOUT", "seconds before an idle ping"),
        ("--pong-timeout", "PUSHER_REF_PONG_TIMEOUT", "seconds to wait for a pong"),
        ("--max-event-bytes", "PUSHER_REF_MAX_EVENT_BYTES", "largest event data accepted"),
        ("--log-level", "PUSHER_REF_LOG_LEVEL", "one of " + ", ".join(LOG_LEVELS)),
        ("--webhook-url", "PUSHER_REF_WEBHOOK_URL", "http(s) URL webhooks are POSTed to"),
        ("--webhook-delay", "PUSHER_REF_WEBHOOK_DELAY", "seconds vacated/member_removed wait"),
        ("--webhook-retry-for", "PUSHER_REF_WEBHOOK_RETRY_FOR", "seconds to retry a webhook"),
        ("--webhook-queue-size", "PUSHER_REF_WEBHOOK_QUEUE_SIZE", "webhook requests queued"),
        ("--shutdown-spread", "PUSHER_REF_SHUTDOWN_SPREAD", "seconds to spread shutdown closes"),
        ("--drain-timeout", "PUSHER_REF_DRAIN_TIMEOUT", "seconds to wait for close handshakes"),
        ("--shutdown-timeout", "PUSHER_REF_SHUTDOWN_TIMEOUT", "seconds from SIGTERM to exit"),
        ("--serves-file", "PUSHER_REF_SERVES_FILE", "count requirement marks; append at exit"),
        ("--tls-cert", "PUSHER_REF_TLS_CERT", "PEM certificate chain: serve wss:// and https://"),
        ("--tls-key", "PUSHER_REF_TLS_KEY", "PEM private key of --tls-cert"),
        ("--plain-port", "PUSHER_REF_PLAIN_PORT", "with TLS: plain port that redirects to it"),
        ("--apps-file", "PUSHER_REF_APPS_FILE", "YAML or JSON file listing several apps"),
        ("--redis-url", "PUSHER_REF_REDIS_URL", "redis:// URL shared by the nodes of a cluster"),
        ("--node-id", "PUSHER_REF_NODE_ID", "this node's name in the cluster (default random)"),
        ("--node-timeout", "PUSHER_REF_NODE_TIMEOUT", "seconds before a silent node is dead"),
        ("--send-buffer-limit", "PUSHER_REF_SEND_BUFFER_LIMIT", "bytes queued per connection"),
        ("--event-loop", "PUSHER_REF_EVENT_LOOP", "auto, uvloop or asyncio"),
    ):
        parser.add_argument(flag, metavar="VALUE", help=f"{what} (env {env})")
    parser.add_argument(
        "--client-events",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="allow client events (env PUSHER_REF_CLIENT_EVENTS=true/false)",
    )
    return parser


def _event_loop(text: str) -> str:
    if text not in EVENT_LOOPS:
        raise ValueError(f"must be one of {', '.join(EVENT_LOOPS)}")
    if text == "uvloop":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            raise ValueError("uvloop is not installed (pip install uvloop)") from None
    return text


def _port(text: str) -> int:
    value = _integer(text)
    if not 0 <= value <= 65535:
        raise ValueError("must be between 0 and 65535")
    return value


def _integer(text: str) -> int:
    try:
        return int(text.strip(), 10)
    except ValueError:
        raise ValueError("must be an integer") from None


def _positive_integer(text: str) -> int:
    value = _integer(text)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("must be a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be a positive number of seconds")
    return value


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ValueError("must be true or false")


def _non_empty(text: str) -> str:
    if not text:
        raise ValueError("must not be empty")
    return text


def _non_negative_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("must be a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError("must be zero or a positive number of seconds")
    return value


def _http_url(text: str) -> str:
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError("has an invalid port") from None
    return text.strip()


def _redis_url(text: str) -> str:
    """Checked here so that a typo is named with its flag; whether Redis answers there is
    found out at start (a node keeps retrying and reports itself not ready meanwhile)."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError("must be a redis://, rediss:// or unix:// URL")
    if parts.scheme != "unix" and not parts.hostname:
        raise ValueError("needs a host")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError("has an invalid port") from None
    return text.strip()


def _node_id(text: str) -> str:
    if not text or len(text) > 64 or not text.isprintable() or " " in text:
        raise ValueError("must be 1 to 64 printable characters without spaces")
    return text


def _readable_file(text: str) -> str:
    """Checked here so that a wrong path is named with its flag; whether the file holds a
    usable certificate or key is for ``tls.py`` to say when it loads them."""
    path = Path(text.strip())
    if not path.is_file():
        raise ValueError("no such file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ValueError(f"cannot be read ({exc.strerror or exc})") from None
    return str(path)


def _log_level(text: str) -> str:
    lowered = text.strip().lower()
    if lowered not in LOG_LEVELS:
        raise ValueError("must be one of " + ", ".join(LOG_LEVELS))
    return lowered


#: The one-app flags an apps file replaces, with their environment variables.
_ONE_APP_FLAGS = (
    ("--app-id", "PUSHER_REF_APP_ID"),
    ("--key", "PUSHER_REF_APP_KEY"),
    ("--secret", "PUSHER_REF_APP_SECRET"),
)


def _apps(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[AppEntry, ...]:
    """The apps of ``--apps-file`` (or its variable); empty without one. Credentials given
    both ways would leave one of them silently unused, so that is refused."""
    path: str | None = args.apps_file
    source = "--apps-file"
    if path is None:
        path, source = environ.get("PUSHER_REF_APPS_FILE"), "PUSHER_REF_APPS_FILE"
    if path is None:
        return ()
    if not path.strip():
        raise ConfigError(f"bad value {path!r} for {source}: must not be empty")
    for flag, env in _ONE_APP_FLAGS:
        given = flag if getattr(args, flag[2:].replace("-", "_")) is not None else None
        given = given or (env if env in environ else None)
        if given is not None:
            raise ConfigError(
                f"{source} lists the apps: {given} cannot be used with it "
                "(put the app's credentials in the file)"
            )
    try:
        return load_apps_file(path)
    except AppsFileError as exc:
        raise ConfigError(f"{source} {exc}") from None


def load_config(argv: Sequence[str], environ: Mapping[str, str]) -> ServerConfig:
    """Build the configuration from ``argv`` (without the program name) and ``environ``.

    Raises:
        ConfigError: naming the first bad value.
    """
    args = _parser().parse_args(list(argv))
    defaults = ServerConfig()

    def pick(flag: str, env: str, convert: Callable[[str], T], default: T) -> T:
        value: object = getattr(args, flag.lstrip("-").replace("-", "_"))
        source = flag
        if value is None:
            value, source = environ.get(env), env
        if value is None:
            return default
        assert isinstance(value, str)
        try:
            return convert(value)
        except ValueError as exc:
            raise ConfigError(f"bad value {value!r} for {source}: {exc}") from None

    try:
        faults, cluster_faults = split_faults(environ.get("PUSHER_REF_FAULTS", ""))
    except ValueError as exc:
        raise ConfigError(f"bad PUSHER_REF_FAULTS: {exc}") from None

    # --client-events / --no-client-events give a bool; absent, the environment decides.
    client_events_flag: bool | None = args.client_events
    if client_events_flag is None:
        client_events = pick(
            "--client-events", "PUSHER_REF_CLIENT_EVENTS", _boolean, defaults.client_events
        )
    else:
        client_events = client_events_flag

    tls_cert = pick("--tls-cert", "PUSHER_REF_TLS_CERT", _readable_file, None)
    tls_key = pick("--tls-key", "PUSHER_REF_TLS_KEY", _readable_file, None)
    if (tls_cert is None) != (tls_key is None):
        given, missing = (
            ("--tls-cert", "--tls-key") if tls_key is None else ("--tls-key", "--tls-cert")
        )
        raise ConfigError(
            f"{given} needs {missing} too (env PUSHER_REF_{missing[2:].upper().replace('-', '_')})"
        )
    port = pick("--port", "PUSHER_REF_PORT", _port, defaults.port)
    plain_port = pick("--plain-port", "PUSHER_REF_PLAIN_PORT", _port, None)
    if plain_port is not None and tls_cert is None:
        raise ConfigError(
            "--plain-port redirects to the TLS port: it needs --tls-cert and --tls-key"
        )
    if plain_port is not None and plain_port == port and port != 0:
        raise ConfigError(f"--plain-port {plain_port} is the TLS port itself; pick another")

    apps = _apps(args, environ)

    return ServerConfig(
        apps=apps,
        host=pick("--host", "PUSHER_REF_HOST", _non_empty, defaults.host),
        port=port,
        app_id=pick("--app-id", "PUSHER_REF_APP_ID", _non_empty, defaults.app_id),
        key=pick("--key", "PUSHER_REF_APP_KEY", _non_empty, defaults.key),
        secret=pick("--secret", "PUSHER_REF_APP_SECRET", _non_empty, defaults.secret),
        activity_timeout=pick(
            "--activity-timeout", "PUSHER_REF_ACTIVITY_TIMEOUT", _seconds, defaults.activity_timeout
        ),
        pong_timeout=pick(
            "--pong-timeout", "PUSHER_REF_PONG_TIMEOUT", _seconds, defaults.pong_timeout
        ),
        client_events=client_events,
        max_event_bytes=pick(
            "--max-event-bytes",
            "PUSHER_REF_MAX_EVENT_BYTES",
            _positive_integer,
            defaults.max_event_bytes,
        ),
        log_level=pick("--log-level", "PUSHER_REF_LOG_LEVEL", _log_level, defaults.log_level),
        faults=faults,
        webhook_url=pick("--webhook-url", "PUSHER_REF_WEBHOOK_URL", _http_url, None),
        webhook_delay=pick(
            "--webhook-delay",
            "PUSHER_REF_WEBHOOK_DELAY",
            _non_negative_seconds,
            defaults.webhook_delay,
        ),
        webhook_retry_for=pick(
            "--webhook-retry-for",
            "PUSHER_REF_WEBHOOK_RETRY_FOR",
            _non_negative_seconds,
            defaults.webhook_retry_for,
        ),
        webhook_queue_size=pick(
            "--webhook-queue-size",
            "PUSHER_REF_WEBHOOK_QUEUE_SIZE",
            _positive_integer,
            defaults.webhook_queue_size,
        ),
        shutdown_spread=pick(
            "--shutdown-spread",
            "PUSHER_REF_SHUTDOWN_SPREAD",
            _non_negative_seconds,
            defaults.shutdown_spread,
        ),
        drain_timeout=pick(
            "--drain-timeout",
            "PUSHER_REF_DRAIN_TIMEOUT",
            _non_negative_seconds,
            defaults.drain_timeout,
        ),
        shutdown_timeout=pick(
            "--shutdown-timeout",
            "PUSHER_REF_SHUTDOWN_TIMEOUT",
            _seconds,
            defaults.shutdown_timeout,
        ),
        serves_file=pick("--serves-file", "PUSHER_REF_SERVES_FILE", _non_empty, None),
        tls_cert=tls_cert,
        tls_key=tls_key,
        plain_port=plain_port,
        redis_url=pick("--redis-url", "PUSHER_REF_REDIS_URL", _redis_url, None),
        node_id=pick("--node-id", "PUSHER_REF_NODE_ID", _node_id, None),
        node_timeout=pick(
            "--node-timeout", "PUSHER_REF_NODE_TIMEOUT", _seconds, defaults.node_timeout
        ),
        cluster_faults=cluster_faults,
        send_buffer_limit=pick(
            "--send-buffer-limit",
            "PUSHER_REF_SEND_BUFFER_LIMIT",
            _positive_integer,
            defaults.send_buffer_limit,
        ),
        event_loop=pick("--event-loop", "PUSHER_REF_EVENT_LOOP", _event_loop, defaults.event_loop),
    )
