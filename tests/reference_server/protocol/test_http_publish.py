"""Publishing a validated trigger: the cache, one frame per channel, and the reply."""

from __future__ import annotations

import json

from reference_server.protocol.channels import ChannelRegistry
from reference_server.protocol.http_events import TriggerEvent
from reference_server.protocol.http_publish import Publisher

from ..http_harness import registry_with_presence


class TestDeliveries:
    def registry(self) -> ChannelRegistry:
        registry = ChannelRegistry()
        for channel, socket_id in [("a", "1.1"), ("a", "2.2"), ("b", "2.2"), ("b", "3.3")]:
            registry.subscribe(channel, socket_id)
        return registry

    def test_one_frame_per_channel_shared_by_all_targets(self) -> None:
        event = TriggerEvent("e", '{"x":1}', ("a", "b", "empty"), socket_id="2.2")
        first, second = Publisher(self.registry()).deliveries(event)
        assert json.loads(first.text) == {"event": "e", "channel": "a", "data": '{"x":1}'}
        assert first.socket_ids == ("1.1",)
        assert json.loads(second.text)["channel"] == "b"
        assert second.socket_ids == ("3.3",)

    def test_server_to_user_channels_go_to_signed_in_sockets(self) -> None:
        event = TriggerEvent("e", "d", ("#server-to-user-u",))
        registry = ChannelRegistry()
        registry.users.sign_in("1.1", "u")
        registry.users.sign_in("1.2", "u")
        registry.users.sign_in("1.3", "v")
        registry.subscribe("#server-to-user-u", "1.3")  # Subscribing gives nothing.
        [delivery] = Publisher(registry).deliveries(event)
        assert delivery.socket_ids == ("1.1", "1.2")
        assert json.loads(delivery.text)["channel"] == "#server-to-user-u"
        excluded = TriggerEvent("e", "d", ("#server-to-user-u",), socket_id="1.1")
        assert Publisher(registry).deliveries(excluded)[0].socket_ids == ("1.2",)


def test_cache_channels_keep_the_last_event_occupied_or_not() -> None:
    registry = ChannelRegistry()
    Publisher(registry).store_in_cache(TriggerEvent("e1", "d1", ("cache-a", "b")), 1.0)
    Publisher(registry).store_in_cache(TriggerEvent("e2", "d2", ("cache-a",)), 2.0)
    cached = registry.cache.get("cache-a", 3.0)
    assert cached is not None
    assert (cached.name, cached.data) == ("e2", "d2")
    assert registry.cache.get("b", 3.0) is None


class TestReplies:
    def test_success_body_is_empty(self) -> None:
        assert Publisher(ChannelRegistry()).success_body() == {}

    def test_trigger_reply_without_info_is_empty(self) -> None:
        publisher = Publisher(registry_with_presence())
        assert publisher.trigger_reply(TriggerEvent("e", "d", ("pub",))) == {}

    def test_trigger_reply_with_info_has_each_channel_and_only_applicable_attributes(
        self,
    ) -> None:
        event = TriggerEvent(
            "e", "d", ("presence-p", "pub", "empty"), info=("user_count", "subscription_count")
        )
        assert Publisher(registry_with_presence()).trigger_reply(event) == {
            "channels": {
                "presence-p": {"user_count": 2},
                "pub": {"subscription_count": 2},
                "empty": {"subscription_count": 0},
            }
        }

    def test_batch_reply(self) -> None:
        publisher = Publisher(registry_with_presence())
        assert publisher.batch_reply((TriggerEvent("e", "d", ("pub",)),)) == {}
        mixed = (
            TriggerEvent("e", "d", ("presence-p",), info=("user_count",)),
            TriggerEvent("e", "d", ("pub",)),
            TriggerEvent("e", "d", ("pub",), info=("subscription_count", "user_count")),
        )
        assert publisher.batch_reply(mixed) == {
            "batch": [{"user_count": 2}, {}, {"subscription_count": 2}]
        }
