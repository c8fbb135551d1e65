"""The transition's write: the engine's hot path, one transaction per transition.

Run on the driver's own cursor (store/prepared.py): the task's update carrying the lease
guard and returning the row (its cancel request with it), the run's update fenced by its
transition count, the transition row, the outbox rows, and now and then consumed
comments and a cleared progress line. On PostgreSQL they go in one pipeline, so a
transition costs two round trips (the statements, then COMMIT) whatever their number.

`plan` readies the parameters; `commit` writes them on a pooled connection (on a
thread: it may wait for a lock or the network), `commit_here` on the event loop's own
SQLite connection, which never waits (see its docstring): the engine tries that first.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError

from factory.effects import Effect
from factory.store import progress
from factory.store.db import Database, once_more_if_dead
from factory.store.leases import Lease, LeaseLost
from factory.store.loop_connection import LoopConnection
from factory.store.prepared import (
    Prepared,
    Transaction,
    driver_transaction,
    prepare,
)
from factory.store.repo import RunRow, TaskRow, outbox_rows
from factory.store.tables import consumed_comments, outbox, runs, tasks, transitions
from factory.transitions import Step

_TASK_COLUMNS = ("lease_expires_at", "status", "step", "not_before", "updated_at")
_RUN_COLUMNS = (
    "status",
    "active",
    "state_id",
    "previous_state_id",
    "ctx",
    "attempt",
    "iterations",
    "transitions",
    "last_error",
    "updated_at",
    "finished_at",
)
_TRANSITION_COLUMNS = (
    "run_id",
    "task_id",
    "seq",
    "from_state",
    "to_state",
    "event",
    "reason",
    "attempt",
    "loop_iteration",
    "message",
    "error",
    "worker_id",
    "epoch",
    "started_at",
    "committed_at",
)
_OUTBOX_COLUMNS = (
    "task_id",
    "board_id",
    "kind",
    "payload",
    "effect_key",
    "status",
    "attempts",
    "created_at",
)


def _task_update(columns: tuple[str, ...]) -> Any:
    """The task's update, fenced by the lease (owner and epoch), returning the row."""
    return (
        update(tasks)
        .where(
            tasks.c.id == bindparam("w_id"),
            tasks.c.lease_owner == bindparam("w_owner"),
            tasks.c.lease_epoch == bindparam("w_epoch"),
        )
        .values({c: bindparam(f"v_{c}") for c in columns})
        .returning(*tasks.c)
    )


def _inserts(table: Any, columns: tuple[str, ...]) -> Any:
    return insert(table).values({c: bindparam(c) for c in columns})


