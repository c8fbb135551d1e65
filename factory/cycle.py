"""One cycle of work in the foreground: resume answered cards, run due cards, deliver.

`nfactory tick` runs one cycle; `nfactory run --task` drives one card until
it pauses or finishes; the scheduler (nfactory start) runs the same steps as
separate jobs.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from factory.board_protocol import Board, PollReport
from factory.engine import Engine, TickReport
from factory.outbox import DrainReport, drain
from factory.reply_schedule import ReplySchedule, Waiting, plan
from factory.store import replies as replies_store
from factory.store import repo
from factory.threads import run_io

log = logging.getLogger("nfactory.cycle")


@dataclass
class CycleReport:
    ticks: list[TickReport] = field(default_factory=list)
    delivery: DrainReport = field(default_factory=DrainReport)
    intake: PollReport | None = None  # what the board's poll reported, if it has intake
    errors: list[str] = field(default_factory=list)  # phases that failed (board unreachable...)

    @property
    def transitions(self) -> int:
        return sum(t.transitions for t in self.ticks)


@dataclass
class RepliesPass:
    """What one look for replies did: the ticks it ran, and hints it had no budget for."""

    ticks: list[TickReport] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # task ids whose comments were read
    unreached: set[str] = field(default_factory=set)  # hinted card ids left for the next pass


async def resume_answered(
    engine: Engine,
    board: Board,
    hints: Collection[str] = (),
    schedule: ReplySchedule | None = None,
) -> RepliesPass:
    """Tick every card in feedback that a person has answered, among those due a look.

    `hints` name cards (page ids, dashes or not) a webhook or intake says changed: they
    are looked at first. Without a `schedule` every waiting card is looked at (the local
    board, whose comments cost nothing); with one, only the cards it picks, at most its
    budget, and a look is recorded (for the next pass, or the next `nfactory tick`) only
    once the read succeeded.
    """
    named = {h.replace("-", "") for h in hints}
    rows = await run_io(_waiting, engine, board.id)
    card_of = {r.task_id: (r.external_id or "").replace("-", "") for r in rows}
    if schedule is None:
        order = sorted(card_of, key=lambda t: card_of[t] not in named)
    else:
        now = engine.clock.now()
        order = plan(
            schedule,
            [
                Waiting(r.task_id, r.asked_at, r.checked_at, card_of[r.task_id] in named)
                for r in rows
                if r.task_id not in engine.held
            ],
            now,
        )
    result = RepliesPass()
    for task_id in order:
        if task_id in engine.held:
            continue  # its factory is not loaded: a reply cannot be handled before a restart
        at = engine.clock.now()
        try:
            replies = await board.replies(task_id)
        except Exception as exc:  # one unreadable card must not hide the others' replies
            log.warning("reading replies on card %s failed: %s", task_id, exc)
            continue
        result.checked.append(task_id)
        if replies:
            # not recorded: if the tick does not take them (another worker holds the
            # card), the card stays due and the next pass looks again
            result.ticks.append(await engine.tick(task_id, replies=replies))
        elif schedule is not None:  # without one nothing reads the look times
            await run_io(_record, engine, task_id, at)
    reached = {card_of[t] for t in result.checked}
    # a hint for a card no longer waiting is spent; one the budget did not reach waits
    result.unreached = {h for h in named & set(card_of.values()) if h not in reached}
    return result


def _waiting(engine: Engine, board_id: str) -> list[replies_store.WaitingRow]:
    with engine.db.connect() as conn:
        return replies_store.waiting_for_replies(conn, board_id)


def _record(engine: Engine, task_id: str, at: datetime) -> None:
    with engine.db.begin() as conn:
        replies_store.record_reply_check(conn, task_id, at)


def _runnable(
    engine: Engine, board_id: str, now: datetime, limit: int, held: Collection[str]
) -> list[str]:
    with engine.db.connect() as conn:
        return repo.runnable_task_ids(conn, board_id, now, limit, held)


def _task(engine: Engine, task_id: str) -> repo.TaskRow:
    with engine.db.connect() as conn:
        return repo.get_task(conn, task_id)


async def run_due(engine: Engine, board_id: str, limit: int = 100) -> list[TickReport]:
    # the clock and the held set are read here, on the loop that changes them
    due = await run_io(_runnable, engine, board_id, engine.clock.now(), limit, set(engine.held))
    return [await engine.tick(task_id) for task_id in due]


async def run_cycle(
    engine: Engine, board: Board, schedule: ReplySchedule | None = None
) -> CycleReport:
    """Each phase runs even if the board fails another: Notion being down must not stop
    cards already taken in from running (their effects wait in the outbox).

    Cards intake saw edited are looked at for replies first; with a `schedule` (from
    cron, each tick a new process) the look times kept in the database decide the rest.
    """
    report = CycleReport()
    try:
        report.intake = await board.poll(engine.factories, engine.clock.now(), engine.unloaded)
    except Exception as exc:
        report.errors.append(f"intake: {exc}")
    try:
        edited = report.intake.edited if report.intake is not None else []
        report.ticks += (await resume_answered(engine, board, edited, schedule)).ticks
    except Exception as exc:
        report.errors.append(f"feedback: {exc}")
    report.ticks += await run_due(engine, board.id)
    try:
        report.delivery = await drain(engine.db, board, engine.clock.now(), clock=engine.clock.now)
    except Exception as exc:
        report.errors.append(f"delivery: {exc}")
    return report


async def run_task(engine: Engine, board: Board, task_id: str) -> CycleReport:
    """Drive one card now until it pauses for a human, finishes, or waits on a long backoff.

    Strict: if another worker holds the card, this raises LeaseHeld instead of waiting.
    A card of another board is refused: that board's worker owns it and its effects.
    """
    owner = (await run_io(_task, engine, task_id)).board_id
    if owner != board.id:
        where = (
            "unset NOTION_BOARD_ID to run it"
            if owner == repo.LOCAL_BOARD
            else f"set NOTION_BOARD_ID to {owner} to run it"
        )
        raise ValueError(
            f"task {task_id} is on board {owner!r}, not on this board ({board.id!r}); {where}"
        )
    report = CycleReport()
    at = engine.clock.now()
    replies = await board.replies(task_id)  # whatever the schedule says: the user asked
    await run_io(_record, engine, task_id, at)
    while True:
        tick = await engine.tick(task_id, strict=True, replies=replies)
        replies = []
        report.ticks.append(tick)
        if tick.outcome == "yielded":
            continue
        if tick.outcome == "backoff":
            # a retry delay too long for one tick: wait it out, since the user asked for now
            task = await run_io(_task, engine, task_id)
            if task.not_before is not None:
                wait = (task.not_before - engine.clock.now()).total_seconds()
                await engine.clock.sleep(max(wait, 0.0))
            continue
        break
    report.delivery = await drain(engine.db, board, engine.clock.now(), clock=engine.clock.now)
    return report
