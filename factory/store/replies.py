"""The reply schedule's rows: cards waiting in Feedback, when their question reached the
card, and when their comments were last read (see factory/reply_schedule.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from factory.store.tables import outbox, reply_checks, tasks


@dataclass(frozen=True)
class WaitingRow:
    task_id: str
    external_id: str | None  # the card on the board
    asked_at: datetime | None  # the question comment's delivery; None until it is delivered
    checked_at: datetime | None  # the last read of the card's comments; None if never


def waiting_for_replies(conn: Connection, board_id: str) -> list[WaitingRow]:
    """The board's tasks in feedback, longest waiting first, in one statement.

    The question is the task's newest comment effect, as the board reads it: until that
    one is delivered the card has nothing to answer.
    """
    newest = (
        select(outbox.c.task_id, func.max(outbox.c.id).label("id"))
        .where(outbox.c.kind == "comment", outbox.c.board_id == board_id)
        .group_by(outbox.c.task_id)
        .subquery()
    )
    question = outbox.alias("question")
    query = (
        select(
            tasks.c.id,
            tasks.c.external_id,
            question.c.status,
            question.c.delivered_at,
            reply_checks.c.checked_at,
        )
        .select_from(tasks)
        .outerjoin(newest, newest.c.task_id == tasks.c.id)
        .outerjoin(question, question.c.id == newest.c.id)
        .outerjoin(reply_checks, reply_checks.c.task_id == tasks.c.id)
        .where(tasks.c.status == "feedback", tasks.c.board_id == board_id)
        .order_by(tasks.c.updated_at, tasks.c.id)
    )
    return [
        WaitingRow(
            r.id,
            r.external_id,
            r.delivered_at if r.status == "delivered" else None,
            r.checked_at,
        )
        for r in conn.execute(query)
    ]


def record_reply_check(conn: Connection, task_id: str, at: datetime) -> None:
    """The card's comments were read as of `at` (call only once the read succeeded)."""
    done = conn.execute(
        update(reply_checks)
        .where(reply_checks.c.task_id == task_id, reply_checks.c.checked_at < at)
        .values(checked_at=at)
    )
    if done.rowcount:
        return
    try:
        with conn.begin_nested():  # a savepoint: PostgreSQL aborts a transaction on a conflict
            conn.execute(insert(reply_checks).values(task_id=task_id, checked_at=at))
    except IntegrityError:
        pass  # a row as new or newer is there already (another worker read it meanwhile)
