"""The transition's write on the driver's cursor (factory/store/steps.py), on SQLite and
PostgreSQL: what it stores reads back through SQLAlchemy as written; the event loop's own
SQLite connection never waits for the write lock and is never used where a commit would
block (synchronous=FULL, PostgreSQL, another thread); a fenced-off worker is told
LeaseLost, not the constraint its stale write tripped."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from factory.effects import LogEffect, state_effect
from factory.results import AgentResult
from factory.statuses import RunStatus, TaskStatus
from factory.store import repo
from factory.store.db import Database, open_database
from factory.store.leases import Lease, LeaseLost, claim
from factory.store.repo import RunRow
from factory.store.steps import Planned, StepWriter
from factory.store.tables import outbox, transitions
from factory.transitions import Succeeded, decide
from tests.engine.helpers import new_task
from tests.engine.test_leases import linear_factory

T0 = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def first_step(db: Database, owner: str = "A") -> tuple[StepWriter, Lease, Planned]:
    """A running task under `owner`'s lease and its first step, planned."""
    factory = linear_factory()
    tid = new_task(db, "linear")
    lease = claim(db, tid, owner, T0, 30)
    assert lease is not None
    with db.begin() as conn:
        run = repo.start_run(
            conn, lease, repo.get_task(conn, tid), factory.start, factory.context, T0, 30
        )
    result = AgentResult(status="done", data={"n": 1, "ok": True, "é": "ü"}, message="m")
    step = decide(factory, run.view(), Succeeded(result))
    writer = StepWriter(db)
    effects = [state_effect(step.run_status, step.to_state), LogEffect("line ⏎ one")]
    later = T0 + timedelta(seconds=2)
    planned = writer.plan(
        lease,
        repo.LOCAL_BOARD,
        run,
        step,
        effects,
        started_at=T0,
        now=later,
        ttl=30,
        not_before=later + timedelta(milliseconds=1500),
        consumed=["comment-1"],
        clear_progress=True,
    )
    return writer, lease, planned


def test_what_the_writer_stores_reads_back_through_sqlalchemy_as_written(db: Database) -> None:
    writer, lease, planned = first_step(db)
    run, task = writer.commit(planned)
    later = T0 + timedelta(seconds=2)
    with db.connect() as conn:
        stored_task = repo.get_task(conn, lease.task_id)
        stored_run = repo.get_run(conn, run.id)
        moved = conn.execute(select(transitions)).mappings().one()
        queued = conn.execute(select(outbox).order_by(outbox.c.id)).mappings().all()
        consumed = repo.consumed_comment_ids(conn, lease.task_id)
    assert task == stored_task, "the row returned is not the row stored"
    assert stored_run == run
    assert (stored_task.status, stored_task.step) == (TaskStatus.running, "s2")
    assert stored_task.not_before == later + timedelta(milliseconds=1500)
    assert stored_task.lease_expires_at == later + timedelta(seconds=30)
    assert stored_run.ctx["n"] == 1 and stored_run.ctx["é"] == "ü" and stored_run.active
    assert stored_run.status == RunStatus.running and stored_run.updated_at == later
    assert (moved["seq"], moved["from_state"], moved["to_state"]) == (1, "s1", "s2")
    assert (moved["started_at"], moved["committed_at"]) == (T0, later)
    assert (moved["worker_id"], moved["epoch"]) == ("A", lease.epoch)
    assert [(q["kind"], q["payload"].get("line")) for q in queued][-1] == ("log", "line ⏎ one")
    assert queued[-1]["effect_key"] == f"{run.id}:1:1:log"
    assert consumed == {"comment-1"}


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "steps.db"


