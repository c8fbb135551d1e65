"""SQLAlchemy statements compiled once, run on the driver's own cursor.

SQLAlchemy's execution layer costs about ten times the driver's own work per statement
(execution context, cache lookup, parameter processing, result wrapping). For the few
statements the engine runs on every transition that is most of a transition's CPU, so
they are compiled here once per dialect and sent to the DBAPI cursor directly. The SQL
text, the parameter conversions (datetimes, JSON, booleans) and the row conversions are
still SQLAlchemy's own, taken from the compiled statement and the columns' types: stored
values are the same whichever layer wrote them.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.dml import UpdateBase

from factory.store.db import Database

Processor = Callable[[Any], Any] | None


class Prepared:
    """One statement's SQL for a dialect and how its parameters and rows convert."""

    __slots__ = ("_cols", "_fixed", "_get", "_names", "_procs", "_row_procs", "positional", "sql")

    def __init__(
        self,
        sql: str,
        binds: Sequence[tuple[str, Processor]],  # in the order a positional driver wants
        positional: bool,
        columns: Sequence[tuple[str, Processor]],  # RETURNING columns, in row order
        fixed: Mapping[str, Any],  # values written into the statement (`.values(line=None)`)
    ) -> None:
        self.sql = sql
        self.positional = positional
        self._names = tuple(name for name, _ in binds)
        # the values in bind order in one C call; then only the few that need converting
        getter = operator.itemgetter(*self._names)
        self._get: Callable[[Mapping[str, Any]], Sequence[Any]] = (
            getter if len(self._names) > 1 else lambda values: (getter(values),)
        )
        self._procs = tuple((i, p) for i, (_, p) in enumerate(binds) if p is not None)
        self._fixed = dict(fixed)
        self._cols = tuple(name for name, _ in columns)
        self._row_procs = tuple((i, p) for i, (_, p) in enumerate(columns) if p is not None)

    def params(self, values: Mapping[str, Any]) -> list[Any] | dict[str, Any]:
        """The driver's parameters for `values` (by bind name); a missing name is a bug
        in the caller, so KeyError is left to name it."""
        if self._fixed:
            values = {**self._fixed, **values}
        out = list(self._get(values))
        for i, proc in self._procs:
            out[i] = proc(out[i])
        return out if self.positional else dict(zip(self._names, out, strict=True))

    def row(self, raw: Sequence[Any]) -> dict[str, Any]:
        """A RETURNING row as column name -> Python value."""
        out = list(raw)
        for i, proc in self._row_procs:
            out[i] = proc(out[i])
        return dict(zip(self._cols, out, strict=True))


def prepare(stmt: UpdateBase, dialect: Dialect) -> Prepared:
    """Compile `stmt` for `dialect`, with its parameters' and RETURNING columns' converters."""
    compiled = stmt.compile(dialect=_positional(dialect))
    positional = compiled.positiontup is not None
    names = compiled.positiontup if positional else list(compiled.binds)
    binds = tuple((name, _bind_processor(compiled.binds[name], dialect)) for name in names)
    returned: Sequence[ColumnElement[Any]] = compiled.effective_returning or ()
    columns = tuple(
        (str(col.key), col.type.dialect_impl(dialect).result_processor(dialect, None))
        for col in returned
    )
    fixed = {name: bp.value for name, bp in compiled.binds.items() if not bp.required}
    return Prepared(compiled.string, binds, positional, columns, fixed)


def _positional(dialect: Dialect) -> Dialect:
    """`dialect`, or a copy that writes positional parameters (psycopg's %s rather than
    %(name)s): the driver then takes a list as it is, not a dict it must reorder, on
    every statement."""
    if dialect.positional or dialect.paramstyle != "pyformat":
        return dialect
    positional = copy.copy(dialect)
    positional.paramstyle, positional.positional = "format", True
    return positional


def _bind_processor(bind: Any, dialect: Dialect) -> Processor:
    proc: Processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
    return proc


class Transaction:
    """An open transaction on a DBAPI connection: `conn` to send statements on, `sync()`
    to have everything sent so far answered (a psycopg pipeline's one round trip; on
    SQLite every statement is answered as it runs)."""

    __slots__ = ("_pipeline", "conn")

    def __init__(self, conn: Any, pipeline: Any = None) -> None:
        self.conn = conn
        self._pipeline = pipeline

    @property
    def pipelined(self) -> bool:
        """Statements are answered at `sync()`, not as they are sent."""
        return self._pipeline is not None

    def sync(self) -> None:
        if self._pipeline is not None:
            self._pipeline.sync()


def pipelines(db: Database) -> bool:
    """Whether `db`'s transactions go in a psycopg pipeline: PostgreSQL, with a libpq
    that has pipeline mode (14 and newer; psycopg[binary] bundles one)."""
    if db.dialect.name != "postgresql":
        return False
    from psycopg import Pipeline

    return bool(Pipeline.is_supported())


@contextmanager
def driver_transaction(db: Database) -> Iterator[Transaction]:
    """A transaction on a pooled connection's own DBAPI connection, committed when the
    block ends and rolled back if it raises.

    SQLite's begins with BEGIN IMMEDIATE (the write lock up front, as every write
    transaction here). On psycopg the block runs in a pipeline that BEGIN opens and COMMIT
    closes, sent with the statements: a transaction costs its `sync()`s plus one round
    trip. (In autocommit mode meanwhile, as psycopg's own implicit BEGIN waits for its
    answer.) A driver error is raised as SQLAlchemy's (DBAPIError and its subclasses),
    as from any other statement.
    """
    fairy = db.raw_connection()
    dbapi_conn = fairy.dbapi_connection  # still there to examine if it gets invalidated
    try:
        conn = fairy.driver_connection
        if db.dialect.name == "sqlite" or not pipelines(db):
            if db.dialect.name == "sqlite":
                conn.execute("BEGIN IMMEDIATE")
            try:  # psycopg without pipelines (libpq < 14) begins by itself
                yield Transaction(conn)
                conn.commit()
            except BaseException:
                _rollback_quietly(conn)
                raise
        else:
            conn.autocommit = True
            try:
                with conn.pipeline() as pipeline:
                    control = conn.cursor()
                    control.execute("BEGIN", prepare=False)  # never prepared: control
                    yield Transaction(conn, pipeline)
                    control.execute("COMMIT", prepare=False)
            except BaseException:
                _rollback_quietly(conn)
                raise
            finally:
                try:
                    conn.autocommit = False
                except Exception:
                    # never back to the pool in autocommit: its next transaction would not
                    # be one (dead, the pool would drop it anyway)
                    fairy.invalidate()
    except db.dialect.loaded_dbapi.Error as exc:
        # the dialect decides whether the connection is dead; the pool then drops it
        dead = db.dialect.is_disconnect(exc, dbapi_conn, None)
        if dead:
            # as SQLAlchemy's own Connection does (Pool._invalidate, private but its own
            # way): this connection is dropped, and every pooled one older than now is
            # replaced at its next checkout, since a server restart (or a proxy) has cut
            # them all, and the retry must get a live one
            db.pool._invalidate(fairy, exc)
        raise DBAPIError.instance(
            None, None, exc, db.dialect.loaded_dbapi.Error, connection_invalidated=dead
        ) from exc
    finally:
        fairy.close()


def _rollback_quietly(conn: Any) -> None:
    # the connection may be dead: the error that got us here says why
    with suppress(Exception):
        conn.rollback()
