"""The HTTP API's read side and ``terminate_connections``, after authentication.

``GET /apps/{app_id}/channels``, ``.../channels/{channel}`` and ``.../channels/{channel}/users``
answer from the channel registry; ``POST .../users/{user_id}/terminate_connections`` names
the connections to close.
"""

from __future__ import annotations

import math
from typing import Any

from ..serves import serves
from .channels import ChannelRegistry
from .errors import BadRequest
from .http_publish import channel_attributes
from .http_requests import HttpRequest
from .names import (
    ChannelType,
    channel_type,
    is_cache_channel,
    is_valid_channel_name,
    server_to_user_id,
)

__all__ = ["ChannelQueries"]


def _info_attributes(request: HttpRequest) -> list[str]:
    info = request.param("info") or ""
    return [name.strip() for name in info.split(",") if name.strip()]


class ChannelQueries:
    """Answers about one app's channels and users."""

    def __init__(self, registry: ChannelRegistry) -> None:
        self.registry = registry

    def channel_info(self, channel: str, request: HttpRequest, now: float) -> dict[str, Any]:
        """``GET /apps/{app_id}/channels/{channel}``.

        Pusher HTTP API: ``occupied`` always; ``info=user_count`` for presence channels
        only, ``info=subscription_count`` for the others, ``info=cache`` for cache channels
        (the cached event's data and remaining ttl in whole seconds, or null); asking for one
        that does not apply is a 400. ``now`` is the clock the cache was filled with.

        Raises:
            BadRequest: invalid channel name, or an attribute that does not apply.
        """
        if not is_valid_channel_name(channel):
            raise BadRequest(f"Invalid channel name {channel!r}")
        registry = self.registry
        presence = channel_type(channel) is ChannelType.PRESENCE
        serves("HTTP-CHAN-02", "DELIV-06")
        body: dict[str, Any] = {"occupied": registry.subscription_count(channel) > 0}
        for attribute in _info_attributes(request):
            if attribute == "user_count":
                if not presence:
                    self._not_applicable("user_count is only available for presence channels")
                    continue
                body["user_count"] = len(registry.presence.get(channel))
            elif attribute == "subscription_count":
                if presence:
                    self._not_applicable(
                        "subscription_count is not available for presence channels"
                    )
                    continue
                body["subscription_count"] = registry.subscription_count(channel)
            elif attribute == "cache":
                if not is_cache_channel(channel):
                    self._not_applicable("cache is only available for cache channels")
                    continue
                serves("CHAN-CACHE-04")
                cached = registry.cache.get(channel, now)
                body["cache"] = (
                    None
                    if cached is None
                    else {
                        "data": cached.data,
                        "ttl": max(1, math.ceil(registry.cache.ttl - (now - cached.stored_at))),
                    }
                )
        return body

    def channel_users(self, channel: str) -> dict[str, Any]:
        """``GET /apps/{app_id}/channels/{channel}/users``: distinct users of a presence
        channel.

        Raises:
            BadRequest: not a (valid) presence channel name.
        """
        if not is_valid_channel_name(channel) or channel_type(channel) is not ChannelType.PRESENCE:
            return self._users_of_non_presence(channel)
        serves("HTTP-CHAN-03", "DELIV-06")
        members = self.registry.presence.get(channel).members
        return {"users": [{"id": key} for key in members]}

    def list_channels(self, request: HttpRequest) -> dict[str, Any]:
        """``GET /apps/{app_id}/channels``: the occupied channels starting with
        ``filter_by_prefix``, each with ``{}`` or the ``info`` attributes asked for.

        Only ``user_count`` is defined, and only when the prefix limits the answer to
        presence channels (Pusher HTTP API, "GET channels").

        Raises:
            BadRequest: an unknown attribute, or ``user_count`` without a ``presence-`` prefix.
        """
        prefix = request.param("filter_by_prefix") or ""
        attributes = tuple(_info_attributes(request))
        for attribute in attributes:
            if attribute != "user_count":
                raise BadRequest(f"Unknown info attribute {attribute!r} for GET channels")
            self._check_user_count_scope(prefix)
        serves("HTTP-CHAN-01", "DELIV-06")
        return {"channels": self._occupied_channels(prefix, attributes)}

    def terminate_targets(self, user_id: str) -> tuple[str, ...]:
        """``POST .../users/{user_id}/terminate_connections``: the connections to close with
        4009, those signed in as the user."""
        serves("AUTH-USER-06", "HTTP-USER-01")
        return self.registry.users.sockets_of(user_id)

    # Seams: one rule each.

    def _not_applicable(self, message: str) -> None:
        """An ``info`` attribute asked of a channel type it does not apply to."""
        serves("HTTP-CHAN-02")
        raise BadRequest(message)

    def _users_of_non_presence(self, channel: str) -> dict[str, Any]:
        serves("HTTP-CHAN-03")
        raise BadRequest(f"{channel!r} is not a presence channel")

    def _check_user_count_scope(self, prefix: str) -> None:
        if not prefix.startswith("presence-"):
            serves("HTTP-CHAN-01")
            raise BadRequest("user_count needs filter_by_prefix=presence-")

    def _occupied_channels(
        self, prefix: str, attributes: tuple[str, ...]
    ) -> dict[str, dict[str, Any]]:
        """Occupied channels named ``prefix...``, users' own channels left out."""
        channels: dict[str, dict[str, Any]] = {}
        for name in self.registry.occupied():
            if not name.startswith(prefix) or not self.registry.subscription_count(name):
                continue
            if server_to_user_id(name) is not None:
                continue
            channels[name] = channel_attributes(name, attributes, self.registry)
        return channels
