from __future__ import annotations

import pytest

from reference_server.config import ConfigError, ServerConfig, load_config
from reference_server.faults import ClusterFault, Fault


def test_defaults() -> None:
    assert load_config([], {}) == ServerConfig()
    assert ServerConfig().port == 6001
    assert ServerConfig().host == "127.0.0.1"


def test_environment() -> None:
    config = load_config(
        [],
        {
            "PUSHER_REF_HOST": "::1",
            "PUSHER_REF_PORT": "0",
            "PUSHER_REF_APP_ID": "id",
            "PUSHER_REF_APP_KEY": "key",
            "PUSHER_REF_APP_SECRET": "secret",
            "PUSHER_REF_ACTIVITY_TIMEOUT": "0.5",
            "PUSHER_REF_PONG_TIMEOUT": "2",
            "PUSHER_REF_CLIENT_EVENTS": "true",
            "PUSHER_REF_MAX_EVENT_BYTES": "100",
            "PUSHER_REF_LOG_LEVEL": "DEBUG",
            "PUSHER_REF_FAULTS": "no_pong,first_channel_only",
        },
    )
    assert config == ServerConfig(
        host="::1",
        port=0,
        app_id="id",
        key="key",
        secret="secret",
        activity_timeout=0.5,
        pong_timeout=2.0,
        client_events=True,
        max_event_bytes=100,
        log_level="debug",
        faults=frozenset({Fault.NO_PONG, Fault.FIRST_CHANNEL_ONLY}),
    )


def test_flags_beat_the_environment() -> None:
    argv = ["--port", "7000", "--key", "k", "--no-client-events", "--activity-timeout", "3"]
    env = {"PUSHER_REF_PORT": "nonsense", "PUSHER_REF_CLIENT_EVENTS": "maybe"}
    config = load_config(argv, env)
    assert (config.port, config.key, config.client_events, config.activity_timeout) == (
        7000,
        "k",
        False,
        3.0,
    )
    assert load_config(["--client-events"], {}).client_events is True


def test_shutdown_timings() -> None:
    assert (ServerConfig().shutdown_spread, ServerConfig().drain_timeout) == (0.0, 2.0)
    config = load_config(
        ["--shutdown-spread", "1.5"],
        {"PUSHER_REF_DRAIN_TIMEOUT": "0", "PUSHER_REF_SHUTDOWN_SPREAD": "9"},
    )
    assert (config.shutdown_spread, config.drain_timeout) == (1.5, 0.0)


def test_cluster_settings() -> None:
    defaults = ServerConfig()
    assert (defaults.redis_url, defaults.node_id, defaults.node_timeout) == (None, None, 5.0)
    config = load_config(
        ["--node-id", "east-1"],
        {
            "PUSHER_REF_REDIS_URL": " redis://127.0.0.1:6379/0 ",
            "PUSHER_REF_NODE_ID": "ignored",
            "PUSHER_REF_NODE_TIMEOUT": "1.5",
            "PUSHER_REF_FAULTS": "no_pong, cluster_double_forward",
        },
    )
    assert config.redis_url == "redis://127.0.0.1:6379/0"
    assert (config.node_id, config.node_timeout) == ("east-1", 1.5)
    # Cluster faults are kept apart from the single server's.
    assert config.faults == {Fault.NO_PONG}
    assert config.cluster_faults == {ClusterFault.CLUSTER_DOUBLE_FORWARD}


def test_send_buffer_and_event_loop() -> None:
    defaults = ServerConfig()
    assert (defaults.send_buffer_limit, defaults.event_loop) == (1 << 20, "auto")
    config = load_config(["--send-buffer-limit", "65536"], {"PUSHER_REF_EVENT_LOOP": "asyncio"})
    assert (config.send_buffer_limit, config.event_loop) == (65536, "asyncio")


@pytest.mark.parametrize(
    ("argv", "env", "named"),
    [
        (["--port", "abc"], {}, "'abc'"),
        (["--port", "70000"], {}, "--port"),
        ([], {"PUSHER_REF_PORT": "x"}, "PUSHER_REF_PORT"),
        (["--activity-timeout", "0"], {}, "--activity-timeout"),
        (["--pong-timeout", "nan"], {}, "'nan'"),
        (["--max-event-bytes", "-1"], {}, "--max-event-bytes"),
        (["--log-level", "loud"], {}, "'loud'"),
        (["--key", ""], {}, "--key"),
        ([], {"PUSHER_REF_CLIENT_EVENTS": "yes please"}, "PUSHER_REF_CLIENT_EVENTS"),
        ([], {"PUSHER_REF_FAULTS": "no_pong,bogus"}, "'bogus'"),
        (["--bogus"], {}, "--bogus"),
        (["--port"], {}, "--port"),
        (["--drain-timeout", "-1"], {}, "--drain-timeout"),
        ([], {"PUSHER_REF_SHUTDOWN_SPREAD": "soon"}, "PUSHER_REF_SHUTDOWN_SPREAD"),
        (["--redis-url", "http://127.0.0.1:6379"], {}, "--redis-url"),
        (["--redis-url", "redis://"], {}, "needs a host"),
        ([], {"PUSHER_REF_REDIS_URL": "redis://h:99999"}, "PUSHER_REF_REDIS_URL"),
        (["--node-id", "a b"], {}, "--node-id"),
        (["--node-timeout", "0"], {}, "--node-timeout"),
        (["--send-buffer-limit", "0"], {}, "--send-buffer-limit"),
        ([], {"PUSHER_REF_EVENT_LOOP": "trio"}, "PUSHER_REF_EVENT_LOOP"),
        ([], {"PUSHER_REF_FAULTS": "cluster_no_forward,cluster_nope"}, "'cluster_nope'"),
    ],
)
def test_bad_values_are_named(argv: list[str], env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(argv, env)
    message = str(info.value)
    assert named in message
    assert "\n" not in message
