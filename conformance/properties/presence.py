"""The presence model: for any interleaving of users joining and leaving through several
connections each, what every subscriber sees must agree with a model keyed by user id.

Operations run one at a time. After each one the expected frames are awaited (they may arrive
late on a distributed server) and unexpected ones are looked for after a barrier.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from ..context import CheckContext
from ..errors import CheckFailed, PreconditionFailed, UsageError
from ..httpclient import NOT_JSON_BODY
from ..templates import nonce, unique_channel
from ..wsclient import Frame
from .registry import explore, prop

ASPECTS = ("roster", "member_added", "member_removed", "users_endpoint")


@dataclass
class PresenceModel:
    """Who is in the channel: user id -> the connections through which it is subscribed."""

    members: dict[str, set[str]] = field(default_factory=dict)

    def users(self) -> set[str]:
        return {user for user, conns in self.members.items() if conns}

    def subscribed(self) -> set[str]:
        return {conn for conns in self.members.values() for conn in conns}

    def join(self, user: str, conn: str) -> bool:
        """Add a connection; True when it is the user's first (a member_added is due)."""
        first = not self.members.get(user)
        self.members.setdefault(user, set()).add(conn)
        return first

    def leave(self, user: str, conn: str) -> bool:
        """Remove a connection; True when it was the user's last (a member_removed is due)."""
        self.members[user].discard(conn)
        return not self.members[user]


