"""Delivery faults: what one connection's outgoing channel events turn into.

The ``drop_one_in_n``, ``duplicate_delivery`` and ``reorder_under_load`` faults live here;
with none of them on, no ``ShapedPeer`` is built and frames go out untouched. The decisions
are pure and per connection: a counter of *channel event frames* (outgoing frames whose event
is not ``pusher:`` or ``pusher_internal:``) that starts at 0 when the connection opens, so a
replayed sequence of operations gets the same bugs (hypothesis relies on that when it
shrinks). The only input besides the frames is the time, passed in.

Theory of operation, for the n-th channel event frame (n = 1, 2, ...) and, for the first
two, the m-th one fanned out to at least three connections at once (m = 1, 2, ...)::

    drop_one_in_n        m % 5 == 0  -> not written at all
    duplicate_delivery   m % 4 == 0  -> written twice, back to back
    reorder_under_load   n % 3 == 0  -> held; written right after the next channel event
                                        frame if that comes within 0.25 s, else at 0.25 s

Loss and duplication strike only in wide fan-out: the bug class a server shows once a channel
has several subscribers, which checks built around one or two connections never provoke and
the multi-user delivery model must.

Dropping wins over the others; a duplicated frame that is held is held with its copy. Frames
that are not channel events are never counted, dropped or held: they go out at once (after a
held frame whose window has already passed).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from aiohttp import web

from ..peers import Cork, Peer
from ..protocol.connection import Close, Connection, Output, SendText
from .catalogue import Fault, FaultSet

__all__ = [
    "DELIVERY_FAULTS",
    "DROP_EVERY",
    "DUPLICATE_EVERY",
    "REORDER_EVERY",
    "REORDER_WINDOW",
    "WIDE_FANOUT",
    "DeliveryShaper",
    "ShapedPeer",
    "Step",
    "is_channel_event_frame",
    "shaper_for",
]

#: ``drop_one_in_n``: every this-many-th channel event frame is lost.
DROP_EVERY = 5
#: ``duplicate_delivery``: every this-many-th channel event frame is sent twice.
DUPLICATE_EVERY = 4
#: ``drop_one_in_n`` and ``duplicate_delivery`` count only frames fanned out to this many
#: connections or more.
WIDE_FANOUT = 3
#: ``reorder_under_load``: every this-many-th channel event frame is held back...
REORDER_EVERY = 3
#: ...for at most this many seconds, waiting for the next one to overtake it.
REORDER_WINDOW = 0.25

#: The faults this module implements.
DELIVERY_FAULTS = frozenset(
    {Fault.DROP_ONE_IN_N, Fault.DUPLICATE_DELIVERY, Fault.REORDER_UNDER_LOAD}
)

# ``frames.py`` always serialises ``event`` first, compactly: the prefix is the event name.
_EVENT_PREFIX = '{"event":"'
_RESERVED_PREFIXES = (_EVENT_PREFIX + "pusher:", _EVENT_PREFIX + "pusher_internal:")


def is_channel_event_frame(text: str) -> bool:
    """Whether a server -> client frame is a channel event (HTTP publish or client event)."""
    if text.startswith(_EVENT_PREFIX):
        return not text.startswith(_RESERVED_PREFIXES)
    # Not shaped by ``frames.py``: fall back to reading it (never happens today).
    try:
        event = json.loads(text).get("event")
    except (ValueError, AttributeError):
        return False
    return isinstance(event, str) and not event.startswith(("pusher:", "pusher_internal:"))


@dataclass(frozen=True)
class Step:
    """What to write now, in order, and when a held frame must go out if nothing else comes."""

    write: tuple[str, ...]
    release_at: float | None = None


@dataclass(frozen=True)
class _Held:
    texts: tuple[str, ...]
    until: float


class DeliveryShaper:
    """One connection's delivery bugs; feed it every outgoing text frame in order."""

    def __init__(self, faults: FaultSet) -> None:
        self._drop = Fault.DROP_ONE_IN_N in faults
        self._duplicate = Fault.DUPLICATE_DELIVERY in faults
        self._reorder = Fault.REORDER_UNDER_LOAD in faults
        #: Channel event frames seen so far on this connection.
        self.count = 0
        #: Of those, the ones fanned out to at least ``WIDE_FANOUT`` connections.
        self.wide_count = 0
        self._held: _Held | None = None

    def offer(self, text: str, now: float, fanout: int = 1) -> Step:
        """A frame the connection should get at ``now``, sent to ``fanout`` connections in
        all; return what to write instead."""
        expired = self._expire(now)
        if not is_channel_event_frame(text):
            return self._step(*expired, text)
        self.count += 1
        n = self.count
        copies: tuple[str, ...] = (text,)
        if fanout >= WIDE_FANOUT:
            self.wide_count += 1
            m = self.wide_count
            if self._drop and m % DROP_EVERY == 0:
                copies = ()
            elif self._duplicate and m % DUPLICATE_EVERY == 0:
                copies = (text, text)
        if self._held is not None:
            # Within the window: this frame overtakes the held one.
            held, self._held = self._held, None
            return self._step(*expired, *copies, *held.texts)
        if copies and self._reorder and n % REORDER_EVERY == 0:
            self._held = _Held(copies, now + REORDER_WINDOW)
            return self._step(*expired)
        return self._step(*expired, *copies)

    def tick(self, now: float) -> Step:
        """The release timer fired: write the held frame if its window has passed."""
        return self._step(*self._expire(now))

    def drain(self) -> Step:
        """The connection is closing: whatever is held goes out now, so nothing is lost."""
        held, self._held = self._held, None
        return self._step(*(held.texts if held is not None else ()))

    def next_deadline(self) -> float | None:
        return None if self._held is None else self._held.until

    def _expire(self, now: float) -> tuple[str, ...]:
        if self._held is None or now < self._held.until:
            return ()
        held, self._held = self._held, None
        return held.texts

    def _step(self, *write: str) -> Step:
        return Step(write, self.next_deadline())


