from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_server.faults import Fault
from reference_server.protocol.channels import ChannelRegistry
from reference_server.protocol.errors import (
    BadRequest,
    HttpApiError,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
)
from reference_server.protocol.http_api import (
    ApiLimits,
    AppCredentials,
    HttpRequest,
    TriggerEvent,
    authenticate,
    channel_info,
    channel_users,
    deliveries,
    store_in_cache,
    success_body,
    terminate_targets,
    validate_request,
    validate_trigger,
)
from reference_server.protocol.presence import Member
from reference_server.protocol.signing import body_md5, sign_http_request

APP = AppCredentials("3", "278d425bdf160c739803", "7ad3773142a6692b25b8")
NOW = 1353088179
PATH = "/apps/3/events"
LIMITS = ApiLimits()
GOOD = {"name": "foo", "channel": "a", "data": "{}"}


def signed(
    body: bytes | dict[str, Any] = GOOD,
    /,
    *,
    drop: Iterable[str] = (),
    path: str = PATH,
    secret: str = APP.secret,
    **overrides: str,
) -> HttpRequest:
    """A correctly signed request, then altered: ``overrides`` and ``drop`` apply after signing
    unless they name a parameter that is itself signed, in which case the signature covers them.
    """
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    params = {
        "auth_key": APP.key,
        "auth_timestamp": str(NOW),
        "auth_version": "1.0",
        "body_md5": body_md5(raw),
    }
    if not raw:
        del params["body_md5"]
    params.update({k: v for k, v in overrides.items() if k != "auth_signature"})
    for name in drop:
        params.pop(name, None)
    query = list(params.items())
    signature = overrides.get("auth_signature", sign_http_request(secret, "POST", path, query))
    if "auth_signature" not in drop:
        query.append(("auth_signature", signature))
    return HttpRequest("POST", path, tuple(query), raw)


def validate(
    request: HttpRequest,
    faults: Iterable[Fault] = (),
    *,
    app_id: str = "3",
    now: float = NOW,
    limits: ApiLimits = LIMITS,
) -> TriggerEvent:
    return validate_trigger(app_id, request, APP, now, limits, frozenset(faults))


def refused(request: HttpRequest, faults: Iterable[Fault] = (), **kwargs: Any) -> HttpApiError:
    with pytest.raises(HttpApiError) as info:
        validate(request, faults, **kwargs)
    return info.value


def test_the_docs_vector_validates(vectors: dict[str, Any]) -> None:
    case = vectors["http_api"][0]
    query = (*case["params"].items(), ("auth_signature", case["signature"]))
    request = HttpRequest("POST", case["path"], tuple(query), case["body"].encode())
    app = AppCredentials(**vectors["app"])
    event = validate_trigger("3", request, app, NOW, LIMITS)
    assert event == TriggerEvent("foo", '{"some":"data"}', ("project-3",))


