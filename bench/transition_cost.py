"""Cost of one no-op transition through the engine, beside the storage it sits on.

Run: `make bench` (or `.venv/bin/python bench/transition_cost.py [--pg URL]`).

For each backend (SQLite WAL with synchronous=NORMAL, the same with FULL, and PostgreSQL
when `--pg` names a scratch database) it measures, in one run and interleaved round by
round so that the machine's load falls on both alike:

- the engine: `Engine.tick` driving tasks of STEPS no-op states (a sync `select` that
  names the next state), one committed transaction per transition, lease and all;
- the floor: the SQL one transition needs (the lease-guarded task update returning the
  row, the run update, the transition row, the two outbox rows), one transaction each,
  through the raw driver (sqlite3, psycopg) on the same schema, with no Python above it.

It prints transitions per second for both (the median round), their ratio, the CPU time
per transition of each (all the process's threads; it counts what the machine's load
does not, and includes what the OS does for the process: SQLite's writes), and, per
transition of the engine, the statements, BEGINs, commits, rollbacks, pool pre-pings and
round trips (exchanges that wait for the database; on SQLite, calls into the library),
counted at the driver in the first round (factory/store/trace.py, which says what each
counts: an executemany counts a statement per row). Numbers are wall time on this
machine, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from factory import define_factory, done, failed, orchestrate
from factory.engine import Engine, EngineConfig
from factory.store import repo
from factory.store.db import Database, make_engine, migrate
from factory.store.leases import claim
from factory.store.trace import KINDS, count_calls

STEPS = 100  # transitions per task, all in one tick
AT_ONCE = 4  # cards ticking together in the "engine xN" column


def noop_factory():  # type: ignore[no-untyped-def]
    states = {
        f"s{i}": orchestrate(select=lambda inp: "next", on={"next": f"s{i + 1}"})
        for i in range(STEPS - 1)
    }
    states[f"s{STEPS - 1}"] = orchestrate(select=lambda inp: "done", on={"done": "end"})
    return define_factory(id="noop", start="s0", states=states | {"end": done(), "bad": failed()})


async def engine_round(
    db: Database, engine: Engine, tasks: int, count: bool = False, at_once: int = 1
) -> tuple[float, float, int, Counter[str]]:
    """(seconds, CPU seconds, transitions, what the ticks sent when `count`) for `tasks`
    tasks ticked to their end, `at_once` of them ticking together (as the worker's
    dispatcher runs up to its concurrency)."""
    ids = []
    for _ in range(tasks):
        with db.begin() as conn:
            ids.append(repo.create_task(conn, factory_id="noop", title="b", now=engine.clock.now()))

    async def tick_all(mine: list[str]) -> int:
        done = 0
        for tid in mine:
            report = await engine.tick(tid)
            assert report.outcome == "finished", report
            done += report.transitions
        return done

    also = engine.steps.own_connections()
    counting = count_calls(db, also=also) if count else nullcontext(Counter[str]())
    with counting as sent:
        started, cpu = time.perf_counter(), time.process_time()
        shares = [ids[i::at_once] for i in range(at_once)]
        total = sum(await asyncio.gather(*(tick_all(share) for share in shares)))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return elapsed, cpu, total, sent


# -- the floor: the same SQL through the raw driver ------------------------------------

TASK_UPDATE = (
    "UPDATE tasks SET lease_expires_at=?, status=?, step=?, not_before=?, updated_at=? "
    "WHERE tasks.id = ? AND tasks.lease_owner = ? AND tasks.lease_epoch = ? "
    "RETURNING id, board_id, external_id, factory_id, title, prompt, context, status, step, "
    "last_error, active_run_id, cancel_requested, not_before, lease_owner, lease_expires_at, "
    "lease_epoch, created_at, updated_at, cancel_reason"
)
RUN_UPDATE = (
    "UPDATE runs SET status=?, active=?, state_id=?, previous_state_id=?, ctx=?, attempt=?, "
    "iterations=?, transitions=?, last_error=?, updated_at=?, finished_at=? "
    "WHERE runs.id = ? AND runs.transitions = ? AND runs.active"
)
TRANSITION_INSERT = (
    "INSERT INTO transitions (run_id, task_id, seq, from_state, to_state, event, reason, "
    "attempt, loop_iteration, message, error, worker_id, epoch, started_at, committed_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
OUTBOX_INSERT = (
    "INSERT INTO outbox (task_id, board_id, kind, payload, effect_key, status, attempts, "
    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def floor_task(db: Database) -> tuple[str, str, str, int]:
    """A task with a running run and our lease: (task id, run id, owner, epoch)."""
    now = datetime.now(UTC)
    with db.begin() as conn:
        tid = repo.create_task(conn, factory_id="noop", title="b", now=now)
    lease = claim(db, tid, "floor", now, 30.0)
    assert lease is not None
    with db.begin() as conn:
        task = repo.get_task(conn, tid)
        run = repo.start_run(conn, lease, task, "s0", {}, now, 30.0)
    return tid, run.id, "floor", lease.epoch


def floor_round(
    db: Database, connect: Callable[[], Any], tasks: int, pg: bool
) -> tuple[float, float]:
    """(seconds, CPU seconds) for tasks * STEPS transitions, one transaction each, through
    the raw driver."""
    rows = [floor_task(db) for _ in range(tasks)]
    conn = connect()

    def sql(text: str) -> str:
        return text.replace("?", "%s") if pg else text

    task_update, run_update = sql(TASK_UPDATE), sql(RUN_UPDATE)
    transition_insert, outbox_insert = sql(TRANSITION_INSERT), sql(OUTBOX_INSERT)

    def stamp() -> Any:
        now = datetime.now(UTC).replace(tzinfo=None)
        return now if pg else now.isoformat(" ")

    def transition(cur: Any, tid: str, rid: str, owner: str, epoch: int, seq: int) -> Any:
        """The transition's statements; the task row, fetched where the engine does."""
        now = stamp()
        state, nxt = f"s{seq - 1}", f"s{seq}"
        cur.execute(task_update, (now, "running", nxt, None, now, tid, owner, epoch))
        row = None if pg else cur.fetchone()
        run_cur = conn.cursor()
        run_cur.execute(
            run_update,
            ("running", True, nxt, state, "{}", 0, "{}", seq, None, now, None, rid, seq - 1),
        )
        moved = (rid, tid, seq, state, nxt, "next", "selected", 1, None, "", None)
        run_cur.execute(transition_insert, (*moved, owner, epoch, now, now))
        payloads = [
            ("state", json.dumps({"status": "Running", "step": nxt})),
            ("log", json.dumps({"line": f"{now} {state} -> {nxt}"})),
        ]
        run_cur.executemany(
            outbox_insert,
            [
                (tid, "local", kind, payload, f"{rid}:{seq}:{i}:{kind}", "pending", 0, now)
                for i, (kind, payload) in enumerate(payloads)
            ],
        )
        return row

    started, cpu = time.perf_counter(), time.process_time()
    for tid, rid, owner, epoch in rows:
        for seq in range(1, STEPS + 1):
            cur = conn.cursor()
            if pg:  # as the engine: BEGIN and the statements in one pipeline, then COMMIT
                with conn.pipeline() as pipeline:
                    conn.execute("BEGIN", prepare=False)
                    transition(cur, tid, rid, owner, epoch, seq)
                    pipeline.sync()
                    assert cur.fetchone() is not None
                    conn.execute("COMMIT", prepare=False)
            else:
                cur.execute("BEGIN IMMEDIATE")
                assert transition(cur, tid, rid, owner, epoch, seq) is not None
                cur.execute("COMMIT")
            cur.close()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    conn.close()
    return elapsed, cpu


