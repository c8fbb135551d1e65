"""Helpers for engine tests: an engine over a real database with a fake clock."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from sqlalchemy import create_engine, event, text

from factory import AgentInput, Backoff, Retries, action, define_factory, done, failed
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


def terminate_backends(url: str, pid: int | None = None) -> None:
    """The PostgreSQL server at `url` drops connections to its database: the backend
    `pid`'s (an idle timeout, a DBA), or every other one (a restart, a proxy)."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if pid is not None:
                killed = conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
                assert killed.scalar(), f"no backend {pid} to terminate"
                return
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
    finally:
        admin.dispose()


def flaky_factory(calls: list[int], backoff: Backoff) -> Factory:
    """ "flaky": one state whose agent always raises ("attempt N broke"), retried twice
    after `backoff`, then failed; `calls` gets each attempt's number."""

    def flaky(inp: AgentInput) -> dict[str, Any]:
        calls.append(inp.attempt)
        raise RuntimeError(f"attempt {inp.attempt} broke")

    return define_factory(
        id="flaky",
        start="work",
        states={
            "work": action(
                flaky, on={"done": "end", "failed": "bad"}, retries=Retries(max=2, backoff=backoff)
            ),
            "end": done(),
            "bad": failed(),
        },
    )
