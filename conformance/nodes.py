"""The nodes of a clustered target: several servers that must look like one.

A target file may list ``nodes:``, each with its own ``ws_url`` and ``http_url`` (the app's
credentials are the same on every node). The ordinary checks talk to the first node; the
cluster checks (``specs/cluster.yaml``) name the node each connection and API call goes
through, as a number counted from 0 and taken modulo the number of nodes, so that one check
written for three nodes still runs (with two of its roles on one node) against two.

Two capabilities follow from the nodes rather than being declared, so that a single server can
never pass a cluster check by accident: ``cluster`` (two nodes or more) and ``node_control``
(the suite can stop the last node: it started the nodes itself, or that node has a ``stop``
command).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .errors import UsageError

__all__ = [
    "CLUSTER",
    "DERIVED_CAPABILITIES",
    "NODE_CONTROL",
    "Node",
    "capability_met",
    "derived_capabilities",
    "node_at",
    "parse_nodes",
    "refuse_declared",
]

CLUSTER = "cluster"
NODE_CONTROL = "node_control"
#: Capabilities the suite works out from ``nodes:``; a target may not declare them.
DERIVED_CAPABILITIES = frozenset({CLUSTER, NODE_CONTROL})

_NODE_KEYS = frozenset({"ws_url", "http_url", "stop"})

#: Checks a URL field: (value, what, schemes) -> the URL without a trailing slash.
UrlCheck = Callable[[object, str, Iterable[str]], str]


@dataclass(frozen=True)
class Node:
    """One server of a cluster. ``stop``: a shell command that stops this node and returns
    once it is down. The cluster checks use the last node's, and a crash will do for them; a
    simulation's ``stop_node`` incident uses the stopped node's and judges its drain (close
    4200 to every socket), so for that the command should stop it as a deploy does (SIGTERM)."""

    ws_url: str
    http_url: str
    stop: str | None = None

    def public(self) -> dict[str, str | None]:
        return {"ws_url": self.ws_url, "http_url": self.http_url, "stop": self.stop}


def parse_nodes(value: object, check_url: UrlCheck) -> tuple[Node, ...]:
    """The ``nodes:`` entry, checked, with one clear error for the first thing that is wrong."""
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        raise UsageError(f"nodes must be a non-empty list of {{ws_url, http_url}}, got {value!r}")
    nodes = []
    for number, entry in enumerate(value):
        where = f"nodes[{number}]"
        if not isinstance(entry, Mapping):
            raise UsageError(f"{where} must be a mapping with ws_url and http_url, got {entry!r}")
        unknown = set(entry) - _NODE_KEYS
        if unknown:
            raise UsageError(
                f"{where} has unknown field(s): {', '.join(sorted(map(str, unknown)))} "
                f"(known: {', '.join(sorted(_NODE_KEYS))})"
            )
        for required in ("ws_url", "http_url"):
            if entry.get(required) in (None, ""):
                raise UsageError(f"{where} is missing {required!r}")
        stop = entry.get("stop")
        if stop is not None and (not isinstance(stop, str) or not stop.strip()):
            raise UsageError(f"{where}.stop must be a shell command, got {stop!r}")
        nodes.append(
            Node(
                ws_url=check_url(entry["ws_url"], f"{where}.ws_url", ("ws", "wss")),
                http_url=check_url(entry["http_url"], f"{where}.http_url", ("http", "https")),
                stop=stop,
            )
        )
    seen: dict[str, int] = {}
    for number, node in enumerate(nodes):
        if node.ws_url in seen:
            raise UsageError(
                f"nodes[{number}].ws_url is the same as nodes[{seen[node.ws_url]}]'s "
                f"({node.ws_url}): each node must be a server of its own"
            )
        seen[node.ws_url] = number
    return tuple(nodes)


def derived_capabilities(nodes: tuple[Node, ...], *, suite_controls_nodes: bool) -> frozenset[str]:
    """What the nodes make checkable: ``cluster`` from two nodes, ``node_control`` when the
    last node can also be stopped (by the suite, or by its ``stop`` command)."""
    if len(nodes) < 2:
        return frozenset()
    if suite_controls_nodes or nodes[-1].stop is not None:
        return frozenset({CLUSTER, NODE_CONTROL})
    return frozenset({CLUSTER})


def refuse_declared(capabilities: Iterable[str]) -> None:
    """A target may not claim a cluster capability: it follows from ``nodes:`` alone."""
    declared = sorted(set(capabilities) & DERIVED_CAPABILITIES)
    if declared:
        raise UsageError(
            f"capability {', '.join(declared)} is not declared: it follows from the target's "
            "nodes: (two or more; node_control also needs a stop command on the last node)"
        )


def node_at(nodes: tuple[Node, ...], number: int) -> Node:
    """Node ``number`` of a cluster, modulo its size (see the module's docstring)."""
    if not nodes:
        raise UsageError("this target names no nodes: a check cannot pick one")
    return nodes[number % len(nodes)]


def capability_met(needed: str | None, declared: Iterable[str]) -> bool:
    """Whether a requirement's ``capability`` (names joined by ``+``: all of them) is met."""
    if not needed:
        return True
    have = set(declared)
    return all(name in have for name in needed.split("+"))
