"""Board effects a step implies: pure, so the outbox rows are decided, not improvised.

Each kind is its own type: `StateEffect` (card column, current step, error),
`LogEffect` (one markdown log line), `PageEffect` (agent markdown output),
`GraphEffect` (the factory's diagram, when a run starts),
`CommentEffect` (feedback question, the run's summary, or why a card is blocked).
Each converts to and from the outbox's JSON `payload` column (`to_payload`,
`from_payload`; `effect_from_row` picks the type by the `kind` column). The
stored shape is fixed: rows written by an older worker must still deliver.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal

from factory.statuses import RunStatus, TaskStatus
from factory.transitions import Step

_BREAKS = re.compile(r"[ \t]*[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+[ \t]*")

EffectKind = Literal["state", "log", "page", "graph", "comment"]

COLUMNS: dict[str, str] = {
    TaskStatus.queued: "Queue",
    TaskStatus.running: "Running",
    TaskStatus.feedback: "Feedback",
    TaskStatus.done: "Done",
    TaskStatus.failed: "Failed",
    TaskStatus.blocked: "Blocked",
    TaskStatus.cancelled: "Cancelled",
}
BOARD_COLUMNS: tuple[str, ...] = tuple(COLUMNS.values())

DEFAULT_QUESTION = (
    "This card needs your input to continue. Reply in a comment and I will pick it up."
)


class SummaryComment(StrEnum):
    """Which finished cards get a summary comment (NFACTORY_SUMMARY_COMMENT).

    A comment notifies the people following the card, so by default only the
    endings someone has to act on get one; the column and the log say the rest.
    """

    all = "all"
    problems = "problems"  # Failed, Blocked, Cancelled
    off = "off"


PROBLEM_ENDINGS = frozenset({RunStatus.failed, RunStatus.blocked, RunStatus.cancelled})


def wants_summary(run_status: RunStatus, setting: SummaryComment) -> bool:
    """Whether a run that ended with `run_status` gets a summary comment."""
    match setting:
        case SummaryComment.all:
            return True
        case SummaryComment.problems:
            return run_status in PROBLEM_ENDINGS
    return False


@dataclass(frozen=True)
class StateEffect:
    """The card's column, the step it is at and its error ("" for none)."""

    column: str
    step: str = ""
    error: str = ""
    kind: ClassVar[Literal["state"]] = "state"

    def to_payload(self) -> dict[str, str]:
        return {"column": self.column, "step": self.step, "error": self.error}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> StateEffect:
        return cls(
            str(_field(payload, "state", "column")),
            str(payload.get("step") or ""),
            str(payload.get("error") or ""),
        )


@dataclass(frozen=True)
class LogEffect:
    """One markdown line of the card's log."""

    line: str
    kind: ClassVar[Literal["log"]] = "log"

    def to_payload(self) -> dict[str, str]:
        return {"line": self.line}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> LogEffect:
        return cls(str(_field(payload, "log", "line")))


@dataclass(frozen=True)
class PageEffect:
    """An agent's markdown output, written under the card's log."""

    markdown: str
    kind: ClassVar[Literal["page"]] = "page"

    def to_payload(self) -> dict[str, str]:
        return {"markdown": self.markdown}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> PageEffect:
        return cls(str(_field(payload, "page", "markdown")))


@dataclass(frozen=True)
class GraphEffect:
    """The factory's diagram (a fenced Mermaid block) in the card's log: page text like
    `PageEffect`, but the factory's picture, not an agent's output."""

    markdown: str
    kind: ClassVar[Literal["graph"]] = "graph"

    def to_payload(self) -> dict[str, str]:
        return {"markdown": self.markdown}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> GraphEffect:
        return cls(str(_field(payload, "graph", "markdown")))


@dataclass(frozen=True)
class CommentEffect:
    """A comment on the card (it notifies the people following it)."""

    text: str
    kind: ClassVar[Literal["comment"]] = "comment"

    def to_payload(self) -> dict[str, str]:
        return {"text": self.text}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> CommentEffect:
        return cls(str(_field(payload, "comment", "text")))


Effect = StateEffect | LogEffect | PageEffect | GraphEffect | CommentEffect
# the effects that are text appended to the card's log section
TEXT_KINDS: tuple[str, ...] = ("log", "page", "graph")


