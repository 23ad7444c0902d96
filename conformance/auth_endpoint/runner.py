"""Running the auth-endpoint checks: requests through a probe, examples from hypothesis, and one
``CheckResult`` per check for ``conformance.results.build_report``.

The runner knows nothing of HTTP: a ``Probe`` turns a ``Request`` into a ``Reply``, so the
checks run the same against the aiohttp adapter and against a function in a unit test. Each
check walks a fixed list first (the edges every run must try) and then hypothesis's examples,
which shrink a failure to a minimal request; the failing request ends up in the message and as
a ``curl`` line to replay it by hand.
"""

from __future__ import annotations

import shlex
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis import strategies as st

from ..errors import CheckFailed, CheckOverBudget, PreconditionFailed, UsageError
from ..outcomes import CheckOutcome
from ..profiles import shrinking_capped
from ..results import CheckResult
from ..spec import Check, SpecSet
from .files import Credentials, Policy
from .judge import Reply, Request

__all__ = [
    "AuthCheck",
    "CheckRun",
    "EndpointGone",
    "NotApplicable",
    "Probe",
    "Refuted",
    "Setup",
    "run_checks",
]

T = TypeVar("T")
#: What a check's body makes of one example: a problem (text), judged (True), not its case.
Judged = str | bool
#: How long hypothesis may spend shrinking one failure: a minimal name is nice, not essential.
_SHRINK_SECONDS = 15.0


class EndpointGone(BaseException):
    """The endpoint stopped answering (refused connection, timeout). A ``BaseException`` so
    that hypothesis stops at once instead of shrinking a network failure."""


class NotApplicable(Exception):
    """The check has nothing to try here (no user-auth URL, no presence channel in the
    policy): it is skipped, and a requirement whose checks are all skipped is absent."""


class Refuted(CheckFailed):
    """A reply broke the rule; ``request`` is the (shrunk) request that shows it."""

    def __init__(self, request: Request, problem: str) -> None:
        super().__init__(f"{request.describe()}: {problem}")
        self.request = request


class Probe(Protocol):
    def send(self, request: Request) -> Reply: ...


@dataclass(frozen=True)
class Setup:
    """Everything the command line and the two files say about the endpoint under test."""

    channel_url: str
    user_auth_url: str | None
    policy: Policy
    credentials: Credentials
    #: The users certified (``--as``), each in both files.
    users: tuple[str, ...]
    app_key: str
    app_secret: str
    #: Hypothesis examples per check, after the fixed list (0: the fixed list only).
    examples: int = 50
    seed: int = 0
    #: Seconds one check may take before it is stopped as an error.
    budget: float = 120.0


class _Memo:
    """Each distinct request goes out once per run: several checks judge the same reply under
    different rules (whether a refusal signs, what status it has)."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self.replies: dict[Request, Reply] = {}

    def send(self, request: Request) -> tuple[Reply, bool]:
        if request in self.replies:
            return self.replies[request], False
        reply = self.probe.send(request)
        self.replies[request] = reply
        return reply, True


class CheckRun:
    """What one check works with: the setup, a request sender with a deadline, its counters."""

    def __init__(self, setup: Setup, memo: _Memo) -> None:
        self.setup = setup
        self._memo = memo
        self._deadline = time.monotonic() + setup.budget
        self.stats: Counter[str] = Counter()

    def send(self, request: Request) -> Reply:
        if time.monotonic() > self._deadline:
            raise CheckOverBudget(self.setup.budget)
        reply, fresh = self._memo.send(request)
        self.stats["requests_sent" if fresh else "replies_reused"] += 1
        return reply

    def channel_request(
        self,
        user: str | None,
        socket_id: str | None,
        channel: str | None,
        extra: Iterable[tuple[str, str]] = (),
    ) -> Request:
        """A form as pusher-js posts it; a ``None`` field is left out."""
        pairs = (("socket_id", socket_id), ("channel_name", channel))
        form = tuple((k, v) for k, v in pairs if v is not None) + tuple(extra)
        return Request("channel", user, form)

    def user_request(
        self, user: str | None, socket_id: str | None, extra: Iterable[tuple[str, str]] = ()
    ) -> Request:
        if self.setup.user_auth_url is None:
            raise NotApplicable("no --user-auth-url: the sign-in endpoint is not certified")
        form = (() if socket_id is None else (("socket_id", socket_id),)) + tuple(extra)
        return Request("user", user, form)

    def explore(
        self,
        fixed: Sequence[T],
        strategy: st.SearchStrategy[T] | None,
        body: Callable[[T], Judged],
    ) -> int:
        """Judge every fixed item, then ``examples`` drawn from ``strategy``; the first problem
        raises ``CheckFailed`` (from hypothesis: the shrunk one). Returns how many were judged."""
        for item in fixed:
            self._count(body(item))
        if strategy is None or self.setup.examples <= 0:
            return self.stats["judged"]

        @settings(
            max_examples=self.setup.examples,
            deadline=None,
            database=None,
            phases=(Phase.generate, Phase.shrink),
            suppress_health_check=list(HealthCheck),
            print_blob=False,
            report_multiple_bugs=False,
            verbosity=Verbosity.quiet,
        )
        @seed(self.setup.seed)
        @given(strategy)
        def generated(item: T) -> None:
            self._count(body(item))

        with shrinking_capped(_SHRINK_SECONDS):
            generated()
        return self.stats["judged"]

    def _count(self, judged: Judged) -> None:
        if isinstance(judged, str):
            raise CheckFailed(judged)
        if judged:
            self.stats["judged"] += 1


def failing(request: Request, problem: str | None) -> Judged:
    """A body's verdict on one reply: the problem, tied to its request, or judged."""
    if problem is None:
        return True
    raise Refuted(request, problem)


