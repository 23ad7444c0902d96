"""pusher-js 8 and the Node and Python ``pusher`` server SDKs against the reference server:
what the clients observed, scenario by scenario (drivers/real-clients/pusher-js.mjs runs
them on one set of clients, in one Node process; the Python SDK acts at its step)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.reference_server.real_clients.conftest import NodeSession

pytestmark = pytest.mark.real_clients


def _python_sdk_step(server: Any, endpoint: Any) -> Mapping[str, Callable[..., Any]]:
    """At the script's ``python-sdk`` step: trigger and batch, then every channel query,
    through the Python SDK (synchronous: it runs off the event loop, which keeps serving
    the auth endpoint)."""
    sdk = endpoint.sdk

    def act() -> dict[str, Any]:
        return {
            "trigger": sdk.trigger("news", "py-headline", {"by": "python"}),
            "batch": sdk.trigger_batch(
                [
                    {"channel": "news", "name": "py-batch", "data": {"n": 1}},
                    {"channel": "private-room", "name": "py-room", "data": {"n": 2}},
                ]
            ),
            "presence_channels": sdk.channels_info("presence-", ["user_count"]),
            "all_channels": sdk.channels_info(),
            "room": sdk.channel_info("private-room", ["subscription_count"]),
            "lobby": sdk.channel_info("presence-lobby", ["user_count"]),
            "users": sdk.users_info("presence-lobby"),
        }

    async def python_sdk(_: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(act)

    return {"python-sdk": python_sdk}


@pytest.fixture(scope="module")
def session(scenarios: Callable[..., NodeSession]) -> NodeSession:
    return scenarios("pusher-js.mjs", _python_sdk_step)


def test_both_clients_connect_with_distinct_socket_ids(session: NodeSession) -> None:
    seen = session.observed("connect")
    assert seen["states"] == {
        "alice": ["connecting", "connected"],
        "bob": ["connecting", "connected"],
    }
    first, second = seen["socket_ids"]
    assert re.fullmatch(r"\d+\.\d+", first), first
    assert re.fullmatch(r"\d+\.\d+", second), second
    assert first != second


def test_node_sdk_trigger_reaches_a_public_subscriber_once(session: NodeSession) -> None:
    seen = session.observed("public-node-trigger")
    assert seen["status"] == 200
    assert seen["events"] == [{"event": "headline", "data": {"title": "hello"}, "user_id": None}]


def test_private_channel_through_both_sdks_signatures(session: NodeSession) -> None:
    """alice's subscription was signed by the Python SDK behind the endpoint, bob's by the
    Node SDK: the server accepted both."""
    assert session.observed("private-channel")["subscribed"] == {"alice": True, "bob": True}
    asked = [r for r in session.auth_requests if r.get("channel_name") == "private-room"]
    assert [r["user_id"] for r in asked] == ["alice"]


def test_presence_roster_member_added_and_removed(session: NodeSession) -> None:
    seen = session.observed("presence")
    assert seen["alice_at_join"] == {
        "roster": ["alice"],
        "me": {"id": "alice", "info": {"name": "Alice"}},
    }
    assert seen["bob_at_join"] == {
        "roster": ["alice", "bob"],
        "count": 2,
        "alice": {"id": "alice", "info": {"name": "Alice"}},
    }
    assert seen["member_added"] == [
        {"id": "bob", "info": {"name": "Bob"}},
        {"id": "carol", "info": {"name": "Carol"}},
    ]
    assert seen["member_removed"] == ["carol"]
    assert seen["alice_roster_after"] == ["alice", "bob"]


def test_client_events_reach_the_other_client_only(session: NodeSession) -> None:
    seen = session.observed("client-events")
    assert seen["sent"] == [True, True]
    assert seen["bob_received"] == [
        {"event": "client-typing", "data": {"who": "alice"}, "user_id": None}
    ]
    assert seen["alice_received_own"] == []
    # On a presence channel the server names the sender.
    assert seen["alice_received_presence"] == [
        {"event": "client-wave", "data": {"who": "bob"}, "user_id": "bob"}
    ]


def test_node_sdk_trigger_batch_and_exclusion(session: NodeSession) -> None:
    seen = session.observed("node-trigger-and-batch")
    assert seen["statuses"] == [200, 200, 200]
    assert seen["news"] == [
        {"event": "multi", "data": {"n": 1}, "user_id": None},
        {"event": "batch-news", "data": {"n": 2}, "user_id": None},
    ]
    both = [
        {"event": "multi", "data": {"n": 1}, "user_id": None},
        {"event": "batch-room", "data": {"n": 3}, "user_id": None},
    ]
    assert seen["room"] == {
        "alice": both,  # the socket_id named in the trigger is left out
        "bob": [*both, {"event": "not-for-alice", "data": {"n": 4}, "user_id": None}],
    }


def test_node_sdk_channel_queries_match_the_connected_clients(session: NodeSession) -> None:
    seen = session.observed("node-queries")
    assert seen["presence_channels"] == {
        "status": 200,
        "body": {"channels": {"presence-lobby": {"user_count": 2}}},
    }
    assert seen["private_channels"] == {"status": 200, "body": {"channels": {"private-room": {}}}}
    assert seen["room"] == {"status": 200, "body": {"occupied": True, "subscription_count": 2}}
    assert seen["lobby"] == {"status": 200, "body": {"occupied": True, "user_count": 2}}
    assert seen["users"] == {"status": 200, "body": {"users": [{"id": "alice"}, {"id": "bob"}]}}


def test_python_sdk_trigger_and_batch_reach_pusher_js(session: NodeSession) -> None:
    seen = session.observed("python-sdk-delivery")
    assert seen["news"] == [
        {"event": "py-headline", "data": {"by": "python"}, "user_id": None},
        {"event": "py-batch", "data": {"n": 1}, "user_id": None},
    ]
    assert seen["room"] == [{"event": "py-room", "data": {"n": 2}, "user_id": None}]
    sdk = session.steps["python-sdk"]
    assert sdk["trigger"] == {}
    assert sdk["batch"] == {}


def test_python_sdk_channel_queries_match_the_connected_clients(session: NodeSession) -> None:
    session.observed("python-sdk-delivery")  # the step ran with every client in place
    sdk = session.steps["python-sdk"]
    assert sdk["presence_channels"] == {"channels": {"presence-lobby": {"user_count": 2}}}
    assert sdk["all_channels"] == {
        "channels": {"news": {}, "private-room": {}, "presence-lobby": {}}
    }
    assert sdk["room"] == {"occupied": True, "subscription_count": 2}
    assert sdk["lobby"] == {"occupied": True, "user_count": 2}
    assert sorted(u["id"] for u in sdk["users"]["users"]) == ["alice", "bob"]


def test_send_to_user_reaches_every_connection_of_that_user(session: NodeSession) -> None:
    seen = session.observed("signin-send-to-user")
    assert seen["user_data"] == {
        "alice": {"id": "alice", "name": "Alice"},
        "alice2": {"id": "alice", "name": "Alice"},
        "bob": {"id": "bob", "name": "Bob"},
    }
    assert seen["status"] == 200
    note = {"text": "for alice"}
    assert seen["notes"] == {"alice": [note], "alice2": [note], "bob": []}


def test_terminate_user_connections_closes_that_user_only(session: NodeSession) -> None:
    """Through the Node SDK: pusher-http-python 3.3.4 posts terminate_connections to
    /users/{id}/... without /apps/{app_id}, a path no Channels server serves."""
    seen = session.observed("terminate-user")
    assert seen["status"] == 200
    for connection in ("alice", "alice2"):
        assert 4009 in seen[connection]["errors"], seen[connection]
        assert seen[connection]["state"] == "disconnected"  # 4009: no reconnection
    assert seen["bob"] == {
        "errors": [],
        "state": "connected",
        "member_removed": ["carol", "alice"],  # carol left in the presence scenario
    }
