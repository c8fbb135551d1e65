"""The guarantees the lean hot path must keep where it no longer reads between
transitions: a cancel during a retry's backoff stops the retry, and a connection the
server dropped while an agent ran does not lose the agent's finished transition."""

from __future__ import annotations

import pytest

from factory import Backoff, action, define_factory, done, failed
from factory.clock import FakeClock
from factory.store import repo
from factory.store.db import Database
from tests.engine.helpers import flaky_factory, new_task, task, terminate_backends
from tests.engine.helpers import make_engine as engine_for


class CancelDuringSleep(FakeClock):
    """A clock whose sleeps are where a person cancels the card."""

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db
        self.task_id = ""

    async def sleep(self, seconds: float) -> None:
        with self.db.begin() as conn:
            assert repo.request_cancel(conn, self.task_id, self.now(), by="the test")
        await super().sleep(seconds)


async def test_a_cancel_during_an_inline_backoff_stops_the_retry(db: Database) -> None:
    calls: list[int] = []
    factory = flaky_factory(calls, Backoff("fixed", ms=200, max_ms=200))
    clock = CancelDuringSleep(db)
    # the watcher polls far less often than the backoff lasts: only a read after the
    # wait can see the cancel
    engine = engine_for(db, factory, clock=clock, cancel_check_seconds=5)
    clock.task_id = tid = new_task(db, "flaky")
    report = await engine.tick(tid)
    assert report.status == "cancelled"
    assert calls == [1], "the agent ran again after the card was cancelled"
    assert task(db, tid).last_error == "cancelled by the test before 'work' ran"


@pytest.mark.postgres
async def test_a_connection_dropped_during_a_quick_agent_keeps_its_transition(
    db: Database,
) -> None:
    if db.dialect.name != "postgresql":
        pytest.skip("a server that drops its connections: PostgreSQL")
    calls: list[str] = []

    def agent(inp):  # type: ignore[no-untyped-def]
        calls.append(inp.state_id)
        if inp.state_id == "b":  # the server restarts while the agent runs (< 5 s)
            terminate_backends(db.url.render_as_string(hide_password=False))
        return {"status": "done"}

    factory = define_factory(
        id="two",
        start="a",
        states={
            "a": action(agent, on={"done": "b", "failed": "bad"}),
            "b": action(agent, on={"done": "end", "failed": "bad"}),
            "end": done(),
            "bad": failed(),
        },
    )
    report = await engine_for(db, factory).tick(new_task(db, "two"))
    assert report.status == "done"
    assert calls == ["a", "b"]  # b's result kept: not lost, not run again
