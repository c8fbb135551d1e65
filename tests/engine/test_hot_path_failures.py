"""The hot path when things go wrong: no free agent thread when a cancel lands, user code
raising StopIteration, a server restart, a transition failing mid-pipeline, a database
disposed. Each test states the guarantee it checks."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from factory import user_code
from factory.store.db import Database, open_database
from factory.threads import AgentThreads
from tests.engine.test_step_writer import first_step


async def test_a_cancel_seen_while_an_agent_waits_for_a_thread_never_starts_it() -> None:
    """All agent threads are busy (an overrunning agent holds the only slot); a card's sync
    agent waits for one, and the card is cancelled meanwhile. The agent must never start:
    a cancel already seen never starts user code (before 500c480..HEAD, the wait for a slot
    was raced against the cancel watcher)."""
    agents = AgentThreads(1)
    release = threading.Event()
    holder_slot, holder = await agents.start(
        lambda _arg: release.wait(30), None, "overrunning", contextvars.Context()
    )
    ran: list[str] = []
    loop = asyncio.get_running_loop()
    cancelled: asyncio.Future[str] = loop.create_future()
    call = asyncio.ensure_future(
        user_code.call(
            agents,
            lambda arg: ran.append(arg),
            "second agent",
            time_limit=30,
            state_id="s",
            what="agent",
            label="second",
            cancelled=cancelled,
        )
    )
    for _ in range(20):  # it is waiting for the slot now
        await asyncio.sleep(0)
    assert not call.done()
    cancelled.set_result("a person")  # the cancel watcher sees the request
    for _ in range(20):
        await asyncio.sleep(0)
    release.set()  # the overrunning agent returns: its slot frees
    await holder
    with pytest.raises(user_code.CancelRequested):
        await asyncio.wait_for(call, 10)
    for _ in range(500):  # a started agent appends before its thread frees the slot
        if not agents.running:
            break
        await asyncio.sleep(0.01)
    assert ran == [], "the agent ran although its card's cancel was seen before it started"
    del holder_slot


async def test_a_sync_agent_raising_stop_iteration_fails_its_step() -> None:
    """`next()` on an empty iterator in a plain-function guard: the guard raised, so the step
    must fail with that error, not hang (a guard has no time limit: the heartbeat would keep
    the card's lease forever)."""
    agents = AgentThreads(1)
    cancelled: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def guard(_ctx: Any) -> bool:
        return next(iter(()))

    call = user_code.call(
        agents,
        guard,
        {},
        time_limit=None,
        state_id="s",
        what="guard",
        label="guard",
        cancelled=cancelled,
    )
    with pytest.raises(user_code.UserCodeFailed, match="StopIteration"):
        await asyncio.wait_for(call, 5)


@pytest.mark.postgres
def test_after_a_server_restart_a_transition_is_retried_on_a_live_connection(
    pg_url: str,
) -> None:
    """A restart (or a proxy) drops every pooled connection at once. The old write path
    (in_transaction through SQLAlchemy) invalidated the whole pool on the first disconnect,
    so its one retry got a new connection; the driver-level path must do as well."""
    db = open_database(pg_url)
    try:
        writer, _lease, planned = first_step(db)
        held = [db.raw_connection() for _ in range(3)]  # the pool holds several connections
        for fairy in held:
            fairy.close()
        _terminate_other_backends(pg_url)
        run, task = writer.commit(planned)
        assert (task.step, run.transitions) == ("s2", 1)
    finally:
        db.dispose()


def _terminate_other_backends(pg_url: str) -> None:
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    admin.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("failure", ["lease_lost", "python_error_mid_pipeline", "sql_error"])
def test_a_failed_transition_returns_a_clean_connection_to_the_pool(
    pg_url: str, failure: str
) -> None:
    """Whatever stops a transition's pipeline, the connection the pool gets back is as
    SQLAlchemy lent it: autocommit off, no pipeline, no transaction open."""
    db = open_database(pg_url)
    try:
        writer, lease, planned = first_step(db)
        if failure == "lease_lost":
            with db.begin() as conn:
                conn.execute(text("UPDATE tasks SET lease_epoch = lease_epoch + 1"))
            expected: type[BaseException] = Exception
        elif failure == "sql_error":
            planned = _replace(planned, transition_params=_bad_seq(planned.transition_params))
            expected = Exception
        else:
            original = writer._write

            def boom(tx: Any, p: Any) -> Any:
                tx.conn.cursor().execute("SELECT 1")
                raise KeyError("mid-pipeline")

            writer._write = boom  # type: ignore[method-assign]
            expected = KeyError
        with pytest.raises(expected):
            writer.commit(planned)
        if failure == "python_error_mid_pipeline":
            writer._write = original  # type: ignore[method-assign]
        fairy = db.raw_connection()
        try:
            conn = fairy.driver_connection
            assert conn is not None
            assert conn.autocommit is False
            assert conn.pgconn.pipeline_status == 0
            assert conn.info.transaction_status == 0  # IDLE
        finally:
            fairy.close()
        with db.connect() as conn:
            written = text("SELECT count(*) FROM transitions WHERE task_id = :t")
            assert conn.execute(written, {"t": lease.task_id}).scalar() == 0
    finally:
        db.dispose()


def _replace(planned: Any, **changes: Any) -> Any:
    from dataclasses import replace

    return replace(planned, **changes)


def _bad_seq(params: Any) -> Any:
    # a value the column's type refuses: the server errors mid-pipeline
    out = list(params)
    out[2] = "not a number"
    return out


def test_the_loop_connection_of_a_disposed_database_is_closed(tmp_path: Any) -> None:
    """Each StepWriter keeps a SQLite connection outside the pool; nothing closes it."""
    db: Database = open_database(f"sqlite:///{tmp_path / 'x.db'}")
    writer, _lease, _planned = first_step(db)
    conn = writer.own_connections()[0]
    db.dispose()
    with pytest.raises(Exception):  # noqa: B017 - a closed sqlite3 connection refuses
        conn.execute("SELECT 1")


@pytest.mark.postgres
def test_contrast_sqlalchemys_own_transaction_recovers_from_a_restart(pg_url: str) -> None:
    """The same restart, the same pool, a write through in_transaction (SQLAlchemy's
    Connection): its first disconnect invalidates the whole pool, its retry succeeds."""
    from factory.store.db import in_transaction

    db = open_database(pg_url)
    try:
        first_step(db)
        held = [db.raw_connection() for _ in range(3)]
        for fairy in held:
            fairy.close()
        _terminate_other_backends(pg_url)
        assert in_transaction(db, lambda conn: conn.execute(text("SELECT 1")).scalar()) == 1
    finally:
        db.dispose()
