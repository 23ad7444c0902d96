"""Certifying clusters: ``--bundled-nodes`` (redis-server and reference nodes of the suite's
own), and a target file's ``nodes:``.

The fast tests check the refusals. The ``cluster`` tests (deselected by default; they start
redis-server and several servers) run the cluster spec: it passes against 2 and 3 sound nodes,
and a node that forwards nothing, or forwards everything twice, turns exactly the requirements
it breaks red while the ordinary checks on node 0 stay green.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.bundled import BUNDLED_QUOTA, BundledServer, start_bundled
from conformance.bundled_cluster import start_bundled_cluster, start_redis
from conformance.errors import UsageError
from conformance.target_apps import bundled_apps

CLUSTER_REQUIREMENTS = {f"CLUSTER-0{n}" for n in range(1, 9)}

#: Seconds one certification may take before the test gives up on it (and kills what it
#: started, by its process group).
RUN_TIMEOUT = 180


def test_a_missing_redis_server_is_one_clear_line() -> None:
    with pytest.raises(UsageError, match="--bundled-nodes needs no-such-redis-server-binary"):
        start_redis("no-such-redis-server-binary")


@pytest.mark.parametrize("count", [0, 1, 6])
def test_a_cluster_has_two_to_five_bundled_nodes(count: int, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=f"--bundled-nodes must be 2 to 5, got {count}"):
        start_bundled_cluster(count, tmp_path)


def test_bundled_nodes_with_a_target_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "conformance", "run", "--bundled-nodes", "2",
         "--ws-url", "ws://127.0.0.1:1", "--http-url", "http://127.0.0.1:1",
         "--app-id", "1", "--key", "k", "--secret", "s", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--bundled-nodes starts a cluster of its own" in done.stderr
    assert "Traceback" not in done.stderr


# -- certifications (marker cluster) ------------------------------------------------------------


def certify(
    report_dir: Path, *args: str, faults: str = ""
) -> tuple[int, dict[str, str], dict[str, str]]:
    """Run ``conformance run ARGS``; its exit status, each requirement's verdict and each
    check's outcome."""
    environ = {**os.environ, "PUSHER_REF_FAULTS": faults}
    command = [sys.executable, "-m", "conformance", "run", "--report-dir", str(report_dir), *args]
    process = subprocess.Popen(
        command,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: a stuck run is stopped whole
    )
    try:
        output, _ = process.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=10)
        pytest.fail(f"conformance run did not finish within {RUN_TIMEOUT} s: {command}")
    results_file = report_dir / "results.json"
    assert results_file.is_file(), output[-2000:]
    results: dict[str, Any] = json.loads(results_file.read_text())
    verdicts = {r["id"]: r["outcome"] for r in results["requirements"] if r["checks"]}
    checks = {c["id"]: c["outcome"] for r in results["requirements"] for c in r["checks"]}
    return process.returncode, verdicts, checks


def needs_redis() -> None:
    if shutil.which("redis-server") is None:
        if os.environ.get("CONFORMANCE_DEPLOY_REQUIRED") == "1":
            pytest.fail("redis-server is not installed (CONFORMANCE_DEPLOY_REQUIRED=1)")
        pytest.skip("redis-server is not installed")


@pytest.mark.cluster
@pytest.mark.parametrize("nodes", [2, 3])
def test_the_cluster_spec_passes_against_sound_bundled_nodes(nodes: int, tmp_path: Path) -> None:
    needs_redis()
    code, verdicts, checks = certify(
        tmp_path, "--bundled-nodes", str(nodes), "--check", "CLUSTER-*"
    )
    assert verdicts == dict.fromkeys(CLUSTER_REQUIREMENTS, "PASS"), checks
    assert set(checks.values()) == {"passed"}, checks
    assert checks["CLUSTER-08/dead-node-members-removed"] == "passed"  # ran, not skipped
    assert code == 0


#: The checks that send something through node 1 to the other nodes, each one's own way.
THROUGH_NODE_1 = {
    "CLUSTER-01/through-node-1",  # an HTTP publish
    "CLUSTER-04/crosses-both-ways",  # a client event from a connection on node 1
    "CLUSTER-05/every-node",  # a message to a user, published through node 1
}


@pytest.mark.cluster
def test_a_node_that_forwards_nothing_fails_what_crosses_from_it(tmp_path: Path) -> None:
    needs_redis()
    code, verdicts, checks = certify(
        tmp_path, "--bundled-nodes", "2", "--check", "CLUSTER-*", "--check", "DELIV-*",
        "--check", "CHAN-PRES-*", faults="cluster_no_forward",
    )  # fmt: skip
    failed = {check for check, outcome in checks.items() if outcome == "failed"}
    assert failed >= THROUGH_NODE_1 | {
        "CLUSTER-02/member-added-crosses",  # u1 joins through node 1
        "CLUSTER-06/through-node-1",  # the termination is sent to node 1
    }
    # What node 0 sends still crosses, and the ordinary checks, all on node 0, stay green.
    for sound in ("CLUSTER-01/through-node-0", "CLUSTER-06/through-node-0"):
        assert checks[sound] == "passed"
    assert {r for r in verdicts if r.startswith("CLUSTER-") and verdicts[r] == "DISPUTED"} >= {
        "CLUSTER-01", "CLUSTER-02", "CLUSTER-04", "CLUSTER-05", "CLUSTER-06",
    }  # fmt: skip
    ordinary = {r: v for r, v in verdicts.items() if not r.startswith("CLUSTER-")}
    assert ordinary
    assert set(ordinary.values()) == {"PASS"}, ordinary
    assert code == 3  # CLUSTER-08 is inconclusive: the dead node's member never showed up


