"""Properties of the HTTP API: a request wrong in any single way is refused and has no effect;
several requests share one kept-alive TCP connection."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from hypothesis import strategies as st

from ..context import CheckContext
from ..errors import CheckFailed, PreconditionFailed, UsageError
from ..signing import body_md5
from ..templates import nonce, unique_channel
from .registry import assert_no_event, explore, prop

# -- HTTP API ------------------------------------------------------------------------------

TAMPERS = (
    "missing_auth_param",
    "signature_bit_flip",
    "signed_other_path",
    "signed_other_method",
    "unsigned_extra_param",
    "changed_param_value",
    "timestamp_outside_window",
    "body_changed",
    "other_auth_key",
)


@dataclass(frozen=True)
class TamperedRequest:
    description: str
    pairs: list[tuple[str, str]]
    body: bytes


def tamper_strategy(kinds: list[str], min_offset: int) -> st.SearchStrategy[tuple[str, Any]]:
    options: list[st.SearchStrategy[tuple[str, Any]]] = []
    for kind in kinds:
        if kind == "missing_auth_param":
            detail: st.SearchStrategy[Any] = st.sampled_from(
                ["auth_key", "auth_timestamp", "auth_version", "auth_signature", "body_md5"]
            )
        elif kind == "signature_bit_flip":
            detail = st.tuples(st.integers(0, 63), st.sampled_from([1, 2, 4, 8]))
        elif kind == "signed_other_path":
            detail = st.sampled_from(
                [
                    "/apps/{id}/batch_events",
                    "/apps/{id}/events/",
                    "/apps/{id}",
                    "/apps/{id}/channels",
                    "/apps/0{id}/events",
                ]
            )
        elif kind == "signed_other_method":
            detail = st.sampled_from(["GET", "PUT", "DELETE", "PATCH"])
        elif kind == "unsigned_extra_param":
            detail = st.tuples(
                st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True).filter(
                    lambda k: not k.startswith("auth_") and k != "body_md5"
                ),
                st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12),
            )
        elif kind == "changed_param_value":
            detail = st.integers(1, 300).flatmap(lambda d: st.sampled_from([d, -d]))
        elif kind == "timestamp_outside_window":
            detail = st.integers(min_offset, 10**7).flatmap(lambda d: st.sampled_from([d, -d]))
        elif kind == "body_changed":
            detail = st.sampled_from(["data", "name", "whitespace"])
        elif kind == "other_auth_key":
            detail = st.text(alphabet="abcdef0123456789", min_size=4, max_size=20)
        else:
            raise UsageError(f"unknown tamper kind {kind!r} (known: {', '.join(TAMPERS)})")
        options.append(st.tuples(st.just(kind), detail))
    return st.one_of(*options)


def tampered_request(
    ctx: CheckContext, kind: str, detail: Any, channel: str, token: str
) -> TamperedRequest:
    api = ctx.api
    path = api.events_path()
    body = api.event_body("conformance-tampered", token, channel=channel)
    method = "POST"
    if kind == "missing_auth_param":
        pairs = [(k, v) for k, v in api.signed_query(method, path, body) if k != detail]
        return TamperedRequest(f"request without {detail}", pairs, body)
    if kind == "signature_bit_flip":
        position, bit = detail
        pairs = api.signed_query(method, path, body)
        signature = dict(pairs)["auth_signature"]
        flipped = format(int(signature[position], 16) ^ bit, "x")
        bad = signature[:position] + flipped + signature[position + 1 :]
        pairs = [(k, bad if k == "auth_signature" else v) for k, v in pairs]
        return TamperedRequest(f"signature with hex digit {position} flipped", pairs, body)
    if kind == "signed_other_path":
        other = detail.format(id=ctx.target.app_id)
        pairs = api.signed_query(method, path, body, sign_path=other)
        return TamperedRequest(f"signature computed for path {other}", pairs, body)
    if kind == "signed_other_method":
        pairs = api.signed_query(method, path, body, sign_method=detail)
        return TamperedRequest(f"signature computed for method {detail}", pairs, body)
    if kind == "unsigned_extra_param":
        name, value = detail
        pairs = [*api.signed_query(method, path, body), (name, value)]
        return TamperedRequest(f"extra unsigned query parameter {name}={value}", pairs, body)
    if kind == "changed_param_value":
        pairs = api.signed_query(method, path, body)
        pairs = [(k, str(int(v) + detail) if k == "auth_timestamp" else v) for k, v in pairs]
        return TamperedRequest(f"auth_timestamp moved by {detail}s after signing", pairs, body)
    if kind == "timestamp_outside_window":
        stamp = int(time.time()) + detail
        pairs = api.signed_query(method, path, body, auth={"auth_timestamp": str(stamp)})
        return TamperedRequest(
            f"auth_timestamp {detail:+d}s from now, correctly signed", pairs, body
        )
    if kind == "body_changed":
        pairs = api.signed_query(method, path, body)
        if detail == "whitespace":
            changed = body.replace(b",", b", ", 1)
        elif detail == "name":
            changed = api.event_body("conformance-tampered2", token, channel=channel)
        else:
            changed = api.event_body("conformance-tampered", token + "x", channel=channel)
        assert body_md5(changed) != dict(pairs)["body_md5"]
        return TamperedRequest(f"body changed ({detail}) after signing", pairs, changed)
    if kind == "other_auth_key":
        other_key = detail if detail != ctx.target.key else detail + "0"
        pairs = api.signed_query(method, path, body, auth={"auth_key": other_key})
        return TamperedRequest(f"auth_key {other_key!r} (not the app key), signed", pairs, body)
    raise UsageError(f"unknown tamper kind {kind!r}")


@prop("http_tamper", "tamper", "status", "min_offset", "examples")
def http_tamper(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    kinds = list(params.get("tamper", TAMPERS))
    expected_status = int(params.get("status", 401))
    strategy = tamper_strategy(kinds, int(params.get("min_offset", 660)))
    channel = unique_channel("conformance-tamper-")

    async def setup() -> None:
        await ctx.open("c1")
        await ctx.subscribe("c1", channel)

    ctx.run(setup())

    def body(example: tuple[str, Any]) -> None:
        kind, detail = example
        token = nonce()
        request = tampered_request(ctx, kind, detail, channel, token)
        response = ctx.run(ctx.api.send("POST", ctx.api.events_path(), request.pairs, request.body))
        if response.status != expected_status:
            raise CheckFailed(
                f"{request.description}: answered HTTP {response.status}, "
                f"expected {expected_status} (body {response.text[:120]!r})"
            )
        assert_no_event(ctx, "c1", channel, token)

    explore(ctx, strategy, body, params)


# -- keep-alive ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


async def _read_response(reader: asyncio.StreamReader) -> RawResponse | None:
    """One HTTP/1.1 response, or ``None`` if the server closed the connection first."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise CheckFailed(f"truncated response head: {exc.partial[:200]!r}") from None
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise CheckFailed(f"not an HTTP status line: {lines[0][:200]!r}")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return RawResponse(int(parts[1]), headers, body)


