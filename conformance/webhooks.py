"""The suite's webhook receiver, and what checks use to read it.

The target POSTs webhooks to a URL the target file declares (``webhooks: {listen: URL}``);
the suite listens there, on loopback only. Checks run in pytest-xdist workers (other
processes), so the receiver runs once, in the controller, on a background thread, and every
check reads it over HTTP from a private path on the same port:

- ``GET  {control}/records?after=SEQ&since=UNIX&wait=SECONDS``: the requests received after
  sequence number ``SEQ`` (and at or after wall time ``since``), waiting up to ``wait`` seconds
  for at least one (a long poll, so waits stay event-driven);
- ``POST {control}/rules`` ``{"event": PATTERN, "status": 500, "times": 1}``: answer the next
  ``times`` requests holding an event that matches ``PATTERN`` with ``status`` (for retries).

``control`` is ``/_conformance/<random token>``; everything else is recorded as a webhook.
The record/rule bookkeeping (``ReceiverState``) and the checks on a request
(``signature_problems``) are plain code; ``WebhookReceiver`` and ``WebhookClient`` are the
aiohttp adapters.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from .errors import HarnessError, UsageError
from .loop import LoopThread
from .patterns import match, surely_differs
from .transcript import Transcript

__all__ = [
    "NOT_JSON",
    "ReceiverState",
    "ReplyRule",
    "WebhookClient",
    "WebhookReceiver",
    "WebhookRecord",
    "bind_listener",
    "parse_listen_url",
    "signature_problems",
    "webhook_signature",
]

#: Longest single long poll; a client polls again until its own deadline.
MAX_POLL = 2.0


class _NotJson:
    def __repr__(self) -> str:
        return "<body is not JSON>"


NOT_JSON: Any = _NotJson()


def parse_listen_url(url: str) -> tuple[str, int, str]:
    """``(host, port, path)`` of a listen URL; only ``http://`` on a loopback host is allowed,
    since the suite must not open a port to the network."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise UsageError(f"webhook listen URL must be http://HOST:PORT/path, got {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"webhook listen URL has an invalid port: {url!r}") from None
    host = parts.hostname
    loopback = host == "localhost"
    if not loopback:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
    if not loopback:
        raise UsageError(
            f"webhook listen URL must be on a loopback host (127.0.0.1, ::1, localhost), "
            f"got {host!r}: the suite does not listen on the network"
        )
    if port is None:
        raise UsageError(f"webhook listen URL needs an explicit port: {url!r}")
    return host, port, parts.path or "/"


def bind_listener(host: str, port: int) -> socket.socket:
    """The receiver's listening socket on ``host``:``port`` (0: a free port).

    Raises:
        OSError: the address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def webhook_signature(secret: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of the raw body, as ``X-Pusher-Signature`` must carry it."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class WebhookRecord:
    """One request the receiver got, as it arrived, and what it answered."""

    seq: int
    received_at: float
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    status: int
    #: The body parsed once: every check running side by side sees every request, and matches
    #: its patterns against them at each poll.
    _parsed: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            parsed = json.loads(self.body)
        except ValueError:
            parsed = NOT_JSON
        object.__setattr__(self, "_parsed", parsed)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    def json(self) -> Any:
        """The parsed body (shared: do not change it), or ``NOT_JSON``."""
        return self._parsed

    def events(self) -> list[Any]:
        """The ``events`` list of the body, or ``[]`` if there is none."""
        body = self._parsed
        if isinstance(body, Mapping) and isinstance(body.get("events"), list):
            return list(body["events"])
        return []

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "received_at": self.received_at,
            "method": self.method,
            "path": self.path,
            "headers": [list(h) for h in self.headers],
            "body_b64": base64.b64encode(self.body).decode(),
            "status": self.status,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WebhookRecord:
        return cls(
            seq=int(data["seq"]),
            received_at=float(data["received_at"]),
            method=str(data["method"]),
            path=str(data["path"]),
            headers=tuple((str(k), str(v)) for k, v in data["headers"]),
            body=base64.b64decode(data["body_b64"]),
            status=int(data["status"]),
        )

    def describe(self) -> str:
        text = self.body.decode("utf-8", errors="replace")
        if len(text) > 300:
            text = text[:297] + "..."
        return f"#{self.seq} {self.method} {self.path} -> {self.status}: {text}"


def signature_problems(record: WebhookRecord, key: str, secret: str) -> list[str]:
    """What is wrong with a request's ``X-Pusher-Key`` / ``X-Pusher-Signature``."""
    problems = []
    given_key = record.header("X-Pusher-Key")
    if given_key != key:
        problems.append(f"X-Pusher-Key is {given_key!r}, expected the app key {key!r}")
    given = record.header("X-Pusher-Signature")
    expected = webhook_signature(secret, record.body)
    if given is None:
        problems.append("X-Pusher-Signature is missing")
    elif not hmac.compare_digest(given.encode(), expected.encode()):
        problems.append(
            f"X-Pusher-Signature is {given!r}, expected hex HMAC-SHA256 of the raw body "
            f"with the app secret ({expected})"
        )
    return problems


