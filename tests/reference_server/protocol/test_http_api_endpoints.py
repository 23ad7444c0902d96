"""The HTTP API rules added for issue 4: trigger info and query-string parameters, the channel
limit, publish-time name checks, batch_events, GET channels, attributes that do not apply,
users on non-presence channels, authenticated terminate and keep-alive; each fault too."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest

from reference_server.faults import Fault
from reference_server.protocol.channels import ChannelRegistry
from reference_server.protocol.errors import BadRequest, NotFound, PayloadTooLarge, Unauthorized
from reference_server.protocol.http_api import (
    ApiLimits,
    BatchPlan,
    HttpRequest,
    TriggerEvent,
    batch_reply,
    channel_info,
    channel_users,
    keep_alive,
    list_channels,
    parse_batch,
    trigger_reply,
    validate_batch,
    validate_terminate,
)
from reference_server.protocol.presence import Member
from reference_server.protocol.signing import sign_http_request

from .test_http_api import APP, LIMITS, NOW, refused, signed, signed_get, validate

BATCH_PATH = "/apps/3/batch_events"


def faults(*names: Fault) -> frozenset[Fault]:
    return frozenset(names)


def item(channel: str = "a", **extra: Any) -> dict[str, Any]:
    return {"name": "e", "channel": channel, "data": "d", **extra}


def batch(*items: Any) -> bytes:
    return json.dumps({"batch": list(items)}).encode()


def plan(body: bytes, active: Iterable[Fault] = (), limits: ApiLimits = LIMITS) -> BatchPlan:
    return parse_batch(body, limits, frozenset(active))


def registry_with_presence() -> ChannelRegistry:
    registry = ChannelRegistry()
    for socket_id, user in [("1.1", "u1"), ("1.2", "u1"), ("1.3", "u2")]:
        registry.subscribe("presence-p", socket_id)
        registry.presence.join("presence-p", socket_id, Member(user))
    registry.subscribe("pub", "1.1")
    registry.subscribe("pub", "1.4")
    return registry


def query_trigger(**params: str) -> HttpRequest:
    """A signed POST with an empty body and the trigger's parameters in the query string."""
    query = [("auth_key", APP.key), ("auth_timestamp", str(NOW)), ("auth_version", "1.0")]
    query += [(k.replace("_list", "[]"), v) for k, v in params.items()]
    query.append(("auth_signature", sign_http_request(APP.secret, "POST", "/apps/3/events", query)))
    return HttpRequest("POST", "/apps/3/events", tuple(query), b"")


class TestTrigger:
    def test_query_string_parameters_are_read_for_an_empty_body(self) -> None:
        event = validate(query_trigger(name="e", data="d", channel="a", socket_id="1.2"))
        assert event == TriggerEvent("e", "d", ("a",), socket_id="1.2")

    def test_query_string_channels_array(self) -> None:
        request = HttpRequest(
            "POST",
            "/apps/3/events",
            (
                ("auth_key", APP.key),
                ("auth_timestamp", str(NOW)),
                ("auth_version", "1.0"),
                ("name", "e"),
                ("data", "d"),
                ("channels[]", "a"),
                ("channels[]", "b"),
            ),
            b"",
        )
        signature = sign_http_request(APP.secret, "POST", request.path, request.query)
        request = HttpRequest(
            "POST", request.path, (*request.query, ("auth_signature", signature)), b""
        )
        assert validate(request).channels == ("a", "b")

    def test_fault_post_query_params_ignored(self) -> None:
        request = query_trigger(name="e", data="d", channel="a")
        assert refused(request, [Fault.POST_QUERY_PARAMS_IGNORED]).status == 400

    def test_info_is_parsed_and_checked(self) -> None:
        event = validate(signed({**item(), "info": "user_count, subscription_count,user_count"}))
        assert event.info == ("user_count", "subscription_count")
        assert refused(signed({**item(), "info": "cache"})).status == 400
        assert refused(signed({**item(), "info": ["user_count"]})).status == 400

    def test_reply_without_info_is_empty(self) -> None:
        registry = registry_with_presence()
        assert trigger_reply(TriggerEvent("e", "d", ("pub",)), registry) == {}

    def test_reply_with_info_has_each_channel_and_only_applicable_attributes(self) -> None:
        registry = registry_with_presence()
        event = TriggerEvent(
            "e", "d", ("presence-p", "pub", "empty"), info=("user_count", "subscription_count")
        )
        assert trigger_reply(event, registry) == {
            "channels": {
                "presence-p": {"user_count": 2},
                "pub": {"subscription_count": 2},
                "empty": {"subscription_count": 0},
            }
        }
        assert trigger_reply(event, registry, faults(Fault.TRIGGER_INFO_IGNORED)) == {}

    def test_more_than_100_channels_is_400(self) -> None:
        names = [f"c{i}" for i in range(101)]
        assert refused(signed({"name": "e", "channels": names, "data": "d"})).status == 400
        accepted = validate(
            signed({"name": "e", "channels": names, "data": "d"}),
            [Fault.TOO_MANY_CHANNELS_ACCEPTED],
        )
        assert len(accepted.channels) == 101

    @pytest.mark.parametrize("bad", ["a!", "x" * 165, "a b", "#other"])
    def test_invalid_channel_names_are_400(self, bad: str) -> None:
        body = {"name": "e", "channels": ["ok", bad], "data": "d"}
        assert refused(signed(body)).status == 400
        event = validate(signed(body), [Fault.PUBLISH_CHANNEL_NAMES_UNCHECKED])
        assert event.channels == ("ok", bad)

    def test_fault_keeps_refusing_lone_surrogates(self) -> None:
        body = b'{"name":"e","channel":"a\\ud800","data":"d"}'
        assert refused(signed(body), [Fault.PUBLISH_CHANNEL_NAMES_UNCHECKED]).status == 400

    def test_faulty_names_still_need_strings(self) -> None:
        body = {"name": "e", "channels": ["ok", 1], "data": "d"}
        assert refused(signed(body), [Fault.PUBLISH_CHANNEL_NAMES_UNCHECKED]).status == 400


