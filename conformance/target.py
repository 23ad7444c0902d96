"""The server under test: where it is, its credentials, and what it declares about itself."""

from __future__ import annotations

import dataclasses
import json
import socket
import ssl
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from .errors import TargetUnreachable, UsageError
from .nodes import Node, derived_capabilities, node_at, parse_nodes, refuse_declared
from .target_apps import TARGET_APP_FIELDS, OtherApp, parse_other_apps, text_field
from .tls import check_ca_file, check_trusted, client_context, refuse_both_trust_choices
from .webhooks import parse_listen_url

if TYPE_CHECKING:
    from .options import RunOptions

__all__ = [
    "CONNECTION_FIELDS",
    "DEFAULT_MAX_EVENT_BYTES",
    "KNOWN_CAPABILITIES",
    "Target",
    "Timings",
    "check_listening",
    "check_reachable",
    "load_target_file",
    "target_from_mapping",
    "target_from_options",
    "with_declared_capabilities",
    "with_trust",
]

DEFAULT_MAX_EVENT_BYTES = 10240

#: Optional features a target may declare. Checks that need one are skipped (OPTIONAL_ABSENT)
#: unless the target declares it.
KNOWN_CAPABILITIES = frozenset(
    {
        "client_events",
        "user_authentication",
        "cache_channels",
        "encrypted_channels",
        "subscription_count",
        "watchlist",
        "webhooks",
    }
)

#: What a target cannot do without: where it is and its app credentials (also the target flags).
CONNECTION_FIELDS = ("ws_url", "http_url", "app_id", "key", "secret")

_TARGET_KEYS = {
    "name",
    "ws_url",
    "http_url",
    "app_id",
    "key",
    "secret",
    "capabilities",
    "timings",
    "limits",
    "webhooks",
    "restart",
    "ca_file",
    *TARGET_APP_FIELDS,
    "nodes",
}


@dataclass(frozen=True)
class Timings:
    """Heartbeat timings as configured on the server, in seconds. ``None``: use what the
    handshake advertises (activity) or the protocol's recommended 30 s (pong)."""

    activity_timeout: float | None = None
    pong_timeout: float | None = None


