"""A cancel request reaches the agent while it runs, not at the next transition: async agents
are cancelled, sync agents abandoned (their result ignored), commands stopped; the run ends
Cancelled with the reason and the partial output on the card."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select

from factory import AgentInput, action, command_agent, define_factory, done, failed, feedback
from factory.clock import FakeClock
from factory.engine import Engine, TickReport
from factory.store import repo
from factory.store.db import Database
from factory.store.tables import outbox
from tests.engine.helpers import make_engine, new_task, path, task


def one_state(agent: Any) -> Any:
    return define_factory(
        id="cx",
        start="work",
        states={
            "work": action(agent, on={"done": "end", "failed": "x"}),
            "end": done(),
            "x": failed(),
        },
    )


class Started(Protocol):
    def is_set(self) -> bool: ...


def effects(db: Database, task_id: str, kind: str) -> list[dict[str, Any]]:
    with db.connect() as conn:
        rows = conn.execute(
            select(outbox.c.payload)
            .where(outbox.c.task_id == task_id, outbox.c.kind == kind)
            .order_by(outbox.c.id)
        )
        return [r.payload for r in rows]


async def cancel_once(db: Database, task_id: str, started: Started) -> None:
    """Wait until the agent runs, then ask to cancel the task as `nfactory task cancel` does."""
    for _ in range(1500):
        if started.is_set():
            break
        await asyncio.sleep(0.02)
    assert started.is_set(), "the agent never started"
    with db.begin() as conn:
        assert repo.request_cancel(conn, task_id, FakeClock().now(), by="the test")


async def tick_and_cancel(
    engine: Engine, db: Database, task_id: str, started: Started
) -> tuple[TickReport, float]:
    canceller = asyncio.create_task(cancel_once(db, task_id, started))
    at = time.monotonic()
    report = await asyncio.wait_for(engine.tick(task_id), 30)
    await canceller
    return report, time.monotonic() - at


async def test_an_async_agent_is_cancelled_mid_call(db: Database) -> None:
    started = asyncio.Event()
    stopped: list[str] = []

    async def long_agent(inp: AgentInput) -> dict[str, Any]:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            stopped.append("cancelled")
            raise
        return {"status": "done"}

    engine = make_engine(db, one_state(long_agent))
    tid = new_task(db, "cx")
    report, took = await tick_and_cancel(engine, db, tid, started)
    assert report.outcome == "finished" and report.status == "cancelled"
    assert took < 20  # the agent would have slept 60 s
    assert stopped == ["cancelled"]
    final = task(db, tid)
    assert final.status == "cancelled"
    assert final.last_error == "cancelled by the test while 'work' was running"
    assert path(db, tid) == [("work", "work", "run.cancelled")]
    (summary,) = effects(db, tid, "comment")
    assert "cancelled by the test while 'work' was running" in summary["text"]
    assert effects(db, tid, "state")[-1]["column"] == "Cancelled"


async def test_a_sync_agent_is_abandoned_and_its_result_ignored(db: Database) -> None:
    started, release = threading.Event(), threading.Event()
    returned = threading.Event()

    def blocking_agent(inp: AgentInput) -> dict[str, Any]:
        started.set()
        release.wait(60)
        returned.set()
        return {"status": "done", "message": "finished after all"}

    engine = make_engine(db, one_state(blocking_agent))
    tid = new_task(db, "cx")
    try:
        report, took = await tick_and_cancel(engine, db, tid, started)
        assert report.status == "cancelled" and took < 20
        assert not returned.is_set(), "the run ended only because the thread returned"
        assert engine.agents.overrunning == 1  # its slot stays counted until it returns
    finally:
        release.set()
    await asyncio.to_thread(returned.wait, 10)
    for _ in range(100):
        if engine.agents.running == 0:
            break
        await asyncio.sleep(0.05)
    assert engine.agents.running == 0
    # the thread's result changed nothing: still cancelled, one transition, nothing to tick
    assert (await engine.tick(tid)).outcome == "idle"
    assert task(db, tid).status == "cancelled"
    assert path(db, tid) == [("work", "work", "run.cancelled")]
    (page,) = effects(db, tid, "page")
    assert "could not be stopped" in page["markdown"] and "ignored" in page["markdown"]


async def test_a_cancelled_command_leaves_its_output_so_far_on_the_page(
    db: Database, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    script = (
        "import os, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "print('compiled 3 of 10 files', flush=True)\n"
        "print('warning: slow disk', file=sys.stderr, flush=True)\n"
        "time.sleep(60)\n"
    )
    engine = make_engine(db, one_state(command_agent([sys.executable, "-c", script])))
    tid = new_task(db, "cx")

    class PidWritten:
        def is_set(self) -> bool:
            return pid_file.exists() and bool(pid_file.read_text())

    report, took = await tick_and_cancel(engine, db, tid, PidWritten())
    assert report.status == "cancelled" and took < 20
    assert task(db, tid).last_error == "cancelled by the test while 'work' was running"
    (page,) = effects(db, tid, "page")
    markdown = page["markdown"]
    assert "compiled 3 of 10 files" in markdown and "warning: slow disk" in markdown
    assert "(SIGTERM)" in markdown  # it exited on SIGTERM: no SIGKILL needed


async def test_a_card_waiting_for_a_reply_ends_cancelled_without_one(db: Database) -> None:
    factory = define_factory(
        id="fb",
        start="ask",
        states={"ask": feedback(resume="end"), "end": done()},
    )
    engine = make_engine(db, factory)
    tid = new_task(db, "fb")
    assert (await engine.tick(tid)).outcome == "paused"
    with db.begin() as conn:
        assert repo.request_cancel(conn, tid, FakeClock().now(), by="a person")
        # the dispatcher picks it up although nobody replied
        assert tid in repo.runnable_task_ids(conn, repo.LOCAL_BOARD, FakeClock().now())
    report = await engine.tick(tid)
    assert report.status == "cancelled"
    assert task(db, tid).last_error == "cancelled by a person while 'ask' waited for a reply"


async def test_a_finished_task_cannot_be_asked_to_cancel(db: Database) -> None:
    engine = make_engine(db, one_state(lambda inp: {"status": "done"}))
    tid = new_task(db, "cx")
    await engine.tick(tid)
    with db.begin() as conn:
        assert not repo.request_cancel(conn, tid, FakeClock().now())
        assert repo.cancel_request(conn, tid) is None
    assert task(db, tid).status == "done"


async def test_checks_woken_all_the_time_never_hang_a_tick(db: Database) -> None:
    """Intake wakes the cancel watchers at any moment, also just as a tick cancels its
    watcher: the tick must still end (on Python 3.11 asyncio.wait_for swallowed a cancel
    landing as its future completed, and the tick waited for its watcher forever)."""
    engine = make_engine(db, one_state(lambda inp: {"status": "done"}))

    async def intake_waking() -> None:
        while True:
            engine.check_cancels_now()
            await asyncio.sleep(0)

    waker = asyncio.create_task(intake_waking())
    try:
        for _ in range(30):
            tid = new_task(db, "cx")
            report = await asyncio.wait_for(engine.tick(tid), 15)
            assert report.status == "done"
    finally:
        waker.cancel()
