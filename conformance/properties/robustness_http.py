"""``http_malformed_request``: malformed ``POST /apps/{id}/events`` requests, sent over an HTTP
session of their own while the bystanders watch (see ``robustness`` for what each assertion
means).

What sets the HTTP property apart is that a request has an answer to judge (a 4xx, or for some
inputs a 2xx) and a keep-alive connection that must go on serving once the garbage is through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..context import CheckContext
from ..errors import CheckFailed, PreconditionFailed, TargetError
from ..httpclient import ApiClient, ApiResponse
from ..templates import nonce
from .malformed_http_inputs import http_input_strategy
from .malformed_inputs import HTTP_KINDS, HttpInput, at_least_one
from .registry import explore, prop
from .robustness import (
    Stage,
    await_markers,
    chosen_asserts,
    chosen_kinds,
    count_sent,
    describe_frames,
    drain_bystanders,
    is_marker,
    open_bystanders,
    probe_fresh_connection,
    publish_markers,
    retoken,
)

__all__ = ["http_malformed_request", "signed_malformed_request"]


def signed_malformed_request(
    api: ApiClient, item: HttpInput
) -> tuple[list[tuple[str, str]], bytes]:
    """Sign the request, then apply the input's overrides (an ``auth_signature`` override
    replaces the correct signature; any other override is signed along)."""
    pairs = api.signed_query("POST", api.events_path(), item.body, auth=dict(item.auth))
    return pairs, item.body


@prop("http_malformed_request", "kinds", "assert", "examples")
def http_malformed_request(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    asserts = chosen_asserts(params, ("status", "service"))
    kinds = chosen_kinds(params, HTTP_KINDS)
    stage = Stage.fresh()
    ctx.run(open_bystanders(ctx, stage))
    channels = stage.channels
    strategy = at_least_one([http_input_strategy(k, channels, stage.token) for k in kinds])
    # The malformed requests go over a session of their own, so that the markers (on the
    # check's usual session) do not share its keep-alive connection; ``service`` then probes
    # the malformed requests' own connection.
    attacker = ApiClient(ctx.target, ctx.transcript, ctx.response_timeout)

    async def send(item: HttpInput) -> ApiResponse | None:
        """The answer; None (``status`` fails on it) when none came in time."""
        pairs, body = signed_malformed_request(attacker, item)
        try:
            return await attacker.send(
                "POST", attacker.events_path(), pairs, body, content_type=item.content_type
            )
        except TargetError as exc:
            if "status" in asserts:
                raise CheckFailed(f"{item!r}: no HTTP answer ({exc})") from None
            return None

    async def go(inputs: tuple[HttpInput | None, ...]) -> None:
        await drain_bystanders(ctx)
        token = "robustness-" + nonce()
        chosen = [retoken(i, stage.token, token) for i in inputs if i is not None]
        accepted = 0
        sent = 0
        try:
            for item in chosen:
                response = await send(item)
                sent += 1
                if response is None:
                    continue
                ok = 400 <= response.status < 500 or (
                    item.may_accept and 200 <= response.status < 300
                )
                if "status" in asserts and not ok:
                    legal = "a 4xx" + (" or a 2xx" if item.may_accept else "")
                    raise CheckFailed(
                        f"{item!r} was answered HTTP {response.status} "
                        f"(body {response.text[:120]!r}); expected {legal}"
                    )
                if 200 <= response.status < 300:
                    accepted += 1
        finally:
            count_sent(ctx, sent)
        watcher = ctx.connection("bystander")
        if "status" in asserts:
            marker = nonce()
            await publish_markers(ctx, marker, channels)
            if await await_markers(ctx, watcher, channels, marker):
                raise PreconditionFailed("the marker after the malformed requests never arrived")
            await ctx.ping_barrier("bystander")
            leaked = [f for f in watcher.unconsumed() if token in str(f.raw)[:200_000]]
            if len(leaked) > accepted:
                raise CheckFailed(
                    f"a refused request was delivered anyway: {describe_frames(leaked)}"
                    if accepted == 0
                    else f"{len(leaked)} events arrived for {accepted} accepted requests: "
                    f"{describe_frames(leaked)}"
                )
        if "service" in asserts:
            probe = nonce()
            # One channel: this asserts the connection still serves, not multi-channel fan-out.
            body = attacker.event_body("robustness-marker", probe, channels=channels[:1])
            try:
                response = await attacker.request("POST", attacker.events_path(), body=body)
            except TargetError as exc:
                raise CheckFailed(
                    "after the malformed requests, a correctly signed trigger got no answer "
                    f"({exc})"
                ) from None
            if response.status != 200:
                raise CheckFailed(
                    "after the malformed requests, a correctly signed trigger on the same "
                    f"connection was answered HTTP {response.status}: {response.text[:120]!r}"
                )
            missing = await await_markers(ctx, watcher, channels[:1], probe)
            if missing:
                raise CheckFailed(
                    "after the malformed requests, a correctly signed trigger was answered 200 "
                    f"but never reached the subscriber of {', '.join(missing)}"
                )
            await ctx.ping_barrier("bystander")
            again = [f for f in watcher.unconsumed() if is_marker(f, probe)]
            if again:
                raise CheckFailed(
                    f"the trigger was delivered more than once: {describe_frames(again)}"
                )
            await probe_fresh_connection(ctx, stage)
        watcher.consumed.update(f.index for f in watcher.frames)
        idle = ctx.connection("idle")
        idle.consumed.update(f.index for f in idle.frames)

    def body(inputs: tuple[HttpInput | None, ...]) -> None:
        ctx.run(go(inputs))

    try:
        explore(ctx, strategy, body, params)
    finally:
        ctx.run(attacker.aclose())
