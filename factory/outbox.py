"""Draining the outbox: per card, in order, never losing an effect.

Pure planning (`coalesce`) decides what to send; `drain` does the SQL and
hands each card's batch to the board, a few cards at a time. Boards make each
delivery idempotent by effect key, so a crash between the board's answer and
`record` cannot duplicate anything (see each board's `deliver`).

Every effect carries the time its last write was really sent (`attempted_at`:
stamped when the card is claimed, and again as each request goes out). A write
in doubt is checked against the board only once the board's `doubt_grace`,
counted from that stamp, has passed, so a write Notion applies late is seen
instead of being sent a second time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, func, or_, select, update

from factory.board import Board, Delivery, PendingEffect
from factory.effects import effect_from_row
from factory.statuses import UNDELIVERED, OutboxStatus
from factory.store.tables import outbox, tasks
from factory.threads import run_io

log = logging.getLogger("nfactory.outbox")

# Cards delivered side by side: enough that a request Notion sits on holds up its own
# card only; the board's rate limiter, not this, paces the requests themselves.
DELIVERY_CONCURRENCY = 4
# While a card is still out, look this often for other cards with effects to deliver.
REFILL_SECONDS = 1.0


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
                    outbox.c.status == OutboxStatus.pending,
                    and_(
                        outbox.c.status == OutboxStatus.sending,
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
                    effect=effect_from_row(r["kind"], r["payload"]),
                    effect_key=r["effect_key"],
                    external_id=r["external_id"],
                    in_doubt=r["status"] == OutboxStatus.sending,
                )
            )
    return grouped


def backlog(db: Engine, board_id: str | None = None) -> int:
    """Effects waiting for delivery: to one board, or to every board in the database."""
    query = select(func.count()).select_from(outbox).where(outbox.c.status.in_(UNDELIVERED))
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
                or_(
                    outbox.c.status == OutboxStatus.pending,
                    and_(
                        outbox.c.status == OutboxStatus.sending,
                        or_(outbox.c.attempted_at.is_(None), outbox.c.attempted_at <= settled),
                    ),
                ),
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


def stamp_sending(db: Engine, ids: Sequence[int], now: datetime) -> None:
    """A write carrying these effects goes out now: its grace, if it ends in doubt,
    counts from here (not from when the card was claimed, which may be long before)."""
    with db.begin() as conn:
        conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(list(ids)), outbox.c.status == OutboxStatus.sending)
            .values(attempted_at=now)
        )


def record(
    db: Engine, deliveries: Sequence[Delivery], superseded: Sequence[int], now: datetime
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


def park_task(db: Engine, task_id: str, error: str) -> int:
    """Park every pending effect of a card the board cannot reach (deleted, not shared)."""
    with db.begin() as conn:
        result = conn.execute(
            update(outbox)
            .where(outbox.c.task_id == task_id, outbox.c.status.in_(UNDELIVERED))
            .values(status=OutboxStatus.parked, last_error=error)
        )
    return result.rowcount


@dataclass
class _Tally:
    delivered: int = 0
    superseded: int = 0
    failed: int = 0
    parked: int = 0
    skipped: set[str] = field(default_factory=set)  # failed or claimed elsewhere: not again now

    def report(self) -> DrainReport:
        return DrainReport(self.delivered, self.superseded, self.failed, self.parked)


def elapsed_since(start: datetime) -> Callable[[], datetime]:
    """A clock that reads `start` plus the real time passed since it was made."""
    origin = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - origin)


async def drain(
    db: Engine,
    board: Board,
    now: datetime,
    limit: int = 500,
    doubt_grace: float | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    concurrency: int = DELIVERY_CONCURRENCY,
) -> DrainReport:
    """Deliver pending effects, a few cards at a time, each card's strictly in order.

    One failing card does not stall the others, nor does one slow one: while a
    request Notion sits on keeps its card's slot, the other slots go on, taking
    in cards whose effects appear meanwhile, until every started card is done.
    A card that failed is not retried within the same drain. `clock` stamps
    each card's claim and each write at its real time; without one, real time
    elapsed since `now` is added to `now`.
    """
    grace = board.doubt_grace if doubt_grace is None else doubt_grace
    read_clock = clock or elapsed_since(now)
    tally = _Tally()
    running: dict[str, asyncio.Task[None]] = {}
    error: BaseException | None = None  # the first card that failed outside the board
    waiting: dict[str, list[PendingEffect]] = await run_io(pending, db, board.id, now, limit, grace)
    try:
        while True:
            for task_id in list(waiting):
                if len(running) >= max(concurrency, 1):
                    break
                effects = waiting.pop(task_id)
                running[task_id] = asyncio.create_task(
                    _deliver_card(db, board, task_id, effects, grace, read_clock, tally)
                )
            if not running:
                if error is not None:
                    raise error
                return tally.report()
            finished, _ = await asyncio.wait(
                running.values(), timeout=REFILL_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            for task_id, task in list(running.items()):
                if task in finished:
                    del running[task_id]
                    if task.exception() is not None and error is None:
                        # the database, most likely: let the cards already out finish,
                        # start no more, and say so
                        error = task.exception()
            if error is not None:
                waiting = {}
            elif not waiting and running:
                # a card is still out: deliver to the others that have effects by now
                fresh = await run_io(pending, db, board.id, read_clock(), limit, grace)
                waiting = {
                    task_id: effects
                    for task_id, effects in fresh.items()
                    if task_id not in running and task_id not in tally.skipped
                }
    finally:
        for task in running.values():
            task.cancel()  # the drain itself was cancelled (a stop that ran out of time)
        if running:
            await asyncio.wait(running.values())


async def _deliver_card(
    db: Engine,
    board: Board,
    task_id: str,
    effects: list[PendingEffect],
    grace: float,
    clock: Callable[[], datetime],
    tally: _Tally,
) -> None:
    """Claim one card's batch, hand it to the board, record what became of it."""
    send, superseded = coalesce(effects)
    ids = [e.id for e in send]
    if not await run_io(mark_sending, db, task_id, ids, clock(), grace):
        tally.skipped.add(task_id)  # another worker is delivering this card
        return

    async def sending(effect_ids: Sequence[int]) -> None:
        await run_io(stamp_sending, db, effect_ids, clock())

    try:
        results = await board.deliver(send, sending)
    except Exception as exc:  # a board bug must not stop the other cards
        log.exception("delivery to card %s failed", task_id)
        results = [Delivery(send[0].id, ok=False, error=f"{type(exc).__name__}: {exc}")]
    await run_io(record, db, results, [e.id for e in superseded], clock())
    tally.superseded += len(superseded)
    tally.delivered += sum(1 for d in results if d.ok)
    tally.failed += sum(1 for d in results if not d.ok and not d.permanent)
    permanent = [d for d in results if not d.ok and d.permanent]
    tally.parked += len(permanent)
    if permanent:
        # the rest of this card's backlog would fail the same way: park it too
        error = permanent[0].error or ""
        tally.parked += await run_io(park_task, db, task_id, error)
    if not all(d.ok for d in results):
        tally.skipped.add(task_id)
