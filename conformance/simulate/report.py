"""A simulation's figures for people and machines: JSON (``simulation.json``), a Markdown and
an HTML section (``simulation.md``, ``simulation.html``), and the rows both share with the
console table, so every view says the same thing in the same words.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator, Sequence
from typing import Any

from .coordinator import SimulationResult
from .ledger import percentile

__all__ = ["evidence_lines", "figure_rows", "to_html", "to_json", "to_markdown"]

FORMAT_VERSION = 1


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def _spread(values: list[float] | Sequence[float]) -> str:
    return f"{_ms(percentile(values, 50))} / {_ms(percentile(values, 99))}"


def figure_rows(result: SimulationResult) -> list[tuple[str, str]]:
    """(figure, value) in the order a reader wants them."""
    f = result.figures
    slowest = f.slowest_user()
    rows = [
        ("virtual users x tabs", f"{f.users:,} x {result.scenario.tabs} = {f.tabs:,} tabs"),
        ("connections opened", f"{f.connections:,}"),
        ("connect time p50 / p99", _spread(f.connect_ms)),
        ("delivery latency p50 / p99", _spread(f.latency_ms)),
        ("events published (failed)", f"{f.published:,} ({f.publish_failed:,})"),
        ("delivered / owed", f"{f.delivered:,} / {f.owed:,}"),
        ("lost", f"{f.lost:,}"),
        ("duplicated", f"{f.duplicates:,}"),
        ("out of order", f"{f.out_of_order:,}"),
        ("messages delivered per second", f"{f.delivered_per_second:,.0f}"),
        ("unseen while away (no history in the protocol)", f"{f.unseen_while_away:,}"),
        ("reconnects", f"{len(f.reconnect_ms):,}"),
        ("reconnect time p50 / p99", _spread(f.reconnect_ms)),
        ("users recovered", f"{f.recovered_users:,} / {f.users:,}"),
        ("tabs refused (4000-4099, not retried)", f"{f.refused_tabs:,}"),
        ("connection ends", ", ".join(f"{k} x{v:,}" for k, v in f.closes.items()) or "—"),
    ]
    if slowest is not None:
        rows.append(
            (
                "slowest user",
                f"{slowest.user}: connect {_ms(slowest.connect_ms)}, worst reconnect"
                f" {_ms(slowest.worst_reconnect_ms)}, lost {slowest.lost}"
                + ("" if slowest.recovered else ", not recovered"),
            )
        )
    rows += _cluster_rows(result)
    rows.append(("load generator", result.generator.explain()))
    injected = {k: v for k, v in result.injections.items() if not k.startswith("error")}
    errors = {k[7:]: v for k, v in result.injections.items() if k.startswith("error: ")}
    if injected:
        rows.append(
            ("proxy injections", ", ".join(f"{k} x{v:,}" for k, v in sorted(injected.items())))
        )
    if errors:
        rows.append(
            ("proxy could not", ", ".join(f"{k} x{v:,}" for k, v in sorted(errors.items())))
        )
    return rows


def _cluster_rows(result: SimulationResult) -> list[tuple[str, str]]:
    """Each node's deliveries, and what the tabs of a stopped node went through."""
    rows = [
        (
            f"node {n}",
            f"{c.connections:,} connections, delivered / owed {c.owed - c.lost:,} / {c.owed:,},"
            f" lost {c.lost:,}, duplicated {c.duplicates:,}, out of order {c.out_of_order:,}",
        )
        for n, c in result.figures.per_node.items()
    ]
    for s in result.stopped:
        through = ", ".join(f"node {n} x{count:,}" for n, count in s.back_through.items())
        down = "not by the end of the run" if s.down_after is None else f"{s.down_after:.1f} s"
        rows += [
            (f"stopped node {s.node}: down after", down),
            (f"stopped node {s.node}: tabs on it", f"{s.tabs:,}"),
            (f"stopped node {s.node}: closed with 4200", f"{s.closed_4200:,} / {s.tabs:,}"),
            (
                f"stopped node {s.node}: back through another node",
                f"{s.came_back:,} / {s.tabs:,}" + (f" ({through})" if through else ""),
            ),
            (f"stopped node {s.node}: reconnect time p50 / p99", _spread(s.reconnect_ms)),
        ]
        if s.not_closed_examples:
            rows.append(
                (f"stopped node {s.node}: not closed with 4200", "; ".join(s.not_closed_examples))
            )
        if s.not_back_examples:
            rows.append((f"stopped node {s.node}: not back", "; ".join(s.not_back_examples)))
    return rows


