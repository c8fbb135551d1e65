"""Helpers for engine tests: an engine over a real database with a fake clock."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from sqlalchemy import event

from factory.clock import FakeClock
from factory.dsl import Factory
from factory.engine import Engine, EngineConfig
from factory.store import repo
from factory.store.db import Database


def make_engine(
    db: Database,
    factories: Factory | Mapping[str, Factory],
    *,
    worker: str = "w1",
    clock: FakeClock | None = None,
    **config: float | int,
) -> Engine:
    catalog = {factories.id: factories} if isinstance(factories, Factory) else dict(factories)
    return Engine(db, catalog, EngineConfig(worker_id=worker, **config), clock or FakeClock())  # type: ignore[arg-type]


def new_task(db: Database, factory_id: str, title: str = "card", body: str = "") -> str:
    with db.begin() as conn:
        return repo.create_task(
            conn,
            factory_id=factory_id,
            title=title,
            prompt=body,
            context=body,
            now=FakeClock().now(),
        )


def task(db: Database, task_id: str) -> repo.TaskRow:
    with db.connect() as conn:
        return repo.get_task(conn, task_id)


def run_of(db: Database, task_id: str) -> repo.RunRow:
    with db.connect() as conn:
        run = repo.latest_run(conn, task_id)
    assert run is not None
    return run


def path(db: Database, task_id: str) -> list[tuple[str, str, str]]:
    with db.connect() as conn:
        return [(h["from_state"], h["to_state"], h["reason"]) for h in repo.history(conn, task_id)]


def statements_on_this_thread(db: Database) -> list[str]:
    """Statements run on the calling thread (the loop's) on the pool's connections from
    now on, seen by SQLAlchemy or, on SQLite, by the library itself (a statement sent on
    the DBAPI cursor too). The transition writer's own loop connection is not the pool's:
    it never waits for the write lock (tests/engine/test_step_writer.py)."""
    loop_thread = threading.get_ident()
    seen: list[str] = []

    def note(statement: str) -> None:
        if threading.get_ident() == loop_thread:
            seen.append(statement.split("\n")[0][:60])

    if db.dialect.name == "sqlite":

        @event.listens_for(db, "checkout")
        def _trace(dbapi_conn, _record, _proxy) -> None:  # type: ignore[no-untyped-def]
            dbapi_conn.set_trace_callback(note)

    else:

        @event.listens_for(db, "before_cursor_execute")
        def _note(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
            note(statement)

    return seen