_KINDS: dict[str, Callable[[Mapping[str, Any]], Effect]] = {
    t.kind: t.from_payload for t in (StateEffect, LogEffect, PageEffect, GraphEffect, CommentEffect)
}


def effect_from_row(kind: str, payload: Mapping[str, Any]) -> Effect:
    """The effect an outbox row stores (its `kind` and `payload` columns)."""
    if kind not in _KINDS:
        raise ValueError(f"outbox effect of unknown kind {kind!r}")
    return _KINDS[kind](payload)


def _field(payload: Mapping[str, Any], kind: str, name: str) -> Any:
    if name not in payload:
        keys = ", ".join(sorted(map(str, payload))) or "none"
        raise ValueError(f"outbox {kind} effect has no {name!r} in its payload (keys: {keys})")
    return payload[name]


def state_effect(
    status: TaskStatus | RunStatus, step_id: str, error: str | None = None
) -> StateEffect:
    """The card in the column of `status`, at `step_id`, showing `error` (None: none)."""
    return StateEffect(COLUMNS[status], step_id, error or "")


def blocked_effects(error: str) -> list[Effect]:
    """A card that cannot start (unknown factory, a page that cannot run): Blocked, and a
    comment saying why."""
    return [StateEffect(COLUMNS[TaskStatus.blocked], "", error), CommentEffect(f"Blocked: {error}")]


def run_started_effects(
    factory_id: str, start: str, at: datetime, diagram: str | None = None
) -> list[Effect]:
    """A new run: the card goes to Running at the start state, and the log says so.

    `diagram` (the factory as a fenced Mermaid block) follows the log line as page
    text, so it rides in the same append as the run's first log lines: no extra request.
    """
    line = f"`{at:%Y-%m-%d %H:%M:%S}` run started: factory **{factory_id}**, state **{start}**"
    effects: list[Effect] = [state_effect(TaskStatus.running, start), LogEffect(line)]
    if diagram:
        effects.append(GraphEffect(diagram))
    return effects


def note(text: str, at: datetime) -> LogEffect:
    """A log line that is not a transition (what became of the run's workspace)."""
    return LogEffect(f"`{at:%Y-%m-%d %H:%M:%S}` {one_line(text)}")


def log_line(step: Step, at: datetime) -> str:
    arrow = "↻" if step.to_state == step.from_state else "→"
    line = (
        f"`{at:%Y-%m-%d %H:%M:%S}` **{step.from_state}** {arrow} **{step.to_state}** "
        f"({step.reason})"
    )
    if step.retry_delay_ms is not None:
        line += f", attempt {step.attempt} failed, retrying in {step.retry_delay_ms} ms"
    detail = step.error if step.error and step.run_status != RunStatus.feedback else step.message
    if detail:
        line += f": {one_line(detail)}"
    return line


def one_line(text: str) -> str:
    """Agent text kept to its log line: a newline would end the list item and let the
    rest (a heading, a fence) out onto the page."""
    return _BREAKS.sub(" ⏎ ", text.strip())


def summary(step: Step, transitions: int) -> str:
    match step.run_status:
        case RunStatus.done:
            return f"Done: reached {step.to_state!r} after {transitions} transitions."
        case RunStatus.failed:
            error = step.error or "no error recorded"
            return f"Failed at {step.to_state!r} after {transitions} transitions: {error}"
        case RunStatus.blocked:
            return f"Blocked at {step.to_state!r}: {step.error or step.message or 'see the log'}"
        case RunStatus.cancelled:
            reason = step.error or "cancel requested"
            return f"Cancelled at {step.from_state!r} after {transitions} transitions: {reason}."
    return ""


def plan_effects(
    step: Step,
    at: datetime,
    transitions: int,
    summaries: SummaryComment = SummaryComment.problems,
) -> list[Effect]:
    """Effects of committing `step`, in delivery order. `transitions` counts this step;
    `summaries` says which endings get a summary comment."""
    effects: list[Effect] = [
        state_effect(step.run_status, step.to_state, step.error if step.ends_run else None),
        LogEffect(log_line(step, at)),
    ]
    if step.page:
        effects.append(PageEffect(step.page))
    if step.pauses:
        effects.append(CommentEffect(step.message or DEFAULT_QUESTION))
    elif step.ends_run and wants_summary(step.run_status, summaries):
        effects.append(CommentEffect(summary(step, transitions)))
    return effects