@dataclass
class ReplyRule:
    """Answer ``status`` to the next ``times`` requests holding an event matching ``event``."""

    event: Any
    status: int
    times: int = 1

    def applies(self, record_events: Sequence[Any]) -> bool:
        return self.times > 0 and any(not match(self.event, e) for e in record_events)


@dataclass
class ReceiverState:
    """Every request received, in order, and the reply rules; no I/O."""

    records: list[WebhookRecord] = field(default_factory=list)
    rules: list[ReplyRule] = field(default_factory=list)

    def receive(
        self,
        method: str,
        path: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        now: float,
    ) -> WebhookRecord:
        """Record a request and decide its status: the first applicable rule's, else 200."""
        probe = WebhookRecord(len(self.records) + 1, now, method, path, tuple(headers), body, 200)
        status = 200
        events = probe.events()
        for rule in self.rules:
            if rule.applies(events):
                rule.times -= 1
                status = rule.status
                break
        self.rules = [r for r in self.rules if r.times > 0]
        record = WebhookRecord(probe.seq, now, method, path, probe.headers, body, status)
        self.records.append(record)
        return record

    def since(self, after: int, since_time: float = 0.0) -> list[WebhookRecord]:
        return [r for r in self.records[after:] if r.received_at >= since_time]


class WebhookReceiver:
    """The HTTP server: records requests to any path, serves ``control`` to the checks.

    Started by the controller before the target (or the bundled server) is used; its thread
    runs until ``stop``.
    """

    def __init__(self, listen_url: str, *, sock: socket.socket | None = None) -> None:
        """``sock``: already bound to ``listen_url``'s address (by a parent process that had
        to know the port before this receiver was ready); else ``start`` binds it."""
        self.host, self.port, self.path = parse_listen_url(listen_url)
        self._sock = sock
        self.token = secrets.token_hex(12)
        self.state = ReceiverState()
        self._loop: LoopThread | None = None
        self._runner: web.AppRunner | None = None
        self._changed: asyncio.Condition | None = None

    @property
    def listen_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.path}"

    @property
    def control_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/_conformance/{self.token}"

    def start(self) -> WebhookReceiver:
        """Bind (port 0 picks a free one, then ``listen_url`` tells which) and serve."""
        self._loop = LoopThread()
        try:
            self._loop.run(self._start())
        except OSError as exc:
            self.stop()
            raise UsageError(
                f"cannot listen for webhooks on {self.host}:{self.port}: {exc.strerror or exc}"
            ) from None
        return self

    async def _start(self) -> None:
        self._changed = asyncio.Condition()
        app = web.Application(client_max_size=16 * 1024 * 1024)
        prefix = f"/_conformance/{self.token}"
        app.router.add_get(f"{prefix}/records", self._records)
        app.router.add_post(f"{prefix}/rules", self._rules)
        app.router.add_route("*", "/{tail:.*}", self._receive)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        try:
            sock = self._sock if self._sock is not None else bind_listener(self.host, self.port)
        except OSError:
            await self._runner.cleanup()
            raise
        self.port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock)
        await site.start()

    def stop(self) -> None:
        if self._loop is None:
            return
        if self._runner is not None:
            runner = self._runner
            # Stopping must not hide the run's outcome.
            with contextlib.suppress(Exception):
                self._loop.run(asyncio.wait_for(runner.cleanup(), 5))
            self._runner = None
        self._loop.close()
        self._loop = None

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        record = self.state.receive(
            request.method,
            request.path_qs,
            list(request.headers.items()),
            body,
            time.time(),
        )
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()
        return web.json_response({}, status=record.status)

    async def _records(self, request: web.Request) -> web.Response:
        try:
            after = int(request.query.get("after", "0"))
            since_time = float(request.query.get("since", "0"))
            wait = min(MAX_POLL, max(0.0, float(request.query.get("wait", "0"))))
        except ValueError:
            return web.json_response({"error": "bad query"}, status=400)
        assert self._changed is not None
        found = self.state.since(after, since_time)
        if not found and wait > 0:
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), wait)
            found = self.state.since(after, since_time)
        return web.json_response(
            {"last": len(self.state.records), "records": [r.to_json() for r in found]}
        )

    async def _rules(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
            rule = ReplyRule(data["event"], int(data["status"]), int(data.get("times", 1)))
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "bad rule"}, status=400)
        self.state.rules.append(rule)
        return web.json_response({})