@prop("presence_model", "users", "connections_per_user", "steps", "assert", "examples")
def presence_model(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    users = int(params.get("users", 3))
    per_user = int(params.get("connections_per_user", 2))
    aspects = set(params.get("assert", ASPECTS))
    if not aspects <= set(ASPECTS):
        raise UsageError(f"presence_model asserts only {', '.join(ASPECTS)}")
    tag = nonce()
    user_ids = [f"user-{tag}-{u}" for u in range(users)]
    names = [(u, f"u{u}c{c}") for u in range(users) for c in range(per_user)]
    operations = st.lists(
        st.tuples(st.integers(0, len(names) - 1), st.booleans()),
        min_size=1,
        max_size=int(params.get("steps", 12)),
    )

    async def setup() -> None:
        for _, name in names:
            await ctx.open(name)

    ctx.run(setup())

    def body(ops: list[tuple[int, bool]]) -> None:
        ctx.run(_play(ctx, ops, names, user_ids, aspects))

    explore(ctx, operations, body, params)


async def _play(
    ctx: CheckContext,
    ops: list[tuple[int, bool]],
    names: list[tuple[int, str]],
    user_ids: list[str],
    aspects: set[str],
) -> None:
    channel = unique_channel("presence-conformance-")
    model = PresenceModel()
    for index, by_closing in ops:
        user_index, name = names[index]
        user = user_ids[user_index]
        if name in model.subscribed():
            await _leave(ctx, model, channel, user, name, by_closing, aspects)
        else:
            await _join(ctx, model, channel, user, user_index, name, aspects)
        if "users_endpoint" in aspects:
            await _check_users_endpoint(ctx, channel, model.users())
    for name in sorted(model.subscribed()):
        await ctx.connection(name).send_json(
            {"event": "pusher:unsubscribe", "data": {"channel": channel}}
        )


def _member_frames(ctx: CheckContext, name: str, channel: str, event: str) -> list[Frame]:
    return [
        f
        for f in ctx.connection(name).unconsumed()
        if f.event == event and f.parsed.get("channel") == channel
    ]


async def _expect_member_event(
    ctx: CheckContext, observers: set[str], channel: str, event: str, user: str, due: bool
) -> None:
    """Every observer gets exactly one ``event`` about ``user`` when ``due``, none otherwise."""
    for name in sorted(observers):
        conn = ctx.connection(name)
        if due:
            frame = await conn.wait_for(
                lambda f: f.event == event and f.parsed.get("channel") == channel,
                ctx.response_timeout,
            )
            if frame is None:
                raise CheckFailed(f"{name} never received {event} for {user}")
            got = frame.data_field("user_id")
            if got != user:
                raise CheckFailed(f"{name} received {event} for {got!r}, expected {user!r}")
        await ctx.ping_barrier(name)
        extra = _member_frames(ctx, name, channel, event)
        if extra:
            what = "a second" if due else "an unexpected"
            raise CheckFailed(f"{name} received {what} {event}: {extra[0].describe()}")


async def _join(
    ctx: CheckContext,
    model: PresenceModel,
    channel: str,
    user: str,
    user_index: int,
    name: str,
    aspects: set[str],
) -> None:
    observers = model.subscribed()
    if ctx.connection(name).closed is not None:
        await ctx.open(name)
    info = {"name": f"member {user_index}"}
    data = {
        "channel": channel,
        **ctx.sign_channel(name, channel, {"user_id": user, "user_info": info}),
    }
    frame = await ctx.send_subscribe(name, data)
    if frame is None:
        raise PreconditionFailed(f"{name} could not join {channel} as {user}")
    first = model.join(user, name)
    if "roster" in aspects:
        _check_roster(name, frame, model, user, info)
    if "member_added" in aspects:
        await _expect_member_event(
            ctx, observers, channel, "pusher_internal:member_added", user, first
        )


def _check_roster(
    name: str, frame: Frame, model: PresenceModel, user: str, info: Mapping[str, Any]
) -> None:
    presence = frame.data_field("presence")
    if not isinstance(presence, dict):
        raise CheckFailed(
            f"{name}: subscription_succeeded carries no presence roster: {frame.describe()}"
        )
    expected = model.users()
    ids = presence.get("ids")
    if (
        not isinstance(ids, list)
        or sorted(map(str, ids)) != sorted(expected)
        or len(ids) != len(expected)
    ):
        raise CheckFailed(f"{name}: roster ids {ids!r}, expected the users {sorted(expected)}")
    hash_ = presence.get("hash")
    if not isinstance(hash_, dict) or set(hash_) != expected:
        raise CheckFailed(
            f"{name}: roster hash keys {sorted(hash_ or {})}, expected {sorted(expected)}"
        )
    if hash_.get(user) != info:
        raise CheckFailed(
            f"{name}: roster hash[{user!r}] is {hash_.get(user)!r}, expected {info!r}"
        )
    if presence.get("count") != len(expected):
        raise CheckFailed(
            f"{name}: roster count {presence.get('count')!r}, expected {len(expected)}"
        )


async def _leave(
    ctx: CheckContext,
    model: PresenceModel,
    channel: str,
    user: str,
    name: str,
    by_closing: bool,
    aspects: set[str],
) -> None:
    conn = ctx.connection(name)
    if by_closing:
        await conn.close()
    else:
        await conn.send_json({"event": "pusher:unsubscribe", "data": {"channel": channel}})
        await ctx.ping_barrier(name)
    last = model.leave(user, name)
    if "member_removed" in aspects:
        await _expect_member_event(
            ctx, model.subscribed(), channel, "pusher_internal:member_removed", user, last
        )
    if by_closing:
        await ctx.open(name)


async def _check_users_endpoint(ctx: CheckContext, channel: str, expected: set[str]) -> None:
    path = f"/apps/{ctx.target.app_id}/channels/{channel}/users"
    for attempt in range(20):
        response = await ctx.api.request("GET", path)
        body = response.json
        if response.status != 200 or body is NOT_JSON_BODY or not isinstance(body, dict):
            raise CheckFailed(f"GET {path} answered {response.status}: {response.text[:200]}")
        ids = sorted(str(u.get("id")) for u in body.get("users", []) if isinstance(u, dict))
        if ids == sorted(expected):
            return
        if attempt < 19:
            await ctx.ping_barrier(next(iter(ctx.connections)))
    raise CheckFailed(f"GET {path} lists {ids}, expected the users {sorted(expected)}")


@prop("presence_member_limit", "limit")
def presence_member_limit(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    """``limit`` distinct users fill a presence channel; one more user is refused, while a
    further connection of a user already in it is accepted."""
    limit = int(params.get("limit", 100))
    channel = unique_channel("presence-conformance-full-")
    tag = nonce()

    async def join(name: str, user: str) -> Frame | None:
        if name not in ctx.connections:
            await ctx.open(name)
        data = {"channel": channel, **ctx.sign_channel(name, channel, {"user_id": user})}
        return await ctx.send_subscribe(name, data)

    async def go() -> None:
        for start in range(0, limit, 20):
            batch = range(start, min(start + 20, limit))
            joined = await asyncio.gather(*(join(f"m{i}", f"user-{tag}-{i}") for i in batch))
            if any(frame is None for frame in joined):
                raise PreconditionFailed(f"could not fill {channel} with {limit} members")
        extra = await join("extra", f"user-{tag}-{limit}")
        if extra is not None:
            raise CheckFailed(f"user number {limit + 1} was admitted to a full presence channel")
        second_tab = await join("m0-tab2", f"user-{tag}-0")
        if second_tab is None:
            raise CheckFailed("a further connection of a member was refused on a full channel")

    ctx.run(go())
