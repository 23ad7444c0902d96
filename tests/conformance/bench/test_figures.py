"""Each figure's unit and direction: rates are better higher, times and memory lower, and
counts that only say how much was done have no direction."""

from __future__ import annotations

import pytest

from conformance.bench.figures import (
    better_direction,
    format_figure,
    headline,
    label,
    ordered_figures,
    short,
)
from conformance.bench.model import PhaseResult


@pytest.mark.parametrize(
    ("figure", "direction"),
    [
        ("deliveries_per_s", "higher"),
        ("per_s", "higher"),
        ("p99_ms", "lower"),
        ("rss_kb_per_connection", "lower"),
        ("server_rss_growth_mb", "lower"),
        ("stalled_closed_after_s", "lower"),
        ("ratio", "higher"),
        ("events", None),
        ("stalled_close_code", None),
        ("rate", None),
    ],
)
def test_each_figure_knows_which_way_is_better(figure: str, direction: str | None) -> None:
    assert better_direction(figure) == direction


def test_figures_read_with_their_units() -> None:
    assert format_figure("p99_ms", 1.8234) == "1.82 ms"
    assert format_figure("p99_ms", 73.94) == "73.9 ms"
    assert format_figure("deliveries_per_s", 100_812.4) == "100,812/s"
    assert format_figure("rss_kb_per_connection", 21.96) == "22.0 KB"
    assert format_figure("stalled_close_code", 4100.0) == "4100"
    assert format_figure("events", None) == "—"
    connect = PhaseResult(
        "connect",
        {"p50_ms": 20.0, "p99_ms": 73.9, "per_s": 3500.0},
        server_cpu_percent=97.0,
        loadgen_cpu_percent=140.0,
    )
    line = headline(connect)
    assert line.startswith("connect p50 20.0 ms, connect p99 73.9 ms; loss 0")
    assert "CPU server 97%, load generator 140%" in line
    assert headline(PhaseResult("relay", {}, error="no pairs\nmore")) == "error: no pairs"


def test_known_figures_come_first_in_their_order_and_unknown_ones_after() -> None:
    results = [
        PhaseResult("stalled", {"zeta": 1.0, "ratio": 0.9, "others_per_s": 1.0}),
        PhaseResult("stalled", {"alpha": 2.0}),
    ]
    assert ordered_figures("stalled", results) == ["others_per_s", "ratio", "alpha", "zeta"]
    assert label("fanout-batch-10", "deliveries_per_s") == "deliveries/s"
    assert label("latency-1", "p99_ms") == "publish→receive p99"
    assert label("relay", "p99_ms") == "relay p99"
    assert label("relay", "zeta") == "zeta"
    assert short("x" * 100, 10) == "x" * 9 + "…"
