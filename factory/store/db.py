"""The database (SQLite or PostgreSQL) opened, migrated and checked."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, NoSuchModuleError

from factory.files import ensure_private_file

MIGRATIONS = Path(__file__).with_name("migrations")
# A fixed key so that workers starting together on PostgreSQL migrate one at a time.
MIGRATION_LOCK_KEY = 0x6E66_6163

# The project's name for a SQLAlchemy Engine, so that `Engine` means only the tick runner
# (factory/engine.py) and every database handle reads as `db: Database`.
Database = Engine


class DatabaseError(RuntimeError):
    """The database cannot be opened or migrated; the message says which and why."""


SQLITE_SYNC = ("normal", "full")


def make_engine(url: str, sqlite_sync: str = "normal") -> Database:
    """A database for `url`; SQLite files (and their folder) are created on first use.

    `sqlite_sync` is SQLite's `synchronous` in WAL mode (NFACTORY_SQLITE_SYNC): "normal"
    makes each commit durable against a crash of the process, "full" against a power loss
    or an OS crash too (an fsync per commit)."""
    if sqlite_sync not in SQLITE_SYNC:
        raise DatabaseError(
            f"NFACTORY_SQLITE_SYNC is {sqlite_sync!r}; use one of {', '.join(SQLITE_SYNC)}"
        )
    try:
        parsed = make_url(url)
    except Exception:  # sqlalchemy raises ArgumentError with a terse message
        # the URL may hold a password and could not be parsed to hide it: never shown whole
        raise DatabaseError(
            f"NFACTORY_DATABASE_URL {hide_password(url)!r} is not a database URL "
            "(expected sqlite:///path or postgresql://user:password@host:port/name)"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database, sqlite_sync)
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            # the URL object, not str(): its str() hides the password as ***
            parsed = parsed.set(drivername="postgresql+psycopg")
        try:
            db = create_engine(parsed, pool_size=10, max_overflow=10)
        except NoSuchModuleError:
            raise DatabaseError(
                f"NFACTORY_DATABASE_URL names the driver {parsed.drivername!r}, which "
                "SQLAlchemy does not know: use postgresql:// (psycopg)"
            ) from None
        except ImportError as exc:  # the driver is an extra: SQLite users need none
            raise DatabaseError(
                f"NFACTORY_DATABASE_URL is a PostgreSQL URL but its driver {exc.name!r} is not "
                "installed: pip install 'notion-factory[postgres]' (psycopg, for postgresql://)"
            ) from None
        _ping_when_idle(db)
        return db
    raise DatabaseError(
        f"NFACTORY_DATABASE_URL uses {parsed.get_backend_name()!r}; "
        "notion-factory supports sqlite:/// and postgresql:// URLs"
    )


T = TypeVar("T")


def once_more_if_dead(attempt: Callable[[], T]) -> T:
    """`attempt()`, and once more when it found its pooled connection dead (a server
    restart, a proxy's idle cut): the pool then hands out a fresh one. Pooled connections
    in use moments ago are not pinged (see _ping_when_idle), so this is where a dead one
    shows. Only for writes that a replay cannot double (fenced, or guarded by a count)."""
    try:
        return attempt()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    return attempt()


def in_transaction(db: Database, fn: Callable[..., T], *args: Any) -> T:
    """`fn(conn, *args)` in a transaction, once more if its connection was dead."""

    def attempt() -> T:
        with db.begin() as conn:
            return fn(conn, *args)

    return once_more_if_dead(attempt)


def hide_password(url: str) -> str:
    """`url` with anything between `user:` and the last `@` masked, parsable or not (a
    password is never shown, even when the rest of the URL is broken)."""
    scheme, sep, rest = url.rpartition("://") if "://" in url else ("", "", url)
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return url
    return f"{scheme}{sep}{creds.split(':', 1)[0]}:***@{host}"


# A pooled connection unused this long is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 5.0


def _ping_when_idle(db: Database) -> None:
    """SQLAlchemy's pool_pre_ping, for connections that sat idle in the pool only.

    pool_pre_ping costs a round trip on every checkout: with one transaction per
    transition, a third of a busy worker's round trips. A connection that has been in use
    moments ago is alive; one idle for a while may have been closed by the server (a
    restart, an idle timeout, a proxy), and is pinged and replaced if dead, as before.
    A connection that dies within the idle window fails the one transaction that uses it;
    SQLAlchemy then discards the pool's connections, and the worker tries again later.
    """

    @event.listens_for(db, "checkin")
    def _checked_in(_dbapi_conn, record) -> None:  # type: ignore[no-untyped-def]
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(db, "checkout")
    def _checked_out(dbapi_conn, record, _proxy) -> None:  # type: ignore[no-untyped-def]
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # new, or in use moments ago
        try:
            alive = db.dialect.do_ping(dbapi_conn)
        except Exception:
            alive = False
        if not alive:
            # the pool discards this connection and checks out another (a new one)
            raise DisconnectionError("a pooled connection idle for a while is closed")


def _sqlite_engine(url: str, database: str | None, sync: str) -> Database:
    if database and database != ":memory:" and not database.startswith("file:"):
        # created by us before SQLite does, so owner-only; its -wal and -shm files
        # take the same permissions
        ensure_private_file(Path(database).expanduser())
    db = create_engine(
        url,
        # pysqlite's own transaction handling is disabled so that BEGIN IMMEDIATE
        # below takes the write lock up front: a deferred transaction that later
        # upgrades to a writer can fail with SQLITE_BUSY regardless of busy_timeout.
        connect_args={"check_same_thread": False, "isolation_level": None, "timeout": 30},
    )

    @event.listens_for(db, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={sync.upper()}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    def _begin_immediate(pooled) -> None:  # type: ignore[no-untyped-def]
        # the dialect's own begin (a no-op for pysqlite), so that a failure is wrapped
        # and handled as any statement's; straight to the driver, as a statement through
        # SQLAlchemy costs several times more, and every transaction begins here
        pooled.driver_connection.execute("BEGIN IMMEDIATE")

    db.dialect.do_begin = _begin_immediate  # type: ignore[method-assign]

    return db


def migrate(db: Database) -> None:
    """Bring the schema to the newest revision (idempotent, safe with concurrent workers)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with db.begin() as conn:
            if db.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except Exception as exc:
        where = db.url.render_as_string(hide_password=True)
        raise DatabaseError(f"cannot migrate database {where}: {exc}") from exc


def open_database(url: str, sqlite_sync: str = "normal") -> Database:
    db = make_engine(url, sqlite_sync)
    migrate(db)
    return db


def ping(db: Database) -> None:
    """Raise unless the database answers a trivial query (`doctor`, `/healthz`)."""
    with db.connect() as conn:
        conn.execute(text("SELECT 1"))
