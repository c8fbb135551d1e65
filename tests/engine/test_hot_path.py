"""What one transition costs the database, counted (never timed): the hot path stays lean.

Counts do not depend on the machine's load, so they can be asserted: a transition is one
transaction of four statements (the lease-guarded task update that returns the row, the
run update, the transition row, the outbox rows), with no read of the task between
transitions and, on PostgreSQL, no ping of a connection in use moments ago. They are
counted at the driver, so the outbox insert counts once per row it is run for.
"""

from __future__ import annotations

from typing import Any

import pytest

from factory import define_factory, done, orchestrate
from factory.clock import SystemClock
from factory.engine import Engine, EngineConfig
from factory.store.db import Database
from factory.store.trace import count_calls
from tests.engine.helpers import new_task, path, terminate_backends


def chain(steps: int) -> Any:
    """`steps` no-op states, each a sync select naming the next."""
    states: dict[str, Any] = {
        f"s{i}": orchestrate(select=lambda inp: "next", on={"next": f"s{i + 1}"})
        for i in range(steps - 1)
    }
    states[f"s{steps - 1}"] = orchestrate(select=lambda inp: "next", on={"next": "end"})
    return define_factory(id=f"chain{steps}", start="s0", states=states | {"end": done()})


async def test_a_transition_is_one_transaction_of_four_statements(db: Database) -> None:
    """Two cards of 10 and 30 no-op transitions, each in one tick: what the longer tick
    costs beyond the shorter, per extra transition, is what one transition costs. Counted
    at the driver (factory/store/trace.py), whichever layer sends the SQL."""
    short, long = chain(10), chain(30)
    config = EngineConfig(
        "w1", lease_seconds=300, cancel_check_seconds=300, max_transitions_per_tick=50
    )
    engine = Engine(db, {short.id: short, long.id: long}, config, SystemClock())
    # a first card opens what connections a tick needs: the counted ticks open none
    await engine.tick(new_task(db, short.id))
    spent = []
    for factory, steps in ((short, 10), (long, 30)):
        tid = new_task(db, factory.id)
        with count_calls(db, also=engine.steps.own_connections()) as calls:
            report = await engine.tick(tid)
        spent.append(calls)
        assert (report.outcome, report.transitions) == ("finished", steps)
        assert path(db, tid)[-1] == (f"s{steps - 1}", "end", "orchestrate.select")
    kinds = ("statements", "begins", "commits", "rollbacks", "pings", "round_trips")
    # rounded: psycopg prepares a statement on a connection after its fifth run there and
    # forgets them all at a rollback, so which pooled connection a read took can shift a
    # tick's count by one or two; a statement more per transition shifts it by twenty
    exact = {k: (spent[1][k] - spent[0][k]) / 20 for k in kinds}
    per_transition = {k: round(v) for k, v in exact.items()}
    assert all(abs(exact[k] - per_transition[k]) <= 0.1 for k in kinds), exact
    assert per_transition == {
        # task (lease guard, RETURNING), run, transition row, and the outbox insert run
        # once for each of its two rows (an executemany, one execution per row at the driver)
        "statements": 5,
        "begins": 1,
        "commits": 1,
        "rollbacks": 0,  # no read between transitions
        "pings": 0,  # no pre-ping of a connection in use moments ago
        # SQLite: one call into the library per statement, BEGIN and COMMIT. PostgreSQL:
        # BEGIN and the statements in one pipeline, answered at once, then COMMIT
        "round_trips": 7 if db.dialect.name == "sqlite" else 2,
    }


@pytest.mark.postgres
def test_a_connection_the_server_closed_while_it_sat_idle_is_replaced(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No pre-ping on a busy pool, yet a pooled connection the server closed meanwhile (a
    restart, an idle timeout) is still found out and replaced before anyone uses it."""
    from sqlalchemy import text

    from factory.store import db as db_module

    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    db = db_module.make_engine(pg_url)
    try:
        with db.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        terminate_backends(pg_url, pid)
        with db.begin() as conn:  # the pool's one connection is dead: a new one serves
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        db.dispose()


async def test_routing_on_a_context_key_runs_on_the_loop_and_user_code_on_threads(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`decide("verdict", ...)` reads a dict: the framework runs it on the event loop, with
    no hand-off to an agent thread. The user's own step and select still get theirs."""
    from factory import decide, end, flow, step
    from factory.threads import AgentThreads

    launched: list[str] = []
    launch = AgentThreads.launch

    def recording(self: AgentThreads, call: Any, *args: Any) -> Any:
        launched.append(call.label.split(" in state ")[0] + " " + call.label.split("'")[1])
        return launch(self, call, *args)

    monkeypatch.setattr(AgentThreads, "launch", recording)

    def judge(inp: Any) -> dict[str, Any]:
        return {"status": "done", "data": {"verdict": "yes"}}

    factory = define_factory(
        id="routes",
        run=flow(
            step(judge, name="judge"),
            decide("verdict", {"yes": end("done"), "no": end("failed")}, name="route"),
        ),
    )
    engine = Engine(db, {factory.id: factory}, EngineConfig("w1"), SystemClock())
    tid = new_task(db, factory.id)
    report = await engine.tick(tid)
    assert report.outcome == "finished" and report.status == "done"
    assert [s.reason for s in report.steps][-1] == "orchestrate.select"
    assert launched == ["agent judge"], "only the user's step went to an agent thread"
