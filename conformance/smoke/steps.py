"""The judgements inside the smoke steps, apart from the sockets that feed them.

Which frame answers a subscribe, how a refusal reads in one line, whether a presence roster is
the one two users should see: small rules, kept pure so each is tested on frames made by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..signing import channel_auth, hmac_sha256_hex
from ..wsclient import Frame

__all__ = [
    "UNAUTHORISED",
    "ChannelNames",
    "Failed",
    "PresenceRoster",
    "channel_reply",
    "check_roster",
    "names_for",
    "refusal_text",
    "unauthorised_subscribe",
]

_REPLIES = ("pusher_internal:subscription_succeeded", "pusher:subscription_error")


class Failed(Exception):
    """A step's finding: the server did something a healthy deployment does not. The message
    is the one line the step shows."""


@dataclass(frozen=True)
class ChannelNames:
    """The run's own channels and presence users. The random suffix keeps them apart from
    every real channel and from a smoke run going on at the same time elsewhere."""

    suffix: str
    public: str
    private: str
    presence: str
    user_a: str
    user_b: str


def names_for(suffix: str) -> ChannelNames:
    return ChannelNames(
        suffix=suffix,
        public=f"smoke-{suffix}",
        private=f"private-smoke-{suffix}",
        presence=f"presence-smoke-{suffix}",
        user_a=f"smoke-a-{suffix}",
        user_b=f"smoke-b-{suffix}",
    )


#: The private subscribes a deployment must refuse (connection name, how the line names it):
#: none at all; a signature made with another secret; the auth another, live connection got
#: (a token replayed from elsewhere); a signature over the channel alone (a server that leaves
#: the socket id out of what it checks lets any token work on any connection).
UNAUTHORISED = (
    ("no-auth", "no auth"),
    ("wrong-secret", "wrong secret"),
    ("other-socket", "another socket's auth"),
    ("no-socket-id", "socket id unsigned"),
)


def unauthorised_subscribe(
    kind: str, *, key: str, secret: str, channel: str, socket_id: str, other_socket_id: str
) -> dict[str, Any]:
    """The ``data`` of a subscribe to ``channel`` from ``socket_id`` that is wrong the way
    ``kind`` (a name in ``UNAUTHORISED``) says; every other part of it is right."""
    data: dict[str, Any] = {"channel": channel}
    if kind == "wrong-secret":
        data["auth"] = channel_auth(key, secret + "-not", socket_id, channel)
    elif kind == "other-socket":
        data["auth"] = channel_auth(key, secret, other_socket_id, channel)
    elif kind == "no-socket-id":
        data["auth"] = f"{key}:{hmac_sha256_hex(secret, channel)}"
    elif kind != "no-auth":
        raise ValueError(f"not an unauthorised subscribe: {kind!r}")
    return data


def channel_reply(frame: Frame, channel: str) -> bool:
    """Whether ``frame`` answers a subscribe to ``channel``: its success or refusal on that
    channel, or a ``pusher:error`` (the hosted service refuses bad auth with one, without a
    channel)."""
    if frame.event == "pusher:error":
        return True
    parsed = frame.parsed if isinstance(frame.parsed, dict) else {}
    return frame.event in _REPLIES and parsed.get("channel") == channel


def refusal_text(frame: Frame) -> str:
    """A refusal in a few words: the event, its code or status, the start of its message."""
    data: Any = frame.data()
    details: list[str] = []
    if isinstance(data, dict):
        for key in ("code", "status"):
            if data.get(key) is not None:
                details.append(f"{key} {data[key]}")
        message = data.get("message") or data.get("error")
        if isinstance(message, str) and message:
            # "Invalid signature: Expected HMAC ... of '<socket_id>:<channel>'": the head says it.
            head = message if len(message) <= 40 else message.split(":")[0][:40]
            details.append(head)
    return f"{frame.event}" + (f": {', '.join(details)}" if details else "")


@dataclass(frozen=True)
class PresenceRoster:
    """What one user was told on joining a presence channel."""

    user_id: str
    event: str | None
    ids: tuple[str, ...]
    count: object
    refusal: str = ""

    @classmethod
    def of(cls, user_id: str, frame: Frame) -> PresenceRoster:
        if frame.event != "pusher_internal:subscription_succeeded":
            return cls(user_id, frame.event, (), None, refusal_text(frame))
        presence = frame.data_field("presence")
        presence = presence if isinstance(presence, dict) else {}
        ids = presence.get("ids")
        listed = tuple(str(i) for i in ids) if isinstance(ids, list) else ()
        return cls(user_id, frame.event, listed, presence.get("count"))


def check_roster(rosters: list[PresenceRoster]) -> str:
    """The presence step's verdict on two users who joined one after the other: each was let
    in and listed itself; the second saw both. Raises ``Failed`` naming the first thing off."""
    for roster in rosters:
        if roster.refusal:
            raise Failed(f"user {roster.user_id} refused: {roster.refusal}")
        if roster.user_id not in roster.ids:
            raise Failed(f"user {roster.user_id} is not in its own roster {list(roster.ids)}")
    last = rosters[-1]
    expected = sorted(r.user_id for r in rosters)
    if sorted(last.ids) != expected or last.count != len(expected):
        raise Failed(
            f"the last to join saw ids {sorted(last.ids)} (count {last.count!r}), "
            f"expected {expected}"
        )
    return f"roster of {len(expected)} users"