class TestBatch:
    def test_items_become_events_in_order(self) -> None:
        result = plan(batch(item("a"), item("b", socket_id="1.2", info="user_count")))
        assert result.error is None
        assert result.events == (
            TriggerEvent("e", "d", ("a",)),
            TriggerEvent("e", "d", ("b",), socket_id="1.2", info=("user_count",)),
        )

    def test_ten_items_pass_eleven_are_400(self) -> None:
        assert len(plan(batch(*[item()] * 10)).events) == 10
        refused_plan = plan(batch(*[item()] * 11))
        assert refused_plan.events == ()
        assert isinstance(refused_plan.error, BadRequest)
        assert len(plan(batch(*[item()] * 11), [Fault.BATCH_SIZE_UNCHECKED]).events) == 11

    @pytest.mark.parametrize(
        "body",
        [
            b"[]",
            b"{}",
            b'{"batch": []}',
            b'{"batch": {}}',
            batch("x"),
            batch({"name": "e", "data": "d"}),
            batch({"name": "e", "data": "d", "channel": "a", "channels": ["a"]}),
            batch({"name": "e", "data": "d", "channels": ["a"]}),
            batch(item(), {"channel": "a", "data": "d"}),
            batch(item(channel="a!")),
            batch(item(data=1)),
        ],
    )
    def test_bad_batches_are_400_and_publish_nothing(self, body: bytes) -> None:
        result = plan(body)
        assert isinstance(result.error, BadRequest)
        assert result.events == ()

    def test_item_data_over_the_limit_is_413(self) -> None:
        big = "x" * (LIMITS.max_event_bytes + 1)
        result = plan(batch(item(), item(data=big)))
        assert isinstance(result.error, PayloadTooLarge)
        assert "batch[1]" in result.error.message
        assert result.events == ()
        unchecked = plan(batch(item(), item(data=big)), [Fault.BATCH_ITEM_SIZE_UNCHECKED])
        assert unchecked.error is None
        assert len(unchecked.events) == 2

    def test_fault_batch_partial_delivery_keeps_the_items_before_the_bad_one(self) -> None:
        body = batch(item("a"), item("b"), {"channel": "c", "data": "d"}, item("d"))
        result = plan(body, [Fault.BATCH_PARTIAL_DELIVERY])
        assert isinstance(result.error, BadRequest)
        assert [event.channels for event in result.events] == [("a",), ("b",)]

    def test_body_over_the_body_limit_is_413(self) -> None:
        result = plan(batch(item()), limits=ApiLimits(max_body_bytes=10))
        assert isinstance(result.error, PayloadTooLarge)

    def test_validate_batch_authenticates_first(self) -> None:
        good = signed(batch(item()), path=BATCH_PATH)
        assert validate_batch("3", good, APP, NOW, LIMITS).error is None
        signed_elsewhere = HttpRequest("POST", BATCH_PATH, signed(batch(item())).query, good.body)
        with pytest.raises(Unauthorized):
            validate_batch("3", signed_elsewhere, APP, NOW, LIMITS)

    def test_reply(self) -> None:
        registry = registry_with_presence()
        plain = (TriggerEvent("e", "d", ("pub",)),)
        assert batch_reply(plain, registry) == {}
        assert batch_reply(plain, registry, faults(Fault.BATCH_REPLY_BATCH_OBJECT)) == {"batch": {}}
        mixed = (
            TriggerEvent("e", "d", ("presence-p",), info=("user_count",)),
            TriggerEvent("e", "d", ("pub",)),
            TriggerEvent("e", "d", ("pub",), info=("subscription_count", "user_count")),
        )
        assert batch_reply(mixed, registry) == {
            "batch": [{"user_count": 2}, {}, {"subscription_count": 2}]
        }
        assert batch_reply(mixed, registry, faults(Fault.BATCH_INFO_IGNORED)) == {}


