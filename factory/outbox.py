"""Draining the outbox: per card, in order, never losing an effect.

Pure planning (`coalesce`) decides what to send; `drain` does the SQL and
hands each card's batch to the board. Boards make each delivery idempotent
by effect key, so a crash between the board's answer and `record` cannot
duplicate anything (see each board's `deliver`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, func, or_, select, update

from factory.board import Board, Delivery, PendingEffect
from factory.store.tables import outbox, tasks
from factory.threads import run_io

log = logging.getLogger("nfactory.outbox")


def coalesce(effects: Sequence[PendingEffect]) -> tuple[list[PendingEffect], list[PendingEffect]]:
    """Split one card's pending effects into (to send, superseded).

    Only the newest `state` effect matters: the card shows one column, one
    step and one error, so older property updates would be wasted requests.
    Everything else is sent, in order.
    """
    last_state = max((e.id for e in effects if e.kind == "state"), default=None)
    send = [e for e in effects if e.kind != "state" or e.id == last_state]
    superseded = [e for e in effects if e.kind == "state" and e.id != last_state]
    return send, superseded


@dataclass(frozen=True)
class DrainReport:
    delivered: int = 0
    superseded: int = 0
    failed: int = 0
    parked: int = 0


def pending(
    db: Engine,
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
                or_(
                    outbox.c.status == "pending",
                    and_(
                        outbox.c.status == "sending",
                        or_(outbox.c.attempted_at.is_(None), outbox.c.attempted_at <= settled),
                    ),
                ),
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
                    kind=r["kind"],
                    payload=r["payload"],
                    effect_key=r["effect_key"],
                    external_id=r["external_id"],
                    in_doubt=r["status"] == "sending",
                )
            )
    return grouped


def backlog(db: Engine, board_id: str | None = None) -> int:
    """Effects waiting for delivery: to one board, or to every board in the database."""
    query = (
        select(func.count()).select_from(outbox).where(outbox.c.status.in_(("pending", "sending")))
    )
    if board_id is not None:
        query = query.where(outbox.c.board_id == board_id)
    with db.connect() as conn:
        return conn.execute(query).scalar_one()


def mark_sending(
    db: Engine, task_id: str, ids: Sequence[int], now: datetime, doubt_grace: float = 0.0
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
                outbox.c.status == "sending",
                outbox.c.attempted_at > settled,
            )
            .limit(1)
        ).first()
        claimable = conn.execute(
            select(func.count())
            .select_from(outbox)
            .where(
                outbox.c.id.in_(list(ids)),
                or_(
                    outbox.c.status == "pending",
                    and_(
                        outbox.c.status == "sending",
                        or_(outbox.c.attempted_at.is_(None), outbox.c.attempted_at <= settled),
                    ),
                ),
            )
        ).scalar_one()
        if busy is not None or claimable != len(ids):
            return False
        conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(list(ids)), outbox.c.status.in_(("pending", "sending")))
            .values(status="sending", attempted_at=now)
        )
    return True


def record(
    db: Engine, deliveries: Sequence[Delivery], superseded: Sequence[int], now: datetime
) -> None:
    with db.begin() as conn:
        if superseded:
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(superseded), outbox.c.status.in_(("pending", "sending")))
                .values(status="superseded", delivered_at=now)
            )
        for d in deliveries:
            values: dict[str, object] = {"attempts": outbox.c.attempts + 1}
            if d.ok:
                values |= {"status": "delivered", "delivered_at": now, "external_ref": d.ref}
            else:
                # a clean failure (the board said no) goes back to pending; one that may
                # have been applied stays `sending`, so the next attempt checks first
                status = "parked" if d.permanent else "sending" if d.in_doubt else "pending"
                values |= {"last_error": d.error, "status": status}
            conn.execute(update(outbox).where(outbox.c.id == d.effect_id).values(**values))


def park_task(db: Engine, task_id: str, error: str) -> int:
    """Park every pending effect of a card the board cannot reach (deleted, not shared)."""
    with db.begin() as conn:
        result = conn.execute(
            update(outbox)
            .where(outbox.c.task_id == task_id, outbox.c.status.in_(("pending", "sending")))
            .values(status="parked", last_error=error)
        )
    return result.rowcount


async def drain(
    db: Engine, board: Board, now: datetime, limit: int = 500, doubt_grace: float | None = None
) -> DrainReport:
    """Deliver pending effects card by card; one failing card does not stall the others."""
    grace = board.doubt_grace if doubt_grace is None else doubt_grace
    grouped = await run_io(pending, db, board.id, now, limit, grace)
    delivered = superseded_n = failed = parked = 0
    for task_id, effects in grouped.items():
        send, superseded = coalesce(effects)
        if not await run_io(mark_sending, db, task_id, [e.id for e in send], now, grace):
            continue  # another worker is delivering this card
        try:
            results = await board.deliver(send)
        except Exception as exc:  # a board bug must not stop the other cards
            log.exception("delivery to card %s failed", task_id)
            results = [Delivery(send[0].id, ok=False, error=f"{type(exc).__name__}: {exc}")]
        await run_io(record, db, results, [e.id for e in superseded], now)
        superseded_n += len(superseded)
        delivered += sum(1 for d in results if d.ok)
        failed += sum(1 for d in results if not d.ok and not d.permanent)
        permanent = [d for d in results if not d.ok and d.permanent]
        parked += len(permanent)
        if permanent:
            # the rest of this card's backlog would fail the same way: park it too
            error = permanent[0].error or ""
            parked += await run_io(park_task, db, task_id, error)
    return DrainReport(delivered, superseded_n, failed, parked)
