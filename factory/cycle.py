"""One cycle of work in the foreground: resume answered cards, run due cards, deliver.

`nfactory tick` runs one cycle; `nfactory run --task` drives one card until
it pauses or finishes; the scheduler (nfactory start) runs the same steps as
separate jobs.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field

from factory.board import Board
from factory.engine import Engine, TickReport
from factory.outbox import DrainReport, drain
from factory.store import repo

log = logging.getLogger("nfactory.cycle")


@dataclass
class CycleReport:
    ticks: list[TickReport] = field(default_factory=list)
    delivery: DrainReport = field(default_factory=DrainReport)
    intake: object = None  # what the board's poll reported, if it has intake
    errors: list[str] = field(default_factory=list)  # phases that failed (board unreachable...)

    @property
    def transitions(self) -> int:
        return sum(t.transitions for t in self.ticks)


async def resume_answered(
    engine: Engine, board: Board, first: Collection[str] = ()
) -> list[TickReport]:
    """Tick every card in feedback that a person has answered.

    `first` names cards (ids without dashes) a webhook says were commented on:
    they are checked before the others, so their replies are not kept waiting
    behind every other waiting card's comment read.
    """
    with engine.db.connect() as conn:
        waiting = repo.feedback_tasks(conn, board.id)
    waiting.sort(key=lambda t: (t[1] or "").replace("-", "") not in first)
    reports = []
    for task_id, _card in waiting:
        if task_id in engine.held:
            continue  # its factory is not loaded: a reply cannot be handled before a restart
        try:
            replies = await board.replies(task_id)
        except Exception as exc:  # one unreadable card must not hide the others' replies
            log.warning("reading replies on card %s failed: %s", task_id, exc)
            continue
        if replies:
            reports.append(await engine.tick(task_id, replies=replies))
    return reports


async def run_due(engine: Engine, board_id: str, limit: int = 100) -> list[TickReport]:
    with engine.db.connect() as conn:
        due = repo.runnable_task_ids(conn, board_id, engine.clock.now(), limit, engine.held)
    return [await engine.tick(task_id) for task_id in due]


async def run_cycle(engine: Engine, board: Board) -> CycleReport:
    """Each phase runs even if the board fails another: Notion being down must not stop
    cards already taken in from running (their effects wait in the outbox)."""
    report = CycleReport()
    try:
        report.intake = await board.poll(engine.factories, engine.clock.now(), engine.unloaded)
    except Exception as exc:
        report.errors.append(f"intake: {exc}")
    try:
        report.ticks += await resume_answered(engine, board)
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
    with engine.db.connect() as conn:
        owner = repo.get_task(conn, task_id).board_id
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
    replies = await board.replies(task_id)
    while True:
        tick = await engine.tick(task_id, strict=True, replies=replies)
        replies = []
        report.ticks.append(tick)
        if tick.outcome == "yielded":
            continue
        if tick.outcome == "backoff":
            # a retry delay too long for one tick: wait it out, since the user asked for now
            with engine.db.connect() as conn:
                task = repo.get_task(conn, task_id)
            if task.not_before is not None:
                wait = (task.not_before - engine.clock.now()).total_seconds()
                await engine.clock.sleep(max(wait, 0.0))
            continue
        break
    report.delivery = await drain(engine.db, board, engine.clock.now(), clock=engine.clock.now)
    return report