def shaper_for(faults: FaultSet) -> DeliveryShaper | None:
    """A shaper for a new connection, or ``None`` when no delivery fault is on."""
    return DeliveryShaper(faults) if faults & DELIVERY_FAULTS else None


class ShapedPeer(Peer):
    """A peer whose text frames and close go through a ``DeliveryShaper``; this class only
    queues what the shaper decides and fires its release timer."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        connection: Connection,
        transport: asyncio.Transport,
        cork: Cork,
        shaper: DeliveryShaper,
    ) -> None:
        super().__init__(ws, connection, transport, cork)
        self._shaper: DeliveryShaper | None = shaper
        self._release_timer: asyncio.TimerHandle | None = None

    def send(self, output: Output, fanout: int = 1) -> None:
        shaper = self._shaper
        if shaper is None or not isinstance(output, SendText | Close):
            super().send(output, fanout)
        elif isinstance(output, Close):
            # What is held goes out before the close, then frames go untouched.
            self._apply(shaper.drain())
            self._shaper = None
            super().send(output)
        else:
            self._apply(shaper.offer(output.text, asyncio.get_running_loop().time(), fanout))

    def send_shared(self, output: SendText, frame: bytes, fanout: int) -> None:
        self.send(output, fanout)

    def _apply(self, step: Step) -> None:
        for text in step.write:
            super().send(SendText(text))
        if self._release_timer is not None:
            self._release_timer.cancel()
            self._release_timer = None
        if step.release_at is not None and self.accepting:
            self._release_timer = asyncio.get_running_loop().call_at(step.release_at, self._release)

    def _release(self) -> None:
        """A held frame's window may have passed (the timer may fire a little early)."""
        self._release_timer = None
        if self._shaper is not None:
            self._apply(self._shaper.tick(asyncio.get_running_loop().time()))

    async def finish(self) -> None:
        if self._release_timer is not None:
            self._release_timer.cancel()
        await super().finish()