class TestAuthentication:
    def test_unknown_app_is_404(self) -> None:
        assert isinstance(refused(signed(), app_id="4"), NotFound)

    def test_fault_unknown_app_id_401(self) -> None:
        error = refused(signed(), [Fault.UNKNOWN_APP_ID_401], app_id="4")
        assert isinstance(error, Unauthorized)

    @pytest.mark.parametrize(
        "name", ["auth_key", "auth_timestamp", "auth_version", "auth_signature", "body_md5"]
    )
    def test_missing_parameter_is_401(self, name: str) -> None:
        error = refused(signed(drop=[name]))
        assert isinstance(error, Unauthorized)
        assert name in error.message

    def test_body_md5_is_optional_for_an_empty_body(self) -> None:
        # Authentication passes; the empty body then fails as "not a JSON object".
        assert isinstance(refused(signed(b"")), BadRequest)

    def test_wrong_key_is_401(self) -> None:
        assert isinstance(refused(signed(auth_key="other")), Unauthorized)

    def test_fault_skip_auth_key_check(self) -> None:
        assert validate(signed(auth_key="other"), [Fault.SKIP_AUTH_KEY_CHECK]).name == "foo"

    @pytest.mark.parametrize("version", ["2.0", "1", ""])
    def test_wrong_version_is_401(self, version: str) -> None:
        assert isinstance(refused(signed(auth_version=version)), Unauthorized)

    @pytest.mark.parametrize("timestamp", ["abc", "1.5", "", " 1353088179", "1_353_088_179"])
    def test_non_integer_timestamp_is_401(self, timestamp: str) -> None:
        assert isinstance(refused(signed(auth_timestamp=timestamp)), Unauthorized)

    @pytest.mark.parametrize(
        ("skew", "ok"), [(600, True), (-600, True), (601, False), (-601, False)]
    )
    def test_timestamp_window_is_600_seconds(self, skew: int, ok: bool) -> None:
        request = signed(auth_timestamp=str(NOW + skew))
        if ok:
            validate(request)
        else:
            assert isinstance(refused(request), Unauthorized)

    def test_fault_skip_timestamp_check(self) -> None:
        validate(signed(auth_timestamp="yesterday"), [Fault.SKIP_TIMESTAMP_CHECK])
        validate(signed(auth_timestamp="1"), [Fault.SKIP_TIMESTAMP_CHECK])

    def test_wrong_body_md5_is_401(self) -> None:
        error = refused(signed(body_md5="0" * 32))
        assert isinstance(error, Unauthorized)
        assert "body_md5" in error.message

    def test_fault_skip_body_md5_check(self) -> None:
        validate(signed(body_md5="0" * 32), [Fault.SKIP_BODY_MD5_CHECK])

    @pytest.mark.parametrize("signature", ["0" * 64, "", "caf\u00e9", "A" * 64])
    def test_wrong_signature_is_401(self, signature: str) -> None:
        error = refused(signed(auth_signature=signature))
        assert isinstance(error, Unauthorized)
        assert "signature" in error.message

    def test_signature_with_another_secret_is_401(self) -> None:
        assert isinstance(refused(signed(secret="nope")), Unauthorized)

    def test_signature_covers_the_path(self) -> None:
        request = signed(path="/apps/3/events/")
        moved = HttpRequest("POST", PATH, request.query, request.body)
        assert isinstance(refused(moved), Unauthorized)

    def test_fault_skip_signature_check(self) -> None:
        validate(signed(auth_signature="junk"), [Fault.SKIP_SIGNATURE_CHECK])

    def test_extra_parameters_are_signed_lower_cased(self) -> None:
        validate(signed(Info="user_count", z="1 2"))

    @given(st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), st.text(), max_size=4))
    def test_any_correctly_signed_extra_parameters_pass(self, extra: dict[str, str]) -> None:
        reserved = {"auth_key", "auth_timestamp", "auth_version", "auth_signature", "body_md5"}
        reserved |= {"drop", "path", "secret"}  # signed()'s own keywords.
        request = signed(**{k: v for k, v in extra.items() if k not in reserved})
        authenticate(request, APP, NOW, LIMITS)


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

    def test_fault_event_name_length_unchecked(self) -> None:
        event = validate(signed({**GOOD, "name": "x" * 201}), [Fault.EVENT_NAME_LENGTH_UNCHECKED])
        assert len(event.name) == 201
        assert isinstance(
            refused(signed({**GOOD, "name": ""}), [Fault.EVENT_NAME_LENGTH_UNCHECKED]), BadRequest
        )

    def test_fault_missing_name_accepted(self) -> None:
        body = {k: v for k, v in GOOD.items() if k != "name"}
        assert validate(signed(body), [Fault.MISSING_NAME_ACCEPTED]).name == ""
        # Only a missing name: other bad names are still refused.
        bad = signed({**GOOD, "name": 1})
        assert isinstance(refused(bad, [Fault.MISSING_NAME_ACCEPTED]), BadRequest)

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

    def test_fault_socket_id_without_dot_keeps_exclusion_usable(self) -> None:
        request = signed({**GOOD, "socket_id": "123456"})
        event = validate(request, [Fault.SOCKET_ID_WITHOUT_DOT])
        assert event.socket_id == "123456"
        assert isinstance(refused(signed({**GOOD, "socket_id": "a"})), BadRequest)

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

    def test_fault_no_event_size_limit(self) -> None:
        validate(signed({**GOOD, "data": "x" * 20000}), [Fault.NO_EVENT_SIZE_LIMIT])


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


