"""The authoring vocabulary: state constructors and `define_factory`.

Everything here is plain data. Validation lives in `validate.py` so that a
factory can be built, inspected and reported on even when it is invalid.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from factory.workspaces import GitWorkspace

Agent = Callable[..., Any]
Guard = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class Backoff:
    """Delay before retry n (0-based): fixed `ms`, or `ms * 2**n`, capped at `max_ms`."""

    strategy: Literal["fixed", "exponential"] = "exponential"
    ms: int = 500
    max_ms: int = 30_000

    def __post_init__(self) -> None:
        if self.strategy not in ("fixed", "exponential"):
            raise ValueError(
                f"Backoff.strategy must be 'fixed' or 'exponential', not {self.strategy!r}"
            )
        if self.ms < 0 or self.max_ms < 0:
            raise ValueError("Backoff.ms and Backoff.max_ms must be >= 0")


@dataclass(frozen=True)
class Retries:
    """`max` is the number of retries after the first attempt (max=2: three attempts)."""

    max: int = 0
    backoff: Backoff = field(default_factory=Backoff)

    def __post_init__(self) -> None:
        if self.max < 0:
            raise ValueError(f"Retries.max must be >= 0, not {self.max}")


NO_RETRIES = Retries(max=0)


@dataclass(frozen=True)
class Action:
    agent: Agent
    on: Mapping[str, str]
    retries: Retries = NO_RETRIES
    timeout: float | None = None
    kind: Literal["action"] = "action"


@dataclass(frozen=True)
class Orchestrate:
    """Routes on an event: `select(input)` returns it, or an agent's `data["event"]`/status."""

    on: Mapping[str, str]
    select: Callable[..., Any] | None = None
    agent: Agent | None = None
    retries: Retries = NO_RETRIES
    timeout: float | None = None
    kind: Literal["orchestrate"] = "orchestrate"


@dataclass(frozen=True)
class Loop:
    body: str
    on: Mapping[str, str]
    max_iterations: int = 5
    until: str | Guard | None = None
    kind: Literal["loop"] = "loop"


@dataclass(frozen=True)
class Feedback:
    """Pauses for a human reply; resumes at `resume` ("previous" = the state that asked)."""

    resume: str = "previous"
    kind: Literal["feedback"] = "feedback"


@dataclass(frozen=True)
class Terminal:
    outcome: Literal["done", "failed", "blocked"]
    kind: Literal["terminal"] = "terminal"


State = Action | Orchestrate | Loop | Feedback | Terminal


def action(
    agent: Agent,
    on: Mapping[str, str],
    retries: Retries | None = None,
    timeout: float | None = None,
) -> Action:
    return Action(agent=agent, on=dict(on), retries=retries or NO_RETRIES, timeout=timeout)


def orchestrate(
    on: Mapping[str, str],
    select: Callable[..., Any] | None = None,
    agent: Agent | None = None,
    retries: Retries | None = None,
    timeout: float | None = None,
) -> Orchestrate:
    return Orchestrate(
        on=dict(on), select=select, agent=agent, retries=retries or NO_RETRIES, timeout=timeout
    )


def loop(
    body: str,
    on: Mapping[str, str],
    max_iterations: int = 5,
    until: str | Guard | None = None,
) -> Loop:
    return Loop(body=body, on=dict(on), max_iterations=max_iterations, until=until)


def feedback(resume: str = "previous") -> Feedback:
    return Feedback(resume=resume)


def done() -> Terminal:
    return Terminal("done")


def failed() -> Terminal:
    return Terminal("failed")


def blocked() -> Terminal:
    return Terminal("blocked")


@dataclass(frozen=True)
class Factory:
    id: str
    start: str
    states: Mapping[str, State]
    context: Mapping[str, Any] = field(default_factory=dict)
    guards: Mapping[str, Guard] = field(default_factory=dict)
    source: str = "<unknown>"
    workspace: GitWorkspace | None = None  # each run's own git worktree (see workspaces.py)

    def state(self, state_id: str) -> State:
        return self.states[state_id]

    def guard(self, until: str | Guard) -> Guard:
        return self.guards[until] if isinstance(until, str) else until


def define_factory(
    *,
    id: str,
    start: str,
    states: Mapping[str, State],
    context: Mapping[str, Any] | None = None,
    guards: Mapping[str, Guard] | None = None,
    workspace: GitWorkspace | None = None,
) -> Factory:
    """Build a factory and validate it; raises `FactoryError` naming the state at fault."""
    from factory.validate import check_factory  # validate imports this module

    built = Factory(
        id=id,
        start=start,
        states=dict(states),
        context=dict(context or {}),
        guards=dict(guards or {}),
        source=_caller_file(),
        workspace=workspace,
    )
    check_factory(built)
    return built


def _caller_file() -> str:
    import inspect

    frame = inspect.currentframe()
    # two frames up: _caller_file <- define_factory <- the factory module
    caller = frame.f_back.f_back if frame and frame.f_back else None
    return caller.f_code.co_filename if caller else "<unknown>"
