"""The fault proxy's step: break a connection's TCP the way networks do.

A connection opened with ``via: proxy`` reaches the target through the check's own fault
proxy (``conformance/proxy``); ``proxy: {on: NAME, fault: KIND, ...}`` injects one fault into
it at that point of the exchange. Every injection is written to the check's transcript with
the proxy's timestamp. See docs/proxy.md for what each fault does on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .context import CheckContext
from .errors import UsageError
from .proxy.faults import fault_from_params
from .steps import step

__all__: list[str] = []


@step("proxy", "action")
async def _proxy(ctx: CheckContext, args: Mapping[str, Any]) -> None:
    index = ctx.connections.proxied_index(args["on"])
    params = {key: value for key, value in args.items() if key not in ("on", "fault")}
    try:
        fault = fault_from_params(str(args["fault"]), params)
    except UsageError as exc:
        raise UsageError(f"{ctx.check.full_id}: proxy step: {exc}") from None
    proxy = await ctx.connections.proxy()
    proxy.inject(fault, connection=index)
