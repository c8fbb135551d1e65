"""count_calls sees what reaches the driver, whichever layer sent it (SQLAlchemy, the DBAPI
cursor, a psycopg pipeline), and leaves nothing behind when its block ends."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import text

from factory.store import db as db_module
from factory.store.db import Database, make_engine
from factory.store.trace import count_calls

LISTENED = ("connect", "checkout", "close", "close_detached")

# one transaction of two statements, however it is sent
TWO_IN_ONE = {
    "statements": 2,
    "begins": 1,
    "commits": 1,
    "rollbacks": 0,
    "pings": 0,
    "round_trips": 4,  # no pipeline: each of the four waits for the database
}


def _create_scratch(db: Database) -> None:
    with db.begin() as conn:
        conn.execute(text("CREATE TABLE trace_scratch (n integer)"))


def _drop_scratch(db: Database) -> None:
    with db.begin() as conn:
        conn.execute(text("DROP TABLE trace_scratch"))


@pytest.fixture
def scratch(db: Database) -> Iterator[Database]:
    """`db` with a table of its own to write to."""
    _create_scratch(db)
    yield db
    _drop_scratch(db)


@pytest.fixture
def pg(pg_url: str) -> Iterator[Database]:
    """The PostgreSQL database alone, with the scratch table: for psycopg's pipeline."""
    db = make_engine(pg_url)
    _create_scratch(db)
    yield db
    _drop_scratch(db)
    db.dispose()


def _raw_begin(db: Database, cursor: Any) -> None:
    """What SQLAlchemy's begin does on each: sqlite3 is in autocommit mode (db.py) and is
    sent BEGIN IMMEDIATE; psycopg begins by itself before the first statement."""
    if db.dialect.name == "sqlite":
        cursor.execute("BEGIN IMMEDIATE")


def _mark(db: Database) -> str:
    return "?" if db.dialect.name == "sqlite" else "%s"


def test_a_transaction_through_sqlalchemy(scratch: Database) -> None:
    with count_calls(scratch) as seen, scratch.begin() as conn:
        conn.execute(text("INSERT INTO trace_scratch VALUES (1)"))
        conn.execute(text("SELECT count(*) FROM trace_scratch"))
    assert seen == TWO_IN_ONE


@contextmanager
def _on_the_cursor(db: Database) -> Iterator[Any]:
    """A transaction on a pooled connection's DBAPI cursor, committed at the end."""
    fairy = db.raw_connection()
    cursor = fairy.cursor()
    _raw_begin(db, cursor)
    yield cursor
    fairy.commit()
    fairy.close()


def test_a_transaction_on_the_dbapi_cursor_counts_the_same(scratch: Database) -> None:
    with count_calls(scratch) as seen, _on_the_cursor(scratch) as cursor:
        cursor.execute("INSERT INTO trace_scratch VALUES (1)")
        cursor.execute("SELECT count(*) FROM trace_scratch")
        assert cursor.fetchone() == (1,)
    assert seen == TWO_IN_ONE


def test_an_executemany_counts_each_row(scratch: Database) -> None:
    with count_calls(scratch) as seen, _on_the_cursor(scratch) as cursor:
        cursor.executemany(f"INSERT INTO trace_scratch VALUES ({_mark(scratch)})", [(1,), (2,)])
    assert (seen["statements"], seen["begins"], seen["commits"]) == (2, 1, 1)
    if scratch.dialect.name == "sqlite":
        assert seen["round_trips"] == 4  # calls into the library: one per row
    else:
        assert seen["round_trips"] < 4  # psycopg pipelines the rows


def test_a_rollback_counts_only_when_a_transaction_is_open(scratch: Database) -> None:
    with count_calls(scratch) as seen:
        fairy = scratch.raw_connection()
        fairy.driver_connection.rollback()  # nothing open: the driver sends nothing
        fairy.close()
        with scratch.connect() as conn:  # returned to the pool with its transaction open
            conn.execute(text("SELECT count(*) FROM trace_scratch"))
    assert seen == {
        "statements": 1,
        "begins": 1,
        "commits": 0,
        "rollbacks": 1,  # the pool's, on return
        "pings": 0,
        "round_trips": 3,
    }


def test_a_ping_is_counted_as_a_ping_not_a_statement(scratch: Database) -> None:
    with count_calls(scratch) as seen:
        fairy = scratch.raw_connection()
        assert scratch.dialect.do_ping(fairy.dbapi_connection)
        fairy.close()
    assert seen == Counter(statements=0, begins=0, commits=0, rollbacks=0, pings=1, round_trips=1)


def test_nothing_is_counted_once_the_block_has_ended(scratch: Database) -> None:
    listeners = {name: list(getattr(scratch.pool.dispatch, name)) for name in LISTENED}

    def write() -> None:
        with scratch.begin() as conn:
            conn.execute(text("INSERT INTO trace_scratch VALUES (1)"))

    with count_calls(scratch) as seen:
        write()
    first = dict(seen)
    write()
    fairy = scratch.raw_connection()
    scratch.dialect.do_ping(fairy.dbapi_connection)
    fairy.close()
    assert dict(seen) == first
    assert "do_ping" not in vars(scratch.dialect)  # the dialect's own again
    assert {name: list(getattr(scratch.pool.dispatch, name)) for name in listeners} == listeners
    with count_calls(scratch) as again:  # the same connection, traced afresh
        write()
    one_write = {"statements": 1, "begins": 1, "commits": 1, "rollbacks": 0, "pings": 0}
    assert again == seen == one_write | {"round_trips": 3}


def test_blocks_on_one_database_do_not_nest(db: Database) -> None:
    with count_calls(db), pytest.raises(RuntimeError, match="do not nest"), count_calls(db):
        pass


def _pipelined(db: Database, fetch_between: bool) -> Counter[str]:
    """One transaction of three inserts in a psycopg pipeline, the first returning its row."""
    with count_calls(db) as seen:
        fairy = db.raw_connection()
        conn = fairy.driver_connection
        assert conn is not None
        with conn.pipeline():
            cursor = conn.cursor()
            cursor.execute("INSERT INTO trace_scratch VALUES (%s) RETURNING n", (1,))
            if fetch_between:
                assert cursor.fetchone() == (1,)
            cursor.execute("INSERT INTO trace_scratch VALUES (%s)", (2,))
            cursor.execute("INSERT INTO trace_scratch VALUES (%s)", (3,))
            conn.commit()
        fairy.close()
    return seen


@pytest.mark.postgres
def test_a_pipeline_waits_fewer_times_than_it_sends_statements(pg: Database) -> None:
    seen = _pipelined(pg, fetch_between=False)
    assert (seen["statements"], seen["begins"], seen["commits"]) == (3, 1, 1)
    assert seen["round_trips"] < 3 + 1 + 1


@pytest.mark.postgres
def test_a_fetch_inside_a_pipeline_is_one_more_round_trip(pg: Database) -> None:
    """psycopg asks for the rows with a Flush, not a Sync: no ReadyForQuery answers it, yet
    the client waits for the server all the same."""
    without = _pipelined(pg, fetch_between=False)
    within = _pipelined(pg, fetch_between=True)
    assert within - without == Counter(round_trips=1)


@pytest.mark.postgres
def test_the_idle_ping_on_checkout_is_counted_as_a_ping(
    pg: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """db.py pings in a checkout listener of its own; the trace is in place before it."""
    with pg.connect():
        pass  # the pool holds one connection, idle from now
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    with count_calls(pg) as seen, pg.connect():
        pass
    assert seen == Counter(statements=0, begins=0, commits=0, rollbacks=0, pings=1, round_trips=1)
