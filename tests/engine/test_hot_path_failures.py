"""The hot path when things go wrong: no free agent thread when a cancel lands, user code
raising StopIteration, a server restart, a transition failing mid-pipeline, a database
disposed. Each test states the guarantee it checks."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import gc
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from factory import user_code
from factory.flow_agents import ctx_select
from factory.store.db import Database, open_database
from factory.threads import AgentCall, AgentThreads
from tests.engine.helpers import terminate_backends
from tests.engine.test_step_writer import first_step


async def test_a_cancel_seen_while_an_agent_waits_for_a_thread_never_starts_it() -> None:
    """All agent threads are busy (an overrunning agent holds the only slot); a card's sync
    agent waits for one, and the card is cancelled meanwhile. The agent must never start:
    a cancel already seen never starts user code (before 500c480..HEAD, the wait for a slot
    was raced against the cancel watcher)."""
    agents = AgentThreads(1)
    release = threading.Event()
    holder_slot = AgentCall("overrunning")
    assert agents.try_take_slot(holder_slot)
    holder = agents.launch(holder_slot, lambda _arg: release.wait(30), None, contextvars.Context())
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
        terminate_backends(pg_url)
        run, task = writer.commit(planned)
        assert (task.step, run.transitions) == ("s2", 1)
    finally:
        db.dispose()


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
        terminate_backends(pg_url)
        assert in_transaction(db, lambda conn: conn.execute(text("SELECT 1")).scalar()) == 1
    finally:
        db.dispose()


async def test_a_tick_cancelled_as_its_slot_is_taken_gives_the_slot_back() -> None:
    """The only slot is busy; a card's sync agent waits for it. The slot frees and the
    waiting task takes it; before the tick resumes, the tick is cancelled (a stop whose
    grace ran out). The agent never launches, so the slot must be given back."""
    agents = AgentThreads(1)
    holder = AgentCall("holder")
    assert agents.try_take_slot(holder)
    loop = asyncio.get_running_loop()
    cancelled: asyncio.Future[str] = loop.create_future()
    ran: list[Any] = []
    tick = asyncio.ensure_future(
        user_code.call(
            agents,
            ran.append,
            "x",
            time_limit=30,
            state_id="s",
            what="agent",
            label="second",
            cancelled=cancelled,
        )
    )
    for _ in range(20):
        await asyncio.sleep(0)
    assert not tick.done() and agents.running == 1

    def cancel_once_taken() -> None:
        if agents.running == 1:  # the waiting call took the freed slot just now
            tick.cancel()
        else:
            loop.call_soon(cancel_once_taken)

    agents.release_unused(holder)  # the holder's thread returned: running 0, waiter woken
    loop.call_soon(cancel_once_taken)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(tick, 10)
    assert ran == []
    assert agents.running == 0, "a slot was taken for an agent that never launched"


def _wrapped_ctx_select() -> Any:
    base = ctx_select("route")

    @functools.wraps(base)  # a user's logging decorator around the framework's selector
    def logged(_inp: Any) -> str:
        return threading.current_thread().name

    return logged


class _Proxy:
    """A user's callable object that answers any attribute (an RPC client, a mock)."""

    def __getattr__(self, name: str) -> Any:
        return functools.partial(print, name)

    def __call__(self, _inp: Any) -> str:
        return threading.current_thread().name


@pytest.mark.parametrize("make", [_wrapped_ctx_select, _Proxy], ids=["functools.wraps", "proxy"])
async def test_user_functions_never_run_on_the_event_loop(make: Any) -> None:
    """runs_inline is for the framework's ctx_select only: a user's function (decide's
    select=, a guard, an agent) must run on an agent thread, never on the loop."""
    loop_thread = threading.current_thread().name
    cancelled: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    where = await user_code.call(
        AgentThreads(1),
        make(),
        None,
        time_limit=30,
        state_id="s",
        what="selector",
        label="sel",
        cancelled=cancelled,
    )
    assert where != loop_thread, "user code ran on the event loop thread"