class TestChannelQueries:
    def test_list_occupied_channels_with_prefix(self) -> None:
        registry = registry_with_presence()
        registry.subscribe("gone", "1.9")
        registry.unsubscribe("gone", "1.9")
        registry.subscribe("#server-to-user-u1", "1.1")
        assert list_channels(signed_get("/"), registry) == {
            "channels": {"presence-p": {}, "pub": {}}
        }
        assert list_channels(signed_get("/", filter_by_prefix="pu"), registry) == {
            "channels": {"pub": {}}
        }
        ignored = faults(Fault.CHANNELS_FILTER_IGNORED)
        unfiltered = list_channels(signed_get("/", filter_by_prefix="pu"), registry, ignored)
        assert set(unfiltered["channels"]) == {"presence-p", "pub"}

    def test_list_user_count_needs_a_presence_prefix(self) -> None:
        registry = registry_with_presence()
        asked = signed_get("/", filter_by_prefix="presence-", info="user_count")
        assert list_channels(asked, registry) == {"channels": {"presence-p": {"user_count": 2}}}
        for request in (
            signed_get("/", info="user_count"),
            signed_get("/", filter_by_prefix="pres", info="user_count"),
            signed_get("/", filter_by_prefix="presence-", info="subscription_count"),
        ):
            with pytest.raises(BadRequest):
                list_channels(request, registry)
        lenient = faults(Fault.CHANNELS_USER_COUNT_UNRESTRICTED)
        assert list_channels(signed_get("/", info="user_count"), registry, lenient) == {
            "channels": {"presence-p": {"user_count": 2}, "pub": {}}
        }

    @pytest.mark.parametrize(
        ("channel", "info"),
        [("pub", "user_count"), ("presence-p", "subscription_count"), ("pub", "cache")],
    )
    def test_attribute_that_does_not_apply(self, channel: str, info: str) -> None:
        registry = registry_with_presence()
        request = signed_get("/", info=info)
        with pytest.raises(BadRequest):
            channel_info(channel, request, registry, 0.0)
        dropped = faults(Fault.CHANNEL_ATTRIBUTE_NOT_APPLICABLE_DROPPED)
        assert channel_info(channel, request, registry, 0.0, dropped) == {"occupied": True}

    def test_users_on_non_presence(self) -> None:
        registry = registry_with_presence()
        with pytest.raises(BadRequest):
            channel_users("pub", registry)
        assert channel_users("pub", registry, faults(Fault.USERS_ON_NON_PRESENCE)) == {"users": []}


class TestTerminateAndKeepAlive:
    def test_terminate_is_authenticated(self) -> None:
        path = "/apps/3/users/u/terminate_connections"
        validate_terminate("3", signed(b"{}", path=path), APP, NOW, LIMITS)
        bad = signed(b"{}", path=path, auth_signature="0" * 64)
        with pytest.raises(Unauthorized):
            validate_terminate("3", bad, APP, NOW, LIMITS)
        unauthenticated = faults(Fault.TERMINATE_UNAUTHENTICATED)
        validate_terminate("3", bad, APP, NOW, LIMITS, unauthenticated)
        with pytest.raises(NotFound):
            validate_terminate("4", bad, APP, NOW, LIMITS, unauthenticated)

    def test_keep_alive(self) -> None:
        assert keep_alive()
        assert not keep_alive(faults(Fault.NO_KEEP_ALIVE))
