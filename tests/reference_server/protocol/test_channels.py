from __future__ import annotations

from reference_server.protocol.channels import ChannelRegistry
from reference_server.protocol.names import ChannelType


def test_subscribe_is_idempotent_and_typed() -> None:
    registry = ChannelRegistry()
    assert registry.subscribe("private-a", "1.1")
    assert not registry.subscribe("private-a", "1.1")
    channel = registry.get("private-a")
    assert channel is not None
    assert channel.type is ChannelType.PRIVATE
    assert registry.subscribers("private-a") == ["1.1"]


def test_unsubscribe_drops_empty_channels() -> None:
    registry = ChannelRegistry()
    registry.subscribe("a", "1.1")
    registry.subscribe("a", "2.2")
    assert registry.unsubscribe("a", "1.1")
    assert not registry.unsubscribe("a", "1.1")
    assert not registry.unsubscribe("nope", "1.1")
    assert len(registry) == 1
    assert registry.unsubscribe("a", "2.2")
    assert len(registry) == 0
    assert registry.get("a") is None
    assert registry.channels_of("2.2") == []


def test_remove_socket_leaves_every_channel() -> None:
    registry = ChannelRegistry()
    for channel in ("a", "b", "c"):
        registry.subscribe(channel, "1.1")
    registry.subscribe("b", "2.2")
    assert registry.remove_socket("1.1") == ["a", "b", "c"]
    assert [channel.name for channel in registry] == ["b"]
    assert not registry.is_subscribed("b", "1.1")
    assert registry.is_subscribed("b", "2.2")
    assert registry.remove_socket("unknown") == []


def test_route_dedupes_channels_and_excludes_a_socket() -> None:
    registry = ChannelRegistry()
    registry.subscribe("a", "1.1")
    registry.subscribe("a", "2.2")
    registry.subscribe("b", "2.2")
    registry.subscribe("c", "1.1")
    assert registry.route(["b", "a", "a", "empty", "c"], exclude="1.1") == [
        ("b", ("2.2",)),
        ("a", ("2.2",)),
    ]
    assert registry.route(["a"]) == [("a", ("1.1", "2.2"))]
