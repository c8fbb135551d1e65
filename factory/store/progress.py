"""SQL for progress lines: one row per card, overwritten, never history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, insert, select, update

from factory.effects import TEXT_KINDS
from factory.statuses import UNDELIVERED, OutboxStatus
from factory.store.tables import outbox, task_progress, tasks


def _upsert(conn: Connection, task_id: str, now: datetime, **values: object) -> None:
    # one writer per card (its lease holder), so update-then-insert cannot race itself
    done = conn.execute(
        update(task_progress)
        .where(task_progress.c.task_id == task_id)
        .values(updated_at=now, **values)
    )
    if done.rowcount == 0:
        conn.execute(insert(task_progress).values(task_id=task_id, updated_at=now, **values))


def set_line(conn: Connection, task_id: str, state_id: str, line: str, now: datetime) -> None:
    _upsert(conn, task_id, now, state_id=state_id, line=line)


# The agent's step is committed: its progress line is history now. Run by the
# transition's own write (store/steps.py), bound by task id as "w_id".
CLEAR_LINE = (
    update(task_progress)
    .where(task_progress.c.task_id == bindparam("w_id"), task_progress.c.line.is_not(None))
    .values(line=None)
)


def lines(conn: Connection) -> dict[str, tuple[str, str]]:
    """task id -> (state, latest line) for every card with an agent reporting now."""
    rows = conn.execute(
        select(task_progress.c.task_id, task_progress.c.state_id, task_progress.c.line).where(
            task_progress.c.line.is_not(None)
        )
    )
    return {r.task_id: (r.state_id, r.line) for r in rows}


def set_block(conn: Connection, task_id: str, block_id: str, now: datetime) -> None:
    _upsert(conn, task_id, now, block_id=block_id)


def get_block(conn: Connection, task_id: str) -> str | None:
    return conn.execute(
        select(task_progress.c.block_id).where(task_progress.c.task_id == task_id)
    ).scalar_one_or_none()


def forget_block(conn: Connection, task_id: str, block_id: str) -> None:
    """The block is gone from the page (removed by us, or by a person)."""
    conn.execute(
        update(task_progress)
        .where(task_progress.c.task_id == task_id, task_progress.c.block_id == block_id)
        .values(block_id=None)
    )


def log_settled(conn: Connection, task_id: str) -> bool:
    """The card's log section exists and no log or page output waits to be appended:
    a progress block appended now sits under the latest log line."""
    kinds = TEXT_KINDS
    delivered = conn.execute(
        select(outbox.c.id)
        .where(outbox.c.task_id == task_id, outbox.c.kind.in_(kinds))
        .where(outbox.c.status == OutboxStatus.delivered)
        .limit(1)
    ).first()
    waiting = conn.execute(
        select(outbox.c.id)
        .where(outbox.c.task_id == task_id, outbox.c.kind.in_(kinds))
        .where(outbox.c.status.in_(UNDELIVERED))
        .limit(1)
    ).first()
    return delivered is not None and waiting is None


def running_cards(conn: Connection, task_ids: list[str]) -> dict[str, tuple[str, str, str | None]]:
    """task id -> (title, current state, card page id or None) for the live view's cards."""
    if not task_ids:
        return {}
    rows = conn.execute(
        select(tasks.c.id, tasks.c.title, tasks.c.step, tasks.c.external_id).where(
            tasks.c.id.in_(task_ids)
        )
    )
    return {r.id: (r.title, r.step or "", r.external_id) for r in rows}
