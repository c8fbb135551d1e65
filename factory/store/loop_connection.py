"""The event loop's own SQLite connection, on which a transition commits without a
hand-off to a thread (store/steps.py, `StepWriter.commit_here`).

It never waits for the write lock (busy_timeout 0) and runs no checkpoint (they fsync;
the pool's connections run them on their threads). There is none where a commit would
block on an fsync (synchronous=FULL) or on the network (PostgreSQL). It is detached from
the pool, so the pool's size is not spent on it, and closed with the pool's
connections: at once on the thread that owns it, else marked and closed by the owner
between two commits (sqlite3 must not close a connection another thread is using).
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import suppress

from sqlalchemy import event

from factory.store.db import Database


class LoopConnection:
    def __init__(self, db: Database) -> None:
        self.db = db
        name = db.url.database or ""
        self._usable = db.dialect.name == "sqlite" and name not in ("", ":memory:")
        self._usable = self._usable and "mode=memory" not in name
        self._conn: sqlite3.Connection | None = None
        self._owner = 0  # the thread that commits on it: the first to ask
        self._stale = False  # the database was disposed: the owner closes it
        self._lock = threading.Lock()
        if self._usable:
            event.listen(db, "engine_disposed", self._disposed)

    def open(self) -> sqlite3.Connection | None:
        """The connection, opened if it is not: on a thread that may wait (a pool checkout
        can), never on the loop's hot path. None where there is none."""
        with self._lock:
            if self._conn is None and self._usable:
                self._conn = self._connect()
            return self._conn

    def get(self) -> sqlite3.Connection | None:
        """The connection for the calling thread to commit on, or None: another thread owns
        it, or it is not open (`open` it from a thread)."""
        if not self._usable:
            return None
        me = threading.get_ident()
        with self._lock:
            if not self._owner:
                self._owner = me
            if me != self._owner:
                return None
            if self._stale:
                self._stale = False
                self._close()
            return self._conn

    def _connect(self) -> sqlite3.Connection | None:
        fairy = self.db.raw_connection()  # set up as every connection (PRAGMAs)
        conn = fairy.driver_connection
        fairy.detach()  # then kept, outside the pool's count
        assert isinstance(conn, sqlite3.Connection), type(conn)
        if conn.execute("PRAGMA synchronous").fetchone()[0] > 1:  # FULL, EXTRA
            conn.close()
            self._usable = False
            return None
        conn.execute("PRAGMA busy_timeout=0")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    def _disposed(self, _db: Database) -> None:
        with self._lock:
            if self._owner in (0, threading.get_ident()):
                self._close()
            else:  # the owner may be committing on it right now
                self._stale = True

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(sqlite3.Error):
                conn.close()
