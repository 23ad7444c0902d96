"""Named properties: checks that are Python functions, referenced from the YAML by name, whose
inputs hypothesis generates within the bounds the YAML gives.

A property receives the check's context and its ``params``; it raises ``CheckFailed`` (via an
assertion on the target's behaviour) or ``PreconditionFailed`` like any exchange step.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import given, seed
from hypothesis import strategies as st

from .context import CheckContext, nonce, unique_channel
from .errors import CheckFailed, UsageError
from .profiles import hypothesis_settings
from .signing import body_md5

__all__ = ["PROPERTIES", "TAMPERS", "Property", "known_property_names", "run_property"]

PropertyFn = Callable[[CheckContext, Mapping[str, Any]], None]

SOCKET_ID = re.compile(r"^\d+\.\d+$")


@dataclass(frozen=True)
class Property:
    name: str
    params: frozenset[str]
    run: PropertyFn


PROPERTIES: dict[str, Property] = {}


def prop(name: str, *params: str) -> Callable[[PropertyFn], PropertyFn]:
    def register(fn: PropertyFn) -> PropertyFn:
        PROPERTIES[name] = Property(name, frozenset(params), fn)
        return fn

    return register


def run_property(ctx: CheckContext, name: str, params: Mapping[str, Any]) -> None:
    spec = PROPERTIES.get(name)
    if spec is None:
        raise UsageError(f"unknown property {name!r}")
    unknown = set(params) - spec.params
    if unknown:
        raise UsageError(
            f"{ctx.check.full_id}: property {name} does not take {', '.join(sorted(unknown))} "
            f"(it takes: {', '.join(sorted(spec.params)) or 'nothing'})"
        )
    spec.run(ctx, params)


def _explore(
    ctx: CheckContext,
    strategy: st.SearchStrategy[Any],
    body: Callable[[Any], None],
    params: Mapping[str, Any],
) -> None:
    """Run ``body`` on examples drawn from ``strategy`` under the run's profile and seed."""
    examples = params.get("examples")

    @hypothesis_settings(ctx.settings.profile, examples if isinstance(examples, int) else None)
    @seed(ctx.settings.seed)
    @given(strategy)
    def explore(example: Any) -> None:
        ctx.transcript.record("example", value=repr(example)[:300])
        body(example)

    explore()


def _assert_no_event(ctx: CheckContext, conn_name: str, marker_channel: str, token: str) -> None:
    """After a barrier, nothing carrying ``token`` may have reached the connection."""
    ctx.run(ctx.barrier(conn_name, marker_channel))
    conn = ctx.connection(conn_name)
    leaked = [f for f in conn.unconsumed() if isinstance(f.raw, str) and token in f.raw]
    if leaked:
        raise CheckFailed(
            f"{conn_name} received an event it should not have: {leaked[0].describe()}"
        )


async def _expect_event(
    ctx: CheckContext, conn_name: str, channel: str, name: str, data: str
) -> None:
    conn = ctx.connection(conn_name)
    frame = await conn.wait_for(
        lambda f: (
            isinstance(f.parsed, dict)
            and f.parsed.get("event") == name
            and f.parsed.get("channel") == channel
        ),
        ctx.response_timeout,
    )
    if frame is None:
        raise CheckFailed(f"event {name!r} on channel {channel!r} never reached {conn_name}")
    if frame.parsed.get("data") != data or not isinstance(frame.parsed.get("data"), str):
        raise CheckFailed(
            f"event on {channel!r} arrived with data {json.dumps(frame.parsed.get('data'))[:200]}, "
            f"expected the published string {json.dumps(data)[:200]}"
        )


# -- connection ----------------------------------------------------------------------------


