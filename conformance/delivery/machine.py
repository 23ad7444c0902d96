"""The hypothesis state machine over the delivery model.

Its rules are built from the YAML: a rule with weight 3 is registered three times (hypothesis
picks uniformly among its rules), weight 0 leaves it out. Each rule draws its arguments from
fixed sets and turns them into an ``Operation`` the driver plays, or does nothing when the
current state does not allow it. ``check`` steps and the end of every run judge everything the
connections saw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    get_state_machine_test,
    rule,
)

from ..context import CheckContext
from ..errors import CheckFailed, PreconditionFailed, TargetError
from ..profiles import hypothesis_settings, shrinking_capped
from .config import ModelConfig
from .driver import DeliveryDriver
from .model import Judgement, Violation
from .operations import (
    Batch,
    BatchItem,
    Check,
    ClientEvent,
    Connect,
    Disconnect,
    Operation,
    Query,
    Subscribe,
    Trigger,
    Unsubscribe,
    channel_kind,
)

__all__ = ["ModelViolation", "RunAborted", "judge_and_raise", "run_machine"]


class ModelViolation(CheckFailed):
    """The target broke an asserted invariant; carries the steps that led there."""

    def __init__(self, violations: Sequence[Violation], steps: Sequence[Operation]) -> None:
        self.violations = tuple(violations)
        self.steps = tuple(steps)
        super().__init__(f"{len(self.violations)} violation(s): {self.violations[0].message}")


class RunAborted(BaseException):
    """A precondition failed mid-run. A BaseException, so hypothesis stops at once instead of
    shrinking a set-up failure as if it were a counterexample."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def judge_and_raise(
    ctx: CheckContext,
    judgement: Judgement,
    aspects: set[str],
    steps: Sequence[Operation],
    survey: list[Violation] | None = None,
) -> None:
    """Raise for violations of the asserted aspects; note the others in the wire log. A
    survey (see ``run_machine``) keeps every violation and raises none."""
    if survey is not None:
        survey.extend(judgement.violations)
        return
    for violation in judgement.violations:
        if violation.aspect not in aspects:
            ctx.transcript.note(f"not asserted here ({violation.aspect}): {violation.message}")
    bad = judgement.of(aspects)
    if bad:
        raise ModelViolation(bad, steps)


class _Machine(RuleBasedStateMachine):
    """Base of the generated machines; ``ctx``, ``config``, ``aspects`` and ``survey`` are
    class attributes set by ``build_machine``."""

    ctx: CheckContext
    config: ModelConfig
    aspects: set[str]
    survey: list[Violation] | None

    def __init__(self) -> None:
        super().__init__()
        bounds = self.config.bounds
        self.driver = DeliveryDriver(self.ctx, bounds.user_of(), bounds.channel_slots())
        self.conns = bounds.connection_slots()
        self.channels = bounds.channel_slots()

    # -- state the rules read -------------------------------------------------------------

    def is_open(self, conn: str) -> bool:
        return self.driver.model.is_open(conn)

    def channels_of(self, conn: str) -> set[str]:
        return self.driver.model.channels_of(conn)

    # -- running -----------------------------------------------------------------------------

    def apply(self, op: Operation) -> None:
        try:
            judgement = self.ctx.run(self.driver.apply(op))
        except (PreconditionFailed, TargetError) as exc:
            raise RunAborted(exc) from None
        if judgement is not None:
            judge_and_raise(self.ctx, judgement, self.aspects, self.driver.log, self.survey)

    def teardown(self) -> None:
        """Judge the whole run. A check of channel information first asks the HTTP API about
        every channel the run subscribed to: a count that drifted is caught even when no
        ``query`` step happened to look at that channel."""
        try:
            if self.driver.log:
                if "channel_info" in self.aspects or self.survey is not None:
                    for channel in self.driver.touched_channels():
                        self.apply(Query(channel))
                self.apply(Check())
        finally:
            self.ctx.run(self.driver.aclose())


MakeOp = Callable[..., Operation | list[Operation] | None]


