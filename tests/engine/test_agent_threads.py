"""Sync agents on threads of their own, in-process: however few threads asyncio's default
pool has, heartbeats and database work never queue behind agents, and an agent that
overran its timeout keeps its thread's slot until it really returns."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from factory import AgentInput, action, define_factory, done, failed
from factory.clock import SystemClock
from factory.engine import Engine, EngineConfig
from factory.store.db import Database
from factory.store.leases import holder
from factory.store.tables import transitions
from tests.engine.helpers import new_task, task


@pytest.fixture
async def tiny_default_pool() -> AsyncIterator[None]:
    """asyncio's default pool with 2 threads, as on a small machine with many agents."""
    pool = ThreadPoolExecutor(2)
    asyncio.get_running_loop().set_default_executor(pool)
    yield
    pool.shutdown(wait=False)


def sleeper(seconds: float, timeout: float | None = None, seen: list[str] | None = None):  # type: ignore[no-untyped-def]
    """Cards titled "slow ..." sleep `seconds`; `seen` gets "start/end <title>" lines."""

    def work(inp: AgentInput) -> dict[str, str]:
        if seen is not None:
            seen.append(f"start {inp.title}")
        time.sleep(seconds if inp.title.startswith("slow") else 0)
        if seen is not None:
            seen.append(f"end {inp.title}")
        return {"status": "done"}

    return define_factory(
        id="sleepy",
        start="work",
        states={
            "work": action(work, on={"done": "done", "failed": "failed"}, timeout=timeout),
            "done": done(),
            "failed": failed(),
        },
    )


@pytest.mark.slow
@pytest.mark.usefixtures("tiny_default_pool")
async def test_four_sync_agents_longer_than_the_lease_keep_their_leases(db: Database) -> None:
    """Four 3 s agents under a 2 s lease, with asyncio's default pool at 2 threads: every
    heartbeat gets through, so no card's lease ever lapses while its agent runs (another
    worker could take it over then, and run the agent a second time)."""
    ids = [new_task(db, "sleepy", f"slow {i}") for i in range(4)]
    config = EngineConfig("owner", lease_seconds=2, agent_threads=4)
    owner = Engine(db, {"sleepy": sleeper(3.0)}, config, SystemClock())

    ticks = [asyncio.create_task(owner.tick(tid)) for tid in ids]
    lapsed: set[str] = set()  # cards whose lease ran out while their agent ran
    while not all(t.done() for t in ticks):
        now = datetime.now(UTC)
        for tid, ticking in zip(ids, ticks, strict=True):
            held = holder(db, tid)  # read here, not in a pool: the check must not wait either
            assert held is not None
            who, until = held
            if until is not None and until.tzinfo is None:
                until = until.replace(tzinfo=UTC)
            if who == "owner" and until is not None and until < now and not ticking.done():
                lapsed.add(tid[:8])
        await asyncio.sleep(0.1)
    reports = [await t for t in ticks]

    assert [r.outcome for r in reports] == ["finished"] * 4, reports
    assert not lapsed, f"leases of {sorted(lapsed)} lapsed while their agents ran"
    with db.connect() as conn:
        writers = set(conn.execute(select(transitions.c.worker_id, transitions.c.epoch)))
    assert writers == {("owner", 1)}


async def test_a_timed_out_sync_agent_keeps_its_thread_slot_until_it_returns(
    db: Database,
) -> None:
    """With one agent thread, an agent that overran its 0.3 s timeout (it sleeps 1.5 s)
    fails its attempt at once, yet the next card's agent starts only once that thread
    has returned (its own 0.3 s counting from then): overruns count against the threads
    they were given."""
    seen: list[str] = []
    factory = sleeper(1.5, timeout=0.3, seen=seen)
    slow, quick = new_task(db, "sleepy", "slow"), new_task(db, "sleepy", "quick")
    config = EngineConfig("owner", lease_seconds=5, agent_threads=1)
    engine = Engine(db, {"sleepy": factory}, config, SystemClock())

    report = await engine.tick(slow)
    assert report.outcome == "finished" and report.status == "failed", report
    assert task(db, slow).last_error == "state 'work': agent timed out after 0.3 s"
    # the tick is over while the agent still sleeps in its thread, holding the one slot
    assert (engine.agents.running, engine.agents.overrunning) == (1, 1)

    report = await engine.tick(quick)
    assert report.status == "done", report
    assert seen == ["start slow", "end slow", "start quick", "end quick"]
    assert (engine.agents.running, engine.agents.overrunning) == (0, 0)
    assert not [t for t in threading.enumerate() if t.name.startswith("nfactory-agent")]
