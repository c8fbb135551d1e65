"""The event loop never waits on the database: every statement on the pool's connections
runs in an I/O thread, and the one connection the loop writes on itself (a transition's
commit on SQLite, store/steps.py) never waits for the write lock: taken, the commit goes
to a thread too.

With SQLite's BEGIN IMMEDIATE and a 30 s busy timeout, a statement that waited on the loop
while another process writes would freeze every heartbeat, lease renewal and webhook.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from factory import AgentInput, action, define_factory, done, failed
from factory.clock import FakeClock
from factory.cycle import run_cycle, run_due, run_task
from factory.local_board import LocalBoard
from factory.store.db import Database, open_database
from tests.engine.helpers import make_engine, new_task, statements_on_this_thread, task

LOOP_TURNS = 100  # how often the loop must get round while the database is locked


async def work(inp: AgentInput) -> dict[str, Any]:
    return {"status": "done"}


FACTORY = define_factory(
    id="w",
    start="a",
    states={"a": action(work, on={"done": "end", "failed": "x"}), "end": done(), "x": failed()},
)


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Iterator[tuple[Database, Path]]:
    path = tmp_path / "db.sqlite"
    db = open_database(f"sqlite:///{path}")

    @event.listens_for(db, "connect")
    def _short_wait(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        # fail in seconds, not 30, on a code path that still blocks the loop
        dbapi_conn.execute("PRAGMA busy_timeout=3000")

    db.dispose()  # the pool's connections predate the listener
    yield db, path
    db.dispose()


async def turns_while_locked(path: Path, work: asyncio.Task[Any]) -> int:
    """Hold SQLite's write lock from another connection while `work` runs; count how often
    the loop gets round meanwhile, up to LOOP_TURNS, then let the database go."""
    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    turns = 0
    try:
        while turns < LOOP_TURNS and not work.done():
            turns += 1
            await asyncio.sleep(0)
    finally:
        lock.execute("COMMIT")
        lock.close()
    return turns


async def test_due_cards_are_found_while_another_connection_writes(
    sqlite_file: tuple[Database, Path],
) -> None:
    db, path = sqlite_file
    engine = make_engine(db, FACTORY)
    card = new_task(db, "w")
    running = asyncio.create_task(run_due(engine, "local"))
    assert await turns_while_locked(path, running) == LOOP_TURNS
    assert not running.done()  # still waiting for the lock, in its thread
    ticks = await running
    assert [t.outcome for t in ticks] and task(db, card).status == "done"


async def test_one_card_runs_while_another_connection_writes(
    sqlite_file: tuple[Database, Path],
) -> None:
    db, path = sqlite_file
    clock = FakeClock()
    engine = make_engine(db, FACTORY, clock=clock)
    card = new_task(db, "w")
    running = asyncio.create_task(run_task(engine, LocalBoard(db, clock), card))
    assert await turns_while_locked(path, running) == LOOP_TURNS
    assert not running.done()
    report = await running
    assert task(db, card).status == "done" and report.delivery.delivered > 0


async def test_a_whole_cycle_runs_no_pooled_statement_on_the_loop(
    sqlite_file: tuple[Database, Path],
) -> None:
    db, _path = sqlite_file
    clock = FakeClock()
    engine = make_engine(db, FACTORY, clock=clock)
    cards = [new_task(db, "w", f"card {i}") for i in range(3)]
    on_loop = statements_on_this_thread(db)
    report = await run_cycle(engine, LocalBoard(db, clock))
    assert on_loop == []
    assert report.errors == [] and report.delivery.delivered > 0
    assert {task(db, c).status for c in cards} == {"done"}


async def test_the_live_view_reads_the_database_off_the_loop(
    sqlite_file: tuple[Database, Path],
) -> None:
    from rich.console import Console

    from factory.cli.live import render_live
    from factory.worker import Worker, WorkerConfig

    db, path = sqlite_file
    clock = FakeClock()
    new_task(db, "w", "shown card")
    worker = Worker(make_engine(db, FACTORY, clock=clock), LocalBoard(db, clock), WorkerConfig())
    on_loop = statements_on_this_thread(db)
    drawing = asyncio.create_task(render_live(worker))
    assert await turns_while_locked(path, drawing) == LOOP_TURNS  # redrawn twice a second
    view = await drawing
    assert on_loop == []
    console = Console(record=True, width=200)
    console.print(view)
    assert "Queue 1" in console.export_text()