def test_on_sqlite_the_loop_commits_itself_and_never_waits_for_the_lock(
    sqlite_path: Path,
) -> None:
    db = open_database(f"sqlite:///{sqlite_path}")
    writer, lease, planned = first_step(db)
    other = sqlite3.connect(sqlite_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process (or thread) writes
    try:
        assert writer.commit_here(planned) is None  # at once: no wait
    finally:
        other.execute("COMMIT")
        other.close()
    with db.connect() as conn:
        assert repo.history(conn, lease.task_id) == []  # and nothing written
    committed = writer.commit_here(planned)  # the lock is free: done here
    assert committed is not None and committed[1].step == "s2"
    with db.connect() as conn:
        assert [h["seq"] for h in repo.history(conn, lease.task_id)] == [1]
    db.dispose()


def test_the_loop_connection_is_not_used_from_another_thread(sqlite_path: Path) -> None:
    db = open_database(f"sqlite:///{sqlite_path}")
    writer, _lease, planned = first_step(db)
    assert writer.commit_here(planned) is not None  # this thread owns it now
    seen: list[object] = []
    other = threading.Thread(target=lambda: seen.append(writer.commit_here(planned)))
    other.start()
    other.join()
    assert seen == [None]
    db.dispose()


def test_with_synchronous_full_every_commit_goes_to_a_thread(sqlite_path: Path) -> None:
    """FULL fsyncs every commit: that must never stall the event loop."""
    db = open_database(f"sqlite:///{sqlite_path}", sqlite_sync="full")
    writer, _lease, planned = first_step(db)
    assert writer.commit_here(planned) is None
    run, task = writer.commit(planned)
    assert (task.step, run.transitions) == ("s2", 1)
    db.dispose()


@pytest.mark.postgres
def test_on_postgresql_nothing_is_committed_on_the_loop(pg_url: str) -> None:
    db = open_database(pg_url)
    try:
        writer, _lease, planned = first_step(db)
        assert writer.commit_here(planned) is None  # a round trip would block the loop
        assert writer.commit(planned)[1].step == "s2"
    finally:
        db.dispose()


def test_a_worker_whose_step_another_wrote_first_is_told_its_lease_is_lost(
    db: Database,
) -> None:
    """B took the card over and committed seq 1 first; A's stale seq 1 trips the unique
    (run, seq) constraint on PostgreSQL's pipeline before its missing row is read: A must
    still hear LeaseLost, and nothing of A's is written."""
    writer, a, planned = first_step(db)
    b = claim(db, a.task_id, "B", T0 + timedelta(seconds=31), 30)
    assert b is not None
    b_run = replace(planned.run, transitions=0, state_id="s1", ctx={})  # as B found it
    writer.commit(_plan_next(writer, b, b_run, T0 + timedelta(seconds=32)))
    with pytest.raises(LeaseLost):
        writer.commit(planned)
    assert writer.commit_here(planned) is None
    with db.connect() as conn:
        assert [(h["seq"], h["worker_id"]) for h in repo.history(conn, a.task_id)] == [(1, "B")]


def test_a_database_used_after_dispose_commits_on_the_loop_again(sqlite_path: Path) -> None:
    """dispose() closes the loop's connection with the pool's. The next commit goes to a
    thread (never a pool checkout on the loop), which opens it again for the one after."""
    db = open_database(f"sqlite:///{sqlite_path}")
    writer, lease, planned = first_step(db)
    (before,) = writer.own_connections()
    db.dispose()
    assert writer.commit_here(planned) is None
    run, _task = writer.commit(planned)
    (after,) = writer.own_connections()
    assert after is not before
    second = _plan_next(writer, lease, run, T0 + timedelta(seconds=3))
    assert writer.commit_here(second) is not None  # on the loop's own connection again
    with db.connect() as conn:
        assert [h["seq"] for h in repo.history(conn, lease.task_id)] == [1, 2]
    db.dispose()


def _plan_next(writer: StepWriter, lease: Lease, run: RunRow, now: datetime) -> Planned:
    """The step `run`'s agent succeeding takes in the linear factory, planned at `now`."""
    step = decide(linear_factory(), run.view(), Succeeded(AgentResult(status="done")))
    effects = [LogEffect(f"{step.from_state} -> {step.to_state}")]
    return writer.plan(lease, repo.LOCAL_BOARD, run, step, effects, started_at=T0, now=now, ttl=30)


def test_rows_the_writer_stores_are_byte_for_byte_what_sqlalchemy_stores(db: Database) -> None:
    """Each row the driver-level write stored, read back through SQLAlchemy and written
    again through SQLAlchemy, is unchanged as the database holds it: the same datetime
    text on SQLite (the lease queries compare it as text), the same JSON and booleans."""
    from sqlalchemy import update

    from factory.store.tables import runs, tasks

    writer, _lease, planned = first_step(db)
    writer.commit(planned)
    for table in (tasks, runs, transitions, outbox):
        with db.connect() as conn:
            rows = conn.execute(select(table)).mappings().all()
        assert rows, table.name
        before = _stored(db, table.name)
        with db.begin() as conn:
            for row in rows:
                values = {k: v for k, v in row.items() if k != "id"}
                conn.execute(update(table).where(table.c.id == row["id"]).values(values))
        assert _stored(db, table.name) == before, table.name


def _stored(db: Database, name: str) -> list[tuple[object, ...]]:
    """The rows as the database holds them: PostgreSQL's text form, SQLite's values."""
    fairy = db.raw_connection()
    try:
        cur = fairy.driver_connection.cursor()
        if db.dialect.name == "postgresql":
            cur.execute(f"SELECT t::text FROM {name} t ORDER BY id")
        else:
            cur.execute(f"SELECT * FROM {name} ORDER BY id")
        return [tuple(r) for r in cur.fetchall()]
    finally:
        fairy.close()


@pytest.mark.postgres
def test_without_pipeline_mode_a_transition_still_commits(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A psycopg on a system libpq older than 14 has no pipeline mode: the same write, a
    round trip per statement."""
    import psycopg

    monkeypatch.setattr(psycopg.Pipeline, "is_supported", classmethod(lambda cls: False))
    db = open_database(pg_url)
    try:
        writer, lease, planned = first_step(db)
        run, task = writer.commit(planned)
        assert (task.step, run.transitions) == ("s2", 1)
        with db.connect() as conn:
            assert [h["seq"] for h in repo.history(conn, lease.task_id)] == [1]
        fairy = db.raw_connection()
        try:
            assert fairy.driver_connection.autocommit is False
        finally:
            fairy.close()
    finally:
        db.dispose()