@dataclass(frozen=True)
class Target:
    name: str
    ws_url: str
    http_url: str
    app_id: str
    key: str
    secret: str
    capabilities: frozenset[str] = frozenset()
    timings: Timings = field(default_factory=Timings)
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    bundled: bool = False
    #: Where the suite listens for the target's webhooks (loopback ``http://`` URL), if any.
    webhook_listen: str | None = None
    #: A shell command that restarts the server gracefully (the shutdown checks run it), and
    #: the seconds it may take until the server takes handshakes again.
    restart_command: str | None = None
    restart_within: float = 60.0
    #: A PEM file of the CA that signed a wss:// or https:// target's certificate, trusted on
    #: top of the system store (``tls.py``); ``None``: the system store only.
    ca_file: str | None = None
    #: ``--insecure``: the target's TLS certificate is not verified at all (``tls.py``); the
    #: reports say so, since nothing about its TLS was then certified.
    insecure: bool = False
    #: The target file's ``second_app``, ``disabled_app`` and ``quota_app`` (``target_apps``).
    other_apps: Mapping[str, OtherApp] = field(default_factory=dict, hash=False)
    #: The servers of a cluster (``nodes.py``); empty for a single server. ``ws_url`` and
    #: ``http_url`` are then the first node's: the ordinary checks run there.
    nodes: tuple[Node, ...] = ()

    @property
    def urls(self) -> tuple[str, ...]:
        """Where the suite reaches it: the WebSocket base, then the HTTP API's, then every
        cluster node's, once each."""
        nodes = (url for node in self.nodes for url in (node.ws_url, node.http_url))
        return tuple(dict.fromkeys((self.ws_url, self.http_url, *nodes)))

    def client_tls(self) -> ssl.SSLContext | None:
        """The TLS context every connection to this target uses (``None``: the defaults)."""
        return client_context(self.ca_file, insecure=self.insecure)

    def declares(self, name: str) -> bool:
        """Whether the target declares this capability or app field (``target_apps``)."""
        return name in self.capabilities or name in self.other_apps

    def on_node(self, number: int) -> Target:
        """This target reached through node ``number`` (modulo the number of nodes)."""
        node = node_at(self.nodes, number)
        return dataclasses.replace(self, ws_url=node.ws_url, http_url=node.http_url)

    def public(self) -> dict[str, Any]:
        """What a report may show: everything but the secret."""
        return {
            "name": self.name,
            "ws_url": self.ws_url,
            "http_url": self.http_url,
            "app_id": self.app_id,
            "key": self.key,
            "capabilities": sorted(self.capabilities),
            "timings": dataclasses.asdict(self.timings),
            "max_event_bytes": self.max_event_bytes,
            "bundled": self.bundled,
            "webhook_listen": self.webhook_listen,
            "restart_command": self.restart_command,
            "restart_within": self.restart_within,
            "ca_file": self.ca_file,
            "insecure": self.insecure,
            "other_apps": {name: app.public() for name, app in sorted(self.other_apps.items())},
            "nodes": [node.public() for node in self.nodes],
        }

    def to_wire(self) -> str:
        """JSON for a pytest-xdist worker, which must reach the same server with the same
        credentials: unlike ``public()``, it carries the secrets, so it is never written out."""
        other_apps = {name: app.wire() for name, app in self.other_apps.items()}
        return json.dumps({**self.public(), "secret": self.secret, "other_apps": other_apps})

    @classmethod
    def from_wire(cls, text: str) -> Target:
        """The target ``to_wire`` sent; it was checked where it was parsed, so it is trusted."""
        data = json.loads(text)
        return cls(
            name=data["name"],
            ws_url=data["ws_url"],
            http_url=data["http_url"],
            app_id=data["app_id"],
            key=data["key"],
            secret=data["secret"],
            capabilities=frozenset(data["capabilities"]),
            timings=Timings(**data["timings"]),
            max_event_bytes=data["max_event_bytes"],
            bundled=data["bundled"],
            webhook_listen=data["webhook_listen"],
            restart_command=data["restart_command"],
            restart_within=data["restart_within"],
            ca_file=data["ca_file"],
            insecure=data["insecure"],
            other_apps={name: OtherApp(**app) for name, app in data["other_apps"].items()},
            nodes=tuple(Node(**node) for node in data["nodes"]),
        )


def _restart(value: object) -> tuple[str | None, float]:
    """The ``restart: {command: ..., within: SECONDS}`` entry, checked."""
    if value is None:
        return None, 60.0
    if (
        not isinstance(value, Mapping)
        or "command" not in value
        or set(value) - {"command", "within"}
    ):
        raise UsageError(
            f"restart must be a mapping with command (and optionally within), got {value!r}"
        )
    command = value["command"]
    if not isinstance(command, str) or not command.strip():
        raise UsageError(f"restart.command must be a shell command, got {command!r}")
    within = _seconds(value.get("within", 60), "restart.within")
    return command, 60.0 if within is None else within


def _url(value: object, what: str, schemes: Iterable[str]) -> str:
    if not isinstance(value, str) or not value:
        raise UsageError(f"{what} must be a URL, got {value!r}")
    parts = urlsplit(value)
    allowed = tuple(schemes)
    if parts.scheme not in allowed or not parts.hostname:
        raise UsageError(f"{what} must be a {' or '.join(allowed)} URL with a host, got {value!r}")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise UsageError(f"{what} has an invalid port: {value!r}") from None
    return value.rstrip("/")


