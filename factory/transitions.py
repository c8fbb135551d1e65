"""Pure transition decisions: (factory, run, outcome) -> Step.

The engine executes a state (calls the agent, the selector or the guard) and
hands the outcome here; nothing in this module does I/O, reads a clock or
raises on user mistakes, so every routing rule is testable on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from factory.dsl import Action, Backoff, Factory, Feedback, Loop, Orchestrate, Retries, Terminal
from factory.results import AgentResult
from factory.statuses import TERMINAL, RunStatus

# Transitions one run may make before it is failed: a factory cycling without end stops.
TRANSITION_CAP = 200


@dataclass(frozen=True)
class RunView:
    """The persisted position of a run, as the decision needs it."""

    state_id: str
    previous_state_id: str | None = None
    ctx: Mapping[str, Any] = field(default_factory=dict)
    attempt: int = 0  # failed attempts so far in the current state
    iterations: Mapping[str, int] = field(default_factory=dict)
    transitions: int = 0


@dataclass(frozen=True)
class Succeeded:
    result: AgentResult


@dataclass(frozen=True)
class Errored:
    """The agent raised, timed out or returned a malformed result."""

    error: str


@dataclass(frozen=True)
class Selected:
    event: str


@dataclass(frozen=True)
class GuardChecked:
    satisfied: bool


@dataclass(frozen=True)
class Replied:
    text: str
    meta: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class Cancelled:
    """A cancel request, seen between transitions or while the state's agent ran."""

    by: str = "a person"
    interrupted: bool = False  # the state's agent was running and was stopped
    partial: str = ""  # markdown: what the interrupted agent had output so far


@dataclass(frozen=True)
class WorkspaceFailed:
    """The run's git worktree could not be made or brought back; no agent ran."""

    error: str


Outcome = Succeeded | Errored | Selected | GuardChecked | Replied | Cancelled | WorkspaceFailed


@dataclass(frozen=True)
class Step:
    from_state: str
    to_state: str
    event: str
    reason: str
    ctx: Mapping[str, Any]
    run_status: RunStatus
    attempt: int = 1  # which attempt of from_state this step records (1-based)
    next_attempt: int = 0  # failed-attempt counter after the step (0 once the state is left)
    iterations: Mapping[str, int] = field(default_factory=dict)
    loop_iteration: int | None = None
    message: str = ""
    page: str = ""
    retry_delay_ms: int | None = None
    error: str | None = None

    @property
    def ends_run(self) -> bool:
        return self.run_status in TERMINAL

    @property
    def pauses(self) -> bool:
        return self.run_status == RunStatus.feedback


def backoff_ms(backoff: Backoff, retry_index: int) -> int:
    """Delay before retry number `retry_index` (0 = the first retry)."""
    if backoff.strategy == "fixed":
        return min(backoff.ms, backoff.max_ms)
    # cap the exponent so huge retry counts cannot overflow into giant ints
    return min(backoff.ms * (2 ** min(retry_index, 62)), backoff.max_ms)


def status_of(factory: Factory, state_id: str) -> RunStatus:
    """The run status implied by standing in `state_id`."""
    state = factory.states[state_id]
    if isinstance(state, Terminal):
        return RunStatus(state.outcome)
    if isinstance(state, Feedback):
        return RunStatus.feedback
    return RunStatus.running


def cap_reached(run: RunView, cap: int = TRANSITION_CAP) -> Step | None:
    """The step that fails a run which has used up its transition budget, if it has."""
    if run.transitions < cap:
        return None
    error = (
        f"run stopped after {run.transitions} transitions (the cap is {cap}): "
        f"the factory keeps cycling through {run.state_id!r} without finishing"
    )
    return _stop(run, "cap", "run.transition_cap", RunStatus.failed, error)


