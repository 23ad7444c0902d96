"""The property registry and the helpers properties share.

Named properties are checks that are Python functions, referenced from the YAML by name, whose
inputs hypothesis generates within the bounds the YAML gives.

A property receives the check's context and its ``params``; it raises ``CheckFailed`` (via an
assertion on the target's behaviour) or ``PreconditionFailed`` like any exchange step.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import given, seed
from hypothesis import strategies as st

from ..context import CheckContext
from ..errors import CheckFailed, UsageError
from ..profiles import hypothesis_settings

__all__ = [
    "PROPERTIES",
    "Property",
    "assert_no_event",
    "expect_event",
    "explore",
    "known_property_names",
    "prop",
    "run_property",
]

PropertyFn = Callable[[CheckContext, Mapping[str, Any]], None]


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


def explore(
    ctx: CheckContext,
    strategy: st.SearchStrategy[Any],
    body: Callable[[Any], None],
    params: Mapping[str, Any],
) -> None:
    """Run ``body`` on examples drawn from ``strategy`` under the run's profile and seed."""
    examples = params.get("examples")
    if ctx.settings.max_examples is not None:
        examples = ctx.settings.max_examples

    @hypothesis_settings(ctx.settings.profile, examples if isinstance(examples, int) else None)
    @seed(ctx.settings.seed)
    @given(strategy)
    def explore(example: Any) -> None:
        ctx.run(ctx.connections.pause_keep_alive())
        try:
            ctx.transcript.record("example", value=repr(example)[:300])
            body(example)
        finally:
            ctx.run(ctx.connections.resume_keep_alive())

    # The connections a property opened before exploring are kept alive while hypothesis
    # works between examples (see Connections.resume_keep_alive).
    ctx.run(ctx.connections.resume_keep_alive())
    try:
        explore()
    finally:
        ctx.run(ctx.connections.stop_keep_alive())


def assert_no_event(ctx: CheckContext, conn_name: str, marker_channel: str, token: str) -> None:
    """After a barrier, nothing carrying ``token`` may have reached the connection."""
    ctx.run(ctx.barrier(conn_name, marker_channel))
    conn = ctx.connection(conn_name)
    leaked = [f for f in conn.unconsumed() if isinstance(f.raw, str) and token in f.raw]
    if leaked:
        raise CheckFailed(
            f"{conn_name} received an event it should not have: {leaked[0].describe()}"
        )


async def expect_event(
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


def known_property_names() -> frozenset[str]:
    return frozenset(PROPERTIES)
