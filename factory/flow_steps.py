"""The flow vocabulary: a factory written as composed steps instead of a state table.

    FACTORY = define_factory(
        id="writing",
        run=flow(
            step(draft, retries=Retries(max=2)),
            loop(step(review), until=complete, max_iterations=4),
            ask("Approve or revise?", one_of("approve", "revise"), name="verdict"),
            step(publish),
        ),
    )

Everything here is plain data. `flow_compile.compile_flow` turns it into the
same states `define_factory(states=...)` takes (so the engine, leases, retries,
feedback and the transition log see no difference), and `validate.py` checks
the result as it checks any factory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, overload

from factory.flow_agents import Parse, Text, one_of
from factory.states import Agent, Guard, Loop, Retries

__all__ = [
    "Ask",
    "Decide",
    "End",
    "Flow",
    "FlowLoop",
    "Node",
    "Step",
    "Write",
    "ask",
    "decide",
    "end",
    "flow",
    "loop",
    "one_of",
    "step",
    "write",
]

Outcome = Literal["done", "failed", "blocked"]


@dataclass(frozen=True)
class Step:
    """Run an agent; on `done` go on, on `failed` (after its retries) fail the card."""

    agent: Agent
    name: str | None = None
    retries: Retries | None = None
    timeout: float | None = None


@dataclass(frozen=True)
class Ask:
    """Ask a person in a comment; `parse(reply)` reads the reply (ValueError: ask again)."""

    prompt: Text
    parse: Parse | None = None
    name: str | None = None


@dataclass(frozen=True)
class Decide:
    """Route on the event `select(inp)` returns, or on `ctx[select]` when it is a str; each
    branch then carries on after it."""

    select: str | Callable[..., Any]
    branches: Mapping[str, Any]
    name: str | None = None


@dataclass(frozen=True)
class FlowLoop:
    """Run `body` until `until(ctx)` holds, at most `max_iterations` times."""

    body: tuple[Any, ...]
    until: str | Guard | None = None
    max_iterations: int = 5
    exhausted: Any = None  # what runs when the cap is hit (default: carry on)
    name: str | None = None


@dataclass(frozen=True)
class Write:
    """Append markdown to the card's page: a string as written, or `fn(inp) -> str`."""

    content: Text
    name: str | None = None


@dataclass(frozen=True)
class End:
    """End the run here, in the Done, Failed or Blocked column."""

    outcome: Outcome = "done"


Node = Step | Ask | Decide | FlowLoop | Write | End


@dataclass(frozen=True)
class Flow:
    """Steps run in order; falling off the end finishes the run Done."""

    steps: tuple[Any, ...] = field(default_factory=tuple)


def flow(*steps: Any) -> Flow:
    return Flow(steps)


def step(
    agent: Agent,
    *,
    name: str | None = None,
    retries: Retries | None = None,
    timeout: float | None = None,
) -> Step:
    return Step(agent=agent, name=name, retries=retries, timeout=timeout)


def ask(prompt: Text, parse: Parse | None = None, *, name: str | None = None) -> Ask:
    return Ask(prompt=prompt, parse=parse, name=name)


def decide(
    select: str | Callable[..., Any], branches: Mapping[str, Any], *, name: str | None = None
) -> Decide:
    return Decide(select=select, branches=branches, name=name)


def write(content: Text, *, name: str | None = None) -> Write:
    return Write(content=content, name=name)


def end(outcome: Outcome = "done") -> End:
    return End(outcome)


@overload
def loop(
    *body: Any,
    until: str | Guard | None = None,
    max_iterations: int = 5,
    exhausted: Any = None,
    name: str | None = None,
) -> FlowLoop: ...


@overload
def loop(
    *,
    body: str,
    on: Mapping[str, str],
    max_iterations: int = 5,
    until: str | Guard | None = None,
) -> Loop: ...


def loop(
    *steps: Any,
    body: str | None = None,
    on: Mapping[str, str] | None = None,
    until: str | Guard | None = None,
    max_iterations: int = 5,
    exhausted: Any = None,
    name: str | None = None,
) -> FlowLoop | Loop:
    """Both styles' loop: `loop(step(a), step(b), until=...)` in a flow, or the state-table
    `loop(body="a", on={...})` (told apart by `body=`/`on=`)."""
    if body is not None or on is not None:
        if steps or exhausted is not None or name is not None:
            raise TypeError(
                "loop(): a state-table loop takes body= and on=, a flow loop takes steps "
                "(loop(step(a), until=...)); not both"
            )
        if body is None or on is None:
            raise TypeError("loop(): a state-table loop needs both body= and on=")
        return Loop(body=body, on=dict(on), max_iterations=max_iterations, until=until)
    return FlowLoop(
        body=tuple(steps),
        until=until,
        max_iterations=max_iterations,
        exhausted=exhausted,
        name=name,
    )


def as_steps(item: Any) -> Sequence[Any] | None:
    """A branch or `exhausted=` value as a sequence of steps: a node, a flow, a list/tuple."""
    if isinstance(item, Flow):
        return item.steps
    if isinstance(item, list | tuple):
        return tuple(item)
    if isinstance(item, Step | Ask | Decide | FlowLoop | Write | End):
        return (item,)
    return None