def _seconds(value: object, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise UsageError(f"{what} must be a positive number of seconds, got {value!r}")
    return float(value)


def target_from_mapping(
    data: Mapping[str, Any], *, bundled: bool = False, relative_to: Path | None = None
) -> Target:
    """Build a target from a target file's mapping (or the CLI flags), with one clear error for
    the first thing that is wrong. A relative ``ca_file`` is taken from ``relative_to`` (the
    target file's folder), so that a target file and its CA can travel together."""
    unknown = set(data) - _TARGET_KEYS
    if unknown:
        raise UsageError(
            f"unknown target field(s): {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(_TARGET_KEYS))})"
        )
    nodes = parse_nodes(data.get("nodes"), _url)
    if nodes:
        given = [name for name in ("ws_url", "http_url") if name in data]
        if given:
            raise UsageError(
                f"a target with nodes: gives {' and '.join(given)} in each node only "
                "(the first node is where the ordinary checks run)"
            )
        data = {**data, "ws_url": nodes[0].ws_url, "http_url": nodes[0].http_url}
    for required in CONNECTION_FIELDS:
        if data.get(required) in (None, ""):
            raise UsageError(f"target is missing {required!r}")
    capabilities = data.get("capabilities") or []
    if not isinstance(capabilities, list) or not all(isinstance(c, str) for c in capabilities):
        raise UsageError(f"capabilities must be a list of names, got {capabilities!r}")
    refuse_declared(capabilities)
    unknown_caps = set(capabilities) - KNOWN_CAPABILITIES
    if unknown_caps:
        raise UsageError(
            f"unknown capability: {', '.join(sorted(unknown_caps))} "
            f"(known: {', '.join(sorted(KNOWN_CAPABILITIES))})"
        )
    timings = data.get("timings") or {}
    if not isinstance(timings, Mapping) or set(timings) - {"activity_timeout", "pong_timeout"}:
        raise UsageError(
            f"timings must be a mapping with activity_timeout and/or pong_timeout, got {timings!r}"
        )
    limits = data.get("limits") or {}
    if not isinstance(limits, Mapping) or set(limits) - {"max_event_bytes"}:
        raise UsageError(f"limits must be a mapping with max_event_bytes, got {limits!r}")
    # The capability without a URL is refused once --webhook-listen had its say
    # (target_from_options).
    webhook_listen = webhook_listen_url(data.get("webhooks"), ())
    restart_command, restart_within = _restart(data.get("restart"))
    ca_file = data.get("ca_file")
    if ca_file is not None:
        if not isinstance(ca_file, str) or not ca_file:
            raise UsageError(f"ca_file must be the path of a PEM file, got {ca_file!r}")
        ca_file = check_ca_file(str((relative_to or Path.cwd()) / ca_file))
    max_event_bytes = limits.get("max_event_bytes", DEFAULT_MAX_EVENT_BYTES)
    if isinstance(max_event_bytes, bool) or not isinstance(max_event_bytes, int):
        raise UsageError(f"limits.max_event_bytes must be an integer, got {max_event_bytes!r}")
    return Target(
        name=text_field(data.get("name", "unnamed-target"), "name"),
        ws_url=_url(data["ws_url"], "ws_url", ("ws", "wss")),
        http_url=_url(data["http_url"], "http_url", ("http", "https")),
        app_id=text_field(data["app_id"], "app_id"),
        key=text_field(data["key"], "key"),
        secret=text_field(data["secret"], "secret"),
        capabilities=frozenset(capabilities)
        | derived_capabilities(nodes, suite_controls_nodes=bundled),
        timings=Timings(
            activity_timeout=_seconds(timings.get("activity_timeout"), "activity_timeout"),
            pong_timeout=_seconds(timings.get("pong_timeout"), "pong_timeout"),
        ),
        max_event_bytes=max_event_bytes,
        bundled=bundled,
        webhook_listen=webhook_listen,
        restart_command=restart_command,
        restart_within=restart_within,
        ca_file=ca_file,
        other_apps=parse_other_apps(data),
        nodes=nodes,
    )


def webhook_listen_url(webhooks: object, capabilities: Iterable[str]) -> str | None:
    """The ``webhooks: {listen: URL}`` entry, checked: a loopback ``http://`` URL with a port,
    required when the ``webhooks`` capability is declared."""
    if webhooks is None:
        if "webhooks" in capabilities:
            raise UsageError(
                "capability 'webhooks' needs webhooks: {listen: http://127.0.0.1:PORT/path} "
                "(or --webhook-listen URL): where the server was configured to post"
            )
        return None
    if not isinstance(webhooks, Mapping) or set(webhooks) != {"listen"}:
        raise UsageError(f"webhooks must be a mapping with listen: URL, got {webhooks!r}")
    listen = webhooks["listen"]
    if not isinstance(listen, str):
        raise UsageError(f"webhooks.listen must be a URL, got {listen!r}")
    parse_listen_url(listen)
    return listen


def load_target_file(path: str | Path) -> Target:
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"target file not found: {file}")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"target file {file} is not valid YAML: {first_line}") from None
    if not isinstance(data, Mapping):
        raise UsageError(f"target file {file} must hold a mapping of fields")
    try:
        return target_from_mapping(data, relative_to=file.parent)
    except UsageError as exc:
        raise UsageError(f"target file {file}: {exc}") from None


