"""What the database is sent, counted at the driver: for the hot-path test and the bench.

SQLAlchemy's events see only what goes through SQLAlchemy; a statement sent on the DBAPI
cursor, a commit on the DBAPI connection or a psycopg pipeline passes them by. This counts
below every layer: SQLite's own statement trace, and libpq's protocol trace on PostgreSQL.
"""

from __future__ import annotations

import ctypes
import re
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, Protocol

from sqlalchemy import event

from factory.store.db import Database

KINDS = ("statements", "begins", "commits", "rollbacks", "pings", "round_trips")

# ROLLBACK TO SAVEPOINT keeps the transaction open: a statement, like SAVEPOINT and RELEASE
_CONTROL = re.compile(
    r"\s*(?:(?P<begins>BEGIN|START\s+TRANSACTION)|(?P<commits>COMMIT|END)"
    r"|(?P<rollbacks>(?:ROLLBACK|ABORT)(?!\s+(?:(?:TRANSACTION|WORK)\s+)?TO\b)))\b",
    re.IGNORECASE,
)

# ids of the databases inside a count_calls block: a second trace on one connection would
# replace the first, and libpq would never flush the first's buffered lines
_counting: set[int] = set()

# a statement's or portal's name in libpq's trace (psycopg's never hold a quote)
_QUOTED = re.compile(rb'"([^"]*)"')


def _kind(sql: str) -> str:
    found = _CONTROL.match(sql)
    return found.lastgroup if found and found.lastgroup else "statements"


class _Trace(Protocol):
    def stop(self) -> None: ...
    def count(self, into: Counter[str]) -> None: ...


class _SQLiteTrace:
    """Every statement SQLite starts, as its library reports it (set_trace_callback)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.sent: list[str] = []
        # a bound list.append: no Python frame per statement, the text is read at the end
        conn.set_trace_callback(self.sent.append)

    def stop(self) -> None:
        # closed without the pool saying so raises: it traces nothing more anyway
        with suppress(sqlite3.ProgrammingError):
            self.conn.set_trace_callback(None)

    def count(self, into: Counter[str]) -> None:
        for sql in self.sent:
            into[_kind(sql)] += 1
        into["round_trips"] += len(self.sent)


class _PostgresTrace:
    """libpq's trace of the protocol messages one connection sends and receives.

    A file, not a pipe: libpq writes from whichever thread uses the connection, and must
    never block on a reader. One per connection, as libpq flushes its buffer at its own
    moments and two connections' lines would interleave mid-line in one file."""

    def __init__(self, conn: Any) -> None:
        from psycopg.pq import Trace

        self.pgconn = conn.pgconn
        self.file = tempfile.TemporaryFile()  # noqa: SIM115 (closed in count())
        self.stopped = False
        # psycopg fdopen()s a stdio stream that is never closed (libpq does not own it):
        # a few kilobytes per connection traced, once per block
        self.pgconn.trace(self.file.fileno())
        self.pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        if self.pgconn.pgconn_ptr is None:
            # closed without the pool saying so: its stream still holds the last lines
            # and no untrace will flush them, so flush every stdio stream of the process
            ctypes.CDLL(None).fflush(None)
        else:
            self.pgconn.untrace()  # flushes the stream

    def count(self, into: Counter[str]) -> None:
        prepared: dict[bytes, str] = {}  # statement name -> kind, from its Parse
        portals: dict[bytes, str] = {}  # portal -> kind of the statement bound to it
        asked = False  # a Query, Sync or Flush sent since the server's last answer was read
        self.file.seek(0)
        for line in self.file:
            # "F\t10\tQuery\t \"BEGIN\"": direction, length (NN when it varies), type, fields
            parts = line.rstrip(b"\n").split(b"\t", 3)
            if len(parts) < 3 or parts[0] not in (b"F", b"B") or not _is_length(parts[1]):
                continue  # the next line of an SQL text that holds a newline
            kind, fields = parts[2], parts[3].strip() if len(parts) > 3 else b""
            if parts[0] == b"B":
                if asked:
                    into["round_trips"] += 1
                    asked = False
            elif kind == b"Query":
                into[_kind(_text(fields.removeprefix(b'"')))] += 1
                asked = True
            elif kind in (b"Sync", b"Flush"):
                asked = True
            elif kind == b"Parse":  # "name" "text" parameter types
                name, _, text = fields.partition(b'" "')
                prepared[name.removeprefix(b'"')] = _kind(_text(text))
            elif kind == b"Bind":  # "portal" "statement" parameters
                portal, statement = _QUOTED.findall(fields)[:2]
                # a statement psycopg prepared before the block is not transaction control:
                # connection.commit() and the like are never prepared
                portals[portal] = prepared.get(statement, "statements")
            elif kind == b"Execute":  # "portal" max_rows
                into[portals.get(_QUOTED.findall(fields)[0], "statements")] += 1
        self.file.close()