def to_json(result: SimulationResult) -> dict[str, Any]:
    f = result.figures
    s = result.scenario

    def spread(values: Any) -> dict[str, float | None]:
        return {"p50": percentile(values, 50), "p99": percentile(values, 99), "count": len(values)}

    return {
        "format": FORMAT_VERSION,
        "kind": "simulation",
        "scenario": {
            "name": s.name,
            "title": s.title,
            "users": s.users,
            "tabs": s.tabs,
            "ramp_seconds": s.ramp_seconds,
            "duration_seconds": s.duration_seconds,
            "publish_per_second": s.publish_per_second,
            "incidents": [i.describe() for i in s.incidents],
        },
        "target": result.target.public(),
        "seed": result.seed,
        "started_at": result.started_at,
        "seconds": round(result.seconds, 3),
        "figures": {
            "users": f.users,
            "tabs": f.tabs,
            "connections": f.connections,
            "connect_ms": spread(f.connect_ms),
            "reconnect_ms": spread(f.reconnect_ms),
            "latency_ms": spread(f.latency_ms),
            "published": f.published,
            "publish_failed": f.publish_failed,
            "owed": f.owed,
            "delivered": f.delivered,
            "lost": f.lost,
            "duplicates": f.duplicates,
            "out_of_order": f.out_of_order,
            "delivered_per_second": round(f.delivered_per_second, 1),
            "unseen_while_away": f.unseen_while_away,
            "recovered_users": f.recovered_users,
            "refused_tabs": f.refused_tabs,
            "connection_ends": dict(f.closes),
            "slowest_user": (u := f.slowest_user()) and u.__dict__,
            "per_node": {str(n): c.__dict__ for n, c in f.per_node.items()},
            "stopped_nodes": [
                {
                    "node": s.node,
                    "stopped_at": s.stopped_at,
                    "down_after": s.down_after,
                    "tabs": s.tabs,
                    "closed_4200": s.closed_4200,
                    "came_back": s.came_back,
                    "back_through": {str(n): c for n, c in s.back_through.items()},
                    "reconnect_ms": spread(s.reconnect_ms),
                    "not_closed_examples": list(s.not_closed_examples),
                    "not_back_examples": list(s.not_back_examples),
                }
                for s in result.stopped
            ],
        },
        "generator": {
            **result.generator.__dict__,
            "saturated": result.generator.saturated,
        },
        "readiness": {
            "verdict": result.readiness.verdict,
            "note": result.readiness.note,
            "criteria": [c.__dict__ for c in result.readiness.criteria],
        },
        "proxy_injections": result.injections,
        "publish_failures": result.publish_failures,
        "timeline": list(result.timeline),
    }


def evidence_lines(result: SimulationResult) -> Iterator[str]:
    """JSON lines an auditor can recount the figures from: every publish, then every
    connection of every tab (wall-clock seconds)."""
    for p in result.publications:
        yield json.dumps({"publication": p.__dict__})
    for life in result.lives:
        yield json.dumps({"life": life.to_dict()})


def to_markdown(result: SimulationResult) -> str:
    r = result.readiness
    lines = [
        f"## Simulation: {result.scenario.title}",
        "",
        f"Target `{result.target.name}` ({result.target.ws_url}), scenario"
        f" `{result.scenario.name}`, seed {result.seed}, {result.seconds:.0f} s.",
        "",
        f"**Production readiness: {r.verdict.upper()}** ({r.note}). This verdict is about"
        " capacity and recovery under this scenario on this machine; it is not part of the"
        " conformance outcomes.",
        "",
        "| criterion | measured | bar | met |",
        "|---|---|---|---|",
        *(f"| {c.name} | {c.measured} | {c.bar} | {_met(c.met, c.shown)} |" for c in r.criteria),
        "",
        "| figure | value |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in figure_rows(result)),
    ]
    if result.timeline:
        lines += ["", "Timeline:", "", *(f"- {line.strip()}" for line in result.timeline)]
    return "\n".join(lines) + "\n"


def _met(met: bool | None, shown: str) -> str:
    return "**no**" if met is False else shown


def to_html(result: SimulationResult) -> str:
    r = result.readiness
    e = html.escape
    criteria = "".join(
        f"<tr><td>{e(c.name)}</td><td>{e(c.measured)}</td><td>{e(c.bar)}</td>"
        f'<td class="{"missed" if c.met is False else "met"}">{c.shown}</td></tr>'
        for c in r.criteria
    )
    figures = "".join(
        f"<tr><td>{e(name)}</td><td>{e(value)}</td></tr>" for name, value in figure_rows(result)
    )
    timeline = "".join(f"<li>{e(line.strip())}</li>" for line in result.timeline)
    return (
        '<!doctype html><meta charset="utf-8">'
        f"<title>Simulation: {e(result.scenario.title)}</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em}"
        ".met{color:#060}.missed{color:#a00;font-weight:bold}</style>"
        f'<section id="simulation"><h2>Simulation: {e(result.scenario.title)}</h2>'
        f"<p>Target <code>{e(result.target.name)}</code> ({e(result.target.ws_url)}), scenario"
        f" <code>{e(result.scenario.name)}</code>, seed {result.seed},"
        f" {result.seconds:.0f} s.</p>"
        f"<p><strong>Production readiness: {e(r.verdict.upper())}</strong> ({e(r.note)})."
        " Not part of the conformance outcomes.</p>"
        "<table><tr><th>criterion</th><th>measured</th><th>bar</th><th>met</th></tr>"
        f"{criteria}</table><h3>Figures</h3><table>{figures}</table>"
        + (f"<h3>Timeline</h3><ul>{timeline}</ul>" if timeline else "")
        + "</section>\n"
    )
