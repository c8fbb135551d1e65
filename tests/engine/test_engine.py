"""The engine over real databases (SQLite and PostgreSQL): every state type and failure mode."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from factory import (
    AgentInput,
    AgentResult,
    Backoff,
    Retries,
    action,
    blocked,
    define_factory,
    done,
    failed,
    feedback,
    loop,
    orchestrate,
)
from factory.board_protocol import Reply
from factory.clock import FakeClock
from factory.effects import SummaryComment
from factory.store import repo
from factory.store.db import Database
from factory.store.tables import outbox, runs, transitions
from tests.engine.helpers import flaky_factory, make_engine, new_task, path, run_of, task


def reply(text: str, cid: str = "c1", author: str = "ann") -> Reply:
    return Reply(cid, text, author, FakeClock().now())


def fine(_: AgentInput) -> dict[str, Any]:
    return {"status": "done"}


def outbox_kinds(db: Database, task_id: str) -> list[str]:
    with db.connect() as conn:
        rows = conn.execute(
            select(outbox.c.kind).where(outbox.c.task_id == task_id).order_by(outbox.c.id)
        )
        return [r.kind for r in rows]


async def test_every_state_type_in_one_journey(db: Database) -> None:
    async def write(inp: AgentInput) -> AgentResult:
        n = int(inp.ctx.get("n", 0)) + 1
        return AgentResult("done", {"n": n}, message=f"pass {n}", page=f"draft {n}")

    def ask(inp: AgentInput) -> dict[str, Any]:
        if "human_feedback" in inp.ctx:
            return {"status": "done", "data": {"answer": inp.ctx["human_feedback"]}}
        return {"status": "feedback", "message": "Ship it?"}

    factory = define_factory(
        id="journey",
        start="kind",
        context={"n": 0},
        states={
            "kind": orchestrate(select=lambda inp: "write", on={"write": "polish", "skip": "end"}),
            "polish": loop(
                body="write",
                max_iterations=5,
                until=lambda ctx: ctx["n"] >= 2,
                on={"continue": "write", "done": "ask", "exhausted": "end"},
            ),
            "write": action(write, on={"done": "polish", "failed": "bad"}),
            "ask": action(ask, on={"done": "end", "failed": "bad", "feedback": "wait"}),
            "wait": feedback(),
            "end": done(),
            "bad": failed(),
        },
    )
    engine = make_engine(db, factory)
    tid = new_task(db, "journey")

    first = await engine.tick(tid)
    assert first.outcome == "paused"
    assert task(db, tid).status == "feedback" and task(db, tid).step == "wait"
    assert outbox_kinds(db, tid)[-1] == "comment"

    second = await engine.tick(tid, replies=[reply("yes")])
    assert second.outcome == "finished" and task(db, tid).status == "done"
    assert path(db, tid) == [
        ("kind", "polish", "orchestrate.select"),
        ("polish", "write", "loop.continue"),
        ("write", "polish", "action.done"),
        ("polish", "write", "loop.continue"),
        ("write", "polish", "action.done"),
        ("polish", "ask", "loop.done"),
        ("ask", "wait", "action.feedback"),
        ("wait", "ask", "feedback.reply"),
        ("ask", "end", "action.done"),
    ]
    run = run_of(db, tid)
    assert run.ctx["answer"] == "yes" and run.ctx["n"] == 2 and not run.active
    with db.connect() as conn:
        consumed = repo.consumed_comment_ids(conn, tid)
    assert consumed == {"c1"}


async def test_retries_back_off_then_route_failed_with_last_error(db: Database) -> None:
    calls: list[int] = []
    factory = flaky_factory(calls, Backoff("exponential", ms=500, max_ms=800))
    clock = FakeClock()
    engine = make_engine(db, factory, clock=clock)
    tid = new_task(db, "flaky")
    report = await engine.tick(tid)
    assert report.outcome == "finished"
    assert calls == [1, 2, 3]
    assert clock.sleeps == [0.5, 0.8]  # exponential, capped at max_ms
    final = task(db, tid)
    assert final.status == "failed"
    assert final.last_error == "state 'work': agent raised RuntimeError: attempt 3 broke"
    assert run_of(db, tid).ctx["last_error"] == final.last_error
    assert [r for _, _, r in path(db, tid)] == [
        "action.failed.retry",
        "action.failed.retry",
        "action.failed.exhausted",
    ]


async def test_long_backoff_ends_the_tick_and_attempts_persist_across_ticks(db: Database) -> None:
    outcomes = iter([{"status": "failed", "message": "flaky"}, {"status": "done"}])
    factory = define_factory(
        id="slow",
        start="work",
        states={
            "work": action(
                lambda inp: next(outcomes),
                on={"done": "end", "failed": "bad"},
                retries=Retries(max=3, backoff=Backoff("fixed", ms=60_000, max_ms=60_000)),
            ),
            "end": done(),
            "bad": failed(),
        },
    )
    clock = FakeClock()
    engine = make_engine(db, factory, clock=clock, max_inline_backoff_seconds=5)
    tid = new_task(db, "slow")
    assert (await engine.tick(tid)).outcome == "backoff"
    assert run_of(db, tid).attempt == 1
    assert (await engine.tick(tid)).outcome == "backoff"  # not due yet: nothing runs
    assert len(path(db, tid)) == 1
    with db.connect() as conn:
        assert tid not in repo.runnable_task_ids(conn, repo.LOCAL_BOARD, clock.now())
    clock.advance(61)
    with db.connect() as conn:
        assert tid in repo.runnable_task_ids(conn, repo.LOCAL_BOARD, clock.now())
    done_tick = await engine.tick(tid)
    assert done_tick.outcome == "finished" and task(db, tid).status == "done"
    with db.connect() as conn:
        last = repo.history(conn, tid)[-1]
    assert last["attempt"] == 2 and last["reason"] == "action.done"


async def test_tick_budget_yields_and_the_next_tick_resumes(db: Database) -> None:
    states: dict[str, Any] = {
        f"s{i}": action(fine, on={"done": f"s{i + 1}", "failed": "bad"}) for i in range(7)
    }
    factory = define_factory(id="long", start="s0", states=states | {"s7": done(), "bad": failed()})
    engine = make_engine(db, factory, max_transitions_per_tick=3)
    tid = new_task(db, "long")
    outcomes = [(await engine.tick(tid)).outcome for _ in range(3)]
    assert outcomes == ["yielded", "yielded", "finished"]
    assert [t for _, t, _ in path(db, tid)] == [f"s{i}" for i in range(1, 8)]


async def test_a_run_that_never_ends_is_failed_at_200_transitions(db: Database) -> None:
    factory = define_factory(
        id="spin",
        start="a",
        states={
            "a": orchestrate(select=lambda inp: "go", on={"go": "b"}),
            "b": orchestrate(select=lambda inp: "go", on={"go": "a"}),
        },
    )
    engine = make_engine(db, factory, max_transitions_per_tick=200)
    tid = new_task(db, "spin")
    await engine.tick(tid)
    report = await engine.tick(tid)
    assert report.outcome == "finished"
    final = task(db, tid)
    assert final.status == "failed"
    assert "run stopped after 200 transitions (the cap is 200)" in (final.last_error or "")
    assert len(path(db, tid)) == 201 and path(db, tid)[-1][2] == "run.transition_cap"


async def test_feedback_resumes_at_an_explicit_target(db: Database) -> None:
    factory = define_factory(
        id="fb",
        start="ask",
        states={
            "ask": action(
                lambda inp: {"status": "feedback", "message": "Which way?"},
                on={"done": "end", "failed": "bad", "feedback": "wait"},
            ),
            "wait": feedback(resume="use"),
            "use": action(
                lambda inp: {"status": "done", "data": {"got": inp.ctx["human_feedback"]}},
                on={"done": "end", "failed": "bad"},
            ),
            "end": done(),
            "bad": failed(),
        },
    )
    engine = make_engine(db, factory)
    tid = new_task(db, "fb")
    assert (await engine.tick(tid)).outcome == "paused"
    assert (await engine.tick(tid)).outcome == "paused"  # no reply: nothing happens
    assert len(path(db, tid)) == 1
    report = await engine.tick(tid, replies=[reply("left", "c1"), reply("no, right", "c2", "bob")])
    assert report.outcome == "finished"
    run = run_of(db, tid)
    assert run.ctx["got"] == "left\n\nno, right"
    assert [m["author"] for m in run.ctx["human_feedback_meta"]] == ["ann", "bob"]
    assert path(db, tid)[1] == ("wait", "use", "feedback.reply")


async def test_loop_exhaustion_routes_exhausted(db: Database) -> None:
    factory = define_factory(
        id="lp",
        start="l",
        guards={"never": lambda ctx: False},
        states={
            "l": loop(
                body="b",
                max_iterations=2,
                until="never",
                on={"continue": "b", "done": "end", "exhausted": "stuck"},
            ),
            "b": action(fine, on={"done": "l", "failed": "stuck"}),
            "end": done(),
            "stuck": blocked(),
        },
    )
    engine = make_engine(db, factory)
    tid = new_task(db, "lp")
    await engine.tick(tid)
    assert task(db, tid).status == "blocked"
    assert [r for _, _, r in path(db, tid)] == [
        "loop.continue",
        "action.done",
        "loop.continue",
        "action.done",
        "loop.exhausted",
    ]


async def test_orchestrate_agent_routes_on_data_event(db: Database) -> None:
    factory = define_factory(
        id="oa",
        start="pick",
        states={
            "pick": orchestrate(
                agent=lambda inp: {"status": "done", "data": {"event": "urgent"}},
                on={"urgent": "end", "done": "bad"},
            ),
            "end": done(),
            "bad": failed(),
        },
    )
    engine = make_engine(db, factory)
    tid = new_task(db, "oa")
    await engine.tick(tid)
    assert path(db, tid) == [("pick", "end", "orchestrate.agent")]


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (["not", "a", "dict"], "state 'work': agent result must be a mapping"),
        ({"status": "finished"}, "state 'work': agent result field 'status' is 'finished'"),
        ({"status": "done", "data": "x"}, "state 'work': agent result field 'data'"),
        ({"status": "done", "message": 1}, "state 'work': agent result field 'message'"),
    ],
)
async def test_bad_agent_results_fail_the_attempt_naming_state_and_field(
    db: Database, result: object, expected: str
) -> None:
    factory = define_factory(
        id="bad",
        start="work",
        states={
            "work": action(lambda inp: result, on={"done": "end", "failed": "x"}),
            "end": done(),
            "x": failed(),
        },
    )
    engine = make_engine(db, factory)
    tid = new_task(db, "bad")
    await engine.tick(tid)
    assert task(db, tid).status == "failed"
    assert expected in (task(db, tid).last_error or "")


async def test_orchestrate_event_with_no_route_fails_the_run(db: Database) -> None:
    factory = define_factory(
        id="nr",
        start="pick",
        states={
            "pick": orchestrate(select=lambda inp: "sideways", on={"up": "end"}),
            "end": done(),
        },
    )
    engine = make_engine(db, factory)
    tid = new_task(db, "nr")
    await engine.tick(tid)
    assert task(db, tid).status == "failed"
    assert "select returned event 'sideways' with no route" in (task(db, tid).last_error or "")


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_agent_timeouts_are_failed_attempts(db: Database, kind: str) -> None:
    async def slow_async(inp: AgentInput) -> dict[str, Any]:
        await asyncio.sleep(5)
        return {"status": "done"}

    def slow_sync(inp: AgentInput) -> dict[str, Any]:
        time.sleep(1)
        return {"status": "done"}

    agent = slow_async if kind == "async" else slow_sync
    factory = define_factory(
        id="to",
        start="work",
        states={
            "work": action(agent, on={"done": "end", "failed": "x"}, timeout=0.2),
            "end": done(),
            "x": failed(),
        },
    )
    engine = make_engine(db, factory)
    tid = new_task(db, "to")
    started = time.monotonic()
    await engine.tick(tid)
    assert time.monotonic() - started < 1.0 or kind == "sync"
    assert task(db, tid).last_error == "state 'work': agent timed out after 0.2 s"
    assert task(db, tid).status == "failed"


@pytest.mark.parametrize(
    ("setting", "comments"),
    [
        (SummaryComment.all, ["Done: reached 'end' after 1 transitions."]),
        (SummaryComment.problems, []),
        (SummaryComment.off, []),
    ],
)
async def test_the_summary_comment_setting_decides_a_done_cards_comment(
    db: Database, setting: SummaryComment, comments: list[str]
) -> None:
    factory = define_factory(
        id="fx",
        start="a",
        states={
            "a": action(lambda inp: {"status": "done"}, on={"done": "end", "failed": "x"}),
            "end": done(),
            "x": failed(),
        },
    )
    engine = make_engine(db, factory, summary_comment=setting)
    tid = new_task(db, "fx")
    await engine.tick(tid)
    assert task(db, tid).status == "done"
    with db.connect() as conn:
        texts = conn.execute(
            select(outbox.c.payload).where(outbox.c.task_id == tid, outbox.c.kind == "comment")
        ).scalars()
        assert [p["text"] for p in texts] == comments


async def test_unknown_factory_blocks_the_card_naming_known_factories(db: Database) -> None:
    factory = define_factory(id="known", start="e", states={"e": done()})
    engine = make_engine(db, factory)
    tid = new_task(db, "ghost")
    report = await engine.tick(tid)
    assert report.outcome == "finished"
    final = task(db, tid)
    assert final.status == "blocked"
    assert final.last_error == "unknown factory 'ghost'; known factories: known"
    assert outbox_kinds(db, tid) == ["state", "comment"]


async def test_cancel_stops_the_run_at_the_next_transition(db: Database) -> None:
    def cancel_self(inp: AgentInput) -> dict[str, Any]:
        with db.begin() as conn:  # a person moves the card to Cancelled mid-run
            repo.request_cancel(conn, inp.task_id, FakeClock().now())
        return {"status": "done"}

    factory = define_factory(
        id="cx",
        start="a",
        states={
            "a": action(cancel_self, on={"done": "b", "failed": "x"}),
            "b": action(fine, on={"done": "end", "failed": "x"}),
            "end": done(),
            "x": failed(),
        },
    )
    engine = make_engine(db, factory)
    tid = new_task(db, "cx")
    await engine.tick(tid)
    assert task(db, tid).status == "cancelled"
    assert path(db, tid) == [("a", "b", "action.done"), ("b", "b", "run.cancelled")]


async def test_each_transition_commits_its_effects_and_a_second_active_run_is_refused(
    db: Database,
) -> None:
    factory = define_factory(
        id="fx",
        start="a",
        states={
            "a": action(
                lambda inp: {"status": "done", "page": "out"}, on={"done": "end", "failed": "x"}
            ),
            "end": done(),
            "x": failed(),
        },
    )
    engine = make_engine(db, factory)
    tid = new_task(db, "fx")
    await engine.tick(tid)
    # run start: state, log, the factory's diagram; a->end: state, log, page (a Done card
    # gets no summary comment)
    assert outbox_kinds(db, tid) == ["state", "log", "graph", "state", "log", "page"]
    with db.connect() as conn:
        keys = conn.execute(select(func.count(func.distinct(outbox.c.effect_key)))).scalar_one()
        assert keys == 6
        assert conn.execute(select(func.count()).select_from(transitions)).scalar_one() == 1
    now = FakeClock().now()
    row = dict(
        task_id=tid,
        factory_id="fx",
        status="running",
        state_id="a",
        ctx={},
        attempt=0,
        iterations={},
        transitions=0,
        started_at=now,
        updated_at=now,
    )
    with db.begin() as conn:
        conn.execute(insert(runs).values(id=repo.new_id(), active=True, **row))
    with pytest.raises(IntegrityError), db.begin() as conn:
        conn.execute(insert(runs).values(id=repo.new_id(), active=True, **row))


async def test_a_finished_task_is_left_alone(db: Database) -> None:
    factory = define_factory(id="one", start="e", states={"e": done()})
    engine = make_engine(db, factory)
    tid = new_task(db, "one")
    assert (await engine.tick(tid)).outcome == "finished"
    assert (await engine.tick(tid)).outcome == "idle"
    assert len(path(db, tid)) == 1


async def test_ticking_a_task_that_does_not_exist_says_so(db: Database) -> None:
    engine = make_engine(db, define_factory(id="one", start="e", states={"e": done()}))
    with pytest.raises(repo.NotFound, match="no task with id 'nope'"):
        await engine.tick("nope")
