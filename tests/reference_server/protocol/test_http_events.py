"""What a trigger or batch asks to publish: body, name, data, channels, socket_id, info and
size, checked in order after authentication."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reference_server.protocol.errors import BadRequest, NotFound, PayloadTooLarge, Unauthorized
from reference_server.protocol.http_events import BatchPlan, EventParser, TriggerEvent
from reference_server.protocol.http_requests import ApiLimits, HttpRequest
from reference_server.protocol.signing import sign_http_request

from ..http_harness import (
    APP,
    BATCH_PATH,
    GOOD,
    LIMITS,
    NOW,
    refused,
    signed,
    validate,
    validate_batch,
)


def item(channel: str = "a", **extra: Any) -> dict[str, Any]:
    return {"name": "e", "channel": channel, "data": "d", **extra}


def batch(*items: Any) -> bytes:
    return json.dumps({"batch": list(items)}).encode()


def plan(body: bytes, limits: ApiLimits = LIMITS) -> BatchPlan:
    return EventParser(limits).batch(body)


def query_trigger(**params: str) -> HttpRequest:
    """A signed POST with an empty body and the trigger's parameters in the query string."""
    query = [("auth_key", APP.key), ("auth_timestamp", str(NOW)), ("auth_version", "1.0")]
    query += [(k.replace("_list", "[]"), v) for k, v in params.items()]
    query.append(("auth_signature", sign_http_request(APP.secret, "POST", "/apps/3/events", query)))
    return HttpRequest("POST", "/apps/3/events", tuple(query), b"")


class TestBody:
    def test_body_over_1_mib_is_413(self) -> None:
        body = json.dumps({**GOOD, "pad": "x" * (1024 * 1024)}).encode()
        assert isinstance(refused(signed(body)), PayloadTooLarge)

    def test_body_of_exactly_1_mib_is_read(self) -> None:
        prefix = json.dumps(GOOD).encode()
        body = prefix + b" " * (1024 * 1024 - len(prefix))
        assert validate(signed(body)).name == "foo"

    @pytest.mark.parametrize("body", [b"[]", b'"x"', b"null", b"{", b"\xff\xfe", b"1"])
    def test_body_not_a_json_object_is_400(self, body: bytes) -> None:
        assert isinstance(refused(signed(body)), BadRequest)

    @pytest.mark.parametrize("name", [None, 1, "", "x" * 201, ["a"]])
    def test_bad_name_is_400(self, name: object) -> None:
        assert isinstance(refused(signed({**GOOD, "name": name})), BadRequest)

    def test_missing_name_is_400(self) -> None:
        body = {k: v for k, v in GOOD.items() if k != "name"}
        assert isinstance(refused(signed(body)), BadRequest)

    def test_name_of_200_characters_is_accepted(self) -> None:
        assert validate(signed({**GOOD, "name": "x" * 200})).name == "x" * 200

    @pytest.mark.parametrize("data", [None, 1, {"a": 1}, ["x"]])
    def test_data_not_a_string_is_400(self, data: object) -> None:
        assert isinstance(refused(signed({**GOOD, "data": data})), BadRequest)

    def test_missing_data_is_400(self) -> None:
        body = {k: v for k, v in GOOD.items() if k != "data"}
        assert isinstance(refused(signed(body)), BadRequest)

    @pytest.mark.parametrize(
        "channels",
        [
            {},
            {"channel": "a", "channels": ["b"]},
            {"channel": 1},
            {"channel": None},
            {"channel": "bad name"},
            {"channels": "a"},
            {"channels": []},
            {"channels": [1]},
            {"channels": ["a", "b c"]},
            {"channels": [f"c{i}" for i in range(101)]},
            {"channels": ["a" * 165]},
        ],
    )
    def test_bad_channels_are_400(self, channels: dict[str, object]) -> None:
        body = {"name": "e", "data": "d", **channels}
        assert isinstance(refused(signed(body)), BadRequest)

    def test_100_channels_are_accepted_and_deduplicated(self) -> None:
        names = [f"c{i}" for i in range(99)] + ["c0"]
        event = validate(signed({"name": "e", "data": "d", "channels": names}))
        assert event.channels == tuple(f"c{i}" for i in range(99))

    @pytest.mark.parametrize("socket_id", ["1", "1.2.3", "a.b", 1.5, "", "\u0661.1"])
    def test_bad_socket_id_is_400(self, socket_id: object) -> None:
        assert isinstance(refused(signed({**GOOD, "socket_id": socket_id})), BadRequest)

    def test_socket_id_is_kept(self) -> None:
        assert validate(signed({**GOOD, "socket_id": "12.34"})).socket_id == "12.34"

    def test_data_over_the_limit_is_413_in_utf8_bytes(self) -> None:
        assert validate(signed({**GOOD, "data": "x" * 10240})).data == "x" * 10240
        # 5121 characters but 10242 bytes.
        assert isinstance(refused(signed({**GOOD, "data": "\u00e9" * 5121})), PayloadTooLarge)

    def test_data_limit_is_configurable(self) -> None:
        request = signed({**GOOD, "data": "x" * 11})
        error = refused(request, limits=ApiLimits(max_event_bytes=10))
        assert isinstance(error, PayloadTooLarge)

    def test_bare_server_to_user_prefix_is_refused(self) -> None:
        assert (
            refused(signed({"name": "e", "channel": "#server-to-user-", "data": "d"})).status == 400
        )

    def test_more_than_100_channels_is_400(self) -> None:
        names = [f"c{i}" for i in range(101)]
        assert refused(signed({"name": "e", "channels": names, "data": "d"})).status == 400

    @pytest.mark.parametrize("bad", ["a!", "x" * 165, "a b", "#other"])
    def test_invalid_channel_names_are_400(self, bad: str) -> None:
        body = {"name": "e", "channels": ["ok", bad], "data": "d"}
        assert refused(signed(body)).status == 400

    def test_server_to_user_channels_are_accepted(self) -> None:
        event = validate(signed({"name": "e", "channel": "#server-to-user-u", "data": "d"}))
        assert event.channels == ("#server-to-user-u",)