def test_commit_here_falls_back_when_the_database_is_disposed_meanwhile(tmp_path: Any) -> None:
    """Another thread disposes the database (driver_transaction after a disconnect, or a
    shutdown) between commit_here taking its connection and beginning: engine_disposed
    closes that connection. commit_here must commit or answer None (commit on a thread
    then), not raise sqlite3.ProgrammingError out of the tick."""
    db: Database = open_database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        writer, _lease, planned = first_step(db)
        here = writer._here
        original = here.get

        def get_then_disposed() -> Any:
            conn = original()
            other = threading.Thread(target=db.dispose, kwargs={"close": False})
            other.start()
            other.join()
            return conn

        here.get = get_then_disposed  # type: ignore[method-assign]
        committed = writer.commit_here(planned)  # the transition, or None: not an error
        here.get = original  # type: ignore[method-assign]
        run, _task = committed or writer.commit(planned)
        assert run.transitions == 1
    finally:
        db.dispose()


_DISPOSE_RACE = textwrap.dedent(
    """
    import random, sys, threading, time
    from factory.store.db import open_database
    from tests.engine.test_step_writer import first_step

    db = open_database(f"sqlite:///{sys.argv[1]}")
    writer, _lease, planned = first_step(db)
    for _ in range(2000):
        go = threading.Event()

        def disposer():
            go.wait()
            time.sleep(random.random() * 0.0005)
            db.dispose(close=False)  # as driver_transaction, on an io thread

        other = threading.Thread(target=disposer)
        other.start()
        go.set()
        try:
            writer.commit_here(planned)  # the loop's commit, on this thread
        except Exception:
            pass  # an exception is another finding; this test is about the process
        other.join()
    """
)


def test_a_dispose_on_another_thread_never_crashes_the_loops_commit(tmp_path: Any) -> None:
    """engine_disposed closes the loop's SQLite connection on the disposing thread; the
    loop may be mid-commit_here on it. sqlite3 does not survive a close from another
    thread while a statement runs (CPython 3.11: SIGSEGV): the process must live."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", _DISPOSE_RACE, str(tmp_path / "x.db")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-500:]}"


def _backends(pg_url: str, app: str) -> int:
    """Server connections of the test's own database handle (by its application name:
    other tests' handles in this process may still hold theirs)."""
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        n = conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :a"), {"a": app}
        ).scalar_one()
    admin.dispose()
    return int(n)


@pytest.mark.postgres
def test_one_dead_connection_leaves_no_live_connection_outside_the_pool(pg_url: str) -> None:
    """One pooled connection dies (its backend terminated: an idle-session timeout, a DBA,
    a proxy cutting one); the transition is retried. The pool's other, live, connections
    must stay the pool's: closed, or kept and reused, never left open on the server with
    nothing to reuse or close them (db.dispose(close=False) orphans them until the cyclic
    GC happens to collect the old pool)."""
    app = f"nfactory-orphans-{uuid.uuid4().hex[:8]}"
    db = open_database(f"{pg_url}?application_name={app}")
    try:
        writer, _lease, planned = first_step(db)
        held = [db.raw_connection() for _ in range(5)]
        doomed = held[0].driver_connection.info.backend_pid
        for fairy in held:  # FIFO: the first returned is the next handed out
            fairy.close()
        del held, fairy  # the pool's own references only
        terminate_backends(pg_url, doomed)
        gc.disable()  # as between two cyclic collections of a busy worker
        try:
            run, _task = writer.commit(planned)
            assert run.transitions == 1
            open_now = _backends(pg_url, app)
            pooled = db.pool.checkedin()  # type: ignore[attr-defined]
        finally:
            gc.enable()
        assert open_now <= pooled, f"{open_now - pooled} live connection(s) belong to no pool"
    finally:
        db.dispose()