def with_declared_capabilities(target: Target, options: RunOptions) -> Target:
    """The target plus what ``--capability`` declares on top of what it declares itself."""
    extra = frozenset(options.capabilities)
    return dataclasses.replace(target, capabilities=target.capabilities | extra)


def target_from_options(options: RunOptions) -> Target | None:
    """The server the options name, from a target file or the target flags, with the declared
    capabilities and webhook address added; ``None`` when they name none, so the bundled server
    is started. Timings and limits flags only complete a target given by flags."""
    if options.target_file:
        target = load_target_file(options.target_file)
    elif options.target_flags_given:
        timings = {
            name: value
            for name in ("activity_timeout", "pong_timeout")
            if (value := getattr(options, name)) is not None
        }
        limits = {"max_event_bytes": options.max_event_bytes} if options.max_event_bytes else {}
        flags = {name: getattr(options, name) for name in CONNECTION_FIELDS}
        target = target_from_mapping(
            {"name": "command-line target", **flags, "timings": timings, "limits": limits}
        )
    else:
        refuse_both_trust_choices(options.ca_file, options.insecure)
        if options.ca_file or options.insecure:
            flag = "--ca-file" if options.ca_file else "--insecure"
            raise UsageError(f"{flag} is for a wss:// target; the bundled server speaks ws://")
        return None
    target = with_declared_capabilities(target, options)
    target = with_trust(target, options.ca_file, options.insecure)
    if options.webhook_listen:
        target = dataclasses.replace(target, webhook_listen=options.webhook_listen)
    listen = target.webhook_listen
    webhook_listen_url({"listen": listen} if listen else None, target.capabilities)
    return target


def with_trust(target: Target, ca_file: str | None, insecure: bool) -> Target:
    """The target trusting what the command line says, over its file's ``ca_file``: that CA
    (checked) with ``--ca-file``, nothing at all with ``--insecure`` (both: a usage error)."""
    refuse_both_trust_choices(ca_file, insecure)
    if insecure:
        if not any(urlsplit(url).scheme in ("wss", "https") for url in target.urls):
            raise UsageError(f"--insecure is for a wss:// target, not {target.ws_url}")
        return dataclasses.replace(target, ca_file=None, insecure=True)
    if ca_file:
        return dataclasses.replace(target, ca_file=check_ca_file(ca_file))
    return target


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    default = 443 if parts.scheme in ("https", "wss") else 80
    return parts.hostname or "", parts.port or default


def check_reachable(target: Target, timeout: float = 3.0) -> None:
    """Fail fast, with one line, when nothing listens at the target's addresses or, for
    ``wss://`` and ``https://``, when its certificate is not trusted."""
    check_listening(target.urls, "target", timeout)
    for url in target.urls:
        check_trusted(url, target.client_tls(), timeout)


def check_listening(urls: Iterable[str], what: str, timeout: float = 3.0) -> None:
    """Fail fast, with one line naming ``what``, when nothing listens at one of ``urls``: a
    certification that cannot reach its subject should say so in seconds, not after a run."""
    deadline = time.monotonic() + timeout
    for url in dict.fromkeys(urls):
        host, port = _host_port(url)
        remaining = max(0.2, deadline - time.monotonic())
        try:
            with socket.create_connection((host, port), timeout=remaining):
                pass
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise TargetUnreachable(
                f"{what} unreachable: nothing answers at {host}:{port} ({url}): {reason}"
            ) from None
