"""Fault switches in the HTTP API core: authentication, triggers, batches, publishing and
the channel queries."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reference_server.faults import Fault
from reference_server.protocol.channels import ChannelRegistry
from reference_server.protocol.errors import BadRequest, NotFound, PayloadTooLarge, Unauthorized
from reference_server.protocol.http_events import BatchPlan, TriggerEvent
from reference_server.protocol.http_requests import HttpRequest
from reference_server.protocol.signing import sign_http_request

from ..http_harness import (
    APP,
    GOOD,
    LIMITS,
    NOW,
    authenticator,
    parser,
    publisher,
    queries,
    refused,
    registry_with_presence,
    signed,
    signed_get,
    validate,
)


def item(channel: str = "a", **extra: Any) -> dict[str, Any]:
    return {"name": "e", "channel": channel, "data": "d", **extra}


def batch(*items: Any) -> bytes:
    return json.dumps({"batch": list(items)}).encode()


def plan(body: bytes, *faults: Fault) -> BatchPlan:
    return parser(faults).batch(body)


class TestAuthentication:
    def test_unknown_app_id_401(self) -> None:
        error = refused(signed(), [Fault.UNKNOWN_APP_ID_401], app_id="4")
        assert isinstance(error, Unauthorized)
        assert validate(signed(), [Fault.UNKNOWN_APP_ID_401]).name == "foo"

    def test_skip_auth_key_check(self) -> None:
        assert validate(signed(auth_key="other"), [Fault.SKIP_AUTH_KEY_CHECK]).name == "foo"

    def test_skip_timestamp_check(self) -> None:
        validate(signed(auth_timestamp="yesterday"), [Fault.SKIP_TIMESTAMP_CHECK])
        validate(signed(auth_timestamp="1"), [Fault.SKIP_TIMESTAMP_CHECK])

    def test_skip_body_md5_check(self) -> None:
        validate(signed(body_md5="0" * 32), [Fault.SKIP_BODY_MD5_CHECK])

    def test_skip_signature_check(self) -> None:
        validate(signed(auth_signature="junk"), [Fault.SKIP_SIGNATURE_CHECK])

    def test_queries_unsigned_accepted(self) -> None:
        faults = [Fault.QUERIES_UNSIGNED_ACCEPTED]
        path = "/apps/3/channels"
        unsigned = HttpRequest("GET", path, (), b"")
        authenticator(faults).validate("3", unsigned, NOW)
        wrong = signed_get(path)
        wrong = HttpRequest("GET", path, (*wrong.query[:-1], ("auth_signature", "0" * 64)), b"")
        authenticator(faults).validate("3", wrong, NOW)
        # Without the fault both are refused; with it, triggers still are, and so is an
        # unknown app id.
        for request in (unsigned, wrong):
            with pytest.raises(Unauthorized):
                authenticator().validate("3", request, NOW)
        assert isinstance(refused(signed(auth_signature="junk"), faults), Unauthorized)
        assert isinstance(refused(signed(drop=["auth_key"]), faults), Unauthorized)
        with pytest.raises(NotFound):
            authenticator(faults).validate("4", unsigned, NOW)

    def test_other_checks_still_apply(self) -> None:
        error = refused(signed(auth_version="2.0"), [Fault.SKIP_SIGNATURE_CHECK])
        assert isinstance(error, Unauthorized)


class TestTrigger:
    def test_event_name_length_unchecked(self) -> None:
        event = validate(signed({**GOOD, "name": "x" * 201}), [Fault.EVENT_NAME_LENGTH_UNCHECKED])
        assert len(event.name) == 201
        error = refused(signed({**GOOD, "name": ""}), [Fault.EVENT_NAME_LENGTH_UNCHECKED])
        assert isinstance(error, BadRequest)

    def test_missing_name_accepted(self) -> None:
        body = {k: v for k, v in GOOD.items() if k != "name"}
        assert validate(signed(body), [Fault.MISSING_NAME_ACCEPTED]).name == ""
        # Only a missing name: other bad names are still refused.
        bad = signed({**GOOD, "name": 1})
        assert isinstance(refused(bad, [Fault.MISSING_NAME_ACCEPTED]), BadRequest)

    def test_socket_id_without_dot_keeps_exclusion_usable(self) -> None:
        request = signed({**GOOD, "socket_id": "123456"})
        assert validate(request, [Fault.SOCKET_ID_WITHOUT_DOT]).socket_id == "123456"
        assert validate(signed({**GOOD, "socket_id": "1.2"}), [Fault.SOCKET_ID_WITHOUT_DOT])
        bad = signed({**GOOD, "socket_id": "a"})
        assert isinstance(refused(bad, [Fault.SOCKET_ID_WITHOUT_DOT]), BadRequest)

    def test_no_event_size_limit(self) -> None:
        validate(signed({**GOOD, "data": "x" * 20000}), [Fault.NO_EVENT_SIZE_LIMIT])

    def test_oversized_body_500(self) -> None:
        body = json.dumps({"name": "e", "channel": "c", "data": "a" * 1_100_000}).encode()
        with pytest.raises(RuntimeError):
            validate(signed(body), [Fault.OVERSIZED_BODY_500])
        assert isinstance(refused(signed(body)), PayloadTooLarge)

    def test_post_query_params_ignored(self) -> None:
        query = [("auth_key", APP.key), ("auth_timestamp", str(NOW)), ("auth_version", "1.0")]
        query += [("name", "e"), ("data", "d"), ("channel", "a")]
        path = "/apps/3/events"
        query.append(("auth_signature", sign_http_request(APP.secret, "POST", path, query)))
        request = HttpRequest("POST", path, tuple(query), b"")
        assert validate(request).channels == ("a",)
        assert refused(request, [Fault.POST_QUERY_PARAMS_IGNORED]).status == 400

    def test_empty_channels_accepted(self) -> None:
        body = {"name": "e", "channels": [], "data": "d"}
        assert isinstance(refused(signed(body)), BadRequest)
        assert validate(signed(body), [Fault.EMPTY_CHANNELS_ACCEPTED]).channels == ()
        # Only the empty list: no target at all, or both channel and channels, stay refused.
        for bad in ({"name": "e", "data": "d"}, {**body, "channel": "a"}):
            assert isinstance(refused(signed(bad), [Fault.EMPTY_CHANNELS_ACCEPTED]), BadRequest)

    def test_too_many_channels_accepted(self) -> None:
        names = [f"c{i}" for i in range(101)]
        accepted = validate(
            signed({"name": "e", "channels": names, "data": "d"}),
            [Fault.TOO_MANY_CHANNELS_ACCEPTED],
        )
        assert len(accepted.channels) == 101

    @pytest.mark.parametrize("bad", ["a!", "x" * 165, "a b", "#other"])
    def test_publish_channel_names_unchecked(self, bad: str) -> None:
        body = {"name": "e", "channels": ["ok", bad], "data": "d"}
        event = validate(signed(body), [Fault.PUBLISH_CHANNEL_NAMES_UNCHECKED])
        assert event.channels == ("ok", bad)

    def test_unchecked_names_still_refuse_lone_surrogates(self) -> None:
        body = b'{"name":"e","channel":"a\\ud800","data":"d"}'
        assert refused(signed(body), [Fault.PUBLISH_CHANNEL_NAMES_UNCHECKED]).status == 400

    def test_unchecked_names_still_need_strings(self) -> None:
        body = {"name": "e", "channels": ["ok", 1], "data": "d"}
        assert refused(signed(body), [Fault.PUBLISH_CHANNEL_NAMES_UNCHECKED]).status == 400


class TestBatch:
    def test_batch_size_unchecked(self) -> None:
        assert len(plan(batch(*[item()] * 11), Fault.BATCH_SIZE_UNCHECKED).events) == 11

    def test_batch_item_size_unchecked(self) -> None:
        big = "x" * (LIMITS.max_event_bytes + 1)
        unchecked = plan(batch(item(), item(data=big)), Fault.BATCH_ITEM_SIZE_UNCHECKED)
        assert unchecked.error is None
        assert len(unchecked.events) == 2
        # A trigger's data is still limited.
        body = signed({**GOOD, "data": big})
        assert isinstance(refused(body, [Fault.BATCH_ITEM_SIZE_UNCHECKED]), PayloadTooLarge)

    @pytest.mark.parametrize("missing", ["channel", "data"])
    def test_batch_incomplete_items_skipped(self, missing: str) -> None:
        incomplete = {k: v for k, v in item("b").items() if k != missing}
        body = batch(item("a"), incomplete, item("c"))
        assert isinstance(plan(body).error, BadRequest)
        result = plan(body, Fault.BATCH_INCOMPLETE_ITEMS_SKIPPED)
        assert result.error is None
        assert [event.channels for event in result.events] == [("a",), ("c",)]

    def test_batch_incomplete_items_skipped_keeps_other_refusals(self) -> None:
        nameless = {"channel": "b", "data": "d"}
        result = plan(batch(item("a"), nameless), Fault.BATCH_INCOMPLETE_ITEMS_SKIPPED)
        assert isinstance(result.error, BadRequest)
        assert result.events == ()
        only_incomplete = batch({"name": "e", "data": "d"})
        assert isinstance(
            plan(only_incomplete, Fault.BATCH_INCOMPLETE_ITEMS_SKIPPED).error, BadRequest
        )
        assert plan(b"not json", Fault.BATCH_INCOMPLETE_ITEMS_SKIPPED).error is not None

    def test_batch_partial_delivery_keeps_the_items_before_the_bad_one(self) -> None:
        body = batch(item("a"), item("b"), {"channel": "c", "data": "d"}, item("d"))
        result = plan(body, Fault.BATCH_PARTIAL_DELIVERY)
        assert isinstance(result.error, BadRequest)
        assert [event.channels for event in result.events] == [("a",), ("b",)]


class TestPublishing:
    def registry(self) -> ChannelRegistry:
        registry = ChannelRegistry()
        for channel, socket_id in [("a", "1.1"), ("a", "2.2"), ("b", "2.2"), ("b", "3.3")]:
            registry.subscribe(channel, socket_id)
        return registry

    def test_ignore_socket_id_exclusion(self) -> None:
        event = TriggerEvent("e", "d", ("a",), socket_id="2.2")
        faulty = publisher(self.registry(), [Fault.IGNORE_SOCKET_ID_EXCLUSION])
        [delivery] = faulty.deliveries(event)
        assert delivery.socket_ids == ("1.1", "2.2")

    def test_first_channel_only(self) -> None:
        event = TriggerEvent("e", "d", ("b", "a"))
        [delivery] = publisher(self.registry(), [Fault.FIRST_CHANNEL_ONLY]).deliveries(event)
        assert json.loads(delivery.text)["channel"] == "b"

    def test_event_data_reencoded(self) -> None:
        faulty = publisher(self.registry(), [Fault.EVENT_DATA_REENCODED])
        [delivery] = faulty.deliveries(TriggerEvent("e", '{"x":1}', ("a",)))
        assert json.loads(delivery.text)["data"] == {"x": 1}
        # Data that is not JSON cannot be re-encoded and stays a string.
        [delivery] = faulty.deliveries(TriggerEvent("e", "not json", ("a",)))
        assert json.loads(delivery.text)["data"] == "not json"

    def test_server_to_user_not_delivered(self) -> None:
        registry = ChannelRegistry()
        registry.users.sign_in("1.1", "u")
        event = TriggerEvent("e", "d", ("#server-to-user-u",))
        assert publisher(registry).deliveries(event) != []
        assert publisher(registry, [Fault.SERVER_TO_USER_NOT_DELIVERED]).deliveries(event) == []

    def test_cache_only_while_occupied(self) -> None:
        registry = ChannelRegistry()
        faulty = publisher(registry, [Fault.CACHE_ONLY_WHILE_OCCUPIED])
        faulty.store_in_cache(TriggerEvent("e", "d", ("cache-a",)), 1.0)
        assert registry.cache.get("cache-a", 1.0) is None
        registry.subscribe("cache-a", "1.1")
        faulty.store_in_cache(TriggerEvent("e", "d", ("cache-a",)), 1.0)
        assert registry.cache.get("cache-a", 1.0) is not None

    def test_success_body_ok_true(self) -> None:
        faulty = publisher(ChannelRegistry(), [Fault.SUCCESS_BODY_OK_TRUE])
        assert faulty.success_body() == {"ok": True}
        assert faulty.trigger_reply(TriggerEvent("e", "d", ("a",))) == {"ok": True}

    def test_trigger_info_ignored(self) -> None:
        event = TriggerEvent("e", "d", ("pub",), info=("subscription_count",))
        faulty = publisher(registry_with_presence(), [Fault.TRIGGER_INFO_IGNORED])
        assert faulty.trigger_reply(event) == {}

    def test_batch_reply_faults(self) -> None:
        registry = registry_with_presence()
        plain = (TriggerEvent("e", "d", ("pub",)),)
        faulty = publisher(registry, [Fault.BATCH_REPLY_BATCH_OBJECT])
        assert faulty.batch_reply(plain) == {"batch": {}}
        asked = (TriggerEvent("e", "d", ("presence-p",), info=("user_count",)),)
        assert publisher(registry, [Fault.BATCH_INFO_IGNORED]).batch_reply(asked) == {}


class TestQueries:
    def test_channels_filter_ignored(self) -> None:
        faulty = queries(registry_with_presence(), [Fault.CHANNELS_FILTER_IGNORED])
        unfiltered = faulty.list_channels(signed_get("/", filter_by_prefix="pu"))
        assert set(unfiltered["channels"]) == {"presence-p", "pub"}

    def test_channels_user_count_unrestricted(self) -> None:
        faulty = queries(registry_with_presence(), [Fault.CHANNELS_USER_COUNT_UNRESTRICTED])
        assert faulty.list_channels(signed_get("/", info="user_count")) == {
            "channels": {"presence-p": {"user_count": 2}, "pub": {}}
        }

    @pytest.mark.parametrize(
        ("channel", "info"),
        [("pub", "user_count"), ("presence-p", "subscription_count"), ("pub", "cache")],
    )
    def test_channel_attribute_not_applicable_dropped(self, channel: str, info: str) -> None:
        faulty = queries(registry_with_presence(), [Fault.CHANNEL_ATTRIBUTE_NOT_APPLICABLE_DROPPED])
        request = signed_get("/", info=info)
        assert faulty.channel_info(channel, request, 0.0) == {"occupied": True}

    def test_users_on_non_presence(self) -> None:
        faulty = queries(registry_with_presence(), [Fault.USERS_ON_NON_PRESENCE])
        assert faulty.channel_users("pub") == {"users": []}

    def test_terminate_ignored(self) -> None:
        registry = ChannelRegistry()
        registry.users.sign_in("1.1", "u")
        assert queries(registry, [Fault.TERMINATE_IGNORED]).terminate_targets("u") == ()


class TestShippedQueryBugs:
    """``registry_with_presence``: u1 on two connections and u2 on one in ``presence-p``."""

    def test_user_count_per_connection(self) -> None:
        faulty = queries(registry_with_presence(), [Fault.USER_COUNT_PER_CONNECTION])
        info = faulty.channel_info("presence-p", signed_get("/", info="user_count"), 0.0)
        assert info == {"occupied": True, "user_count": 3}
        listed = faulty.list_channels(
            signed_get("/", filter_by_prefix="presence-", info="user_count")
        )
        assert listed == {"channels": {"presence-p": {"user_count": 3}}}

    def test_users_listed_per_connection(self) -> None:
        faulty = queries(registry_with_presence(), [Fault.USERS_LISTED_PER_CONNECTION])
        users = faulty.channel_users("presence-p")["users"]
        assert sorted(user["id"] for user in users) == ["u1", "u1", "u2"]

    def test_users_endpoint_500(self) -> None:
        faulty = queries(registry_with_presence(), [Fault.USERS_ENDPOINT_500])
        with pytest.raises(RuntimeError):
            faulty.channel_users("presence-p")
        # An empty presence channel and a non-presence one are answered as before.
        assert faulty.channel_users("presence-empty") == {"users": []}
        with pytest.raises(BadRequest):
            faulty.channel_users("pub")

    def test_channels_list_presence_only(self) -> None:
        faulty = queries(registry_with_presence(), [Fault.CHANNELS_LIST_PRESENCE_ONLY])
        assert faulty.list_channels(signed_get("/")) == {"channels": {"presence-p": {}}}
        assert faulty.list_channels(signed_get("/", filter_by_prefix="pu")) == {"channels": {}}

    def test_channels_info_ignored(self) -> None:
        faulty = queries(registry_with_presence(), [Fault.CHANNELS_INFO_IGNORED])
        request = signed_get("/", filter_by_prefix="presence-", info="user_count")
        assert faulty.list_channels(request) == {"channels": {"presence-p": {}}}
        with pytest.raises(BadRequest):
            faulty.list_channels(signed_get("/", info="user_count"))

    def test_terminate_hits_presence_members(self) -> None:
        registry = registry_with_presence()
        registry.users.sign_in("1.9", "u1")
        faulty = queries(registry, [Fault.TERMINATE_HITS_PRESENCE_MEMBERS])
        assert set(faulty.terminate_targets("u1")) == {"1.9", "1.1", "1.2"}
        assert queries(registry).terminate_targets("u1") == ("1.9",)


class TestShippedSizeBugs:
    def test_event_limit_on_whole_body(self) -> None:
        at_limit = {"name": "e", "channel": "a", "data": "x" * LIMITS.max_event_bytes}
        assert len(validate(signed(at_limit)).data) == LIMITS.max_event_bytes
        error = refused(signed(at_limit), [Fault.EVENT_LIMIT_ON_WHOLE_BODY])
        assert isinstance(error, PayloadTooLarge)
        assert validate(signed(GOOD), [Fault.EVENT_LIMIT_ON_WHOLE_BODY]).name == "foo"

    def test_exclude_socket_id_unvalidated(self) -> None:
        body = {**GOOD, "socket_id": "abc"}
        assert isinstance(refused(signed(body)), BadRequest)
        assert validate(signed(body), [Fault.EXCLUDE_SOCKET_ID_UNVALIDATED]).socket_id == "abc"

    def test_large_body_signature_truncated(self) -> None:
        faults = [Fault.LARGE_BODY_SIGNATURE_TRUNCATED]
        large = {"name": "e", "channel": "a", "data": "x" * 9000}
        assert isinstance(refused(signed(large), faults), Unauthorized)
        assert validate(signed(GOOD), faults).name == "foo"
