"""Channel-name grammar, channel types and event-name classes.

Pusher docs, "Channels": channel names may contain only "lower and uppercase letters,
numbers and the following punctuation ``_ - = @ , . ;``" and be at most 164 characters.
"""

from __future__ import annotations

import enum
import re

from ..serves import serves

__all__ = [
    "CHANNEL_NAME_MAX_LENGTH",
    "CLIENT_EVENT_PREFIX",
    "PUSHER_EVENT_PREFIX",
    "SERVER_TO_USER_PREFIX",
    "ChannelType",
    "channel_type",
    "is_cache_channel",
    "is_client_event",
    "is_pusher_event",
    "is_valid_channel_name",
    "server_to_user_id",
]

CHANNEL_NAME_MAX_LENGTH = 164

# ASCII only on purpose: ``\w`` would admit non-ASCII letters.
_CHANNEL_NAME = re.compile(r"[A-Za-z0-9_\-=@,.;]+")

PUSHER_EVENT_PREFIX = "pusher:"
#: Pusher docs, "Server to user messages": a signed-in user's own channel, ``#`` reserved.
SERVER_TO_USER_PREFIX = "#server-to-user-"
CLIENT_EVENT_PREFIX = "client-"


def is_valid_channel_name(name: str, *, max_length: int = CHANNEL_NAME_MAX_LENGTH) -> bool:
    """Tell whether ``name`` is a legal channel name of at most ``max_length`` characters."""
    serves("CHAN-NAME-01", "CHAN-NAME-02")
    return 0 < len(name) <= max_length and _CHANNEL_NAME.fullmatch(name) is not None


class ChannelType(enum.Enum):
    """What a channel's prefix makes it; decides which subscribe rules apply."""

    PUBLIC = "public"
    PRIVATE = "private"
    #: ``private-encrypted-``: end-to-end encrypted, needs auth like private.
    ENCRYPTED = "private-encrypted"
    PRESENCE = "presence"
    #: ``#server-to-user-<id>``: reaches the connections signed in as ``<id>``.
    SERVER_TO_USER = "server-to-user"

    @property
    def needs_auth(self) -> bool:
        """Private, encrypted and presence channels are subscribed with a signed ``auth``."""
        return self in (ChannelType.PRIVATE, ChannelType.ENCRYPTED, ChannelType.PRESENCE)


# Longest prefix first: ``private-encrypted-`` is also a ``private-`` name. The cache variants
# (``private-cache-``, ...) share their base type; ``is_cache_channel`` tells them apart.
_PREFIXES: tuple[tuple[str, ChannelType], ...] = (
    ("private-encrypted-", ChannelType.ENCRYPTED),
    ("private-", ChannelType.PRIVATE),
    ("presence-", ChannelType.PRESENCE),
    (SERVER_TO_USER_PREFIX, ChannelType.SERVER_TO_USER),
)


def channel_type(name: str) -> ChannelType:
    """Classify a channel by its prefix, anchored at the start; anything else is public."""
    serves("CHAN-NAME-03")
    for prefix, kind in _PREFIXES:
        if name.startswith(prefix):
            return kind
    return ChannelType.PUBLIC


def server_to_user_id(name: str) -> str | None:
    """The user id of a ``#server-to-user-<id>`` channel, or ``None`` for any other name."""
    if name.startswith(SERVER_TO_USER_PREFIX) and len(name) > len(SERVER_TO_USER_PREFIX):
        return name[len(SERVER_TO_USER_PREFIX) :]
    return None


_CACHE_PREFIXES = ("cache-", "private-cache-", "private-encrypted-cache-", "presence-cache-")


def is_cache_channel(name: str) -> bool:
    """Tell whether a channel remembers its last HTTP-published event for new subscribers."""
    return name.startswith(_CACHE_PREFIXES)


def is_pusher_event(event: str) -> bool:
    """Events the protocol reserves (``pusher:ping``, ``pusher:subscribe``, ...)."""
    return event.startswith(PUSHER_EVENT_PREFIX)


def is_client_event(event: str) -> bool:
    """Events a client sends to the other subscribers of a channel."""
    return event.startswith(CLIENT_EVENT_PREFIX)
