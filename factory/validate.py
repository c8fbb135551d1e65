"""Load-time validation of factory definitions.

Errors stop a factory from loading; warnings (unreachable states) are
reported by `nfactory factories` but do not block it.
"""

from __future__ import annotations

from collections.abc import Iterator

from factory.states import Action, Factory, Feedback, Loop, Orchestrate, State, Terminal
from factory.workspaces import GitWorkspace

ACTION_REQUIRED = ("done", "failed")
ACTION_EVENTS = ("done", "failed", "feedback")
LOOP_EVENTS = ("continue", "done", "exhausted")


class FactoryError(ValueError):
    """A factory definition is invalid; the message names factory, file and state."""

    def __init__(self, factory_id: str, source: str, problems: list[str]) -> None:
        self.factory_id = factory_id
        self.source = source
        self.problems = problems
        joined = "; ".join(problems)
        super().__init__(f"factory {factory_id!r} ({source}): {joined}")


def check_factory(factory: Factory) -> list[str]:
    """Raise FactoryError on errors; return warnings."""
    errors = list(_errors(factory))
    if errors:
        raise FactoryError(factory.id, factory.source, errors)
    return [
        f"state {s!r} is unreachable from start {factory.start!r}" for s in unreachable(factory)
    ]


def _errors(factory: Factory) -> Iterator[str]:
    if not isinstance(factory.id, str) or not factory.id.strip():
        yield "factory id must be a non-empty string"
    if not factory.states:
        yield "no states defined"
        return
    if factory.start not in factory.states:
        yield f"start state {factory.start!r} does not exist (states: {', '.join(factory.states)})"
    if factory.workspace is not None and not isinstance(factory.workspace, GitWorkspace):
        got = type(factory.workspace).__name__
        yield f"workspace must be a GitWorkspace(repo=..., base=..., cleanup=...), not a {got}"
    for name, guard in factory.guards.items():
        if not callable(guard):
            yield f"guard {name!r} is not callable"
    for state_id, state in factory.states.items():
        for problem in _state_errors(factory, state_id, state):
            yield f"state {state_id!r}: {problem}"


def _state_errors(factory: Factory, state_id: str, state: State) -> Iterator[str]:
    if not isinstance(state, Action | Orchestrate | Loop | Feedback | Terminal):
        kind = type(state).__name__
        yield f"is a {kind}, not a state (use action/orchestrate/loop/feedback/done/...)"
        return
    on = getattr(state, "on", {})
    for event, target in on.items():
        if target not in factory.states:
            yield f"on[{event!r}] targets unknown state {target!r}"
    match state:
        case Action():
            if not callable(state.agent):
                yield f"agent {state.agent!r} is not callable"
            for needed in ACTION_REQUIRED:
                if needed not in on:
                    yield f"action needs an on[{needed!r}] route"
            for event in on:
                if event not in ACTION_EVENTS:
                    yield f"action route {event!r} is not one of {', '.join(ACTION_EVENTS)}"
            yield from _timeout_errors(state.timeout)
        case Orchestrate():
            if (state.select is None) == (state.agent is None):
                yield "orchestrate takes exactly one of select= or agent="
            fn = state.select or state.agent
            if fn is not None and not callable(fn):
                yield f"{'select' if state.select else 'agent'} {fn!r} is not callable"
            if not on:
                yield "orchestrate needs at least one route in on={...}"
            yield from _timeout_errors(state.timeout)
        case Loop():
            if state.body not in factory.states:
                yield f"loop body {state.body!r} does not exist"
            if on.get("continue") != state.body:
                got = on.get("continue")
                yield f"loop on['continue'] must equal body {state.body!r}, got {got!r}"
            for needed in ("done", "exhausted"):
                if needed not in on:
                    yield f"loop needs an on[{needed!r}] route"
            for event in on:
                if event not in LOOP_EVENTS:
                    yield f"loop route {event!r} is not one of {', '.join(LOOP_EVENTS)}"
            if not isinstance(state.max_iterations, int) or state.max_iterations < 1:
                yield f"max_iterations must be a positive integer, got {state.max_iterations!r}"
            if isinstance(state.until, str) and state.until not in factory.guards:
                known = ", ".join(factory.guards) or "none defined"
                yield f"guard {state.until!r} is not defined (guards: {known})"
            elif (
                state.until is not None
                and not isinstance(state.until, str)
                and not callable(state.until)
            ):
                yield f"until {state.until!r} is neither a guard name nor callable"
        case Feedback():
            if state.resume != "previous" and state.resume not in factory.states:
                yield f"resume target {state.resume!r} does not exist"
        case Terminal():
            pass


def _timeout_errors(timeout: float | None) -> Iterator[str]:
    if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
        yield f"timeout must be a positive number of seconds, got {timeout!r}"


def successors(factory: Factory, state_id: str) -> set[str]:
    state = factory.states[state_id]
    targets = set(getattr(state, "on", {}).values())
    if isinstance(state, Feedback) and state.resume != "previous":
        targets.add(state.resume)
    return {t for t in targets if t in factory.states}


def unreachable(factory: Factory) -> list[str]:
    if factory.start not in factory.states:
        return []
    seen = {factory.start}
    frontier = [factory.start]
    while frontier:
        for nxt in successors(factory, frontier.pop()):
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return [s for s in factory.states if s not in seen]
