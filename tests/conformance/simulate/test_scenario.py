"""Simulation scenarios: the bundled ones load as written, every mistake in a ``load:`` section
is one UsageError naming the file and the field, and the command line's sizes are checked like
the file's."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.errors import UsageError
from conformance.proxy.faults import HalfOpen, Reset, Resume, Stall, WsClose
from conformance.simulate.scenario import (
    ClientBehaviour,
    Incident,
    SimScenario,
    Thresholds,
    find_scenario,
    load_sim_scenario,
    sim_scenario_from_mapping,
)

GOOD: dict[str, Any] = {
    "scenario": "case",
    "title": "A small case",
    "channels": {"news": "private-news", "feed": "feed"},
    "alerts": [{"event": "news.posted", "channel": "news"}, {"event": "x", "channel": "feed"}],
    "load": {
        "users": 3,
        "tabs": 2,
        "ramp_seconds": 1,
        "duration_seconds": 10,
        "publish_per_second": 4,
        "incidents": [{"at": 2, "restart": True}],
    },
}


def scenario(*, load: dict[str, Any] | None = None, **top: Any) -> SimScenario:
    """GOOD with ``top`` replacing top-level fields (None: removed) and ``load`` merged into the
    load section (a None value removes that field)."""
    raw = copy.deepcopy(GOOD)
    for key, value in top.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    for key, value in (load or {}).items():
        if value is None:
            raw["load"].pop(key, None)
        else:
            raw["load"][key] = value
    return sim_scenario_from_mapping(raw, source="case.yaml")


def refused(*, load: dict[str, Any] | None = None, **top: Any) -> str:
    with pytest.raises(UsageError) as raised:
        scenario(load=load, **top)
    message = str(raised.value)
    assert message.startswith("case.yaml: ")
    assert "\n" not in message
    return message


# -- the bundled scenarios ------------------------------------------------------------------------


def test_admin_alerts_loads_without_incidents() -> None:
    s = load_sim_scenario("admin-alerts")
    assert (s.name, s.title) == ("admin-alerts", "Admin dashboard alerts")
    assert set(s.channels) == {"notifications", "health", "security"}
    assert s.alerts[0] == ("admin.notification", "notifications")
    assert len(s.alerts) == 4
    assert (s.users, s.tabs, s.ramp_seconds, s.duration_seconds) == (200, 2, 5.0, 20.0)
    assert s.publish_per_second == 3.0
    assert s.settle_seconds == 3.0  # the default
    assert s.incidents == ()
    assert not s.restarts
    assert s.client == ClientBehaviour()
    assert s.thresholds == Thresholds()


def test_restart_under_load_restarts_once() -> None:
    s = load_sim_scenario("restart-under-load")
    assert (s.users, s.tabs, s.duration_seconds, s.settle_seconds) == (1000, 2, 30.0, 5.0)
    assert s.incidents == (Incident(at=10.0, restart=True),)
    assert s.restarts
    assert s.incidents[0].describe() == "t+10s restart the server"
    assert s.client == ClientBehaviour(activity_timeout=120.0, pong_timeout=30.0)


def test_flaky_network_has_its_four_faults() -> None:
    s = load_sim_scenario("flaky-network")
    assert not s.restarts
    assert (s.latency_ms, s.jitter_ms, s.bytes_per_second) == (60.0, 40.0, 0)
    assert s.client == ClientBehaviour(activity_timeout=5.0, pong_timeout=3.0)
    assert s.incidents == (
        Incident(at=5.0, fault=Stall(direction="both"), share=0.10, lasts=12.0),
        Incident(at=12.0, fault=Reset(), share=0.05),
        Incident(at=20.0, fault=HalfOpen(), share=0.05),
        Incident(at=26.0, fault=WsClose(code=4200, reason="proxy: reconnect"), share=0.05),
    )
    assert isinstance(s.incidents[0].lift(), Resume)
    assert [i.lift() for i in s.incidents[1:]] == [None, None, None]
    assert s.incidents[0].describe() == "t+5s stall for 12s on 10% of tabs"
    assert s.incidents[1].describe() == "t+12s reset on 5% of tabs"


def test_node_sigterm_stops_node_1_of_a_cluster_mid_phase() -> None:
    s = load_sim_scenario("node-sigterm")
    assert (s.users, s.tabs, s.duration_seconds) == (150, 2, 30.0)
    assert s.incidents == (Incident(at=12.0, stop_node=1),)
    assert s.stopped_nodes == (1,)
    assert not s.restarts
    assert s.incidents[0].describe() == "t+12s stop node 1"
    assert s.thresholds.lost == 0
    # It offers more than its throughput bar, so that criterion is tested.
    assert s.offered_per_second > s.thresholds.delivered_per_second


def test_stopped_nodes_come_in_the_order_they_are_stopped() -> None:
    s = scenario(
        load={
            "duration_seconds": 10,
            "incidents": [{"at": 5, "stop_node": 2}, {"at": 1, "stop_node": 0}],
        }
    )
    assert s.stopped_nodes == (0, 2)
    assert scenario(load={}).stopped_nodes == ()


def test_a_scenario_by_path_and_its_name_from_the_file(tmp_path: Path) -> None:
    raw = copy.deepcopy(GOOD)
    del raw["scenario"], raw["title"]
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert find_scenario(str(path)) == path
    s = load_sim_scenario(str(path))
    assert (s.name, s.title) == ("mine", "mine.yaml")
    assert dict(s.channels) == {"news": "private-news", "feed": "feed"}
    assert s.alerts == (("news.posted", "news"), ("x", "feed"))


def test_an_unknown_scenario_lists_the_bundled_ones() -> None:
    with pytest.raises(UsageError) as raised:
        load_sim_scenario("nope")
    assert str(raised.value) == (
        "unknown scenario 'nope' (bundled: admin-alerts, flaky-network, node-sigterm,"
        " restart-under-load)"
    )


def test_a_missing_scenario_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^no scenario file at .*gone\.yaml$"):
        load_sim_scenario(str(tmp_path / "gone.yaml"))
    with pytest.raises(UsageError, match=r"^no scenario file at "):
        load_sim_scenario(str(tmp_path))  # a directory that exists is no file


def test_a_file_that_is_not_yaml_or_not_a_mapping(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("load: [unclosed\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"^broken\.yaml: not valid YAML: "):
        load_sim_scenario(str(broken))
    listed = tmp_path / "listed.yaml"
    listed.write_text("- 1\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"^listed\.yaml: a scenario is a mapping$"):
        load_sim_scenario(str(listed))


def test_the_file_name_is_in_the_message_of_a_file_read_from_disk(tmp_path: Path) -> None:
    raw = copy.deepcopy(GOOD)
    raw["load"]["tabs"] = 0
    path = tmp_path / "sized.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(UsageError) as raised:
        load_sim_scenario(str(path))
    assert str(raised.value) == "sized.yaml: load.tabs must be a whole number from 1 to 20, got 0"


# -- the defaults and a full load section ---------------------------------------------------------


def test_defaults_of_a_bare_load_section() -> None:
    s = scenario(load={k: None for k in GOOD["load"]})
    assert (s.users, s.tabs, s.ramp_seconds, s.duration_seconds) == (100, 2, 10.0, 30.0)
    assert (s.settle_seconds, s.publish_per_second, s.delivery_grace_seconds) == (3.0, 1.0, 1.0)
    assert (s.latency_ms, s.jitter_ms, s.bytes_per_second) == (0.0, 0.0, 0)
    assert s.incidents == ()
    assert s.thresholds == Thresholds(1000.0, 1000.0, 1.0, 0)


def test_every_field_is_read() -> None:
    s = scenario(
        load={
            "settle_seconds": 2,
            "delivery_grace_seconds": 0.5,
            "client": {"activity_timeout": 4, "pong_timeout": 2, "retry_jitter_seconds": 0.3},
            "network": {"latency_ms": 10, "jitter_ms": 5, "bytes_per_second": 9000},
            "thresholds": {
                "connect_p99_ms": 200,
                "delivered_per_second": 50,
                "recovered_share": 0.9,
                "lost": 3,
            },
            "incidents": [
                {"at": 0, "restart": True},
                {"at": 1.5, "fault": "stall", "direction": "down", "for": 2, "share": 0.5},
                {"at": 3, "fault": "cut_after", "bytes": 10, "direction": "up", "share": 1},
            ],
        }
    )
    assert s.settle_seconds == 2.0
    assert s.delivery_grace_seconds == 0.5
    assert s.client == ClientBehaviour(4.0, 2.0, 0.3)
    assert (s.latency_ms, s.jitter_ms, s.bytes_per_second) == (10.0, 5.0, 9000)
    assert s.thresholds == Thresholds(200.0, 50.0, 0.9, 3)
    assert s.incidents[1] == Incident(at=1.5, fault=Stall("down"), share=0.5, lasts=2.0)
    assert s.incidents[2].fault is not None
    assert s.incidents[2].fault.params() == {"bytes": 10, "direction": "up"}
    assert s.incidents[2].lasts is None


# -- mistakes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ({"speed": 1}, "load: unknown field(s) speed (known: client, delivery_grace_seconds,"),
        ({"client": {"retries": 3}}, "load.client: unknown field(s) retries (known:"),
        ({"network": {"loss": 0.1}}, "load.network: unknown field(s) loss (known: bytes_per"),
        ({"thresholds": {"p50": 1}}, "load.thresholds: unknown field(s) p50 (known: connect_"),
        ({"client": {"a": 1, "b": 2}}, "load.client: unknown field(s) a, b (known:"),
    ],
)
def test_unknown_fields_are_named_with_the_known_ones(
    section: dict[str, Any], fragment: str
) -> None:
    assert fragment in refused(load=section)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"users": 0}, "load.users must be a whole number from 1 to 100000, got 0"),
        ({"users": 2.5}, "load.users must be a whole number from 1 to 100000, got 2.5"),
        ({"users": True}, "load.users must be a whole number from 1 to 100000, got True"),
        ({"tabs": 21}, "load.tabs must be a whole number from 1 to 20, got 21"),
        ({"tabs": "2"}, "load.tabs must be a whole number from 1 to 20, got '2'"),
        ({"ramp_seconds": -1}, "load.ramp_seconds must be a number of at least 0, got -1"),
        ({"duration_seconds": 0.5}, "load.duration_seconds must be a number of at least 1"),
        ({"settle_seconds": "3"}, "load.settle_seconds must be a number of at least 0, got '3'"),
        ({"publish_per_second": 0}, "load.publish_per_second must be a number of at least 0.01"),
        ({"delivery_grace_seconds": "1s"}, "load.delivery_grace_seconds must be a number"),
        ({"ramp_seconds": float("nan")}, "load.ramp_seconds must be a number of at least 0"),
        ({"client": {"pong_timeout": 0.1}}, "load.client.pong_timeout must be a number of at"),
        ({"client": {"activity_timeout": 0}}, "load.client.activity_timeout must be a number"),
        ({"client": {"retry_jitter_seconds": -1}}, "load.client.retry_jitter_seconds must be"),
        ({"network": {"latency_ms": -5}}, "load.network.latency_ms must be a number of at least"),
        ({"network": {"jitter_ms": False}}, "load.network.jitter_ms must be a number"),
        ({"network": {"bytes_per_second": 1.5}}, "load.network.bytes_per_second must be a whole"),
        ({"thresholds": {"connect_p99_ms": -1}}, "load.thresholds.connect_p99_ms must be a num"),
        ({"thresholds": {"delivered_per_second": "x"}}, "load.thresholds.delivered_per_second"),
        ({"thresholds": {"recovered_share": 1.5}}, "load.thresholds.recovered_share must be a"),
        ({"thresholds": {"lost": -1}}, "load.thresholds.lost must be a whole number from 0 to"),
        ({"client": 5}, "load.client must be a mapping, got 5"),
        ({"network": [1]}, "load.network must be a mapping, got [1]"),
        ({"thresholds": "strict"}, "load.thresholds must be a mapping, got 'strict'"),
        ({"incidents": {"at": 1}}, "load.incidents must be a list, got {'at': 1}"),
    ],
)
def test_bad_values_name_the_field(section: dict[str, Any], message: str) -> None:
    assert message in refused(load=section)


def incident_refused(*incidents: Any, duration: float = 10) -> str:
    return refused(load={"incidents": list(incidents), "duration_seconds": duration})


@pytest.mark.parametrize(
    ("incident", "message"),
    [
        (
            {"at": 1, "restart": True, "share": 0.5},
            "load.incidents[0]: a restart takes only 'at' (not share)",
        ),
        (
            {"at": 1, "restart": True, "for": 2, "fault": "reset"},
            "load.incidents[0]: a restart takes only 'at' (not fault, for)",
        ),
        ({"at": 1, "restart": False}, "load.incidents[0].restart must be true (or left out), got"),
        ({"at": 1, "restart": "yes"}, "load.incidents[0].restart must be true"),
        (
            {"at": 1},
            "load.incidents[0]: give 'restart: true', 'stop_node: N' or a proxy 'fault'"
            " (docs/proxy.md)",
        ),
        ({"at": 1, "fault": 7, "share": 1}, "load.incidents[0]: give 'restart: true', 'stop_nod"),
        (
            {"at": 1, "stop_node": 1, "share": 0.5},
            "load.incidents[0]: a stop_node takes only 'at' (not share)",
        ),
        (
            {"at": 1, "stop_node": 1, "restart": True},
            "load.incidents[0]: a stop_node takes only 'at' (not restart)",
        ),
        (
            {"at": 1, "stop_node": -1},
            "load.incidents[0].stop_node must be a whole number from 0 to 99, got -1",
        ),
        ({"at": 1, "stop_node": "one"}, "load.incidents[0].stop_node must be a whole number"),
        ({"at": 1, "stop_node": True}, "load.incidents[0].stop_node must be a whole number"),
        ({"restart": True}, "load.incidents[0].at must be a number of at least 0, got None"),
        ({"at": -1, "restart": True}, "load.incidents[0].at must be a number of at least 0"),
        (
            {"at": 1, "fault": "reset", "for": 3, "share": 0.5},
            "load.incidents[0]: 'for' applies to a stall only (a reset cannot be lifted)",
        ),
        (
            {"at": 1, "fault": "stall", "for": 0.05, "share": 0.5},
            "load.incidents[0].for must be a number of at least 0.1, got 0.05",
        ),
        (
            {"at": 1, "fault": "earthquake", "share": 0.5},
            "load.incidents[0]: unknown fault 'earthquake' (known: bandwidth, cut_after,",
        ),
        (
            {"at": 1, "fault": "reset", "direction": "up", "share": 0.5},
            "load.incidents[0]: reset: unknown field(s) direction (known: none)",
        ),
        (
            {"at": 1, "fault": "ws_close", "share": 0.5},
            "load.incidents[0]: ws_close: missing field(s) code",
        ),
        (
            {"at": 1, "fault": "stall", "direction": "sideways", "share": 0.5},
            "load.incidents[0]: stall: direction must be one of up, down, both",
        ),
        ({"at": 1, "fault": "reset", "share": 1.5}, "load.incidents[0].share must be a fraction"),
        (
            "reset",
            "load.incidents[0]: an incident is a mapping with at and restart, stop_node or fault",
        ),
    ],
)
def test_bad_incidents_name_the_incident(incident: Any, message: str) -> None:
    assert message in incident_refused(incident)


def test_the_index_of_the_bad_incident_is_named() -> None:
    good = {"at": 1, "restart": True}
    assert "load.incidents[2]: unknown fault 'x'" in incident_refused(
        good, good, {"at": 2, "fault": "x", "share": 1}
    )


@pytest.mark.parametrize("share", [0, 0.0, None])
def test_a_fault_on_no_tabs_is_refused(share: float | None) -> None:
    incident: dict[str, Any] = {"at": 1, "fault": "reset"}
    if share is not None:
        incident["share"] = share
    assert incident_refused(incident) == (
        "case.yaml: incident 't+1s reset on 0% of tabs' needs a share above 0"
    )


@pytest.mark.parametrize("at", [10, 10.0, 12])
def test_an_incident_at_or_after_the_end_is_refused(at: float) -> None:
    message = incident_refused({"at": at, "restart": True}, duration=10)
    assert message == (
        f"case.yaml: incident 't+{at:g}s restart the server' comes at or after the end of the"
        " measured phase (10s)"
    )
    fault = incident_refused({"at": at, "fault": "half_open", "share": 0.2}, duration=10)
    assert f"incident 't+{at:g}s half_open on 20% of tabs' comes at or after the end" in fault


def test_an_incident_just_before_the_end_is_allowed() -> None:
    s = scenario(load={"incidents": [{"at": 9.9, "restart": True}], "duration_seconds": 10})
    assert s.incidents == (Incident(at=9.9, restart=True),)


@pytest.mark.parametrize("name", ["presence-room", "presence-admin.alerts"])
def test_a_presence_channel_is_refused(name: str) -> None:
    message = refused(channels={"news": "private-news", "room": name})
    assert message == (
        "case.yaml: channel 'room': presence channels hold at most 100 members, so a simulation"
        " uses public and private channels"
    )


def test_no_load_section() -> None:
    raw = copy.deepcopy(GOOD)
    del raw["load"]
    with pytest.raises(UsageError) as raised:
        sim_scenario_from_mapping(raw, source="case.yaml")
    assert str(raised.value) == "case.yaml: no 'load' section: this scenario is not for simulate"
    raw["load"] = [1, 2]
    with pytest.raises(UsageError, match="no 'load' section"):
        sim_scenario_from_mapping(raw, source="case.yaml")


@pytest.mark.parametrize(
    ("top", "message"),
    [
        ({"channels": None}, "case.yaml: channels must map slots to channel names"),
        ({"channels": {}}, "case.yaml: channels must map slots to channel names"),
        ({"channels": {"news": " "}}, "case.yaml: channel 'news' has no name"),
        ({"alerts": []}, "case.yaml: alerts must be a non-empty list"),
        ({"alerts": [{"event": "x", "channel": "nowhere"}]}, "case.yaml: an alert needs an"),
        ({"alerts": [{"channel": "news"}]}, "case.yaml: an alert needs an event and one of"),
        ({"alerts": [{"event": "x", "channel": ["news"]}]}, "case.yaml: an alert needs an"),
        ({"alerts": ["news"]}, "case.yaml: an alert needs an event and one of the channel slots"),
    ],
)
def test_bad_channels_and_alerts(top: dict[str, Any], message: str) -> None:
    assert message in refused(**top)


def test_a_scenario_is_a_mapping() -> None:
    with pytest.raises(UsageError, match=r"^case\.yaml: a scenario is a mapping$"):
        sim_scenario_from_mapping(["load"], source="case.yaml")


# -- the command line's sizes ---------------------------------------------------------------------


def test_resized_applies_the_command_line() -> None:
    s = scenario()
    assert s.resized(None, None, None) is s
    bigger = s.resized(50, 3, 20)
    assert (bigger.users, bigger.tabs, bigger.duration_seconds) == (50, 3, 20.0)
    assert bigger.incidents == s.incidents
    assert bigger.publish_per_second == s.publish_per_second
    assert s.resized(7, None, None).tabs == s.tabs == 2
    assert s.resized(None, None, 2.5).duration_seconds == 2.5


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ((0, None, None), "--users must be a whole number from 1 to 100000, got 0"),
        ((100_001, None, None), "--users must be a whole number from 1 to 100000, got 100001"),
        ((None, 21, None), "--tabs must be a whole number from 1 to 20, got 21"),
        ((None, None, 0.5), "--duration must be a number of at least 1, got 0.5"),
    ],
)
def test_resized_checks_the_sizes(sizes: tuple[Any, Any, Any], message: str) -> None:
    with pytest.raises(UsageError) as raised:
        scenario().resized(*sizes)
    assert str(raised.value) == message


def test_a_shorter_duration_rechecks_the_incidents() -> None:
    s = scenario()  # a restart at 2 s of 10
    assert s.resized(None, None, 3).incidents == s.incidents
    with pytest.raises(UsageError) as raised:
        s.resized(None, None, 2)
    assert str(raised.value) == (
        "the command line: incident 't+2s restart the server' comes at or after the end of"
        " the measured phase (2s)"
    )
    with pytest.raises(UsageError, match=r"^the command line: incident 't\+10s restart"):
        load_sim_scenario("restart-under-load").resized(10, 1, 5)


def test_offered_per_second_is_every_event_to_every_tab() -> None:
    s = scenario()  # 4 events/s, 3 users x 2 tabs
    assert s.offered_per_second == 24.0
    assert s.resized(10, 4, None).offered_per_second == 160.0
    assert load_sim_scenario("restart-under-load").offered_per_second == 2 * 1000 * 2
    assert load_sim_scenario("admin-alerts").offered_per_second == 3 * 200 * 2