def decide(factory: Factory, run: RunView, outcome: Outcome) -> Step:
    """The next step for `run`, standing in its state, given what executing that state gave."""
    if isinstance(outcome, Cancelled):
        return _cancel(factory, run, outcome)
    if isinstance(outcome, WorkspaceFailed):
        return _stop(run, "workspace", "run.workspace", RunStatus.blocked, outcome.error)
    state = factory.states[run.state_id]
    match state:
        case Action():
            return _decide_action(factory, state, run, outcome)
        case Orchestrate():
            return _decide_orchestrate(factory, state, run, outcome)
        case Loop():
            return _decide_loop(factory, state, run, outcome)
        case Feedback():
            return _decide_feedback(factory, state, run, outcome)
        case Terminal():
            return _stop(run, "terminal", "run.terminal", state.outcome, None)
    raise AssertionError(f"unknown state type {type(state).__name__}")  # validated at load


def _decide_action(factory: Factory, state: Action, run: RunView, outcome: Outcome) -> Step:
    if isinstance(outcome, Succeeded):
        result = outcome.result
        ctx = {**run.ctx, **result.data}
        if result.status == "failed":
            error = result.message or f"state {run.state_id!r}: agent reported failure"
            return _failure(factory, state.retries, state.on, run, ctx, error, "action", result)
        target = state.on.get(result.status)
        if target is None:
            error = (
                f"state {run.state_id!r}: agent returned status {result.status!r} "
                f"but the action has no on[{result.status!r}] route"
            )
            return _failure(factory, state.retries, state.on, run, ctx, error, "action", result)
        return _move(factory, run, target, result.status, f"action.{result.status}", ctx, result)
    if isinstance(outcome, Errored):
        return _failure(
            factory, state.retries, state.on, run, dict(run.ctx), outcome.error, "action"
        )
    return _unexpected(run, outcome)


def _decide_orchestrate(
    factory: Factory, state: Orchestrate, run: RunView, outcome: Outcome
) -> Step:
    routes = state.on
    if isinstance(outcome, Selected):
        target = routes.get(outcome.event)
        if target is None:
            error = _no_route(run.state_id, "select returned event", outcome.event, routes)
            return _failure(
                factory, state.retries, routes, run, dict(run.ctx), error, "orchestrate"
            )
        return _move(factory, run, target, outcome.event, "orchestrate.select", dict(run.ctx))
    if isinstance(outcome, Succeeded):
        result = outcome.result
        ctx = {**run.ctx, **result.data}
        target = routes.get(result.event)
        if target is None:
            if result.status == "failed":
                error = result.message or f"state {run.state_id!r}: agent reported failure"
            else:
                error = _no_route(run.state_id, "agent returned event", result.event, routes)
            return _failure(factory, state.retries, routes, run, ctx, error, "orchestrate", result)
        return _move(factory, run, target, result.event, "orchestrate.agent", ctx, result)
    if isinstance(outcome, Errored):
        return _failure(
            factory, state.retries, routes, run, dict(run.ctx), outcome.error, "orchestrate"
        )
    return _unexpected(run, outcome)


def _decide_loop(factory: Factory, state: Loop, run: RunView, outcome: Outcome) -> Step:
    if isinstance(outcome, Errored):
        return _stop(run, "error", "loop.guard_error", RunStatus.failed, outcome.error)
    if not isinstance(outcome, GuardChecked):
        return _unexpected(run, outcome)
    done_so_far = run.iterations.get(run.state_id, 0)
    if outcome.satisfied or done_so_far >= state.max_iterations:
        event = "done" if outcome.satisfied else "exhausted"
        # leaving the loop resets its count, so re-entering it later starts afresh
        iterations = {k: v for k, v in run.iterations.items() if k != run.state_id}
        return _move(
            factory,
            run,
            state.on[event],
            event,
            f"loop.{event}",
            dict(run.ctx),
            iterations=iterations,
            loop_iteration=done_so_far,
        )
    iterations = {**run.iterations, run.state_id: done_so_far + 1}
    return _move(
        factory,
        run,
        state.body,
        "continue",
        "loop.continue",
        dict(run.ctx),
        iterations=iterations,
        loop_iteration=done_so_far + 1,
    )


