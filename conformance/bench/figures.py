"""What each figure of a phase is: its label, its unit, and whether more of it is better.

The report's views (console, Markdown, the progress lines) all format figures here, so a
figure reads the same everywhere; the load generator may add figures this module does not
know, which are then shown by their own name, after the known ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from .model import PhaseResult

__all__ = [
    "Direction",
    "better_direction",
    "format_cpu",
    "format_figure",
    "headline",
    "label",
    "ordered_figures",
    "short",
]

Direction = Literal["higher", "lower"]

#: The figures each kind of phase reports, in the order a reader wants them, with their labels.
_FIGURES: dict[str, tuple[tuple[str, str], ...]] = {
    "idle": (
        ("rss_kb_per_connection", "RSS per idle connection"),
        ("rss_mb", "server RSS"),
        ("connections", "connections held"),
    ),
    "connect": (
        ("p50_ms", "connect p50"),
        ("p99_ms", "connect p99"),
        ("per_s", "connections/s"),
        ("failed", "failed connects"),
    ),
    "fanout": (
        ("deliveries_per_s", "deliveries/s"),
        ("events", "events published"),
        ("subscribers", "subscribers"),
    ),
    "relay": (
        ("relayed_per_s", "client events relayed/s"),
        ("p50_ms", "relay p50"),
        ("p99_ms", "relay p99"),
        ("pairs", "pairs"),
    ),
    "latency": (
        ("p50_ms", "publish→receive p50"),
        ("p99_ms", "publish→receive p99"),
        ("rate", "events/s published"),
    ),
    "stalled": (
        ("others_p99_ms", "others' p99, one stalled"),
        ("baseline_p99_ms", "p99, none stalled"),
        ("p99_ratio", "others' p99 / baseline p99"),
        ("others_per_s", "others' deliveries/s, one stalled"),
        ("baseline_per_s", "deliveries/s, none stalled"),
        ("ratio", "others / baseline"),
        ("stalled_close_code", "stalled one closed with"),
        ("stalled_closed_after_s", "stalled one closed after"),
        ("server_rss_growth_mb", "server RSS growth"),
        ("stalled_received", "stalled one received in the end"),
    ),
}

#: Figures whose direction their name does not give away.
_DIRECTIONS: dict[str, Direction | None] = {
    "ratio": "higher",
    "p99_ratio": "lower",
    "rate": None,
    "stalled_close_code": None,
}


def _family(phase: str) -> str:
    return phase.split("-", 1)[0]


def better_direction(figure: str) -> Direction | None:
    """Whether more or less of a figure is better: rates are better higher, times and memory
    lower; counts that only say what was done (events, pairs) have no direction."""
    if figure in _DIRECTIONS:
        return _DIRECTIONS[figure]
    if figure.endswith("per_s"):
        return "higher"
    if figure.endswith(("_ms", "_s", "_mb", "_kb", "_kb_per_connection")):
        return "lower"
    return None


def label(phase: str, figure: str) -> str:
    return dict(_FIGURES.get(_family(phase), ())).get(figure, figure)


def ordered_figures(phase: str, results: Sequence[PhaseResult]) -> list[str]:
    present = {name for result in results for name in result.figures}
    known = [name for name, _ in _FIGURES.get(_family(phase), ()) if name in present]
    return known + sorted(present - set(known))


def _number(value: float, decimals: int) -> str:
    return f"{value:,.{decimals}f}"


def format_figure(figure: str, value: float | None) -> str:
    """A figure with its unit, as few digits as it needs."""
    if value is None:
        return "—"
    if figure.endswith("_ms"):
        return f"{_number(value, 2 if value < 10 else 1 if value < 100 else 0)} ms"
    if figure.endswith("per_s"):
        return f"{_number(value, 1 if value < 100 else 0)}/s"
    if figure.endswith("_kb_per_connection") or figure.endswith("_kb"):
        return f"{_number(value, 1)} KB"
    if figure.endswith("_mb"):
        return f"{_number(value, 1)} MB"
    if figure.endswith("_s"):
        return f"{_number(value, 2)} s"
    if figure == "ratio":
        return f"{value:.2f}"
    if figure == "stalled_close_code":
        return f"{value:.0f}"
    return _number(value, 0 if float(value).is_integer() else 1)


def format_cpu(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}%"


def headline(result: PhaseResult) -> str:
    """One line for a finished phase: its first figures, its loss, the CPU of both sides."""
    if result.error:
        return f"error: {short(result.error)}"
    shown = [
        f"{label(result.phase, name)} {format_figure(name, result.figures.get(name))}"
        for name in ordered_figures(result.phase, [result])[:2]
    ]
    return (
        f"{', '.join(shown) or 'no figures'}; loss {result.loss:,}, duplicates"
        f" {result.duplicates:,}; CPU server {format_cpu(result.server_cpu_percent)},"
        f" load generator {format_cpu(result.loadgen_cpu_percent)}"
    )


def short(text: str, limit: int = 80) -> str:
    """The first line of ``text``, cut to ``limit`` characters: an error in a table cell."""
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
