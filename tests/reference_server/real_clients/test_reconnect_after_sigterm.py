"""pusher-js across a reference server restart: SIGTERM drains the server (close 4200,
"reconnect now"), a new server process takes the same port, and the client comes back by
itself, resubscribed (drivers/real-clients/reconnect.mjs, one Node process)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.reference_server.real_clients.conftest import NodeSession

pytestmark = pytest.mark.real_clients


def _restart_step(server: Any, endpoint: Any) -> Mapping[str, Callable[..., Any]]:
    """At the script's ``sigterm`` step: stop the server as an orchestrator would, then
    start a new process on the same port."""

    async def sigterm(_: dict[str, Any]) -> dict[str, Any]:
        port = server.port
        exit_status = await server.sigterm()
        await server.start(port)
        return {"exit_status": exit_status, "port_before": port, "port_after": server.port}

    return {"sigterm": sigterm}


@pytest.fixture(scope="module")
def session(scenarios: Callable[..., NodeSession]) -> NodeSession:
    return scenarios("reconnect.mjs", _restart_step)


def test_the_server_drains_and_a_new_one_takes_the_port(session: NodeSession) -> None:
    session.observed("after-restart")
    restart = session.steps["sigterm"]
    assert restart["exit_status"] == 0
    assert restart["port_after"] == restart["port_before"]


def test_pusher_js_is_told_4200_and_reconnects_with_a_new_socket_id(
    session: NodeSession,
) -> None:
    before = session.observed("before-sigterm")
    seen = session.observed("after-restart")
    # The drain's pusher:error and close; failed attempts while no server listens report
    # no Pusher code.
    assert [code for code in seen["errors"] if code is not None] == [4200]
    # 4200 is "reconnect now": straight back to connecting, not disconnected.
    assert seen["states"][:3] == ["connecting", "connected", "connecting"], seen["states"]
    assert seen["states"][-1] == "connected"
    first, *_, last = seen["socket_ids"]
    assert first == before["socket_id"]
    assert re.fullmatch(r"\d+\.\d+", last), last
    assert last != first


def test_pusher_js_resubscribes_with_a_new_authorization(session: NodeSession) -> None:
    seen = session.observed("after-restart")
    assert seen["subscription_succeeded"] == {"ticker": 2, "desk": 2}
    desk = [r["socket_id"] for r in session.auth_requests if r["channel_name"] == "private-desk"]
    assert desk == [seen["socket_ids"][0], seen["socket_ids"][-1]]


def test_events_after_the_restart_reach_the_resubscribed_channels(session: NodeSession) -> None:
    assert session.observed("before-sigterm")["status"] == 200
    seen = session.observed("after-restart")
    assert seen["statuses"] == [200, 200]
    assert seen["ticks"] == [
        {"event": "tick", "data": {"n": 1}, "user_id": None},
        {"event": "tick", "data": {"n": 2}, "user_id": None},
    ]
    assert seen["notes"] == [{"event": "note", "data": {"n": 3}, "user_id": None}]
