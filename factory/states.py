"""The factory's data: state types, retries and `Factory` itself, all plain data.

Both the authoring vocabulary (`dsl.py`) and load-time validation (`validate.py`)
need these; they live here so neither of those two has to import the other
both ways.
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


@dataclass(frozen=True)
class Factory:
    id: str
    start: str
    states: Mapping[str, State]
    context: Mapping[str, Any] = field(default_factory=dict)
    guards: Mapping[str, Guard] = field(default_factory=dict)
    source: str = "<unknown>"
    workspace: GitWorkspace | None = None  # each run's own git worktree (see workspaces.py)

    def guard(self, until: str | Guard) -> Guard:
        return self.guards[until] if isinstance(until, str) else until