class WebhookClient:
    """A check's view of the receiver: the requests that arrived since the check began."""

    def __init__(
        self, control_url: str, transcript: Transcript, timeout: float, since: float
    ) -> None:
        self.control_url = control_url.rstrip("/")
        self.transcript = transcript
        self.timeout = timeout
        self._since = since
        self._after = 0
        self.records: list[WebhookRecord] = []
        #: (record seq, event index) pairs an ``expect_webhook`` step has used up.
        self.consumed: set[tuple[int, int]] = set()
        self._session: aiohttp.ClientSession | None = None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout + MAX_POLL)
            )
        return self._session

    async def poll(self, wait: float = 0.0) -> list[WebhookRecord]:
        """Fetch what arrived since the last poll (waiting up to ``wait`` s for something)."""
        params = {"after": str(self._after), "since": str(self._since), "wait": str(wait)}
        try:
            async with self._http().get(f"{self.control_url}/records", params=params) as resp:
                if resp.status != 200:
                    raise HarnessError(f"webhook receiver answered {resp.status}")
                data = await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise HarnessError(f"cannot read the webhook receiver: {exc!r}") from None
        self._after = max(self._after, int(data["last"]))
        new = [WebhookRecord.from_json(r) for r in data["records"]]
        self.records.extend(new)
        return new

    async def add_rule(self, event: Any, status: int, times: int) -> None:
        payload = {"event": event, "status": status, "times": times}
        try:
            async with self._http().post(f"{self.control_url}/rules", json=payload) as resp:
                if resp.status != 200:
                    raise HarnessError(f"webhook receiver refused the rule: {resp.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise HarnessError(f"cannot reach the webhook receiver: {exc!r}") from None
        self.transcript.record("webhook_rule", event=event, status=status, times=times)

    def matches(
        self, pattern: Any, *, unconsumed: bool = True
    ) -> list[tuple[WebhookRecord, int, Any]]:
        """``(record, index, event)`` for every received event matching ``pattern``."""
        found = []
        for record in self.records:
            for index, event in enumerate(record.events()):
                if unconsumed and (record.seq, index) in self.consumed:
                    continue
                if not surely_differs(pattern, event) and not match(pattern, event):
                    found.append((record, index, event))
        return found

    async def wait_for(self, pattern: Any, seconds: float) -> tuple[WebhookRecord, int, Any] | None:
        """The first unconsumed event matching ``pattern``, waiting up to ``seconds``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        await self.poll()
        while True:
            found = self.matches(pattern)
            if found:
                record, index, _ = found[0]
                self.consumed.add((record.seq, index))
                self.transcript.record(
                    "webhook",
                    seq=record.seq,
                    path=record.path,
                    status=record.status,
                    headers=dict(record.headers),
                    body=record.body.decode("utf-8", errors="replace"),
                )
                return found[0]
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            await self.poll(min(MAX_POLL, remaining))


def near_misses(records: Sequence[WebhookRecord], keep: Callable[[Any], bool]) -> list[str]:
    """Short lines for the received events ``keep`` selects, for a failure message."""
    lines = []
    for record in records:
        for event in record.events():
            if keep(event):
                lines.append(f"  #{record.seq} -> {record.status}: {json.dumps(event)[:200]}")
    return lines
