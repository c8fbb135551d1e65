"""The outbox's status lifecycle, and what it tells about a card.

An effect goes pending -> sending (claimed, its write may be out) -> delivered,
or back to pending (a clean failure), or stays sending (a write in doubt), or
ends superseded (a newer column made it pointless) or parked (the board cannot
take it). Only this module moves an effect between statuses; `factory.outbox`
decides when, and boards ask here what their cards already show.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, func, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from factory.board_protocol import Delivery, PendingEffect
from factory.effects import TEXT_KINDS, CommentEffect, Effect, effect_from_row
from factory.statuses import UNDELIVERED, OutboxStatus
from factory.store.db import Database
from factory.store.tables import outbox, tasks


def _due(settled: datetime) -> ColumnElement[bool]:
    """Pending, or sending with its grace run out: a write in doubt is checked no sooner."""
    return or_(
        outbox.c.status == OutboxStatus.pending,
        and_(
            outbox.c.status == OutboxStatus.sending,
            or_(outbox.c.attempted_at.is_(None), outbox.c.attempted_at <= settled),
        ),
    )


def pending(
    db: Database,
    board_id: str,
    now: datetime,
    limit: int = 500,
    doubt_grace: float = 0.0,
) -> dict[str, list[PendingEffect]]:
    """Pending effects grouped by card, oldest first.

    An effect in doubt (its last attempt may have been applied) waits
    `doubt_grace` seconds before it is checked and re-sent: a request that
    timed out may still land a little later, and checking too early would
    send it twice.
    """
    settled = now - timedelta(seconds=doubt_grace)
    with db.connect() as conn:
        rows = conn.execute(
            select(outbox, tasks.c.external_id)
            .join(tasks, tasks.c.id == outbox.c.task_id)
            .where(
                outbox.c.board_id == board_id,
                _due(settled),
            )
            .order_by(outbox.c.id)
            .limit(limit)
        ).mappings()
        grouped: dict[str, list[PendingEffect]] = {}
        for r in rows:
            grouped.setdefault(r["task_id"], []).append(
                PendingEffect(
                    id=r["id"],
                    task_id=r["task_id"],
                    effect=effect_from_row(r["kind"], r["payload"]),
                    effect_key=r["effect_key"],
                    external_id=r["external_id"],
                    in_doubt=r["status"] == OutboxStatus.sending,
                )
            )
    return grouped


def backlog(db: Database, board_id: str | None = None) -> int:
    """Effects waiting for delivery: to one board, or to every board in the database."""
    query = select(func.count()).select_from(outbox).where(outbox.c.status.in_(UNDELIVERED))
    if board_id is not None:
        query = query.where(outbox.c.board_id == board_id)
    with db.connect() as conn:
        return conn.execute(query).scalar_one()


def mark_sending(
    db: Database, task_id: str, ids: Sequence[int], now: datetime, doubt_grace: float = 0.0
) -> bool:
    """Write-ahead mark: if we die before `record`, the next drain knows to check first.

    It is also the card's delivery claim when several workers share the outbox: False
    (nothing marked) when another worker is delivering this card right now, or already
    did so since `ids` were read. Two workers delivering one card at once would append
    its log twice, or land an older column after a newer one.
    """
    settled = now - timedelta(seconds=doubt_grace)
    with db.begin() as conn:
        # the card's row lock serialises claims on PostgreSQL (SQLite has one writer anyway)
        conn.execute(select(tasks.c.id).where(tasks.c.id == task_id).with_for_update())
        busy = conn.execute(
            select(outbox.c.id)
            .where(
                outbox.c.task_id == task_id,
                outbox.c.status == OutboxStatus.sending,
                outbox.c.attempted_at > settled,
            )
            .limit(1)
        ).first()
        claimable = conn.execute(
            select(func.count())
            .select_from(outbox)
            .where(
                outbox.c.id.in_(list(ids)),
                _due(settled),
            )
        ).scalar_one()
        if busy is not None or claimable != len(ids):
            return False
        conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(list(ids)), outbox.c.status.in_(UNDELIVERED))
            .values(status=OutboxStatus.sending, attempted_at=now)
        )
    return True


def stamp_sending(db: Database, ids: Sequence[int], now: datetime) -> None:
    """A write carrying these effects goes out now: its grace, if it ends in doubt,
    counts from here (not from when the card was claimed, which may be long before)."""
    with db.begin() as conn:
        conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(list(ids)), outbox.c.status == OutboxStatus.sending)
            .values(attempted_at=now)
        )


def record(
    db: Database, deliveries: Sequence[Delivery], superseded: Sequence[int], now: datetime
) -> None:
    with db.begin() as conn:
        if superseded:
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(superseded), outbox.c.status.in_(UNDELIVERED))
                .values(status=OutboxStatus.superseded, delivered_at=now)
            )
        for d in deliveries:
            values: dict[str, object] = {"attempts": outbox.c.attempts + 1}
            if d.ok:
                values |= {
                    "status": OutboxStatus.delivered,
                    "delivered_at": now,
                    "external_ref": d.ref,
                }
            else:
                # a clean failure (the board said no) goes back to pending; one that may
                # have been applied stays `sending`, so the next attempt checks first
                status = (
                    OutboxStatus.parked
                    if d.permanent
                    else OutboxStatus.sending
                    if d.in_doubt
                    else OutboxStatus.pending
                )
                values |= {"last_error": d.error, "status": status}
            conn.execute(update(outbox).where(outbox.c.id == d.effect_id).values(**values))


def park_task(db: Database, task_id: str, error: str) -> int:
    """Park every pending effect of a card the board cannot reach (deleted, not shared)."""
    with db.begin() as conn:
        result = conn.execute(
            update(outbox)
            .where(outbox.c.task_id == task_id, outbox.c.status.in_(UNDELIVERED))
            .values(status=OutboxStatus.parked, last_error=error)
        )
    return result.rowcount


def question_comment(conn: Connection, task_id: str) -> str | None:
    """The card's question: the newest comment effect, once delivered.

    None while it is not delivered (nobody can answer it yet); "" when it was
    delivered without a comment id to point at.
    """
    latest = conn.execute(
        select(outbox.c.status, outbox.c.external_ref)
        .where(outbox.c.task_id == task_id, outbox.c.kind == CommentEffect.kind)
        .order_by(outbox.c.id.desc())
        .limit(1)
    ).first()
    if latest is None or latest.status != OutboxStatus.delivered:
        return None
    return latest.external_ref or ""


def log_section_delivered(db: Database, task_id: str) -> bool:
    """Whether any log line or page output reached the card: its section header is there."""
    with db.connect() as conn:
        found = conn.execute(
            select(outbox.c.id)
            .where(
                outbox.c.task_id == task_id,
                outbox.c.kind.in_(TEXT_KINDS),
                outbox.c.status == OutboxStatus.delivered,
            )
            .limit(1)
        ).first()
    return found is not None


def delivered_effects(db: Database, task_id: str) -> list[Effect]:
    """What the card shows: its delivered effects, in order."""
    with db.connect() as conn:
        rows = conn.execute(
            select(outbox.c.kind, outbox.c.payload)
            .where(outbox.c.task_id == task_id, outbox.c.status == OutboxStatus.delivered)
            .order_by(outbox.c.id)
        )
        return [effect_from_row(r.kind, r.payload) for r in rows]