class TestOrder:
    """Each pair fails two checks; the earlier one must win."""

    def test_unknown_app_before_auth(self) -> None:
        assert isinstance(refused(signed(drop=["auth_key"]), app_id="9"), NotFound)

    def test_auth_before_body(self) -> None:
        assert isinstance(refused(signed(b"[]", auth_signature="x")), Unauthorized)

    def test_auth_before_size(self) -> None:
        body = b" " * (2 * 1024 * 1024)
        assert isinstance(refused(signed(body, auth_signature="x")), Unauthorized)

    def test_key_before_timestamp(self) -> None:
        error = refused(signed(auth_key="k", auth_timestamp="x"))
        assert "auth_key" in error.message

    def test_timestamp_before_md5(self) -> None:
        error = refused(signed(auth_timestamp="x", body_md5="0"))
        assert "auth_timestamp" in error.message

    def test_md5_before_signature(self) -> None:
        error = refused(signed(body_md5="0", auth_signature="x"))
        assert "body_md5" in error.message

    def test_name_before_data(self) -> None:
        error = refused(signed({"channel": "a"}))
        assert "name" in error.message

    def test_socket_id_before_data_size(self) -> None:
        body = {**GOOD, "data": "x" * 20000, "socket_id": "bad"}
        assert isinstance(refused(signed(body)), BadRequest)


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

    def test_info_is_parsed_and_checked(self) -> None:
        event = validate(signed({**item(), "info": "user_count, subscription_count,user_count"}))
        assert event.info == ("user_count", "subscription_count")
        assert refused(signed({**item(), "info": "cache"})).status == 400
        assert refused(signed({**item(), "info": ["user_count"]})).status == 400


class TestBatch:
    def test_items_become_events_in_order(self) -> None:
        result = plan(batch(item("a"), item("b", socket_id="1.2", info="user_count")))
        assert result.error is None
        assert result.events == (
            TriggerEvent("e", "d", ("a",)),
            TriggerEvent("e", "d", ("b",), socket_id="1.2", info=("user_count",)),
        )

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

    def test_body_over_the_body_limit_is_413(self) -> None:
        result = plan(batch(item()), limits=ApiLimits(max_body_bytes=10))
        assert isinstance(result.error, PayloadTooLarge)

    def test_validate_batch_authenticates_first(self) -> None:
        good = signed(batch(item()), path=BATCH_PATH)
        assert validate_batch(good).error is None
        signed_elsewhere = HttpRequest("POST", BATCH_PATH, signed(batch(item())).query, good.body)
        with pytest.raises(Unauthorized):
            validate_batch(signed_elsewhere)

    def test_ten_items_pass_eleven_are_400(self) -> None:
        assert len(plan(batch(*[item()] * 10)).events) == 10
        refused_plan = plan(batch(*[item()] * 11))
        assert refused_plan.events == ()
        assert isinstance(refused_plan.error, BadRequest)

    def test_item_data_over_the_limit_is_413(self) -> None:
        big = "x" * (LIMITS.max_event_bytes + 1)
        result = plan(batch(item(), item(data=big)))
        assert isinstance(result.error, PayloadTooLarge)
        assert "batch[1]" in result.error.message
        assert result.events == ()
