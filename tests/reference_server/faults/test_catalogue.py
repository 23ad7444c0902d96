from __future__ import annotations

import re
from pathlib import Path

import pytest

from reference_server.faults import ClusterFault, Fault, parse_faults, split_faults

DOC = Path(__file__).resolve().parents[3] / "docs" / "reference-server.md"


def documented_faults() -> set[str]:
    section = DOC.read_text(encoding="utf-8").split("## Fault switches", 1)[1]
    return set(re.findall(r"^\| `([a-z0-9_]+)` \|", section, flags=re.MULTILINE))


def test_faults_are_exactly_the_documented_ones() -> None:
    assert {fault.value for fault in Fault} == documented_faults()


def test_cluster_faults_are_documented_apart_from_the_self_test_faults() -> None:
    """The single-server self-test runs the faults of fixtures/faults.yaml; the cluster
    faults are documented with the cluster and listed nowhere it reads."""
    text = DOC.read_text(encoding="utf-8")
    cluster_section = text.split("## Running several nodes", 1)[1].split("\n## ", 1)[0]
    for fault in ClusterFault:
        assert f"`{fault.value}`" in cluster_section
    assert not {fault.value for fault in ClusterFault} & documented_faults()


def test_split_faults() -> None:
    assert split_faults("") == (frozenset(), frozenset())
    assert split_faults("cluster_no_forward, no_pong,") == (
        {Fault.NO_PONG},
        {ClusterFault.CLUSTER_NO_FORWARD},
    )
    with pytest.raises(ValueError, match="unknown fault name 'cluster_x'"):
        split_faults("cluster_x")


def test_parse_faults() -> None:
    assert parse_faults("") == frozenset()
    assert parse_faults(" no_pong , ws_ping_ignored,") == {Fault.NO_PONG, Fault.WS_PING_IGNORED}
    assert parse_faults(["no_pong"]) == {Fault.NO_PONG}


@pytest.mark.parametrize("text", ["nope", "no_pong,NO_PONG", "no-pong"])
def test_unknown_fault_names_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="unknown fault name"):
        parse_faults(text)


def test_fixture_lists_every_fault() -> None:
    """fixtures/faults.yaml names each fault once, with at least one requirement."""
    import yaml

    fixture = DOC.parents[1] / "fixtures" / "faults.yaml"
    listed = yaml.safe_load(fixture.read_text(encoding="utf-8"))["faults"]
    assert set(listed) == {fault.value for fault in Fault}
    assert all(isinstance(reqs, list) and reqs for reqs in listed.values())
