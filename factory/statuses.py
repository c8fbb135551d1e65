"""The statuses a task, a run and an outbox effect go through, each defined once.

They are `StrEnum`s: a member equals the string the database stores ("done" ==
TaskStatus.done), so rows, queries and JSON output are unchanged by them. Each
member's name is its value too, since a driver may store an Enum by its name
(psycopg does).
"""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    """Where a card is: its column on the board follows from it (effects.COLUMNS)."""

    queued = "queued"
    running = "running"
    feedback = "feedback"  # waiting for a person's reply
    done = "done"
    failed = "failed"
    blocked = "blocked"
    cancelled = "cancelled"


class RunStatus(StrEnum):
    """Where one run of a card's factory is; a task's status is its latest run's."""

    running = "running"
    feedback = "feedback"
    done = "done"
    failed = "failed"
    blocked = "blocked"
    cancelled = "cancelled"


class OutboxStatus(StrEnum):
    """An effect's delivery lifecycle: pending -> sending -> delivered, superseded or parked.

    `sending` is written before the board is asked: an effect left in it may have
    landed, so the next attempt checks the card first. `superseded`: a newer state
    effect of the card made it pointless. `parked`: the board refused for good (the
    page is gone or not shared); it is never retried.
    """

    pending = "pending"
    sending = "sending"
    delivered = "delivered"
    superseded = "superseded"
    parked = "parked"


# A task or run in one of these has ended: nothing runs it until it is queued again.
TERMINAL: frozenset[str] = frozenset(
    {RunStatus.done, RunStatus.failed, RunStatus.blocked, RunStatus.cancelled}
)
# A task in one of these is not finished (it may still be cancelled).
ACTIVE: frozenset[str] = frozenset({TaskStatus.queued, TaskStatus.running, TaskStatus.feedback})
# Effects still to deliver.
UNDELIVERED: tuple[OutboxStatus, ...] = (OutboxStatus.pending, OutboxStatus.sending)