def _rules(machine_config: ModelConfig) -> dict[str, tuple[dict[str, Any], MakeOp]]:
    """Each rule: the strategies of its arguments, and how it turns them into an operation
    (None: not applicable in the current state, so the step does nothing).

    The strategies draw from fixed sets (every connection slot, every channel slot), never
    from the current state: when hypothesis deletes a step while shrinking, the steps after
    it keep their meaning, so counterexamples shrink well.
    """
    bounds = machine_config.bounds
    slots = bounds.channel_slots()
    conns = st.sampled_from(bounds.connection_slots())
    channels = st.sampled_from(slots)

    def of_kind(*kinds: str) -> st.SearchStrategy[str] | None:
        chosen = [c for c in slots if channel_kind(c) in kinds]
        return st.sampled_from(chosen) if chosen else None

    def subscribe(**extra: Any) -> MakeOp:
        """Subscribing a closed connection opens it first: a tab that joins."""

        def make(m: _Machine, conn: str, channel: str) -> list[Operation] | None:
            if not m.is_open(conn):
                return [Connect(conn), Subscribe(conn, channel, **extra)]
            if channel not in m.channels_of(conn):
                return [Subscribe(conn, channel, **extra)]
            return None

        return make

    def unsubscribe(racing: bool) -> MakeOp:
        """The drawn channel if the connection is on it, else the first one it is on."""

        def make(m: _Machine, conn: str, channel: str) -> Operation | None:
            own = sorted(m.channels_of(conn)) if m.is_open(conn) else []
            if not own:
                return None
            return Unsubscribe(conn, channel if channel in own else own[0], racing=racing)

        return make

    def excluding(m: _Machine, conn: str, channel: str) -> Operation | None:
        if not m.is_open(conn):
            return None
        own = sorted(m.channels_of(conn))
        return Trigger((channel if channel in own or not own else own[0],), exclude=conn)

    def batch(m: _Machine, items: list[tuple[str, str | None]]) -> Operation:
        return Batch(
            tuple(BatchItem(ch, c if c is not None and m.is_open(c) else None) for ch, c in items)
        )

    def client_event(m: _Machine, conn: str, channel: str) -> Operation | None:
        own = (
            sorted(c for c in m.channels_of(conn) if channel_kind(c) != "public")
            if m.is_open(conn)
            else []
        )
        if not own:
            return None
        return ClientEvent(conn, channel if channel in own else own[0])

    rules: dict[str, tuple[dict[str, Any], MakeOp]] = {
        "connect": ({"conn": conns}, lambda m, conn: None if m.is_open(conn) else Connect(conn)),
        "disconnect": (
            {"conn": conns},
            lambda m, conn: Disconnect(conn) if m.is_open(conn) else None,
        ),
        "subscribe_invalid_auth": (
            {"conn": conns, "channel": of_kind("private", "presence")},
            subscribe(auth="invalid"),
        ),
        "subscribe_racing": ({"conn": conns, "channel": channels}, subscribe(racing=True)),
        "unsubscribe": ({"conn": conns, "channel": channels}, unsubscribe(False)),
        "unsubscribe_racing": ({"conn": conns, "channel": channels}, unsubscribe(True)),
        "trigger": ({"channel": channels}, lambda m, channel: Trigger((channel,))),
        "trigger_multi": (
            {
                "chosen": st.lists(
                    channels,
                    min_size=2,
                    max_size=min(bounds.multi_channel, len(slots)),
                    unique=True,
                )
            },
            lambda m, chosen: Trigger(tuple(chosen)),
        ),
        "trigger_burst": (
            {"channel": channels, "count": st.integers(2, bounds.burst)},
            lambda m, channel, count: Trigger((channel,), count=count),
        ),
        "trigger_excluding": ({"conn": conns, "channel": channels}, excluding),
        "batch": (
            {
                "items": st.lists(
                    st.tuples(channels, st.none() | conns), min_size=2, max_size=bounds.batch
                )
            },
            batch,
        ),
        "client_event": ({"conn": conns, "channel": of_kind("private", "presence")}, client_event),
        "query": ({"channel": channels}, lambda m, channel: Query(channel)),
        "check": ({}, lambda m: Check() if any(m.is_open(c) for c in m.conns) else None),
    }
    for kind in ("public", "private", "presence"):
        rules[f"subscribe_{kind}"] = ({"conn": conns, "channel": of_kind(kind)}, subscribe())
    # A rule over channels of a kind the bounds leave out has nothing to draw.
    return {
        name: (args, make)
        for name, (args, make) in rules.items()
        if all(strategy is not None for strategy in args.values())
        and (name != "trigger_multi" or len(slots) >= 2)
        and slots
    }


def _make_rule(name: str, args: dict[str, Any], make: MakeOp) -> Any:
    def step(self: _Machine, **drawn: Any) -> None:
        made = make(self, **drawn)
        for op in made if isinstance(made, list) else [made] if made is not None else []:
            self.apply(op)

    step.__name__ = name
    step.__qualname__ = f"DeliveryMachine.{name}"
    decorate: Callable[[Any], Any] = rule(**args)
    return decorate(step)


def build_machine(
    ctx: CheckContext,
    config: ModelConfig,
    aspects: set[str],
    survey: list[Violation] | None = None,
) -> type[_Machine]:
    """A machine class for this check: the YAML's rules, each as often as its weight."""
    attrs: dict[str, Any] = {"ctx": ctx, "config": config, "aspects": aspects, "survey": survey}
    for name, (args, make) in _rules(config).items():
        for copy in range(config.weights.get(name, 0)):
            rule_name = name if copy == 0 else f"{name}_{copy + 1}"
            attrs[rule_name] = _make_rule(rule_name, args, make)
    return type("DeliveryMachine", (_Machine,), attrs)


def run_machine(
    ctx: CheckContext,
    config: ModelConfig,
    aspects: set[str],
    survey: list[Violation] | None = None,
) -> None:
    """Explore under the run's profile and seed; raises ``ModelViolation`` with the shrunk
    steps, or the precondition that stopped the run.

    With ``survey``, nothing is asserted: every example runs to the end and every violation
    of every aspect lands in the list. Hypothesis draws the same examples from the same seed
    whatever the test asserts, so a survey sees what each asserting exploration would see
    up to its first failure, and more."""
    machine = build_machine(ctx, config, aspects, survey)
    examples = ctx.settings.max_examples or config.examples
    chosen = settings(
        hypothesis_settings(ctx.settings.profile, examples), stateful_step_count=config.steps
    )
    # Typed by hand: some hypothesis releases leave this helper unannotated.
    make_test: Callable[..., Callable[[], None]] = get_state_machine_test
    test = seed(ctx.settings.seed)(make_test(machine, settings=chosen))
    try:
        with shrinking_capped(config.shrink_seconds):
            test()
    except RunAborted as aborted:
        raise aborted.cause from None
    except BaseException as exc:
        found = find_violation(exc)
        if found is not None:
            raise found from None
        raise


def find_violation(exc: BaseException) -> ModelViolation | None:
    """The model's own failure inside whatever hypothesis raised (it may wrap it in a group
    when a replay disagrees: a flaky target)."""
    if isinstance(exc, ModelViolation):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = find_violation(inner)
            if found is not None:
                return found
    return None
