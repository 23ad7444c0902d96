"""The delivery properties: the multi-user model, the replay of a saved counterexample, and
named scenarios (admin-alerts).

See ``conformance.delivery`` for the model itself; this module only wires it to the YAML.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import Any

import yaml

from ..context import CheckContext
from ..delivery.config import ModelConfig, model_config
from ..delivery.driver import DeliveryDriver
from ..delivery.machine import ModelViolation, RunAborted, judge_and_raise, run_machine
from ..delivery.model import ASPECTS, Violation
from ..delivery.operations import (
    Check,
    Operation,
    channel_kind,
    operations_from_list,
    operations_to_list,
)
from ..delivery.scenario import run_scenario
from ..errors import CheckFailed, UsageError
from ..regressions import save_counterexample
from .registry import prop

__all__ = ["aspects_of", "format_steps"]


def aspects_of(params: Mapping[str, Any]) -> set[str]:
    aspects = params.get("assert", list(ASPECTS))
    if not isinstance(aspects, list) or not aspects or not set(aspects) <= set(ASPECTS):
        raise UsageError(f"assert must be a non-empty list of: {', '.join(ASPECTS)}")
    return set(aspects)


def format_steps(steps: Sequence[Operation]) -> str:
    listed: str = yaml.safe_dump(
        operations_to_list(steps), default_flow_style=None, sort_keys=False, width=100
    )
    return listed.rstrip()


def _aspects(found: ModelViolation) -> str:
    return ", ".join(sorted({v.aspect for v in found.violations}))


def _listed(found: ModelViolation, most: int = 10) -> list[str]:
    """The first ``most`` violations, one line each, and how many more there are."""
    lines = [f"  - {v.message}" for v in found.violations[:most]]
    if len(found.violations) > most:
        lines.append(f"  ... and {len(found.violations) - most} more")
    return lines


def _report(
    ctx: CheckContext, found: ModelViolation, aspects: set[str], users: int, *, save: bool
) -> CheckFailed:
    """The failure an auditor reads: the violations, the (shrunk) steps, the saved case."""
    lines = [
        f"the delivery model found {len(found.violations)} violation(s) of "
        f"{_aspects(found)} after {len(found.steps)} step(s):",
        *_listed(found),
        "steps (the smallest failing run hypothesis found; connection c<i> belongs to user "
        "u<i mod users>):",
        format_steps(found.steps),
    ]
    if save:
        params = {
            "assert": sorted(aspects),
            "users": users,
            "steps": operations_to_list(found.steps),
        }
        path = save_counterexample(
            ctx,
            "delivery_replay",
            params,
            failure="\n".join(lines[:3]),
            title="Counterexample shrunk by the delivery model",
        )
        if path is not None:
            lines.append(f"saved as a regression case: {path}")
    return CheckFailed("\n".join(lines))


# One survey of the model per run and model, shared by the checks that assert its aspects.
_SURVEYS: dict[tuple[Any, ...], tuple[Any, Future[list[Violation] | None]]] = {}
_SURVEYS_LOCK = threading.Lock()


def _survey(ctx: CheckContext, config: ModelConfig, name: str) -> list[Violation] | None:
    """Every violation one unasserted exploration of the model met, explored once per run by
    whichever model check starts first while the others wait for it. Six checks assert six
    aspects of the same exploration (same seed, same draws), so exploring it six times over
    added CPU, not evidence. None when the survey could not finish (the check that ran it
    reports why, and the others explore on their own)."""
    target = ctx.target
    key = (id(ctx.settings), target.ws_url, target.app_id, target.key, name)
    with _SURVEYS_LOCK:
        entry = _SURVEYS.get(key)
        mine = entry is None
        if entry is None:
            # The settings object rides along so that its id is not reused while cached.
            entry = (ctx.settings, Future())
            _SURVEYS[key] = entry
    future = entry[1]
    if not mine:
        return future.result()
    found: list[Violation] = []
    try:
        run_machine(ctx, config, set(), survey=found)
    except BaseException:
        future.set_result(None)
        raise
    future.set_result(found)
    return found


@prop("delivery_model", "model", "assert")
def delivery_model(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    """Explore random multi-user interleavings with the state machine of ``models.<model>``.

    The exploration is shared (see ``_survey``); only a check whose aspects it found violated
    explores again, asserting them, so that hypothesis shrinks the counterexample."""
    name = str(params.get("model", "delivery"))
    config = model_config(
        ctx.models.get(name), ctx.settings.profile, ctx.target.capabilities, name=name
    )
    aspects = aspects_of(params)
    surveyed = _survey(ctx, config, name)
    if surveyed is not None:
        seen = [v for v in surveyed if v.aspect in aspects]
        if not seen:
            ctx.transcript.note(
                f"judged on this run's shared exploration of the {name} model: no violation "
                f"of {', '.join(sorted(aspects))} (others seen: "
                f"{', '.join(sorted({v.aspect for v in surveyed})) or 'none'})"
            )
            return
    try:
        run_machine(ctx, config, aspects)
    except ModelViolation as found:
        raise _report(ctx, found, aspects, config.bounds.users, save=True) from None
    if surveyed is not None:
        # The survey saw it, the asserting exploration did not: the target is not repeatable.
        unrepeated = ModelViolation(seen, ())
        raise CheckFailed(
            f"the shared exploration of the {name} model found {len(seen)} violation(s) of "
            f"{_aspects(unrepeated)}, which an exploration asserting them with the same seed "
            "did not meet again (the target behaves differently from run to run):\n"
            + "\n".join(_listed(unrepeated))
        )


@prop("delivery_replay", "assert", "users", "steps")
def delivery_replay(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    """Play a saved step list once, then judge: a counterexample kept as a plain check."""
    steps = operations_from_list(params.get("steps"))
    users = params.get("users", 1)
    if isinstance(users, bool) or not isinstance(users, int) or users < 1:
        raise UsageError("users must be a positive whole number")
    aspects = aspects_of(params)
    conns = sorted(
        {getattr(op, "conn", None) for op in steps} - {None}, key=lambda c: int(str(c)[1:])
    )
    channels: set[str] = set()
    for op in steps:
        channels.update(_channels_of(op))
    if any(op.kind == "client_event" for op in steps) and (
        "client_events" not in ctx.target.capabilities
    ):
        steps = [op for op in steps if op.kind != "client_event"]
        ctx.transcript.note("client_event steps skipped: the target has no client_events")
    user_of = {str(c): f"u{int(str(c)[1:]) % users}" for c in conns}
    if not isinstance(steps[-1], Check):
        steps = [*steps, Check()]

    async def replay() -> None:
        driver = DeliveryDriver(ctx, user_of, sorted(channels))
        try:
            for op in steps:
                judgement = await driver.apply(op)
                if judgement is not None:
                    judge_and_raise(ctx, judgement, aspects, driver.log)
        finally:
            await driver.aclose()

    try:
        ctx.run(replay())
    except RunAborted as aborted:
        raise aborted.cause from None
    except ModelViolation as found:
        raise _report(ctx, found, aspects, users, save=False) from None


def _channels_of(op: Operation) -> set[str]:
    found: set[str] = set()
    for attr in ("channel", "channels", "items"):
        value = getattr(op, attr, None)
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, tuple):
            for item in value:
                found.add(item if isinstance(item, str) else item.channel)
    for slot in found:
        channel_kind(slot)
    return found


@prop("delivery_scenario", "scenario", "assert")
def delivery_scenario(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    """A named scenario from ``fixtures/scenarios/``, reported with its figures."""
    try:
        run_scenario(ctx, str(params.get("scenario", "")), aspects_of(params))
    except ModelViolation as found:
        summary = ctx.figures.get("summary", {})
        counted = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in summary.items())
        lines = [
            f"the scenario broke {len(found.violations)} time(s) ({_aspects(found)}): {counted}",
            *_listed(found),
            "per-user figures: see the report's Figures section",
        ]
        raise CheckFailed("\n".join(lines)) from None
