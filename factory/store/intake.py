"""Intake's bookkeeping: the board's watermark, what each card's task shows, and cards
becoming tasks (created, blocked, requeued, cancelled), each in its own transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select, update
from sqlalchemy.exc import IntegrityError

from factory.effects import StateEffect, blocked_effects
from factory.statuses import UNDELIVERED, OutboxStatus, TaskStatus
from factory.store import repo
from factory.store.db import Database
from factory.store.tables import boards, outbox, tasks

CardTask = tuple[str, str, str | None, bool]
"""A card's task as intake sees it: (task id, status, last delivered column, column pending)."""


def load_watermark(
    db: Database, board_id: str
) -> tuple[datetime | None, list[str], list[datetime]]:
    """(first unsettled minute, keys of the cards handled since, heavy minutes left out)."""
    with db.connect() as conn:
        row = conn.execute(
            select(boards.c.watermark, boards.c.watermark_seen, boards.c.watermark_heavy).where(
                boards.c.id == board_id
            )
        ).one_or_none()
    if row is None:
        return None, [], []
    heavy = [datetime.fromisoformat(m) for m in row.watermark_heavy or []]
    return row.watermark, list(row.watermark_seen or []), heavy


def save_watermark(
    db: Database,
    board_id: str,
    minute: datetime | None,
    seen: Iterable[str],
    heavy: Iterable[datetime] = (),
) -> None:
    with db.begin() as conn:
        conn.execute(
            update(boards)
            .where(boards.c.id == board_id)
            .values(
                watermark=minute,
                watermark_seen=sorted(seen),
                watermark_heavy=[m.isoformat() for m in sorted(heavy)],
            )
        )


def snapshots(db: Database, board_id: str, external_ids: Sequence[str]) -> dict[str, CardTask]:
    """Each card id that has a task, with what its task shows."""
    if not external_ids:
        return {}
    with db.connect() as conn:
        return _snapshots(conn, board_id, external_ids)


def _snapshots(conn: Connection, board_id: str, external_ids: Sequence[str]) -> dict[str, CardTask]:
    rows = conn.execute(
        select(tasks.c.id, tasks.c.external_id, tasks.c.status).where(
            tasks.c.board_id == board_id, tasks.c.external_id.in_(list(external_ids))
        )
    ).all()
    # one query for every card's column changes, not one per card
    states: dict[str, list[Row[Any]]] = {row.id: [] for row in rows}
    for s in conn.execute(
        select(outbox.c.task_id, outbox.c.status, outbox.c.payload)
        .where(outbox.c.task_id.in_(list(states)), outbox.c.kind == "state")
        .order_by(outbox.c.id.desc())
    ):
        states[s.task_id].append(s)
    found: dict[str, CardTask] = {}
    for row in rows:
        mine = states[row.id]
        delivered = next(
            (
                StateEffect.from_payload(s.payload).column
                for s in mine
                if s.status == OutboxStatus.delivered
            ),
            None,
        )
        pending = any(s.status in UNDELIVERED for s in mine)
        found[row.external_id] = (row.id, row.status, delivered, pending)
    return found


def create_card(
    db: Database,
    *,
    board_id: str,
    external_id: str,
    factory_id: str,
    title: str,
    prompt: str,
    context: str,
    now: datetime,
) -> bool:
    """A queued card becomes a task: False when another worker took it in first."""
    return _once(
        db,
        lambda conn: repo.create_task(
            conn,
            board_id=board_id,
            external_id=external_id,
            factory_id=factory_id,
            title=title,
            prompt=prompt,
            context=context,
            now=now,
        ),
    )


def block_new_card(
    db: Database,
    *,
    board_id: str,
    external_id: str,
    factory_id: str,
    title: str,
    error: str,
    now: datetime,
) -> bool:
    """A card that cannot start: a blocked task, so the next poll does not ask again.
    False when another worker took the card in first."""

    def block(conn: Connection) -> None:
        task_id = repo.create_task(
            conn,
            board_id=board_id,
            external_id=external_id,
            factory_id=factory_id,
            title=title,
            now=now,
        )
        conn.execute(
            update(tasks)
            .where(tasks.c.id == task_id)
            .values(status=TaskStatus.blocked, last_error=error)
        )
        _block_effects(conn, task_id, board_id, error, now)

    return _once(db, block)


def block_existing(db: Database, task_id: str, board_id: str, error: str, now: datetime) -> None:
    with db.begin() as conn:
        conn.execute(
            update(tasks)
            .where(tasks.c.id == task_id, tasks.c.active_run_id.is_(None))
            .values(status=TaskStatus.blocked, last_error=error, updated_at=now)
        )
        _block_effects(conn, task_id, board_id, error, now)


def _block_effects(
    conn: Connection, task_id: str, board_id: str, error: str, now: datetime
) -> None:
    effects = blocked_effects(error)
    key = f"task-{task_id}-intake-{now.timestamp():.0f}"
    repo.add_effects(conn, task_id, board_id, key, 0, effects, now)


def requeue_card(
    db: Database,
    task_id: str,
    *,
    factory_id: str,
    title: str,
    prompt: str,
    context: str,
    now: datetime,
) -> bool:
    """A finished card moved back to Queue: a fresh run with the card as it is now."""
    with db.begin() as conn:
        result = conn.execute(
            update(tasks)
            .where(tasks.c.id == task_id, tasks.c.active_run_id.is_(None))
            .values(
                status=TaskStatus.queued,
                factory_id=factory_id,
                title=title,
                prompt=prompt,
                context=context,
                step=None,
                cancel_requested=False,
                cancel_reason=None,
                last_error=None,
                not_before=None,
                updated_at=now,
            )
        )
    return result.rowcount == 1


def cancel_card(db: Database, task_id: str, now: datetime, reason: str) -> None:
    """A card moved to Cancelled by a person: its run stops at the next transition."""
    with db.begin() as conn:
        repo.request_cancel(conn, task_id, now, by=reason)


def _once(db: Database, write: Callable[[Connection], object]) -> bool:
    # the card's unique key makes a second worker's insert fail: it lost the race
    try:
        with db.begin() as conn:
            write(conn)
        return True
    except IntegrityError:
        return False
