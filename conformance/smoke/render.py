"""The lines a person reads in a deploy log: one per step, then one summary line.

The summary deliberately does not say "N passed, N failed": CI log readers take a line of that
shape for a test runner's closing count, and a smoke run inside a test's output is not one.
"""

from __future__ import annotations

from .result import SmokeResult, Status, StepResult

__all__ = ["render_lines", "step_line", "summary_line"]

_MARKS = {Status.PASSED: "✓", Status.FAILED: "✗", Status.SKIPPED: "-"}
_NAME_WIDTH = max(len("trigger to two users"), len("private auth enforced"))


def step_line(step: StepResult) -> str:
    text = step.figure
    if step.status is Status.PASSED and step.ms is not None and " ms" not in text:
        text = f"{text} ({step.ms:.0f} ms)" if text else f"{step.ms:.0f} ms"
    if step.status is Status.FAILED:
        text = f"{step.reason} ({step.figure})" if step.figure else step.reason
    elif step.status is Status.SKIPPED and not text.startswith("not run"):
        text = f"skipped: {text}"
    return f"{_MARKS[step.status]} {step.name:<{_NAME_WIDTH}}  {text}".rstrip()


def summary_line(result: SmokeResult) -> str:
    seconds = f"in {result.elapsed_s:.2f} s (deadline {result.deadline_s:g} s)"
    if result.unreachable is not None:
        return f"smoke: UNREACHABLE, {result.unreachable}; no step ran {seconds}"
    skipped = result.counted(Status.SKIPPED)
    rest = f", {skipped} skipped" if skipped else ""
    if result.failed:
        names = ", ".join(step.name for step in result.failed)
        return (
            f"smoke: FAIL, {len(result.failed)} of {len(result.steps)} steps failed ({names})"
            f"{rest} {seconds}"
        )
    return f"smoke: PASS, all {result.counted(Status.PASSED)} steps ok{rest} {seconds}"


def render_lines(result: SmokeResult) -> list[str]:
    """The whole text output: a header naming the target, the steps, the summary."""
    header = f"smoke: {result.target} ({result.ws_url})"
    return [header, *(step_line(step) for step in result.steps), summary_line(result)]
