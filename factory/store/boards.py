"""Board-side bookkeeping: intake watermark, card snapshots, cards becoming tasks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import IntegrityError

from factory.effects import StateEffect, blocked_effects
from factory.store import repo
from factory.store.tables import boards, outbox, tasks


def load_watermark(
    conn: Connection, board_id: str
) -> tuple[datetime | None, list[str], list[datetime]]:
    """(first unsettled minute, keys of the cards handled since, heavy minutes left out)."""
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
    conn: Connection,
    board_id: str,
    minute: datetime | None,
    seen: Iterable[str],
    heavy: Iterable[datetime] = (),
) -> None:
    conn.execute(
        update(boards)
        .where(boards.c.id == board_id)
        .values(
            watermark=minute,
            watermark_seen=sorted(seen),
            watermark_heavy=[m.isoformat() for m in sorted(heavy)],
        )
    )


def snapshots(conn: Connection, board_id: str, external_ids: Sequence[str]) -> dict[str, Any]:
    """For each card id with a task: (task id, status, last delivered column, column pending)."""
    if not external_ids:
        return {}
    rows = conn.execute(
        select(tasks.c.id, tasks.c.external_id, tasks.c.status).where(
            tasks.c.board_id == board_id, tasks.c.external_id.in_(list(external_ids))
        )
    ).all()
    # one query for every card's column changes, not one per card
    states: dict[str, list[Any]] = {row.id: [] for row in rows}
    for s in conn.execute(
        select(outbox.c.task_id, outbox.c.status, outbox.c.payload)
        .where(outbox.c.task_id.in_(list(states)), outbox.c.kind == "state")
        .order_by(outbox.c.id.desc())
    ):
        states[s.task_id].append(s)
    found: dict[str, Any] = {}
    for row in rows:
        mine = states[row.id]
        delivered = next(
            (StateEffect.from_payload(s.payload).column for s in mine if s.status == "delivered"),
            None,
        )
        pending = any(s.status in ("pending", "sending") for s in mine)
        found[row.external_id] = (row.id, row.status, delivered, pending)
    return found


def block_new_card(
    conn: Connection,
    *,
    board_id: str,
    external_id: str,
    factory_id: str,
    title: str,
    error: str,
    now: datetime,
) -> str:
    """A card that cannot start: a blocked task, so the next poll does not ask again."""
    task_id = repo.create_task(
        conn,
        board_id=board_id,
        external_id=external_id,
        factory_id=factory_id,
        title=title,
        now=now,
    )
    conn.execute(
        update(tasks).where(tasks.c.id == task_id).values(status="blocked", last_error=error)
    )
    _block_effects(conn, task_id, board_id, error, now)
    return task_id


def block_existing(
    conn: Connection, task_id: str, board_id: str, error: str, now: datetime
) -> None:
    conn.execute(
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.active_run_id.is_(None))
        .values(status="blocked", last_error=error, updated_at=now)
    )
    _block_effects(conn, task_id, board_id, error, now)


def _block_effects(
    conn: Connection, task_id: str, board_id: str, error: str, now: datetime
) -> None:
    effects = blocked_effects(error)
    key = f"task-{task_id}-intake-{now.timestamp():.0f}"
    repo.add_effects(conn, task_id, board_id, key, 0, effects, now)


def requeue_card(
    conn: Connection,
    task_id: str,
    *,
    factory_id: str,
    title: str,
    prompt: str,
    context: str,
    now: datetime,
) -> bool:
    """A finished card moved back to Queue: a fresh run with the card as it is now."""
    result = conn.execute(
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.active_run_id.is_(None))
        .values(
            status="queued",
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


def created_once(db: Engine, write: Callable[[Connection], object]) -> bool:
    """Run `write` (which creates a card's task) in its own transaction: False when
    another worker took the card in first (the card's unique key), True otherwise."""
    try:
        with db.begin() as conn:
            write(conn)
        return True
    except IntegrityError:
        return False
