"""The authoring vocabulary: state constructors and `define_factory`.

Everything here is plain data (the types are in `states.py`). Validation lives
in `validate.py` so that a factory can be built, inspected and reported on even
when it is invalid.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from factory.flow_compile import FlowError, compile_flow
from factory.flow_steps import Flow
from factory.states import (
    NO_RETRIES,
    Action,
    Agent,
    Backoff,
    Factory,
    Feedback,
    Guard,
    Loop,
    Orchestrate,
    Retries,
    State,
    Terminal,
)
from factory.validate import FactoryError, check_factory
from factory.workspaces import GitWorkspace

__all__ = [
    "NO_RETRIES",
    "Action",
    "Agent",
    "Backoff",
    "Factory",
    "Feedback",
    "Guard",
    "Loop",
    "Orchestrate",
    "Retries",
    "State",
    "Terminal",
    "action",
    "blocked",
    "define_factory",
    "done",
    "failed",
    "feedback",
    "loop",
    "orchestrate",
]


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


def define_factory(
    *,
    id: str,
    start: str | None = None,
    states: Mapping[str, State] | None = None,
    run: Flow | None = None,
    context: Mapping[str, Any] | None = None,
    guards: Mapping[str, Guard] | None = None,
    workspace: GitWorkspace | None = None,
) -> Factory:
    """Build a factory and validate it; raises `FactoryError` naming the state at fault.

    Either a state table (`start=` and `states=`) or a flow (`run=flow(...)`, compiled
    to a state table by `flow_compile`)."""
    source = _caller_file()
    if run is not None:
        if start is not None or states is not None:
            problem = "takes either run=flow(...) or start= and states=, not both"
            raise FactoryError(str(id), source, [problem])
        try:
            compiled = compile_flow(run)
        except FlowError as error:
            raise FactoryError(str(id), source, error.problems) from None
        start, states = compiled.start, compiled.states
    elif start is None or states is None:
        raise FactoryError(str(id), source, ["needs start= and states=, or run=flow(...)"])
    built = Factory(
        id=id,
        start=start,
        states=dict(states),
        context=dict(context or {}),
        guards=dict(guards or {}),
        source=source,
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