@pytest.mark.cluster
def test_a_node_that_forwards_twice_fails_exactly_once_and_nothing_else(tmp_path: Path) -> None:
    needs_redis()
    code, verdicts, checks = certify(
        tmp_path, "--bundled-nodes", "2", "--check", "CLUSTER-*", "--check", "DELIV-*",
        "--check", "CHAN-PRES-*", faults="cluster_double_forward",
    )  # fmt: skip
    failed = {check for check, outcome in checks.items() if outcome == "failed"}
    assert failed == THROUGH_NODE_1, checks
    assert {check for check, outcome in checks.items() if outcome != "failed"} == {
        check for check in checks if check not in THROUGH_NODE_1
    }
    assert set(checks.values()) == {"passed", "failed"}, checks
    assert {r for r, v in verdicts.items() if v != "PASS"} == {
        "CLUSTER-01", "CLUSTER-04", "CLUSTER-05",
    }, verdicts  # fmt: skip
    # Every cluster rule is inferred: DISPUTED, which fails the run only with --strict.
    assert code == 0, verdicts


# -- a target file's nodes: (marker cluster; no Redis needed) -----------------------------------


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[BundledServer, BundledServer]]:
    """Two reference servers of one app that share nothing: a "cluster" that is not one."""
    apps = bundled_apps(BUNDLED_QUOTA)
    first = start_bundled(tmp_path / "a.log", faults="", shared_apps=apps)
    second = start_bundled(tmp_path / "b.log", faults="", shared_apps=apps)
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


def target_file(
    folder: Path, first: BundledServer, nodes: list[dict[str, str]], **more: Any
) -> Path:
    path = folder / "cluster.yaml"
    data = {
        **more,
        "name": "a cluster under test",
        "app_id": first.target.app_id,
        "key": first.target.key,
        "secret": first.target.secret,
        "capabilities": ["client_events", "user_authentication", "cache_channels"],
        "nodes": nodes,
    }
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.cluster
def test_one_server_seen_through_two_addresses_is_a_sound_cluster(
    two_servers: tuple[BundledServer, BundledServer], tmp_path: Path
) -> None:
    first, _ = two_servers
    port = first.target.ws_url.rsplit(":", 1)[1]
    file = target_file(
        tmp_path,
        first,
        [
            {"ws_url": f"ws://127.0.0.1:{port}", "http_url": f"http://127.0.0.1:{port}"},
            {"ws_url": f"ws://localhost:{port}", "http_url": f"http://localhost:{port}"},
        ],
    )
    code, verdicts, _ = certify(tmp_path / "report", "--target", str(file), "--check", "CLUSTER-*")
    # Without a stop command the dead-node rule does not apply: never a pass.
    assert verdicts == {
        **dict.fromkeys(CLUSTER_REQUIREMENTS, "PASS"),
        "CLUSTER-08": "OPTIONAL_ABSENT",
    }
    assert code == 0


@pytest.mark.cluster
def test_two_servers_that_share_nothing_pass_no_cluster_requirement(
    two_servers: tuple[BundledServer, BundledServer], tmp_path: Path
) -> None:
    first, second = two_servers
    file = target_file(
        tmp_path,
        first,
        [
            {"ws_url": first.target.ws_url, "http_url": first.target.http_url},
            {
                "ws_url": second.target.ws_url,
                "http_url": second.target.http_url,
                "stop": f"kill -9 {second.process.pid}",
            },
        ],
    )
    _, verdicts, _ = certify(tmp_path / "report", "--target", str(file), "--check", "CLUSTER-*")
    assert set(verdicts) == CLUSTER_REQUIREMENTS
    assert "PASS" not in verdicts.values(), verdicts


@pytest.mark.cluster
def test_a_cluster_that_never_notices_a_dead_node_fails_cluster_08(
    redis_server: str, tmp_path: Path
) -> None:
    """Two nodes on one Redis that wait 10 minutes before they call a silent node dead: the
    killed node's member outlives the bound (activity + pong timeout + 30 s = 38 s here)."""
    sluggish = ("--redis-url", redis_server, "--node-timeout", "600")
    apps = bundled_apps(BUNDLED_QUOTA)
    first = start_bundled(
        tmp_path / "a.log", faults="", shared_apps=apps, extra_args=(*sluggish, "--node-id", "a")
    )
    try:
        second = start_bundled(
            tmp_path / "b.log",
            faults="",
            shared_apps=apps,
            extra_args=(*sluggish, "--node-id", "b"),
        )
        try:
            file = target_file(
                tmp_path,
                first,
                [
                    {"ws_url": first.target.ws_url, "http_url": first.target.http_url},
                    {
                        "ws_url": second.target.ws_url,
                        "http_url": second.target.http_url,
                        "stop": f"kill -9 {second.process.pid}",
                    },
                ],
                timings={"activity_timeout": 3, "pong_timeout": 5},
            )
            _, verdicts, checks = certify(
                tmp_path / "report", "--target", str(file), "--check", "CLUSTER-08*"
            )
        finally:
            second.stop()
    finally:
        first.stop()
    assert checks == {"CLUSTER-08/dead-node-members-removed": "failed"}
    assert verdicts == {"CLUSTER-08": "DISPUTED"}
