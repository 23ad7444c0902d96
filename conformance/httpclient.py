"""A signed HTTP API client that can also be told to get one thing wrong.

Requests are built as an explicit, ordered list of query pairs so that a check controls exactly
what goes on the wire, and every exchange lands in the transcript.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from .errors import TargetError
from .signing import api_auth_params, sign_api_request
from .target import Target
from .transcript import Transcript

__all__ = ["NOT_JSON_BODY", "ApiClient", "ApiResponse", "QueryPairs"]

QueryPairs = list[tuple[str, str]]


class _NotJsonBody:
    def __repr__(self) -> str:
        return "<body is not JSON>"


NOT_JSON_BODY: Any = _NotJsonBody()
_UNSET: Any = object()


@dataclass(frozen=True)
class ApiResponse:
    status: int
    content_type: str
    text: str
    json: Any


class ApiClient:
    def __init__(self, target: Target, transcript: Transcript, timeout: float) -> None:
        self.target = target
        self.transcript = transcript
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def signed_query(
        self,
        method: str,
        path: str,
        body: bytes,
        *,
        query: Mapping[str, str] | None = None,
        auth: Mapping[str, str | None] | None = None,
        secret: str | None = None,
        sign_method: str | None = None,
        sign_path: str | None = None,
    ) -> QueryPairs:
        """The query pairs of a correctly signed request (``auth`` overrides apply first; a
        ``None`` value drops that parameter before signing)."""
        overrides = dict(auth or {})
        forced_signature = overrides.pop("auth_signature", _UNSET)
        params = api_auth_params(self.target.key, body, int(time.time()))
        params.update(query or {})
        for name, value in overrides.items():
            if value is None:
                params.pop(name, None)
            else:
                params[name] = str(value)
        signature = sign_api_request(
            secret if secret is not None else self.target.secret,
            sign_method or method,
            sign_path or path,
            params,
        )
        pairs = list(params.items())
        if forced_signature is _UNSET:
            pairs.append(("auth_signature", signature))
        elif forced_signature is not None:
            pairs.append(("auth_signature", str(forced_signature)))
        return pairs

    async def send(
        self,
        method: str,
        path: str,
        pairs: Sequence[tuple[str, str]],
        body: bytes = b"",
        *,
        content_type: str = "application/json",
    ) -> ApiResponse:
        """Send exactly these query pairs and body."""
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
        url = URL(f"{self.target.http_url}{path}" + (f"?{query}" if query else ""), encoded=True)
        headers = {"Content-Type": content_type} if body else {}
        self.transcript.record(
            "http_request", method=method, url=str(url), body=body.decode("utf-8", "replace")
        )
        if self._session is None:
            context = self.target.client_tls()
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(ssl=context) if context is not None else None,
            )
        try:
            async with self._session.request(method, url, data=body or None, headers=headers) as r:
                raw = await r.read()
                text = raw.decode("utf-8", "replace")
                status = r.status
                ctype = r.headers.get("Content-Type", "")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self.transcript.record("http_failed", error=repr(exc))
            raise TargetError(f"HTTP {method} {path} failed: {exc!r}") from None
        try:
            parsed: Any = json.loads(text) if text else NOT_JSON_BODY
        except ValueError:
            parsed = NOT_JSON_BODY
        self.transcript.record("http_response", status=status, content_type=ctype, body=text)
        return ApiResponse(status, ctype, text, parsed)

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        query: Mapping[str, str] | None = None,
        auth: Mapping[str, str | None] | None = None,
        sign: bool = True,
    ) -> ApiResponse:
        pairs = (
            self.signed_query(method, path, body, query=query, auth=auth)
            if sign
            else list((query or {}).items())
        )
        return await self.send(method, path, pairs, body)

    def events_path(self, app_id: str | None = None) -> str:
        return f"/apps/{app_id or self.target.app_id}/events"

    @staticmethod
    def event_body(
        name: str,
        data: str,
        *,
        channel: str | None = None,
        channels: Sequence[str] | None = None,
        socket_id: str | None = None,
    ) -> bytes:
        body: dict[str, Any] = {"name": name, "data": data}
        if channels is not None:
            body["channels"] = list(channels)
        if channel is not None:
            body["channel"] = channel
        if socket_id is not None:
            body["socket_id"] = socket_id
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

    async def trigger(
        self,
        name: str,
        data: str,
        *,
        channel: str | None = None,
        channels: Sequence[str] | None = None,
        socket_id: str | None = None,
    ) -> ApiResponse:
        body = self.event_body(name, data, channel=channel, channels=channels, socket_id=socket_id)
        return await self.request("POST", self.events_path(), body=body)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class NodeApiClients:
    """The API clients of a cluster's nodes (``nodes.py``), opened as a check names them and
    closed together; node ``None`` is the target's own address."""

    def __init__(self, target: Target, transcript: Transcript, timeout: float) -> None:
        self.target = target
        self.transcript = transcript
        self.timeout = timeout
        self._by_node: dict[int | None, ApiClient] = {}

    def on(self, node: int | None) -> ApiClient:
        key = None if node is None else node % max(1, len(self.target.nodes))
        if key not in self._by_node:
            target = self.target if key is None else self.target.on_node(key)
            self._by_node[key] = ApiClient(target, self.transcript, self.timeout)
        return self._by_node[key]

    async def aclose(self) -> None:
        for client in self._by_node.values():
            await client.aclose()
