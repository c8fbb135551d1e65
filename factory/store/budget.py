"""The rate budget row: read, changed and written back in one short transaction.

The row is locked for the change (SELECT ... FOR UPDATE on PostgreSQL; SQLite's
write lock is taken by BEGIN IMMEDIATE), so workers change it one at a time, and
time is the database's clock (`clock_timestamp()`, read after the lock is held),
so workers whose clocks disagree still agree on how much has refilled. What the
change is (refill, grant, pause) is the caller's pure function: this module only
knows the row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import Connection, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from factory.store.db import Database
from factory.store.tables import rate_budget

T = TypeVar("T")

# A budget call that waits longer than this for the row (or the server) fails, and
# the caller falls back to its own bucket: a stuck transaction elsewhere must not
# stop every request this worker sends.
LOCK_TIMEOUT_MS = 2000
STATEMENT_TIMEOUT_MS = 5000


@dataclass(frozen=True)
class BudgetRow:
    """A budget row with its times as epoch seconds of the database's clock."""

    tokens: float
    updated: float
    paused_until: float | None = None


Change = Callable[[BudgetRow, float], tuple[BudgetRow, T]]


def change_budget(db: Database, key: str, full: float, change: Change[T]) -> T:
    """Apply `change(row, now)` to the budget `key` (created holding `full` tokens).

    Returns what `change` answered alongside the new row.
    """
    with db.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}"))
            conn.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
        row = _locked(conn, key)
        now = _now(conn)
        if row is None:
            _create(conn, key, full, now)
            row = _locked(conn, key)
            assert row is not None  # created above or by a worker that got there first
        new, answer = change(row, now)
        conn.execute(
            update(rate_budget)
            .where(rate_budget.c.key == key)
            .values(
                tokens=new.tokens,
                updated_at=_datetime(new.updated),
                paused_until=None if new.paused_until is None else _datetime(new.paused_until),
            )
        )
    return answer


def read_budget(db: Database, key: str) -> BudgetRow | None:
    with db.begin() as conn:
        found = conn.execute(select(rate_budget).where(rate_budget.c.key == key)).one_or_none()
    return None if found is None else _row(found)


def _locked(conn: Connection, key: str) -> BudgetRow | None:
    query = select(rate_budget).where(rate_budget.c.key == key)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    found = conn.execute(query).one_or_none()
    return None if found is None else _row(found)


def _now(conn: Connection) -> float:
    if conn.dialect.name == "postgresql":
        stamp: datetime = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
        return stamp.timestamp()
    # SQLite is one file on one host: every process sharing it reads the same clock.
    return time.time()


def _create(conn: Connection, key: str, full: float, now: float) -> None:
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(
        insert(rate_budget)
        .values(key=key, tokens=full, updated_at=_datetime(now), paused_until=None)
        .on_conflict_do_nothing(index_elements=["key"])
    )


def _row(found) -> BudgetRow:  # type: ignore[no-untyped-def]
    paused = found.paused_until
    return BudgetRow(
        float(found.tokens),
        found.updated_at.timestamp(),
        None if paused is None else paused.timestamp(),
    )


def _datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
