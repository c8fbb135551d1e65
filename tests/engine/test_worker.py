"""The scheduler-driven worker on the local board: backlog, concurrency, graceful stop."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from factory import AgentInput, action, define_factory, done, failed
from factory.board_protocol import RequestStats
from factory.clock import SystemClock
from factory.local_board import LocalBoard
from factory.store.db import Database
from factory.store.outbox import backlog
from factory.store.tables import tasks
from factory.worker import Worker, WorkerConfig
from tests.engine.helpers import make_engine, new_task, path

FAST = WorkerConfig(poll_seconds=0.2, concurrency=4, deliver_seconds=0.1, dispatch_seconds=0.05)


def statuses(db: Database) -> dict[str, int]:
    with db.connect() as conn:
        rows = conn.execute(select(tasks.c.status, func.count()).group_by(tasks.c.status))
        return {status: n for status, n in rows}


def leases_held(db: Database) -> int:
    with db.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(tasks).where(tasks.c.lease_owner.is_not(None))
        ).scalar_one()


async def until(predicate, limit: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(limit):
        while not predicate():  # noqa: ASYNC110 - the condition lives in the database
            await asyncio.sleep(0.05)


async def test_a_backlog_is_worked_with_bounded_concurrency(db: Database) -> None:
    running = 0
    peak = 0

    async def work(inp: AgentInput) -> dict[str, Any]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1
        return {"status": "done"}

    factory = define_factory(
        id="w",
        start="a",
        states={"a": action(work, on={"done": "end", "failed": "x"}), "end": done(), "x": failed()},
    )
    clock = SystemClock()
    engine = make_engine(db, factory, clock=clock)  # type: ignore[arg-type]
    for i in range(20):
        new_task(db, "w", f"card {i}")
    worker = Worker(engine, LocalBoard(db, clock), FAST)
    worker.start()
    await until(lambda: statuses(db) == {"done": 20})
    await worker.stop()
    assert 1 < peak <= FAST.concurrency
    assert leases_held(db) == 0 and backlog(db) == 0
    assert worker.stats.transitions == 20


async def test_graceful_stop_lets_a_running_agent_finish_its_transition(db: Database) -> None:
    started = asyncio.Event()

    async def slow(inp: AgentInput) -> dict[str, Any]:
        started.set()
        await asyncio.sleep(0.5)
        return {"status": "done"}

    factory = define_factory(
        id="s",
        start="a",
        states={"a": action(slow, on={"done": "end", "failed": "x"}), "end": done(), "x": failed()},
    )
    clock = SystemClock()
    engine = make_engine(db, factory, clock=clock)  # type: ignore[arg-type]
    new_task(db, "s")
    worker = Worker(engine, LocalBoard(db, clock), FAST)
    worker.start()
    await asyncio.wait_for(started.wait(), 10)
    await worker.stop(grace=5)
    assert statuses(db) == {"done": 1}
    assert leases_held(db) == 0 and backlog(db) == 0


async def test_stop_after_the_grace_releases_the_lease_and_writes_nothing_half_done(
    db: Database,
) -> None:
    started = asyncio.Event()

    async def stuck(inp: AgentInput) -> dict[str, Any]:
        started.set()
        await asyncio.sleep(60)
        return {"status": "done"}

    factory = define_factory(
        id="k",
        start="a",
        states={
            "a": action(stuck, on={"done": "end", "failed": "x"}),
            "end": done(),
            "x": failed(),
        },
    )
    clock = SystemClock()
    engine = make_engine(db, factory, clock=clock)  # type: ignore[arg-type]
    tid = new_task(db, "k")
    worker = Worker(engine, LocalBoard(db, clock), FAST)
    worker.start()
    await asyncio.wait_for(started.wait(), 10)
    await worker.stop(grace=0.2)
    assert leases_held(db) == 0  # released, not left to expire
    assert statuses(db) == {"running": 1}  # resumable: the next worker starts state 'a' again
    assert path(db, tid) == []


async def test_the_live_view_shows_columns_backlog_and_requests(db: Database) -> None:
    from rich.console import Console

    from factory.cli.live import RequestRate, render

    factory = define_factory(id="v", start="end", states={"end": done()})
    clock = SystemClock()
    new_task(db, "v")
    worker = Worker(make_engine(db, factory, clock=clock), LocalBoard(db, clock), FAST)  # type: ignore[arg-type]
    console = Console(record=True, width=120)
    console.print(render(worker, RequestRate(lambda: RequestStats(total=12, rate_limited=1))))
    text = console.export_text()
    for expected in ("Queue 1", "Running 0", "outbox backlog 0", "requests/min 0", "429s 1"):
        assert expected in text, text


async def test_a_card_named_by_a_webhook_is_checked_for_replies_first(db: Database) -> None:
    from sqlalchemy import update as sql_update

    from factory.cycle import resume_answered
    from factory.store import repo

    factory = define_factory(id="f", start="end", states={"end": done()})
    engine = make_engine(db, factory)
    with db.begin() as conn:
        ids = [
            repo.create_task(
                conn, factory_id="f", title=t, now=SystemClock().now(), external_id=card
            )
            for t, card in (("old", "aaaa-1"), ("new", "bbbb-2"))
        ]
        conn.execute(sql_update(tasks).where(tasks.c.id.in_(ids)).values(status="feedback"))

    class Recorder(LocalBoard):
        asked: list[str] = []

        async def replies(self, task_id: str) -> list:  # type: ignore[override,type-arg]
            self.asked.append(task_id)
            return []

    board = Recorder(db, SystemClock())
    await resume_answered(engine, board)
    assert board.asked == ids  # longest waiting first
    board.asked.clear()
    await resume_answered(engine, board, hints={"bbbb2"})
    assert board.asked == [ids[1], ids[0]]


async def test_the_live_view_names_modules_that_failed_and_counts_only_its_board(
    db: Database,
) -> None:
    from datetime import UTC, datetime

    from rich.console import Console

    from factory.cli.live import render
    from factory.engine import Engine, EngineConfig
    from factory.store import repo

    clock = SystemClock()
    unloaded = {"flows/beta.py": "import failed (line 1): ModuleNotFoundError: no_such"}
    engine = Engine(db, {}, EngineConfig(worker_id="t"), clock, unloaded)
    with db.begin() as conn:
        now = datetime.now(UTC)
        repo.create_task(conn, factory_id="beta", title="here", now=now)
        repo.ensure_board(conn, "elsewhere", "notion", now)
        for _ in range(2):
            repo.create_task(conn, factory_id="f", title="there", now=now, board_id="elsewhere")
    console = Console(record=True, width=200)
    console.print(render(Worker(engine, LocalBoard(db, clock), FAST)))
    shown = console.export_text()
    assert "1 workflow module(s) failed to load" in shown, shown
    assert f"flows/beta.py: {unloaded['flows/beta.py']}" in shown, shown
    assert "Queue 1" in shown, shown  # the other board's two cards are not this worker's


async def test_metrics_count_the_workers_own_board_in_a_shared_database(db: Database) -> None:
    from datetime import UTC, datetime

    from factory.cli.metrics import render as render_metrics
    from factory.store import repo
    from factory.worker import WorkerStats

    factory = define_factory(
        id="w",
        start="a",
        states={
            "a": action(lambda _: {"status": "done"}, on={"done": "end", "failed": "x"}),
            "end": done(),
            "x": failed(),
        },
    )
    engine = make_engine(db, factory)
    mine = new_task(db, "w")
    with db.begin() as conn:
        now = datetime.now(UTC)
        repo.ensure_board(conn, "elsewhere", "notion", now)
        theirs = [
            repo.create_task(conn, factory_id="w", title="t", now=now, board_id="elsewhere")
            for _ in range(2)
        ]
    for task_id in (mine, *theirs):
        assert (await engine.tick(task_id)).outcome == "finished"
    text = render_metrics(WorkerStats(), db, None, board_id=repo.LOCAL_BOARD)
    assert 'nfactory_runs{status="done"} 1\n' in text, text
    assert f"nfactory_outbox_backlog {backlog(db, repo.LOCAL_BOARD)}\n" in text, text
    assert backlog(db, repo.LOCAL_BOARD) * 3 == backlog(db), "each card queued the same effects"


async def idle(inp: AgentInput) -> dict[str, Any]:
    return {"status": "done"}


async def test_webhook_hints_do_not_pile_up(db: Database) -> None:
    """What the webhook receiver hands the worker for a flood of page and comment events
    about cards that are not waiting is gone after one reply pass."""
    factory = define_factory(
        id="w",
        start="a",
        states={"a": action(idle, on={"done": "end", "failed": "x"}), "end": done(), "x": failed()},
    )
    clock = SystemClock()
    worker = Worker(make_engine(db, factory, clock=clock), LocalBoard(db, clock), FAST)  # type: ignore[arg-type]
    for i in range(500):
        page = f"0000-{i:04d}"
        worker.hint("intake", page)  # page.* events: intake reads every edit anyway
        worker.hint("feedback", page)  # comment.* events on pages with no card waiting
    await worker.feedback()
    assert {job: ids for job, ids in worker.hints.items() if ids} == {}
