"""The context a check receives: its variables, durations, models and figures."""

from __future__ import annotations

import asyncio
import re

import pytest

from conformance.context import CheckContext, RunSettings
from conformance.errors import UsageError
from conformance.spec import Check
from conformance.target import Timings, target_from_mapping

TARGET = target_from_mapping(
    {
        "ws_url": "ws://127.0.0.1:1",
        "http_url": "http://127.0.0.1:1",
        "app_id": "1",
        "key": "k",
        "secret": "s",
        "timings": {"activity_timeout": 4, "pong_timeout": 2},
    }
)


@pytest.fixture
def ctx() -> CheckContext:
    check = Check("REQ-01", "c", "t", "exchange", {})
    with asyncio.Runner() as runner:
        return CheckContext(TARGET, RunSettings(timeout_multiplier=2.0), check, runner)


def test_variables_start_with_the_target_and_render_through_the_context(
    ctx: CheckContext,
) -> None:
    """The template rules themselves are ``test_templates``'; here, that the context's
    ``define``/``render``/``lookup`` reach them with its own variables."""
    ctx.define({"ch": {"channel": "p-"}})
    assert re.fullmatch(r"p-[a-z0-9]{20}", ctx.variables["ch"])
    ctx.variables["saved"] = {"n": [7]}
    assert ctx.render({"${ch}": "${saved.n.0}"}) == {ctx.variables["ch"]: 7}
    assert ctx.lookup("target.app_id") == "1"


def test_undefined_variable_is_a_usage_error(ctx: CheckContext) -> None:
    with pytest.raises(UsageError, match=r"undefined variable \$\{nope\} in REQ-01/c"):
        ctx.render("x${nope}")


def test_durations_scale(ctx: CheckContext) -> None:
    assert ctx.duration(None) == 10.0
    assert ctx.duration(1.5) == 3.0
    assert ctx.duration({"timing": "idle_close", "plus": 1}) == 14.0
    assert ctx.duration({"timing": "activity_timeout"}) == 8.0


def test_undeclared_timings_fall_back() -> None:
    check = Check("REQ-01", "c", "t", "exchange", {})
    target = target_from_mapping(
        {"ws_url": "ws://127.0.0.1:1", "http_url": "http://127.0.0.1:1", "app_id": "1",
         "key": "k", "secret": "s"}
    )  # fmt: skip
    assert target.timings == Timings()
    with asyncio.Runner() as runner:
        ctx = CheckContext(target, RunSettings(), check, runner)
    assert ctx.timing("activity_timeout") == 120.0
    ctx.connections.advertised_activity_timeout = 30.0
    assert ctx.timing("idle_close") == 60.0


def test_models_and_figures_start_empty(ctx: CheckContext) -> None:
    assert ctx.models == {}
    assert ctx.figures == {}


def test_a_check_gets_its_own_copy_of_the_models() -> None:
    check = Check("REQ-01", "c", "t", "property", {})
    models = {"delivery": {"bounds": {"users": 3}}}
    with asyncio.Runner() as runner:
        ctx = CheckContext(TARGET, RunSettings(), check, runner, models=models)
    assert ctx.models == models
    ctx.models["delivery"]["bounds"]["users"] = 9
    assert models["delivery"]["bounds"]["users"] == 3
