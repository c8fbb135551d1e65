"""What agents receive and return, and the strict reading of their results."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Status = Literal["done", "feedback", "failed"]
STATUSES: tuple[str, ...] = ("done", "feedback", "failed")


@dataclass(frozen=True)
class AgentInput:
    """Everything an agent may look at. `ctx` is a copy: mutate it freely, return `data`."""

    task_id: str
    title: str
    prompt: str
    context: str
    ctx: dict[str, Any]
    state_id: str
    run_id: str
    tick_id: str
    attempt: int
    # The run's own git worktree, for factories that declare a workspace (else None).
    workspace: Path | None = None
    # Report what the agent is doing now ("running tests", a line of output); the card
    # shows the latest, coalesced within Notion's rate budget. Safe from any thread.
    progress: Callable[[str], None] = field(default=lambda _text: None, repr=False, compare=False)


@dataclass(frozen=True)
class AgentResult:
    status: Status
    data: Mapping[str, Any] = field(default_factory=dict)
    message: str = ""
    page: str = ""

    @property
    def event(self) -> str:
        """The routing event for orchestrate agents: `data["event"]`, else the status."""
        event = self.data.get("event")
        return event if isinstance(event, str) and event else self.status


class BadResult(ValueError):
    """An agent returned something that is not a valid result."""


def parse_result(raw: object, state_id: str) -> AgentResult:
    """Read an agent's return value, or raise BadResult naming the state and field."""
    if isinstance(raw, AgentResult):
        raw = {"status": raw.status, "data": raw.data, "message": raw.message, "page": raw.page}
    where = f"state {state_id!r}: agent result"
    if not isinstance(raw, Mapping):
        raise BadResult(f"{where} must be a mapping with a 'status', got {type(raw).__name__}")
    unknown = sorted(set(raw) - {"status", "data", "message", "page"})
    if unknown:
        raise BadResult(f"{where} has unknown field(s) {', '.join(map(repr, unknown))}")
    status = raw.get("status")
    if status is None:
        raise BadResult(f"{where} is missing 'status' (one of {', '.join(STATUSES)})")
    if status not in STATUSES:
        raise BadResult(f"{where} field 'status' is {status!r}, not one of {', '.join(STATUSES)}")
    data = raw.get("data", {})
    if data is None:
        data = {}
    if not isinstance(data, Mapping) or not all(isinstance(k, str) for k in data):
        raise BadResult(
            f"{where} field 'data' must be an object with string keys, got {data!r:.80}"
        )
    for name in ("message", "page"):
        value = raw.get(name, "")
        if value is not None and not isinstance(value, str):
            raise BadResult(f"{where} field {name!r} must be a string, got {type(value).__name__}")
    return AgentResult(
        status=status,
        data=dict(data),
        message=raw.get("message") or "",
        page=raw.get("page") or "",
    )