@prop("socket_ids_unique", "connections")
def socket_ids_unique(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    count = int(params.get("connections", 10))

    async def go() -> None:
        names = [f"u{i}" for i in range(count)]
        await asyncio.gather(*(ctx.open(n) for n in names))
        ids = [ctx.variables[n]["socket_id"] for n in names]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise CheckFailed(f"{count} connections got duplicate socket ids: {duplicates}")

    ctx.run(go())


@prop("websocket_ping_answered", "pings", "examples")
def websocket_ping_answered(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    pings = int(params.get("pings", 3))
    ctx.run(ctx.open("c1"))

    def body(payloads: list[bytes]) -> None:
        for payload in payloads:
            if not ctx.run(ctx.connection("c1").ws_ping(payload, ctx.response_timeout)):
                raise CheckFailed(f"no pong frame answered a ping frame with payload {payload!r}")

    _explore(ctx, st.lists(st.binary(max_size=125), min_size=1, max_size=pings), body, params)


# -- channels ------------------------------------------------------------------------------


@prop("channel_name_roundtrip", "alphabet", "min_length", "max_length", "examples")
def channel_name_roundtrip(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    alphabet = str(params["alphabet"])
    names = st.text(
        alphabet=alphabet,
        min_size=int(params.get("min_length", 1)),
        max_size=int(params.get("max_length", 164)),
    )
    ctx.run(ctx.open("c1"))

    def body(channel: str) -> None:
        async def go() -> None:
            conn = ctx.connection("c1")
            await conn.send_json({"event": "pusher:subscribe", "data": {"channel": channel}})
            ok = await conn.wait_for(
                lambda f: (
                    f.event == "pusher_internal:subscription_succeeded"
                    and f.parsed.get("channel") == channel
                ),
                ctx.response_timeout,
            )
            if ok is None:
                raise CheckFailed(f"subscribing to the valid channel name {channel!r} failed")
            token = nonce()
            await ctx.trigger("conformance-event", token, channel=channel)
            await _expect_event(ctx, "c1", channel, "conformance-event", token)
            await conn.send_json({"event": "pusher:unsubscribe", "data": {"channel": channel}})

        ctx.run(go())

    _explore(ctx, names, body, params)


def _json_text() -> st.SearchStrategy[str]:
    scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    values = st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=12,
    )
    return values.map(lambda v: json.dumps(v, ensure_ascii=False))


@prop("data_roundtrip", "kinds", "max_length", "examples")
def data_roundtrip(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    kinds = list(params.get("kinds", ["text", "json"]))
    max_length = int(params.get("max_length", 2000))
    strategies = []
    if "text" in kinds:
        strategies.append(st.text(min_size=1, max_size=max_length))
    if "json" in kinds:
        strategies.append(_json_text().filter(lambda s: len(s) <= max_length))
    if not strategies:
        raise UsageError(f"{ctx.check.full_id}: data_roundtrip needs kinds text and/or json")
    channel = unique_channel("conformance-data-")

    async def setup() -> None:
        await ctx.open("c1")
        await ctx.subscribe("c1", channel)

    ctx.run(setup())

    def body(data: str) -> None:
        async def go() -> None:
            await ctx.trigger("conformance-event", data, channel=channel)
            await _expect_event(ctx, "c1", channel, "conformance-event", data)

        ctx.run(go())

    _explore(ctx, st.one_of(*strategies), body, params)


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


def _tamper_strategy(kinds: list[str], min_offset: int) -> st.SearchStrategy[tuple[str, Any]]:
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


def _tampered(
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
    strategy = _tamper_strategy(kinds, int(params.get("min_offset", 660)))
    channel = unique_channel("conformance-tamper-")

    async def setup() -> None:
        await ctx.open("c1")
        await ctx.subscribe("c1", channel)

    ctx.run(setup())

    def body(example: tuple[str, Any]) -> None:
        kind, detail = example
        token = nonce()
        request = _tampered(ctx, kind, detail, channel, token)
        response = ctx.run(ctx.api.send("POST", ctx.api.events_path(), request.pairs, request.body))
        if response.status != expected_status:
            raise CheckFailed(
                f"{request.description}: answered HTTP {response.status}, "
                f"expected {expected_status} (body {response.text[:120]!r})"
            )
        _assert_no_event(ctx, "c1", channel, token)

    _explore(ctx, strategy, body, params)


def known_property_names() -> frozenset[str]:
    return frozenset(PROPERTIES)
