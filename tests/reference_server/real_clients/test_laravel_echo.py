"""laravel-echo 2 (Pusher connector) against the reference server, as a Laravel front end
uses it: what Echo's callbacks heard (drivers/real-clients/laravel-echo.mjs, one Node
process; channels are authorized by the test's endpoint, which signs with the Python SDK)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.reference_server.real_clients.conftest import NodeSession

pytestmark = pytest.mark.real_clients


@pytest.fixture(scope="module")
def session(scenarios: Callable[..., NodeSession]) -> NodeSession:
    return scenarios("laravel-echo.mjs")


def test_echo_connects(session: NodeSession) -> None:
    first, second = session.observed("echo-connect")["socket_ids"]
    assert re.fullmatch(r"\d+\.\d+", first), first
    assert re.fullmatch(r"\d+\.\d+", second), second
    assert first != second


def test_echo_private_channel_listens_to_namespaced_and_raw_events(session: NodeSession) -> None:
    seen = session.observed("echo-private-listen")
    assert seen["statuses"] == [200, 200]
    assert seen["erin"] == [
        {"name": "OrderShipped", "data": {"id": 7}},
        {"name": ".status-changed", "data": {"status": "packed"}},
    ]
    asked = {(r["user_id"], r["channel_name"]) for r in session.auth_requests}
    assert {("erin", "private-orders"), ("frank", "private-orders")} <= asked


def test_echo_presence_here_joining_and_events(session: NodeSession) -> None:
    seen = session.observed("echo-presence")
    assert seen["status"] == 200
    assert seen["erin"] == [
        {"name": "here", "data": [{"name": "Erin"}]},
        {"name": "joining", "data": {"name": "Frank"}},
        {"name": "announcement", "data": {"text": "welcome"}},
    ]
    here = seen["frank"]
    assert [h["name"] for h in here] == ["here"]
    assert sorted(member["name"] for member in here[0]["data"]) == ["Erin", "Frank"]


def test_echo_whispers_reach_the_other_client_only(session: NodeSession) -> None:
    seen = session.observed("echo-whisper")
    assert seen["frank"] == [{"name": "whisper:typing", "data": {"name": "Erin"}}]
    assert seen["erin_own_whisper"] == []
    assert seen["erin_presence"] == [{"name": "Frank"}]


def test_echo_leaving_after_leave(session: NodeSession) -> None:
    seen = session.observed("echo-leaving")
    assert seen["leaving"] == [{"name": "Frank"}]
    assert seen["erin_roster"] == ["erin"]