def _decide_feedback(factory: Factory, state: Feedback, run: RunView, outcome: Outcome) -> Step:
    if not isinstance(outcome, Replied):
        return _unexpected(run, outcome)
    target = run.previous_state_id if state.resume == "previous" else state.resume
    if target is None or target not in factory.states:
        error = f"state {run.state_id!r}: cannot resume, no previous state recorded"
        return _stop(run, "reply", "feedback.no_resume_target", RunStatus.failed, error)
    ctx = {**run.ctx, "human_feedback": outcome.text, "human_feedback_meta": list(outcome.meta)}
    return _move(factory, run, target, "reply", "feedback.reply", ctx)


def _failure(
    factory: Factory,
    retries: Retries,
    routes: Mapping[str, str],
    run: RunView,
    ctx: dict[str, Any],
    error: str,
    kind: str,
    result: AgentResult | None = None,
) -> Step:
    attempt = run.attempt + 1
    ctx = {**ctx, "last_error": error}
    message = result.message if result else ""
    if attempt <= retries.max:
        return Step(
            from_state=run.state_id,
            to_state=run.state_id,
            event="failed",
            reason=f"{kind}.failed.retry",
            ctx=ctx,
            run_status=RunStatus.running,
            attempt=attempt,
            next_attempt=attempt,
            iterations=dict(run.iterations),
            message=message,
            page=result.page if result else "",
            retry_delay_ms=backoff_ms(retries.backoff, attempt - 1),
            error=error,
        )
    target = routes.get("failed")
    if target is None:
        return _stop(
            run, "failed", f"{kind}.failed.unrouted", RunStatus.failed, error, ctx, attempt
        )
    return _move(
        factory, run, target, "failed", f"{kind}.failed.exhausted", ctx, result, error=error
    )


def _move(
    factory: Factory,
    run: RunView,
    target: str,
    event: str,
    reason: str,
    ctx: dict[str, Any],
    result: AgentResult | None = None,
    *,
    iterations: Mapping[str, int] | None = None,
    loop_iteration: int | None = None,
    error: str | None = None,
) -> Step:
    status = status_of(factory, target)
    if error is None:
        # a state that succeeded clears the error of earlier failed attempts
        ctx = {k: v for k, v in ctx.items() if k != "last_error"}
    return Step(
        from_state=run.state_id,
        to_state=target,
        event=event,
        reason=reason,
        ctx=ctx,
        run_status=status,
        attempt=run.attempt + 1,
        next_attempt=0,
        iterations=dict(run.iterations if iterations is None else iterations),
        loop_iteration=loop_iteration,
        message=result.message if result else "",
        page=result.page if result else "",
        error=error,
    )


def _stop(
    run: RunView,
    event: str,
    reason: str,
    status: RunStatus,
    error: str | None,
    ctx: Mapping[str, Any] | None = None,
    attempt: int | None = None,
) -> Step:
    """End the run where it stands (no state of the factory to move to)."""
    base = dict(run.ctx if ctx is None else ctx)
    if error and status == RunStatus.failed:
        base["last_error"] = error
    return Step(
        from_state=run.state_id,
        to_state=run.state_id,
        event=event,
        reason=reason,
        ctx=base,
        run_status=status,
        attempt=attempt or run.attempt + 1,
        next_attempt=0,
        iterations=dict(run.iterations),
        error=error,
    )


def _cancel(factory: Factory, run: RunView, outcome: Cancelled) -> Step:
    if outcome.interrupted:
        error = f"cancelled by {outcome.by} while {run.state_id!r} was running"
    elif isinstance(factory.states.get(run.state_id), Feedback):
        error = f"cancelled by {outcome.by} while {run.state_id!r} waited for a reply"
    else:
        error = f"cancelled by {outcome.by} before {run.state_id!r} ran"
    step = _stop(run, "cancelled", "run.cancelled", RunStatus.cancelled, error)
    return replace(step, page=outcome.partial)


def _no_route(state_id: str, what: str, event: str, routes: Mapping[str, str]) -> str:
    return f"state {state_id!r}: {what} {event!r} with no route (routes: {', '.join(routes)})"


def _unexpected(run: RunView, outcome: Outcome) -> Step:
    error = f"state {run.state_id!r}: engine fed it {type(outcome).__name__}, which it cannot use"
    return _stop(run, "error", "engine.unexpected_outcome", RunStatus.failed, error)