@dataclass(frozen=True)
class AuthCheck:
    name: str
    params: frozenset[str]
    run: Callable[[CheckRun, Mapping[str, Any]], str]


def run_checks(
    specs: SpecSet, setup: Setup, probe: Probe, registry: Mapping[str, AuthCheck]
) -> dict[str, CheckResult]:
    """Every check of every active requirement, in spec order; a check's function returns a
    one-line summary of what it tried."""
    memo = _Memo(probe)
    results: dict[str, CheckResult] = {}
    for requirement in specs.requirements:
        if requirement.status != "active":
            continue
        for check in requirement.checks:
            entry = _entry(check, registry)
            run = CheckRun(setup, memo)
            started = time.monotonic()
            outcome, message, replay = _run_one(entry, check, run)
            results[check.full_id] = CheckResult(
                check_id=check.full_id,
                requirement_id=check.requirement_id,
                outcome=outcome,
                message=message,
                duration_s=time.monotonic() - started,
                replay=replay if replay is None else _curl(setup, replay),
                stats=dict(run.stats),
            )
    return results


def _entry(check: Check, registry: Mapping[str, AuthCheck]) -> AuthCheck:
    entry = registry.get(check.property_name or "")
    if entry is None:
        raise UsageError(f"{check.full_id}: unknown auth-endpoint check {check.property_name!r}")
    unknown = set(check.params or {}) - entry.params
    if unknown:
        raise UsageError(
            f"{check.full_id}: {entry.name} does not take {', '.join(sorted(unknown))}"
            f" (it takes: {', '.join(sorted(entry.params)) or 'nothing'})"
        )
    return entry


def _run_one(
    entry: AuthCheck, check: Check, run: CheckRun
) -> tuple[CheckOutcome, str, Request | None]:
    try:
        summary = entry.run(run, check.params or {})
    except NotApplicable as exc:
        return CheckOutcome.SKIPPED, str(exc), None
    except PreconditionFailed as exc:
        return CheckOutcome.INCONCLUSIVE, str(exc), None
    except CheckFailed as exc:
        return CheckOutcome.FAILED, str(exc), getattr(exc, "request", None)
    except CheckOverBudget as exc:
        return CheckOutcome.ERROR, str(exc), None
    except EndpointGone as exc:
        return CheckOutcome.ERROR, f"the endpoint stopped answering: {exc}", None
    except Exception as exc:
        failed = _failure_inside(exc)
        if failed is not None:  # hypothesis wraps a failure it could not reproduce
            return CheckOutcome.FAILED, f"{failed} (flaky)", getattr(failed, "request", None)
        return CheckOutcome.ERROR, f"{type(exc).__name__}: {exc}", None
    return CheckOutcome.PASSED, summary, None


def _failure_inside(exc: BaseException) -> CheckFailed | None:
    if isinstance(exc, CheckFailed):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = _failure_inside(inner)
        if found is not None:
            return found
    return None if exc.__cause__ is None else _failure_inside(exc.__cause__)


def _curl(setup: Setup, request: Request) -> str:
    """The failing request as a command line; credentials stay out of the reports."""
    url = setup.channel_url if request.endpoint == "channel" else setup.user_auth_url
    # The form as it went on the wire: percent-encoding keeps control characters replayable.
    body = shlex.quote(urlencode(request.form))
    who = (
        f"  # add {request.user}'s headers/cookies from the credentials file"
        if request.user
        else "  # with only the credentials file's every_request headers/cookies"
    )
    return f"curl -sS -X POST {shlex.quote(str(url))} --data {body}{who}"