class StepWriter:
    """Commits transitions to one database; its statements compiled once, for its dialect."""

    def __init__(self, db: Database) -> None:
        self.db = db
        dialect = db.dialect
        # the task's update by (sets last_error, ends the run): what it writes differs
        self._task = {
            (sets_error, ends): prepare(
                _task_update(
                    _TASK_COLUMNS
                    + (("last_error",) if sets_error else ())
                    + (("active_run_id",) if ends else ())
                ),
                dialect,
            )
            for sets_error, ends in ((False, False), (True, False), (True, True))
        }
        self._run = prepare(
            update(runs)
            .where(
                runs.c.id == bindparam("w_id"),
                runs.c.transitions == bindparam("w_transitions"),
                runs.c.active,
            )
            .values({c: bindparam(f"v_{c}") for c in _RUN_COLUMNS}),
            dialect,
        )
        self._transition = prepare(_inserts(transitions, _TRANSITION_COLUMNS), dialect)
        self._outbox = prepare(_inserts(outbox, _OUTBOX_COLUMNS), dialect)
        self._consumed = prepare(
            _inserts(consumed_comments, ("task_id", "comment_id", "run_id", "consumed_at")),
            dialect,
        )
        self._clear_progress = prepare(progress.CLEAR_LINE, dialect)
        self._here = LoopConnection(db)
        self._here.open()  # now, not at the first commit: never a pool checkout on the loop

    def plan(
        self,
        lease: Lease,
        board_id: str,
        run: RunRow,
        step: Step,
        effects: Sequence[Effect],
        *,
        started_at: datetime,
        now: datetime,
        ttl: float,
        not_before: datetime | None = None,
        consumed: Sequence[str] = (),
        clear_progress: bool = False,
    ) -> Planned:
        """One transition's write, its parameters ready: for `commit_here` or `commit`."""
        seq = run.transitions + 1
        ends = step.ends_run
        task_stmt = self._task[bool(step.error or ends), ends]
        task_params = task_stmt.params(
            {
                "v_lease_expires_at": now + timedelta(seconds=ttl),
                "v_status": step.run_status,
                "v_step": step.to_state,
                "v_not_before": not_before,
                "v_updated_at": now,
                "v_last_error": step.error,
                "v_active_run_id": None,
                "w_id": run.task_id,
                "w_owner": lease.owner,
                "w_epoch": lease.epoch,
            }
        )
        previous = run.previous_state_id if step.to_state == step.from_state else step.from_state
        changes: dict[str, Any] = {
            "status": step.run_status,
            "active": not ends,
            "state_id": step.to_state,
            "previous_state_id": previous,
            "ctx": dict(step.ctx),
            "attempt": step.next_attempt,
            "iterations": dict(step.iterations),
            "transitions": seq,
            "last_error": step.error if step.error else run.last_error,
            "updated_at": now,
            "finished_at": now if ends else None,
        }
        run_values = {f"v_{k}": v for k, v in changes.items()}
        run_values |= {"w_id": run.id, "w_transitions": run.transitions}
        moved = {
            "run_id": run.id,
            "task_id": run.task_id,
            "seq": seq,
            "from_state": step.from_state,
            "to_state": step.to_state,
            "event": step.event,
            "reason": step.reason,
            "attempt": step.attempt,
            "loop_iteration": step.loop_iteration,
            "message": step.message,
            "error": step.error,
            "worker_id": lease.owner,
            "epoch": lease.epoch,
            "started_at": started_at,
            "committed_at": now,
        }
        rows = outbox_rows(run.task_id, board_id, run.id, seq, effects, now)
        outbox_params = [self._outbox.params(row) for row in rows]
        consumed_rows = [
            self._consumed.params(
                {"task_id": run.task_id, "comment_id": c, "run_id": run.id, "consumed_at": now}
            )
            for c in consumed
        ]
        return Planned(
            lease,
            replace(run, **changes),
            task_stmt,
            task_params,
            self._run.params(run_values),
            self._transition.params(moved),
            outbox_params,
            consumed_rows,
            self._clear_progress.params({"w_id": run.task_id}) if clear_progress else None,
        )

    def commit(self, planned: Planned) -> tuple[RunRow, TaskRow]:
        """Persist one transition and extend the lease; the run and task as committed.

        Raises LeaseLost, having written nothing, when the lease is no longer ours. Once
        more on a fresh connection when the pooled one was found dead: the writes are
        fenced (lease epoch, the run's transition count), so a replay cannot double one.
        """

        def attempt() -> tuple[RunRow, TaskRow]:
            with driver_transaction(self.db) as tx:
                return self._write(tx, planned)

        try:
            committed = once_more_if_dead(attempt)
            self._here.open()  # on this thread, if a dispose closed it: the loop's again
            return committed
        except DBAPIError:
            # a statement refused (the transition row of a seq another worker wrote first,
            # say): a fenced-off worker is told so, not shown the constraint it tripped
            if not self._still_held(planned.lease):
                raise LeaseLost(planned.lease) from None
            raise

    def own_connections(self) -> list[sqlite3.Connection]:
        """The DBAPI connections this writer keeps outside the pool (to count their calls:
        store/trace.py)."""
        conn = self._here.open()
        return [] if conn is None else [conn]

    def commit_here(self, planned: Planned) -> tuple[RunRow, TaskRow] | None:
        """`commit` on the calling thread, the event loop's, when that cannot wait: on
        SQLite with synchronous=NORMAL (a commit writes to the WAL; the one fsync left is
        the WAL header's, once per checkpoint cycle, in whichever commit restarts it), on
        a connection of its own that never waits for the write lock. None when the lock
        is taken, or anything else is off: `commit` on a thread then does it all again
        (nothing was written), and says what was wrong."""
        conn = self._here.get()
        if conn is None:
            return None
        try:
            if conn.in_transaction:  # left open by an error between statements: not ours
                conn.rollback()
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error:  # another connection writes (or it is closed): not here
            return None
        try:
            committed = self._write(Transaction(conn), planned)
            conn.commit()
        except (sqlite3.Error, LeaseLost):
            _rollback(conn)
            return None
        except BaseException:
            _rollback(conn)
            raise
        return committed

    def _write(self, tx: Transaction, planned: Planned) -> tuple[RunRow, TaskRow]:
        conn = tx.conn
        task_cur, run_cur, cur = conn.cursor(), conn.cursor(), conn.cursor()
        lease, task_stmt = planned.lease, planned.task_statement
        task_cur.execute(task_stmt.sql, planned.task_params)
        # on SQLite a lost lease stops here; in a pipeline, once all is answered
        raw = None if tx.pipelined else _lease_row(task_cur, lease)
        run_cur.execute(self._run.sql, planned.run_params)
        cur.execute(self._transition.sql, planned.transition_params)
        if planned.outbox_rows:
            cur.executemany(self._outbox.sql, planned.outbox_rows)
        if planned.consumed_rows:
            cur.executemany(self._consumed.sql, planned.consumed_rows)
        if planned.clear_progress is not None:
            # after the fenced update: a fenced-off worker writes nothing
            cur.execute(self._clear_progress.sql, planned.clear_progress)
        tx.sync()
        if raw is None:
            raw = _lease_row(task_cur, lease)
        if run_cur.rowcount != 1:
            # the fence makes this unreachable unless the run was changed outside a lease
            run = planned.run
            raise RuntimeError(f"run {run.id} changed under transition {run.transitions}")
        return planned.run, TaskRow(**task_stmt.row(raw))

    def _still_held(self, lease: Lease) -> bool:
        with self.db.connect() as conn:
            row = conn.execute(
                select(tasks.c.lease_owner, tasks.c.lease_epoch).where(tasks.c.id == lease.task_id)
            ).one_or_none()
        return row is not None and (row.lease_owner, row.lease_epoch) == (lease.owner, lease.epoch)


@dataclass(frozen=True, slots=True)
class Planned:
    """A transition's write with its parameters in the driver's form."""

    lease: Lease
    run: RunRow  # as it is once committed
    task_statement: Prepared
    task_params: Any
    run_params: Any
    transition_params: Any
    outbox_rows: list[Any]
    consumed_rows: list[Any]
    clear_progress: Any  # None: the progress line stays


def _rollback(conn: sqlite3.Connection) -> None:
    with suppress(sqlite3.Error):  # closed meanwhile (the database disposed): nothing open
        conn.rollback()


def _lease_row(cursor: Any, lease: Lease) -> Any:
    row = cursor.fetchone()
    if row is None:
        raise LeaseLost(lease)
    return row
