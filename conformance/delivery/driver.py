"""Plays operations against a live target and feeds the model what happened.

The adapter between ``operations`` and the wire: it owns the connections of one model run
(named by session, e.g. ``c0#2`` for the second opening of slot ``c0``), names the run's
channels, signs what needs signing, and turns frames into what the judge reads. Every wait is
event-driven and bounded by the check's response timeout.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from ..context import CheckContext
from ..errors import PreconditionFailed
from ..httpclient import NOT_JSON_BODY
from ..signing import channel_auth
from ..templates import nonce
from ..wsclient import Frame, RawConnection
from .model import MEMBER_ADDED, MEMBER_REMOVED, DeliveryModel, Judgement, Published, Received
from .operations import (
    Batch,
    Check,
    ClientEvent,
    Connect,
    Disconnect,
    Operation,
    Query,
    Subscribe,
    Trigger,
    Unsubscribe,
    channel_kind,
)

__all__ = ["CLIENT_EVENT", "HTTP_EVENT", "DeliveryDriver"]

HTTP_EVENT = "delivery-event"
CLIENT_EVENT = "client-delivery"
MARKER_EVENT = "delivery-marker"
#: Client events a connection sends per second, under the protocol's limit of 10.
CLIENT_EVENTS_PER_SECOND = 8
#: How long a barrier waits, after the marker and the ping, for events still owed.
GRACE_SECONDS = 0.5
#: How long owed events may trail the barrier's marker.
STRAGGLER_SECONDS = 0.25
_PREFIX = {"public": "", "private": "private-", "presence": "presence-"}


class DeliveryDriver:
    """One run of the model against the target: fresh channel names, fresh connections."""

    def __init__(
        self,
        ctx: CheckContext,
        user_of: Mapping[str, str],
        channel_slots: Iterable[str],
        *,
        channel_names: Mapping[str, str] | None = None,
        users: Mapping[str, str] | None = None,
        tag: str | None = None,
    ) -> None:
        self.ctx = ctx
        self.tag = tag or nonce()[:10]
        slots = list(channel_slots)
        self.names = dict(channel_names or {})
        for slot in slots:
            if slot not in self.names:
                self.names[slot] = f"{_PREFIX[channel_kind(slot)]}delivery-{self.tag}-{slot}"
        self.slot_of = {name: slot for slot, name in self.names.items()}
        presence = [s for s in slots if self.names[s].startswith("presence-")]
        self.model = DeliveryModel(user_of, presence=presence, tag=self.tag)
        #: Symbolic user -> the user id sent on the wire.
        self.user_ids = dict(users or {u: f"{u}-{self.tag}" for u in set(user_of.values())})
        self._slot_of_user = {v: k for k, v in self.user_ids.items()}
        self.sentinel = f"delivery-{self.tag}-sentinel"
        self.sockets: dict[str, RawConnection] = {}
        self.socket_ids: dict[str, str] = {}
        self.log: list[Operation] = []
        self._client_sends: dict[str, deque[float]] = {}
        self._given_up: dict[str, set[tuple[str, str]]] = {}

    # -- the operations --------------------------------------------------------------------

    async def apply(self, op: Operation) -> Judgement | None:
        """Play one operation; a ``check`` returns the judgement of everything so far."""
        self.log.append(op)
        self.ctx.transcript.note(f"model step {len(self.log)}: {op.describe()}")
        match op:
            case Connect(conn):
                await self._connect(conn)
            case Disconnect(conn):
                await self._disconnect(conn)
            case Subscribe(conn, channel, auth, racing):
                await self._subscribe(conn, channel, valid=auth == "valid", racing=racing)
            case Unsubscribe(conn, channel, racing):
                await self._unsubscribe(conn, channel, racing=racing)
            case Trigger(channels, exclude, count):
                for _ in range(count):
                    await self._trigger(channels, exclude)
            case Batch(items):
                await self._batch(items)
            case ClientEvent(conn, channel):
                await self._client_event(conn, channel)
            case Query(channel):
                await self._query(channel)
            case Check():
                return await self.check()
        return None

    async def _connect(self, conn: str) -> None:
        if self.model.is_open(conn):
            return
        session = self.model.open(conn)
        raw = await self.ctx.open(session)
        self.sockets[session] = raw
        self.socket_ids[session] = self.ctx.variables[session]["socket_id"]
        await self.ctx.subscribe(session, self.sentinel)

    async def _disconnect(self, conn: str) -> None:
        session = self.model.session_of(conn)
        if session is None:
            return
        # What is owed arrives first: a tab that closes does not wait for frames in flight, so
        # without this a lost frame and a frame the client walked away from look the same.
        await self.ctx.ping_barrier(session)
        await self._wait_settled(session, None)
        await self.sockets[session].close()
        self.model.close(conn)

    def _channel_data(self, conn: str) -> dict[str, Any]:
        user = self.user_ids[self.model.user(conn)]
        return {"user_id": user, "user_info": {"name": user}}

    def _subscribe_data(self, session: str, conn: str, channel: str, valid: bool) -> dict[str, str]:
        name = self.names[channel]
        is_presence = name.startswith("presence-")
        if not name.startswith(("private-", "presence-")):
            return {"channel": name}
        channel_data = self._channel_data(conn) if is_presence else None
        if valid:
            return {"channel": name, **self.ctx.sign_channel(session, name, channel_data)}
        text = self.ctx.channel_data_text(channel_data) or ""
        target = self.ctx.target
        wrong = channel_auth(
            target.key, "not-" + target.secret, self.socket_ids[session], name, text
        )
        return {"channel": name, "auth": wrong, **({"channel_data": text} if text else {})}

    async def _subscribe(self, conn: str, channel: str, *, valid: bool, racing: bool) -> None:
        session = self.model.session_of(conn)
        if session is None or channel in self.model.channels_of(conn):
            return
        data = self._subscribe_data(session, conn, channel, valid)
        name = self.names[channel]
        if not valid:
            raw = self.sockets[session]
            before = len(raw.frames)
            await raw.send_json({"event": "pusher:subscribe", "data": data})
            await self.ctx.ping_barrier(session)
            accepted = [
                f
                for f in raw.frames[before:]
                if f.event == "pusher_internal:subscription_succeeded"
                and f.parsed.get("channel") == name
            ]
            if accepted:
                self.model.violation(
                    "no_leak",
                    f"{session} was admitted to {channel} ({name}) with a subscription signed "
                    "with the wrong secret",
                )
            if raw.has_closed():
                # The server closed the connection after refusing: whether it may is
                # CHAN-SUB-10's question, not the model's. The session ends here, as if the
                # client had left, and is owed nothing published from now on.
                self.model.close(conn)
            return
        if racing:
            published = self.model.publish([channel], name=HTTP_EVENT, racing=session)
            frame, _ = await asyncio.gather(
                self.ctx.send_subscribe(session, data), self.send_trigger(published, None)
            )
        else:
            frame = await self.ctx.send_subscribe(session, data)
        if frame is None:
            raise PreconditionFailed(f"{session} could not subscribe to {channel} ({name})")
        roster = self.model.subscribed(conn, channel)
        if name.startswith("presence-"):
            self._check_roster(session, channel, frame, roster)

    def _check_roster(self, session: str, channel: str, frame: Frame, roster: set[str]) -> None:
        presence = frame.data_field("presence")
        expected = sorted(self.user_ids[u] for u in roster)
        ids = presence.get("ids") if isinstance(presence, dict) else None
        count = presence.get("count") if isinstance(presence, dict) else None
        if not isinstance(ids, list) or sorted(map(str, ids)) != expected or count != len(expected):
            self.model.violation(
                "presence",
                f"{session} joined {channel}: roster ids {ids!r} count {count!r}, expected the "
                f"users {expected}",
            )

    async def _unsubscribe(self, conn: str, channel: str, *, racing: bool) -> None:
        session = self.model.session_of(conn)
        if session is None or channel not in self.model.channels_of(conn):
            return
        message = {"event": "pusher:unsubscribe", "data": {"channel": self.names[channel]}}
        raw = self.sockets[session]
        if racing:
            published = self.model.publish([channel], name=HTTP_EVENT, racing=session)
            await asyncio.gather(raw.send_json(message), self.send_trigger(published, None))
        else:
            await raw.send_json(message)
        # No acknowledgement exists: a ping round trip shows the server has read it.
        await self.ctx.ping_barrier(session)
        self.model.unsubscribed(conn, channel)

    def _exclusion(self, conn: str | None) -> tuple[str | None, str | None]:
        """(session, socket id) to exclude; a closed connection's last socket id excludes
        nobody who is still there."""
        if conn is None:
            return None, None
        session = self.model.session_of(conn)
        if session is not None:
            return session, self.socket_ids[session]
        return None, None

    async def _trigger(self, channels: Sequence[str], exclude: str | None) -> None:
        session, socket_id = self._exclusion(exclude)
        published = self.model.publish(channels, name=HTTP_EVENT, exclude=session)
        await self.send_trigger(published, socket_id)

    async def send_trigger(self, published: Sequence[Published], socket_id: str | None) -> None:
        names = [self.names[p.channel] for p in published]
        response = await self.ctx.api.trigger(
            published[0].name,
            published[0].data,
            channels=names,
            socket_id=socket_id,
        )
        if response.status != 200:
            self.model.retract(published)
            raise PreconditionFailed(
                f"publishing to {', '.join(names)} answered HTTP {response.status}: "
                f"{response.text[:200]}"
            )

    async def _batch(self, items: Sequence[Any]) -> None:
        seq = self.model.next_seq("http")
        body_items = []
        made: list[Published] = []
        for item in items:
            session, socket_id = self._exclusion(item.exclude)
            (published,) = self.model.publish(
                [item.channel], name=HTTP_EVENT, seq=seq, exclude=session
            )
            made.append(published)
            body_items.append(
                {
                    "name": published.name,
                    "channel": self.names[item.channel],
                    "data": published.data,
                    **({"socket_id": socket_id} if socket_id else {}),
                }
            )
        body = json.dumps({"batch": body_items}, separators=(",", ":")).encode()
        path = f"/apps/{self.ctx.target.app_id}/batch_events"
        response = await self.ctx.api.request("POST", path, body=body)
        if response.status != 200:
            self.model.retract(made)
            raise PreconditionFailed(
                f"batch answered HTTP {response.status}: {response.text[:200]}"
            )

    async def _client_event(self, conn: str, channel: str) -> None:
        session = self.model.session_of(conn)
        if session is None or channel not in self.model.channels_of(conn):
            return
        if not self.names[channel].startswith(("private-", "presence-")):
            return
        await self._client_rate(session)
        (published,) = self.model.publish(
            [channel], name=CLIENT_EVENT, publisher=session, exclude=session
        )
        await self.sockets[session].send_json(
            {"event": CLIENT_EVENT, "channel": self.names[channel], "data": published.data}
        )
        # Once the server has answered the sender's ping it has read the event, so it is
        # published now, as an HTTP publish is once answered.
        await self.ctx.ping_barrier(session)

    async def _client_rate(self, session: str) -> None:
        """Stay under the client-event rate limit: being refused for speed is not the point."""
        sent = self._client_sends.setdefault(session, deque())
        now = time.monotonic()
        while sent and now - sent[0] > 1.0:
            sent.popleft()
        if len(sent) >= CLIENT_EVENTS_PER_SECOND:
            await asyncio.sleep(max(0.0, 1.05 - (now - sent[0])))
            sent.popleft()
        sent.append(time.monotonic())

    async def _query(self, channel: str) -> None:
        """``occupied`` and the counts of GET channel, and a presence channel's GET users,
        must agree with the live subscriptions (retried briefly: a cluster may lag)."""
        name = self.names[channel]
        presence = name.startswith("presence-")
        path = f"/apps/{self.ctx.target.app_id}/channels/{name}"
        info = "user_count" if presence else "subscription_count"
        problem = ""
        for _attempt in range(10):
            problem = await self._query_once(path, info, channel, presence)
            if not problem:
                return
            await self._settle()
        self.model.violation("channel_info", problem)

    async def _query_once(self, path: str, info: str, channel: str, presence: bool) -> str:
        subscribers = self.model.subscribers(channel)
        users = sorted(self.user_ids[u] for u in self.model.users(channel))
        response = await self.ctx.api.request("GET", path, query={"info": info})
        body = response.json
        if response.status != 200 or not isinstance(body, dict):
            return f"GET {path}?info={info} answered {response.status}: {response.text[:200]}"
        occupied = bool(subscribers)
        if body.get("occupied") is not occupied:
            return f"GET {path}: occupied is {body.get('occupied')!r}, expected {occupied}"
        user_count = body.get("user_count")
        if presence and (occupied or "user_count" in body) and user_count != len(users):
            return f"GET {path}: user_count {user_count!r}, expected {len(users)}"
        count = body.get("subscription_count", len(subscribers))
        if not presence and count != len(subscribers):
            return f"GET {path}: subscription_count {count!r}, expected {len(subscribers)}"
        if presence:
            response = await self.ctx.api.request("GET", f"{path}/users")
            listed = response.json
            if response.status != 200 or listed is NOT_JSON_BODY or not isinstance(listed, dict):
                return f"GET {path}/users answered {response.status}: {response.text[:200]}"
            ids = sorted(str(u.get("id")) for u in listed.get("users", []) if isinstance(u, dict))
            if ids != users:
                return f"GET {path}/users lists {ids}, expected {users}"
        return ""

    async def _settle(self) -> None:
        open_sessions = [s for s in self.sockets if not self.sockets[s].has_closed()]
        if open_sessions:
            await self.ctx.ping_barrier(open_sessions[0])
        else:
            await asyncio.sleep(0.05)

    def touched_channels(self) -> list[str]:
        """Channel slots some connection of this run has subscribed to, in slot order."""
        touched = {c for s in self.model.sessions.values() for c in s.ever}
        return [slot for slot in self.names if slot in touched]

    # -- barrier and judgement -------------------------------------------------------------

    def _missing(self, session: str) -> tuple[set[tuple[str, str]], int]:
        """What the session is owed and has not received yet: (data, channel name) of events,
        and a count of member events. Owed events already waited for in vain are left out: a
        loss costs one grace period, not one per barrier."""
        events = {
            (p.data, self.names[p.channel]) for p in self.model.published if session in p.required
        } - self._given_up.get(session, set())
        members = sum(n for key, n in self.model.member_expected.items() if key[0] == session)
        member_frames = 0
        for frame in self.sockets[session].frames:
            if frame.event in (MEMBER_ADDED, MEMBER_REMOVED):
                member_frames += 1
            elif isinstance(frame.parsed, dict) and isinstance(frame.parsed.get("data"), str):
                events.discard((frame.parsed["data"], frame.parsed.get("channel")))
        return events, max(0, members - member_frames)

    def _settled(self, session: str) -> bool:
        events, members = self._missing(session)
        return not events and not members

    def _marked(self, session: str, token: str) -> bool:
        return any(
            f.event == MARKER_EVENT and f.parsed.get("data") == token
            for f in self.sockets[session].frames
        )

    async def _wait_settled(self, session: str, token: str | None) -> None:
        """Wait for what is owed, then give up on what is still missing: the judge reports
        it as lost. Once the barrier's marker is in, stragglers get only a moment (a server
        writes one connection's frames in the order it handled the publishes); without a
        marker, a grace period."""
        multiplier = self.ctx.settings.timeout_multiplier
        raw = self.sockets[session]
        owed = partial(self._settled, session)
        if token is None:
            await raw.wait_until(owed, GRACE_SECONDS * multiplier)
        elif await raw.wait_until(
            partial(self._marked, session, token), GRACE_SECONDS * multiplier
        ):
            await raw.wait_until(owed, STRAGGLER_SECONDS * multiplier)
        events, _ = self._missing(session)
        self._given_up.setdefault(session, set()).update(events)

    async def barrier(self) -> None:
        """A marker on the sentinel channel, a ping round trip on every open connection, then a
        short grace for anything owed: after that, nothing sent before can still be coming.

        The ping shows the server has read everything each connection sent; the marker,
        published after every event so far, that its fan-out has caught up; the grace covers
        a cluster whose channels travel different paths.
        """
        open_sessions = [s for s in self.sockets if not self.sockets[s].has_closed()]
        if not open_sessions:
            return
        token = nonce()
        await self.ctx.trigger(MARKER_EVENT, token, channel=self.sentinel)
        await asyncio.gather(*(self.ctx.ping_barrier(s) for s in open_sessions))
        await asyncio.gather(*(self._wait_settled(s, token) for s in open_sessions))

    def received(self) -> dict[str, list[Received]]:
        result: dict[str, list[Received]] = {}
        for session, raw in self.sockets.items():
            frames = []
            for frame in raw.frames:
                if not isinstance(frame.parsed, dict) or frame.event is None:
                    continue
                channel = frame.parsed.get("channel")
                slot = self.slot_of.get(channel) if isinstance(channel, str) else None
                if slot is None:
                    continue
                user = None
                if frame.event in (MEMBER_ADDED, MEMBER_REMOVED):
                    wire_user = frame.data_field("user_id")
                    user = self._slot_of_user.get(str(wire_user), str(wire_user))
                frames.append(Received(frame.event, slot, frame.parsed.get("data"), user))
            result[session] = frames
        return result

    async def check(self) -> Judgement:
        await self.barrier()
        return self.model.judge(self.received())

    async def aclose(self) -> None:
        """Close this run's connections and forget them (a check runs many runs)."""
        for session, raw in self.sockets.items():
            await raw.close()
            self.ctx.connections.forget(session)