class TestDeliveries:
    def registry(self) -> ChannelRegistry:
        registry = ChannelRegistry()
        for channel, socket_id in [("a", "1.1"), ("a", "2.2"), ("b", "2.2"), ("b", "3.3")]:
            registry.subscribe(channel, socket_id)
        return registry

    def test_one_frame_per_channel_shared_by_all_targets(self) -> None:
        event = TriggerEvent("e", '{"x":1}', ("a", "b", "empty"), socket_id="2.2")
        first, second = deliveries(event, self.registry())
        assert json.loads(first.text) == {"event": "e", "channel": "a", "data": '{"x":1}'}
        assert first.socket_ids == ("1.1",)
        assert json.loads(second.text)["channel"] == "b"
        assert second.socket_ids == ("3.3",)

    def test_fault_ignore_socket_id_exclusion(self) -> None:
        event = TriggerEvent("e", "d", ("a",), socket_id="2.2")
        [delivery] = deliveries(
            event, self.registry(), frozenset({Fault.IGNORE_SOCKET_ID_EXCLUSION})
        )
        assert delivery.socket_ids == ("1.1", "2.2")

    def test_fault_first_channel_only(self) -> None:
        event = TriggerEvent("e", "d", ("b", "a"))
        [delivery] = deliveries(event, self.registry(), frozenset({Fault.FIRST_CHANNEL_ONLY}))
        assert json.loads(delivery.text)["channel"] == "b"

    def test_fault_event_data_reencoded(self) -> None:
        event = TriggerEvent("e", '{"x":1}', ("a",))
        [delivery] = deliveries(event, self.registry(), frozenset({Fault.EVENT_DATA_REENCODED}))
        assert json.loads(delivery.text)["data"] == {"x": 1}


def test_success_body() -> None:
    assert success_body() == {}
    assert success_body(frozenset({Fault.SUCCESS_BODY_OK_TRUE})) == {"ok": True}


def signed_get(path: str, **params: str) -> HttpRequest:
    query = [
        ("auth_key", APP.key),
        ("auth_timestamp", str(NOW)),
        ("auth_version", "1.0"),
        *params.items(),
    ]
    query.append(("auth_signature", sign_http_request(APP.secret, "GET", path, query)))
    return HttpRequest("GET", path, tuple(query), b"")


