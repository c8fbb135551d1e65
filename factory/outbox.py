"""Draining the outbox: per card, in order, never losing an effect.

Pure planning (`coalesce`) decides what to send; `drain` moves effects through
their statuses with `factory.store.outbox` (the SQL lives there) and hands each
card's batch to the board, a few cards at a time. Boards make each
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

from factory.board_protocol import Board, Delivery, PendingEffect
from factory.store.db import Database
from factory.store.outbox import mark_sending, park_task, pending, record, stamp_sending
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
    db: Database,
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
    db: Database,
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
        log.warning("card %s cannot be reached; its effects are parked: %s", task_id, error)
    if not all(d.ok for d in results):
        tally.skipped.add(task_id)