def _is_length(field: bytes) -> bool:
    return field.isdigit() or field == b"NN"


def _text(sql: bytes) -> str:
    return sql[:64].decode(errors="replace")


@contextmanager
def count_calls(db: Database, also: Iterable[Any] = ()) -> Iterator[Counter[str]]:
    """Counts what every connection of `db` sends to the database while the block runs,
    whichever layer sent it (SQLAlchemy, the DBAPI cursor, a psycopg pipeline). The
    counter is filled when the block ends: read it after.

    - "statements": SQL statements other than BEGIN, COMMIT and ROLLBACK (and pings).
      On SQLite, what the library runs: an executemany of N rows counts N, each row being
      one run of the statement. On PostgreSQL, Execute and Query messages (an executemany
      of N rows sends N Executes); a Query holding several statements counts one.
    - "begins", "commits", "rollbacks": transaction control sent to the database, by
      whichever statement text (BEGIN IMMEDIATE, START TRANSACTION, END, ABORT).
      ROLLBACK TO SAVEPOINT is a statement. A rollback the driver does not send (psycopg
      and sqlite3 on a connection with no transaction open) counts nothing.
    - "pings": the dialect's do_ping calls (the pool's pre-ping, db.py's idle ping).
    - "round_trips": exchanges that wait for the database. On SQLite, calls into the
      library: every statement above, pings included. On PostgreSQL, the times the client,
      having asked for an answer (a Query, a Sync or a Flush), next reads what the server
      sent. Outside pipeline mode that is one per ReadyForQuery; in pipeline mode it also
      counts a fetch in the middle of the pipeline (psycopg sends Flush, not Sync, and
      waits for the rows), which counting ReadyForQuery would miss.

    Connections are traced from their first checkout in the block (or their opening: a
    connection opened in the block counts its setup statements too) until it ends or they
    close, so a connection checked out before the block and held through it is not seen;
    DBAPI connections kept outside the pool are traced when given in `also`. All tracing is
    removed when the block ends; leave it when no other thread is using `db` (libpq's
    tracing must not be stopped under a connection in use). Blocks on one database do not
    nest. Tracing costs a few microseconds per statement (tens on PostgreSQL, where libpq
    writes out every message). PostgreSQL needs psycopg 3 on Linux (libpq's tracing).
    """
    if db.dialect.driver not in ("pysqlite", "psycopg"):
        raise ValueError(f"count_calls counts sqlite3 and psycopg, not {db.dialect.driver}")
    if id(db) in _counting:
        raise RuntimeError("count_calls blocks on one database do not nest")
    counted: Counter[str] = Counter(dict.fromkeys(KINDS, 0))
    start = _SQLiteTrace if db.dialect.name == "sqlite" else _PostgresTrace
    live: dict[int, _Trace] = {}  # by id of the DBAPI connection
    ended: list[_Trace] = []
    pings: list[bool] = []  # one per ping: was its connection traced then

    def trace(dbapi_conn: Any) -> None:
        if id(dbapi_conn) not in live:  # checked out again: traced already
            live[id(dbapi_conn)] = start(dbapi_conn)

    def untrace(dbapi_conn: Any) -> None:
        ended_trace = live.pop(id(dbapi_conn), None)
        if ended_trace is not None:
            ended_trace.stop()  # before the close, which would lose libpq's buffered lines
            ended.append(ended_trace)

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        trace(dbapi_conn)

    def on_checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        trace(dbapi_conn)

    def on_close(dbapi_conn: Any, _record: Any) -> None:
        untrace(dbapi_conn)

    def on_close_detached(dbapi_conn: Any) -> None:
        untrace(dbapi_conn)

    dialect: Any = db.dialect
    set_before = vars(dialect).get("do_ping")  # None: the class's own
    ping = dialect.do_ping

    def counted_ping(dbapi_conn: Any) -> bool:
        pings.append(id(dbapi_conn) in live)
        return bool(ping(dbapi_conn))

    listeners = (
        ("connect", on_connect),
        ("checkout", on_checkout),
        ("close", on_close),
        ("close_detached", on_close_detached),
    )
    for dbapi_conn in also:  # outside the pool (the event loop's own, store/steps.py)
        trace(dbapi_conn)
    _counting.add(id(db))
    try:
        for name, fn in listeners:
            # first: db.py's idle ping runs in a checkout listener and must be traced
            event.listen(db, name, fn, insert=True)
        dialect.do_ping = counted_ping
        yield counted
    finally:
        for name, fn in listeners:
            event.remove(db, name, fn)
        if set_before is None:
            del dialect.do_ping
        else:
            dialect.do_ping = set_before
        for each in live.values():
            each.stop()
        for each in (*ended, *live.values()):
            each.count(counted)
        # a traced ping's SELECT 1 was counted as a statement (and a round trip, as it is)
        counted["statements"] -= sum(pings)
        counted["pings"] += len(pings)
        _counting.discard(id(db))