@prop("http_keep_alive", "requests")
def http_keep_alive(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    """Send ``requests`` signed triggers one after the other on one TCP connection; each must be
    answered 200 without the server closing the connection or announcing that it will."""
    count = int(params.get("requests", 2))
    if count < 2:
        raise UsageError("http_keep_alive needs requests >= 2")
    url = urlsplit(ctx.target.http_url)
    host = url.hostname or "127.0.0.1"
    port = url.port or (443 if url.scheme == "https" else 80)
    base = url.path.rstrip("/")
    channel = unique_channel("conformance-keepalive-")

    async def run() -> None:
        api = ctx.api
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    host,
                    port,
                    ssl=(ctx.target.client_tls() or True) if url.scheme == "https" else None,
                ),
                ctx.response_timeout,
            )
        except (OSError, TimeoutError) as exc:
            raise PreconditionFailed(
                f"cannot open a TCP connection to {host}:{port}: {exc!r}"
            ) from None
        try:
            for number in range(1, count + 1):
                path = api.events_path()
                body = api.event_body("conformance-keepalive", f"request-{number}", channel=channel)
                pairs = api.signed_query("POST", path, body)
                query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
                head = (
                    f"POST {base}{path}?{query} HTTP/1.1\r\n"
                    f"Host: {url.netloc}\r\n"
                    "Content-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                )
                ctx.transcript.record(
                    "http_request", method="POST", url=f"{path}?{query}", body=body.decode(),
                    connection="kept-alive", number=number,
                )  # fmt: skip
                try:
                    writer.write(head.encode() + body)
                    await writer.drain()
                    response = await asyncio.wait_for(_read_response(reader), ctx.response_timeout)
                except (ConnectionError, OSError) as exc:
                    raise CheckFailed(
                        f"request {number} could not be sent on the connection used for "
                        f"request {number - 1}: {exc!r} (no keep-alive)"
                    ) from None
                except TimeoutError:
                    raise CheckFailed(
                        f"no response to request {number} within the timeout"
                    ) from None
                if response is None:
                    raise CheckFailed(
                        f"the server closed the TCP connection instead of answering request "
                        f"{number}: it does not keep connections alive"
                    )
                ctx.transcript.record(
                    "http_response", status=response.status,
                    headers=response.headers, body=response.body.decode("utf-8", "replace"),
                )  # fmt: skip
                if response.status != 200:
                    raise CheckFailed(
                        f"request {number} answered HTTP {response.status}, expected 200 "
                        f"(body {response.body[:120]!r})"
                    )
                if number < count and response.headers.get("connection", "").lower() == "close":
                    raise CheckFailed(
                        f"the response to request {number} says Connection: close: the server "
                        "does not keep the connection alive"
                    )
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    ctx.run(run())
