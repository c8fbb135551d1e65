"""Board effects a step implies: pure, so the outbox rows are decided, not improvised.

Kinds: `state` (card column, current step, error), `log` (one markdown log
line), `page` (agent markdown output), `comment` (feedback question or the
run's summary).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from factory.decide import Step

_BREAKS = re.compile(r"[ \t]*[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+[ \t]*")

EffectKind = Literal["state", "log", "page", "comment"]

COLUMNS: dict[str, str] = {
    "queued": "Queue",
    "running": "Running",
    "feedback": "Feedback",
    "done": "Done",
    "failed": "Failed",
    "blocked": "Blocked",
    "cancelled": "Cancelled",
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


PROBLEM_ENDINGS = frozenset({"failed", "blocked", "cancelled"})


def wants_summary(run_status: str, setting: SummaryComment) -> bool:
    """Whether a run that ended with `run_status` gets a summary comment."""
    match setting:
        case SummaryComment.all:
            return True
        case SummaryComment.problems:
            return run_status in PROBLEM_ENDINGS
    return False


@dataclass(frozen=True)
class Effect:
    kind: EffectKind
    payload: dict[str, Any]


def state_effect(status: str, step_id: str, error: str | None = None) -> Effect:
    return Effect("state", {"column": COLUMNS[status], "step": step_id, "error": error or ""})


def log_line(step: Step, at: datetime) -> str:
    arrow = "↻" if step.to_state == step.from_state else "→"
    line = (
        f"`{at:%Y-%m-%d %H:%M:%S}` **{step.from_state}** {arrow} **{step.to_state}** "
        f"({step.reason})"
    )
    if step.retry_delay_ms is not None:
        line += f", attempt {step.attempt} failed, retrying in {step.retry_delay_ms} ms"
    detail = step.error if step.error and step.run_status != "feedback" else step.message
    if detail:
        line += f": {one_line(detail)}"
    return line


def one_line(text: str) -> str:
    """Agent text kept to its log line: a newline would end the list item and let the
    rest (a heading, a fence) out onto the page."""
    return _BREAKS.sub(" ⏎ ", text.strip())


def summary(step: Step, transitions: int) -> str:
    match step.run_status:
        case "done":
            return f"Done: reached {step.to_state!r} after {transitions} transitions."
        case "failed":
            error = step.error or "no error recorded"
            return f"Failed at {step.to_state!r} after {transitions} transitions: {error}"
        case "blocked":
            return f"Blocked at {step.to_state!r}: {step.error or step.message or 'see the log'}"
        case "cancelled":
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
    effects = [
        state_effect(step.run_status, step.to_state, step.error if step.ends_run else None),
        Effect("log", {"line": log_line(step, at)}),
    ]
    if step.page:
        effects.append(Effect("page", {"markdown": step.page}))
    if step.pauses:
        effects.append(Effect("comment", {"text": step.message or DEFAULT_QUESTION}))
    elif step.ends_run and wants_summary(step.run_status, summaries):
        effects.append(Effect("comment", {"text": summary(step, transitions)}))
    return effects
