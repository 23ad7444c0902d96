"""The HTTP API's channel queries and ``terminate_connections`` targets."""

from __future__ import annotations

import pytest

from reference_server.protocol.channels import ChannelRegistry
from reference_server.protocol.errors import BadRequest
from reference_server.protocol.http_queries import ChannelQueries
from reference_server.protocol.presence import Member

from ..http_harness import registry_with_presence, signed_get


class TestChannelInfo:
    def test_occupied_and_subscription_count(self) -> None:
        registry = ChannelRegistry()
        queries = ChannelQueries(registry)
        request = signed_get("/apps/3/channels/a")
        assert queries.channel_info("a", request, 0.0) == {"occupied": False}
        registry.subscribe("a", "1.1")
        registry.subscribe("a", "1.2")
        counted = signed_get("/apps/3/channels/a", info="subscription_count")
        assert queries.channel_info("a", counted, 0.0) == {
            "occupied": True,
            "subscription_count": 2,
        }
        with pytest.raises(BadRequest):
            queries.channel_info("bad name", request, 0.0)

    def test_cache(self) -> None:
        registry = ChannelRegistry()
        queries = ChannelQueries(registry)
        asked = signed_get("/", info="cache")
        assert queries.channel_info("cache-a", asked, 0.0) == {"occupied": False, "cache": None}
        registry.cache.store("cache-a", "e", "payload", 100.0)
        assert queries.channel_info("cache-a", asked, 160.5)["cache"] == {
            "data": "payload",
            "ttl": 1740,
        }
        assert queries.channel_info("cache-a", asked, 100.0 + 1800.0)["cache"] is None

    @pytest.mark.parametrize(
        ("channel", "info"),
        [("pub", "user_count"), ("presence-p", "subscription_count"), ("pub", "cache")],
    )
    def test_attribute_that_does_not_apply_is_400(self, channel: str, info: str) -> None:
        queries = ChannelQueries(registry_with_presence())
        with pytest.raises(BadRequest):
            queries.channel_info(channel, signed_get("/", info=info), 0.0)

    def test_presence_channel_info_and_users(self) -> None:
        registry = ChannelRegistry()
        for socket_id, user in [("1.1", 10), ("1.2", 10), ("1.3", "b")]:
            registry.subscribe("presence-a", socket_id)
            registry.presence.join("presence-a", socket_id, Member(user))
        queries = ChannelQueries(registry)
        request = signed_get("/", info="user_count")
        assert queries.channel_info("presence-a", request, 0.0) == {
            "occupied": True,
            "user_count": 2,
        }
        assert queries.channel_users("presence-a") == {"users": [{"id": "10"}, {"id": "b"}]}
        assert queries.channel_users("presence-empty") == {"users": []}
        with pytest.raises(BadRequest):
            queries.channel_users("private-a")


class TestListChannels:
    def test_occupied_channels_with_prefix(self) -> None:
        registry = registry_with_presence()
        registry.subscribe("gone", "1.9")
        registry.unsubscribe("gone", "1.9")
        registry.subscribe("#server-to-user-u1", "1.1")
        queries = ChannelQueries(registry)
        assert queries.list_channels(signed_get("/")) == {"channels": {"presence-p": {}, "pub": {}}}
        assert queries.list_channels(signed_get("/", filter_by_prefix="pu")) == {
            "channels": {"pub": {}}
        }

    def test_user_count_needs_a_presence_prefix(self) -> None:
        queries = ChannelQueries(registry_with_presence())
        asked = signed_get("/", filter_by_prefix="presence-", info="user_count")
        assert queries.list_channels(asked) == {"channels": {"presence-p": {"user_count": 2}}}
        for request in (
            signed_get("/", info="user_count"),
            signed_get("/", filter_by_prefix="pres", info="user_count"),
            signed_get("/", filter_by_prefix="presence-", info="subscription_count"),
        ):
            with pytest.raises(BadRequest):
                queries.list_channels(request)


def test_terminate_targets_are_the_users_connections() -> None:
    registry = ChannelRegistry()
    registry.users.sign_in("1.1", "u")
    registry.users.sign_in("1.2", "u")
    queries = ChannelQueries(registry)
    assert queries.terminate_targets("u") == ("1.1", "1.2")
    assert queries.terminate_targets("v") == ()