# -- one backend ------------------------------------------------------------------------


def measure(url: str, sync: str, tasks: int, rounds: int) -> dict[str, float]:
    db = make_engine(url, sync)
    migrate(db)
    pg = db.dialect.name == "postgresql"
    if pg:
        import psycopg

        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

        def connect() -> Any:
            return psycopg.connect(dsn, autocommit=True)  # BEGIN sent in the pipeline
    else:

        def connect() -> Any:
            conn = sqlite3.connect(make_url(url).database or "", isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={sync.upper()}")
            conn.execute("PRAGMA foreign_keys=ON")
            return conn

    engine = Engine(
        db, {"noop": noop_factory()}, EngineConfig(worker_id="bench", max_transitions_per_tick=200)
    )
    with db.begin() as conn:  # the local board row, outside every timed round
        repo.create_task(conn, factory_id="noop", title="warm-up", now=engine.clock.now())
    asyncio.run(engine_round(db, engine, 1))  # warm-up: statement caches, pool, threads
    floor_round(db, connect, 1, pg)

    engine_rates: list[float] = []
    together_rates: list[float] = []
    floor_rates: list[float] = []
    engine_cpu: list[float] = []
    floor_cpu: list[float] = []
    # counted on a round of its own: tracing costs time, and no timed round pays it
    _, _, counted, counts = asyncio.run(engine_round(db, engine, tasks, count=True))
    for _ in range(rounds):
        elapsed, cpu, total, _ = asyncio.run(engine_round(db, engine, tasks))
        engine_rates.append(total / elapsed)
        engine_cpu.append(cpu / total)
        elapsed, cpu = floor_round(db, connect, tasks, pg)
        floor_rates.append(tasks * STEPS / elapsed)
        floor_cpu.append(cpu / (tasks * STEPS))
        elapsed, _, total, _ = asyncio.run(
            engine_round(db, engine, AT_ONCE * tasks, at_once=AT_ONCE)
        )
        together_rates.append(total / elapsed)
    db.dispose()
    per = {k: counts[k] / counted for k in KINDS}
    return {
        "engine": statistics.median(engine_rates),
        "together": statistics.median(together_rates),
        "floor": statistics.median(floor_rates),
        "engine cpu": statistics.median(engine_cpu),
        "floor cpu": statistics.median(floor_cpu),
        **per,
    }


def machine_speed() -> float:
    """Seconds for ten million additions in a Python loop: figures from different machines
    (or days: a shared VM's speed varies) compare only beside this."""
    started = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5, help="tasks per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pg", help="also measure this PostgreSQL URL (a scratch database!)")
    args = parser.parse_args()
    print(
        f"{STEPS} no-op transitions per task, {args.tasks} tasks per round, {args.rounds} "
        f"rounds; this machine: {machine_speed():.2f} s for 10M Python additions"
    )
    head = (
        f"{'backend':<14} {'engine/s':>8} {'floor/s':>7} {'ratio':>5} "
        f"{f'engine x{AT_ONCE}/s':>12} {'ms/tr':>5} {'cpu ms/tr':>9} {'floor cpu':>9} "
        f"{'stmts':>5} {'begins':>6} {'commits':>7} {'rollbk':>6} {'pings':>5} {'trips':>5}"
    )
    print(head)
    with tempfile.TemporaryDirectory() as tmp:
        targets = [
            ("SQLite NORMAL", f"sqlite:///{Path(tmp) / 'normal.db'}", "normal"),
            ("SQLite FULL", f"sqlite:///{Path(tmp) / 'full.db'}", "full"),
        ]
        if args.pg:
            targets.append(("PostgreSQL", args.pg, "normal"))
        for name, url, sync in targets:
            m = measure(url, sync, args.tasks, args.rounds)
            print(
                f"{name:<14} {m['engine']:>8.0f} {m['floor']:>7.0f} "
                f"{m['engine'] / m['floor']:>5.0%} {m['together']:>12.0f} "
                f"{1000 / m['engine']:>5.2f} "
                f"{m['engine cpu'] * 1000:>9.3f} {m['floor cpu'] * 1000:>9.3f} "
                f"{m['statements']:>5.2f} {m['begins']:>6.2f} {m['commits']:>7.2f} "
                f"{m['rollbacks']:>6.2f} {m['pings']:>5.2f} {m['round_trips']:>5.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