class TestGetEndpoints:
    def test_get_requests_sign_the_query_without_body_md5(self) -> None:
        request = signed_get("/apps/3/channels/a", info="subscription_count")
        validate_request("3", request, APP, NOW, LIMITS)
        tampered = HttpRequest("GET", "/apps/3/channels/b", request.query, b"")
        with pytest.raises(Unauthorized):
            validate_request("3", tampered, APP, NOW, LIMITS)
        with pytest.raises(NotFound):
            validate_request("4", request, APP, NOW, LIMITS)

    def test_channel_info(self) -> None:
        registry = ChannelRegistry()
        request = signed_get("/apps/3/channels/a")
        assert channel_info("a", request, registry, 0.0) == {"occupied": False}
        registry.subscribe("a", "1.1")
        registry.subscribe("a", "1.2")
        counted = signed_get("/apps/3/channels/a", info="subscription_count")
        assert channel_info("a", counted, registry, 0.0) == {
            "occupied": True,
            "subscription_count": 2,
        }
        with pytest.raises(BadRequest):
            channel_info("a", signed_get("/", info="user_count"), registry, 0.0)
        with pytest.raises(BadRequest):
            channel_info("bad name", request, registry, 0.0)

    def test_channel_info_cache(self) -> None:
        registry = ChannelRegistry()
        asked = signed_get("/", info="cache")
        assert channel_info("cache-a", asked, registry, 0.0) == {"occupied": False, "cache": None}
        registry.cache.store("cache-a", "e", "payload", 100.0)
        assert channel_info("cache-a", asked, registry, 160.5)["cache"] == {
            "data": "payload",
            "ttl": 1740,
        }
        assert channel_info("cache-a", asked, registry, 100.0 + 1800.0)["cache"] is None
        with pytest.raises(BadRequest):
            channel_info("private-a", asked, registry, 0.0)

    def test_presence_channel_info_and_users(self) -> None:
        registry = ChannelRegistry()
        for socket_id, user in [("1.1", 10), ("1.2", 10), ("1.3", "b")]:
            registry.subscribe("presence-a", socket_id)
            registry.presence.join("presence-a", socket_id, Member(user))
        request = signed_get("/", info="user_count")
        assert channel_info("presence-a", request, registry, 0.0) == {
            "occupied": True,
            "user_count": 2,
        }
        with pytest.raises(BadRequest):
            channel_info("presence-a", signed_get("/", info="subscription_count"), registry, 0.0)
        assert channel_users("presence-a", registry) == {"users": [{"id": "10"}, {"id": "b"}]}
        assert channel_users("presence-empty", registry) == {"users": []}
        with pytest.raises(BadRequest):
            channel_users("private-a", registry)

    def test_terminate_targets(self) -> None:
        registry = ChannelRegistry()
        registry.users.sign_in("1.1", "u")
        registry.users.sign_in("1.2", "u")
        assert terminate_targets("u", registry) == ("1.1", "1.2")
        assert terminate_targets("v", registry) == ()
        assert terminate_targets("u", registry, frozenset({Fault.TERMINATE_IGNORED})) == ()


class TestServerToUserAndCache:
    def test_server_to_user_channels_are_accepted_and_go_to_signed_in_sockets(self) -> None:
        event = validate(signed({"name": "e", "channel": "#server-to-user-u", "data": "d"}))
        registry = ChannelRegistry()
        registry.users.sign_in("1.1", "u")
        registry.users.sign_in("1.2", "u")
        registry.users.sign_in("1.3", "v")
        registry.subscribe("#server-to-user-u", "1.3")  # Subscribing gives nothing.
        [delivery] = deliveries(event, registry)
        assert delivery.socket_ids == ("1.1", "1.2")
        assert json.loads(delivery.text)["channel"] == "#server-to-user-u"
        excluded = TriggerEvent("e", "d", ("#server-to-user-u",), socket_id="1.1")
        assert deliveries(excluded, registry)[0].socket_ids == ("1.2",)
        faults = frozenset({Fault.SERVER_TO_USER_NOT_DELIVERED})
        assert deliveries(event, registry, faults) == []

    def test_bare_server_to_user_prefix_is_refused(self) -> None:
        assert (
            refused(signed({"name": "e", "channel": "#server-to-user-", "data": "d"})).status == 400
        )

    def test_cache_channels_keep_the_last_event_occupied_or_not(self) -> None:
        registry = ChannelRegistry()
        store_in_cache(TriggerEvent("e1", "d1", ("cache-a", "b")), registry, 1.0)
        store_in_cache(TriggerEvent("e2", "d2", ("cache-a",)), registry, 2.0)
        cached = registry.cache.get("cache-a", 3.0)
        assert cached is not None
        assert (cached.name, cached.data) == ("e2", "d2")
        assert registry.cache.get("b", 3.0) is None

    def test_fault_cache_only_while_occupied(self) -> None:
        registry = ChannelRegistry()
        faults = frozenset({Fault.CACHE_ONLY_WHILE_OCCUPIED})
        store_in_cache(TriggerEvent("e", "d", ("cache-a",)), registry, 1.0, faults)
        assert registry.cache.get("cache-a", 1.0) is None
        registry.subscribe("cache-a", "1.1")
        store_in_cache(TriggerEvent("e", "d", ("cache-a",)), registry, 1.0, faults)
        assert registry.cache.get("cache-a", 1.0) is not None
