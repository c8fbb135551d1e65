"""Leases with fencing epochs, on SQLite and PostgreSQL, with real concurrency.

What a user relies on: one card is worked by one worker at a time; a worker
whose lease was taken over writes nothing more; a crashed worker's card is
taken over once its lease expires and resumes where it stopped; a long agent
keeps its card through heartbeats.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from factory import AgentInput, action, define_factory, done, failed
from factory.clock import FakeClock, SystemClock
from factory.dsl import Factory
from factory.engine import Engine, EngineConfig, TickReport
from factory.results import AgentResult
from factory.store import repo
from factory.store.db import Database
from factory.store.db import make_engine as open_engine
from factory.store.leases import LeaseHeld, LeaseLost, claim, guard, holder, release, renew
from factory.store.steps import StepWriter
from factory.store.tables import outbox, runs, tasks, transitions
from factory.transitions import Succeeded, decide
from tests.engine.helpers import make_engine, new_task, path, run_of, task

REPO = Path(__file__).resolve().parents[2]
STEPS = ("s1", "s2", "s3", "s4", "s5", "s6")
EXPECTED_PATH = [(a, b) for a, b in zip(STEPS, (*STEPS[1:], "done"), strict=True)]
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def linear_factory(agent_seconds: float | tuple[float, float] = 0.0) -> Factory:
    """s1 -> s2 -> ... -> s6 -> done; each agent sleeps (a fixed or random) while."""

    def work(inp: AgentInput) -> dict[str, object]:
        hang_at = os.environ.get("NF_TEST_HANG_AT")
        if hang_at == inp.state_id:  # the crash test's doomed worker stops here for good
            time.sleep(120)
        seconds = (
            random.uniform(*agent_seconds) if isinstance(agent_seconds, tuple) else agent_seconds
        )
        if seconds:
            time.sleep(seconds)
        return {"status": "done", "data": {inp.state_id: inp.tick_id}, "message": inp.state_id}

    states: dict[str, Any] = {
        sid: action(work, on={"done": nxt, "failed": "failed"})
        for sid, nxt in zip(STEPS, (*STEPS[1:], "done"), strict=True)
    }
    return define_factory(
        id="linear", start="s1", states={**states, "done": done(), "failed": failed()}
    )


class SkewedClock(SystemClock):
    """The real clock, shifted: a worker whose clock runs ahead sees other leases expired.

    That is how a takeover happens in production (a stalled worker, clock drift);
    here it makes takeovers happen on demand while the workers really run at once.
    """

    def __init__(self, offset_seconds: float) -> None:
        self.offset = timedelta(seconds=offset_seconds)

    def now(self) -> datetime:
        return super().now() + self.offset


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Everything a transition writes: runs, transitions, outbox, and the task's own row."""
    with db.connect() as conn:
        return {
            "runs": [tuple(r) for r in conn.execute(select(runs).order_by(runs.c.id))],
            "transitions": [
                tuple(r) for r in conn.execute(select(transitions).order_by(transitions.c.id))
            ],
            "outbox": [tuple(r) for r in conn.execute(select(outbox).order_by(outbox.c.id))],
            "tasks": [
                tuple(r)
                for r in conn.execute(
                    select(tasks.c.id, tasks.c.status, tasks.c.step, tasks.c.active_run_id)
                )
            ],
        }


def history_rows(db: Database, task_id: str) -> list[dict[str, Any]]:
    with db.connect() as conn:
        return repo.history(conn, task_id)


def assert_sound_history(db: Database, task_id: str) -> list[dict[str, Any]]:
    """The checks a person would make after workers fought over a card."""
    with db.connect() as conn:
        run_rows = conn.execute(select(runs).where(runs.c.task_id == task_id)).mappings().all()
        effect_rows = (
            conn.execute(select(outbox).where(outbox.c.task_id == task_id)).mappings().all()
        )
    assert len(run_rows) == 1, "the card was started more than once"
    run = run_rows[0]
    assert (run["status"], run["state_id"], run["active"]) == ("done", "done", False)
    rows = history_rows(db, task_id)
    keys = [(r["run_id"], r["seq"]) for r in rows]
    assert len(keys) == len(set(keys)), f"a (run, seq) transition exists twice: {keys}"
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1)), "seq is not contiguous"
    # no state ran twice and none was skipped: the exact path of the factory, once
    assert [(r["from_state"], r["to_state"]) for r in rows] == EXPECTED_PATH
    assert run["transitions"] == len(rows)
    # one epoch belongs to one worker, epochs only grow along the history, and an epoch
    # once left never comes back (no interleaving of two workers within one epoch)
    owner_of: dict[int, str] = {}
    for r in rows:
        assert owner_of.setdefault(r["epoch"], r["worker_id"]) == r["worker_id"], rows
    epochs = [r["epoch"] for r in rows]
    assert epochs == sorted(epochs), f"epochs go backwards: {epochs}"
    # each committed transition queued its effects exactly once
    state_effects = [e for e in effect_rows if e["kind"] == "state"]
    assert len(state_effects) == len(rows) + 1  # + the "run started" one
    assert len({e["effect_key"] for e in effect_rows}) == len(effect_rows)
    # and nothing else: a Done card gets no summary comment (NFACTORY_SUMMARY_COMMENT)
    assert [e for e in effect_rows if e["kind"] == "comment"] == []
    return rows


# -- claim, renew, guard, release ---------------------------------------------------------


def test_claim_is_exclusive_until_expiry_then_fences_the_old_holder(db: Database) -> None:
    tid = new_task(db, "linear")
    a = claim(db, tid, "A", T0, 30)
    assert a is not None and (a.owner, a.epoch, a.expires_at) == ("A", 1, T0 + timedelta(0, 30))

    assert claim(db, tid, "B", T0 + timedelta(seconds=10), 30) is None
    assert holder(db, tid) == ("A", T0 + timedelta(seconds=30))

    # a renewal pushes the expiry, so B still cannot take it after the first 30 s
    a = renew(db, a, T0 + timedelta(seconds=20), 30)
    assert claim(db, tid, "B", T0 + timedelta(seconds=45), 30) is None

    b = claim(db, tid, "B", T0 + timedelta(seconds=51), 30)
    assert b is not None and (b.owner, b.epoch) == ("B", 2)

    with pytest.raises(LeaseLost, match=r"epoch 1, owner A"):
        renew(db, a, T0 + timedelta(seconds=52), 30)
    with pytest.raises(LeaseLost), db.begin() as conn:
        guard(conn, a, T0 + timedelta(seconds=52), 30)
    assert release(db, a) is False
    assert holder(db, tid) == ("B", T0 + timedelta(seconds=81)), "A's calls moved B's lease"

    assert release(db, b) is True
    assert holder(db, tid) == (None, None)
    c = claim(db, tid, "A", T0 + timedelta(seconds=53), 30)
    assert c is not None and c.epoch == 3


def test_reclaim_by_the_same_owner_bumps_the_epoch_and_fences_the_older_lease(
    db: Database,
) -> None:
    """Two ticks of one worker id (a restarted worker, two jobs) must not both write."""
    tid = new_task(db, "linear")
    first = claim(db, tid, "A", T0, 30)
    second = claim(db, tid, "A", T0 + timedelta(seconds=1), 30)
    assert first is not None and second is not None
    assert second.epoch == first.epoch + 1
    with pytest.raises(LeaseLost):
        renew(db, first, T0 + timedelta(seconds=2), 30)
    renew(db, second, T0 + timedelta(seconds=2), 30)


def test_a_fenced_worker_writes_nothing(db: Database) -> None:
    factory = linear_factory()
    tid = new_task(db, "linear")
    now = T0
    a = claim(db, tid, "A", now, 30)
    assert a is not None
    with db.begin() as conn:
        run = repo.start_run(
            conn, a, repo.get_task(conn, tid), factory.start, factory.context, now, 30
        )
    # A stalls; its lease expires; B takes over
    later = now + timedelta(seconds=31)
    b = claim(db, tid, "B", later, 30)
    assert b is not None and b.epoch == a.epoch + 1

    # A's agent finished meanwhile: a real step, committed the way the engine does it
    result = AgentResult(status="done", data={"by": "A"}, message="A's work")
    step = decide(factory, run.view(), Succeeded(result))
    assert (step.from_state, step.to_state) == ("s1", "s2")
    before = snapshot(db)
    writer = StepWriter(db)
    with pytest.raises(LeaseLost):
        writer.commit(
            writer.plan(a, repo.LOCAL_BOARD, run, step, [], started_at=now, now=later, ttl=30)
        )
    assert (
        writer.commit_here(
            writer.plan(a, repo.LOCAL_BOARD, run, step, [], started_at=now, now=later, ttl=30)
        )
        is None
    ), "the event loop's fast path wrote under a lost lease"
    with pytest.raises(LeaseLost), db.begin() as conn:
        repo.start_run(conn, a, repo.get_task(conn, tid), "s1", {}, later, 30)
    with pytest.raises(LeaseLost), db.begin() as conn:
        repo.block_task(conn, a, repo.get_task(conn, tid), "A says no", later, 30)
    assert snapshot(db) == before, "a fenced-off worker changed the database"

    # the same step under B's live lease is committed: the refusal was the fence, not the step
    writer.commit(
        writer.plan(b, repo.LOCAL_BOARD, run, step, [], started_at=later, now=later, ttl=30)
    )
    rows = history_rows(db, tid)
    assert [(r["seq"], r["worker_id"], r["epoch"]) for r in rows] == [(1, "B", b.epoch)]


# -- real concurrency --------------------------------------------------------------------

RACE_ROUNDS = 10
RACE_TTL = 1.0
# worker clocks 0, 1.5 and 3 s apart with a 1 s lease: an ahead clock takes over a lease
# the moment it asks, so a takeover happens whenever a worker ahead claims mid-tick
RACE_OFFSETS = (0.0, 1.5, 3.0)


async def work_until_finished(
    engine: Engine, task_id: str, seconds: float = 20
) -> list[TickReport]:
    """What a worker does: tick the card until it is finished, retrying when it is busy."""
    reports: list[TickReport] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        report = await engine.tick(task_id)
        reports.append(report)
        if report.outcome in ("finished", "idle"):
            return reports
        if report.outcome == "busy":
            await asyncio.sleep(0.002)
    raise AssertionError(f"{engine.config.worker_id} did not see {task_id} finish: {reports}")


def race_engine(db: Database, factory: Factory, worker: str, offset: float) -> Engine:
    config = EngineConfig(worker_id=worker, lease_seconds=RACE_TTL, max_transitions_per_tick=2)
    return Engine(db, {factory.id: factory}, config, SkewedClock(offset))


def race_in_threads(
    pools: list[Database], factory: Factory, offsets: list[float], task_id: str
) -> list[list[tuple[str, int]]]:
    """Start the workers together (a barrier), each in its own thread and event loop."""
    engines = [
        race_engine(pool, factory, f"w{i}", off)
        for i, (pool, off) in enumerate(zip(pools, offsets, strict=True))
    ]
    barrier = threading.Barrier(len(engines))
    reports: list[list[tuple[str, int]]] = [[] for _ in engines]
    errors: list[BaseException] = []

    def worker(i: int, engine: Engine) -> None:
        try:
            barrier.wait()
            done_reports = asyncio.run(work_until_finished(engine, task_id))
            reports[i] = [(r.outcome, r.transitions) for r in done_reports]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i, e)) for i, e in enumerate(engines)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads), "a worker is stuck"
    return reports


def tally(reports: list[list[tuple[str, int]]]) -> tuple[int, int, int]:
    """(transitions the workers say they committed, finishing ticks, lease_lost ticks)."""
    flat = [r for worker in reports for r in worker]
    return (
        sum(n for _, n in flat),
        sum(1 for o, _ in flat if o == "finished"),
        sum(1 for o, _ in flat if o == "lease_lost"),
    )


def test_threads_racing_on_one_card_never_both_commit(db: Database, db_url: str) -> None:
    factory = linear_factory((0.002, 0.012))
    rng = random.Random(20261123)
    # one database connection pool per worker, as separate workers would have
    pools = [open_engine(db_url) for _ in RACE_OFFSETS]
    lost_total = 0
    committers: set[str] = set()
    try:
        for _ in range(RACE_ROUNDS):
            tid = new_task(db, "linear")
            offsets = list(RACE_OFFSETS)
            rng.shuffle(offsets)
            reports = race_in_threads(pools, factory, offsets, tid)
            rows = assert_sound_history(db, tid)
            committed, finishing, lost = tally(reports)
            assert committed == len(rows), "a worker believes it committed a transition it did not"
            assert finishing == 1, f"the run was finished by {finishing} ticks: {reports}"
            lost_total += lost
            committers |= {r["worker_id"] for r in rows}
    finally:
        for pool in pools:
            pool.dispose()
    # the race was real: workers were fenced off mid-tick, and more than one worker won
    assert lost_total > 0 and len(committers) > 1, (lost_total, committers)


def _race_process() -> None:
    """A worker process: ticks each card in turn until it is finished (see the test below)."""
    url, worker, task_ids, offsets = sys.argv[1], sys.argv[2], *map(json.loads, sys.argv[3:5])
    db = open_engine(url)
    factory = linear_factory((0.002, 0.012))
    print("ready", flush=True)
    assert sys.stdin.readline().strip() == "go"
    out = []
    for task_id, offset in zip(task_ids, offsets, strict=True):
        reports = asyncio.run(
            work_until_finished(race_engine(db, factory, worker, offset), task_id)
        )
        out.append([(r.outcome, r.transitions) for r in reports])
    print(json.dumps(out), flush=True)


def spawn(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    code = f"from tests.engine.test_leases import {args[0]}; {args[0]}()"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args[1:]],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.postgres
def test_processes_racing_on_cards_never_both_commit(pg_url: str) -> None:
    db = open_engine(pg_url)
    try:
        task_ids = [new_task(db, "linear") for _ in range(RACE_ROUNDS)]
        rng = random.Random(7)
        per_round = [rng.sample(RACE_OFFSETS, len(RACE_OFFSETS)) for _ in task_ids]
        procs = [
            spawn(
                [
                    "_race_process",
                    pg_url,
                    f"p{i}",
                    json.dumps(task_ids),
                    json.dumps([offs[i] for offs in per_round]),
                ]
            )
            for i in range(len(RACE_OFFSETS))
        ]
        try:
            for p in procs:
                assert p.stdout is not None and p.stdout.readline().strip() == "ready", (
                    p.stderr.read() if p.stderr else ""
                )
            for p in procs:
                assert p.stdin is not None
                p.stdin.write("go\n")
                p.stdin.flush()
            outputs = [p.communicate(timeout=60) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
        per_worker = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
        lost_total = 0
        committers: set[str] = set()
        for n, tid in enumerate(task_ids):
            rows = assert_sound_history(db, tid)
            committed, finishing, lost = tally([w[n] for w in per_worker])
            assert committed == len(rows)
            assert finishing == 1
            lost_total += lost
            committers |= {r["worker_id"] for r in rows}
        assert lost_total > 0 and len(committers) > 1, (lost_total, committers)
    finally:
        db.dispose()


# -- takeover after a crash ---------------------------------------------------------------


async def test_takeover_after_expiry_resumes_where_the_dead_worker_stopped(db: Database) -> None:
    factory = linear_factory()
    clock = FakeClock(T0)
    tid = new_task(db, "linear")
    a = make_engine(
        db, factory, worker="A", clock=clock, lease_seconds=30, max_transitions_per_tick=2
    )
    b = make_engine(db, factory, worker="B", clock=clock, lease_seconds=30)

    first = await a.tick(tid)
    assert (first.outcome, first.transitions) == ("yielded", 2)
    # A comes back for the next tick, claims, and dies before writing anything
    dead = claim(db, tid, "A", clock.now(), 30)
    assert dead is not None

    assert (await b.tick(tid)).outcome == "busy"
    clock.advance(29)
    assert (await b.tick(tid)).outcome == "busy"
    clock.advance(2)  # A's lease is now over
    second = await b.tick(tid)
    assert (second.outcome, second.status, second.transitions) == ("finished", "done", 4)

    rows = assert_sound_history(db, tid)
    assert [(r["worker_id"], r["epoch"]) for r in rows] == [("A", 1)] * 2 + [("B", 3)] * 4
    assert [r["from_state"] for r in rows[2:]] == ["s3", "s4", "s5", "s6"]
    # A's agents' data survives the takeover: B resumed A's context, not a fresh one
    ctx = run_of(db, tid).ctx
    assert set(ctx) == set(STEPS)
    assert task(db, tid).status == "done"
    assert holder(db, tid) == (None, None)


def _crash_worker() -> None:
    """The doomed worker: runs the card with a heartbeat until it is killed mid-agent."""
    url, task_id = sys.argv[1], sys.argv[2]
    db = open_engine(url)
    config = EngineConfig(worker_id="doomed", lease_seconds=2.0)
    engine = Engine(db, {"linear": linear_factory()}, config, SystemClock())
    asyncio.run(engine.tick(task_id))


def test_a_killed_worker_card_is_taken_over_and_finished(db: Database, db_url: str) -> None:
    """A real crash: the worker process is SIGKILLed inside an agent (lease held, heartbeating)."""
    tid = new_task(db, "linear")
    proc = spawn(["_crash_worker", db_url, tid], env={"NF_TEST_HANG_AT": "s3"})
    try:
        deadline = time.monotonic() + 20
        while len(history_rows(db, tid)) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the worker never reached s3"
            time.sleep(0.02)
        time.sleep(0.1)  # inside s3's agent now
        owner, _ = holder(db, tid)
        assert owner == "doomed"
    finally:
        proc.kill()
        proc.communicate()
    # a worker whose clock says the 2 s lease is over takes it at once
    survivor = Engine(
        db,
        {"linear": linear_factory()},
        EngineConfig(worker_id="survivor", lease_seconds=2),
        SkewedClock(4.0),
    )
    report = asyncio.run(survivor.tick(tid))
    assert (report.outcome, report.status, report.transitions) == ("finished", "done", 4)
    rows = assert_sound_history(db, tid)
    assert [r["worker_id"] for r in rows] == ["doomed"] * 2 + ["survivor"] * 4


# -- strict and best-effort --------------------------------------------------------------


async def test_strict_tick_raises_naming_the_holder_best_effort_skips(db: Database) -> None:
    factory = linear_factory()
    clock = FakeClock(T0)
    tid = new_task(db, "linear")
    assert claim(db, tid, "worker-elsewhere", clock.now(), 30) is not None
    engine = make_engine(db, factory, worker="me", clock=clock, lease_seconds=30)
    before = snapshot(db)

    with pytest.raises(LeaseHeld, match="worker-elsewhere") as raised:
        await engine.tick(tid, strict=True)
    assert raised.value.owner == "worker-elsewhere"
    assert raised.value.expires_at == T0 + timedelta(seconds=30)

    report = await engine.tick(tid)
    assert report.outcome == "busy" and "worker-elsewhere" in report.detail
    assert report.transitions == 0
    assert snapshot(db) == before
    assert holder(db, tid)[0] == "worker-elsewhere", "a refused tick released someone's lease"


# -- heartbeats ---------------------------------------------------------------------------


def slow_factory(seconds: float, during: Any = None) -> Factory:
    def quick(inp: AgentInput) -> dict[str, object]:
        return {"status": "done"}

    def slow(inp: AgentInput) -> dict[str, object]:
        if during is not None:
            during(inp)
        time.sleep(seconds)
        return {"status": "done", "message": "slow work done"}

    return define_factory(
        id="slow",
        start="prepare",
        states={
            "prepare": action(quick, on={"done": "slow", "failed": "failed"}),
            "slow": action(slow, on={"done": "finish", "failed": "failed"}),
            "finish": action(quick, on={"done": "done", "failed": "failed"}),
            "done": done(),
            "failed": failed(),
        },
    )


@pytest.mark.slow
async def test_a_long_agent_keeps_its_lease_through_heartbeats(db: Database) -> None:
    factory = slow_factory(5.0)
    tid = new_task(db, "slow")
    owner = Engine(db, {"slow": factory}, EngineConfig("owner", lease_seconds=2), SystemClock())
    rival = Engine(db, {"slow": factory}, EngineConfig("rival", lease_seconds=2), SystemClock())

    async def rival_keeps_trying(ticking: asyncio.Task[TickReport]) -> list[str]:
        outcomes = []
        while not ticking.done():
            outcomes.append((await rival.tick(tid)).outcome)
            await asyncio.sleep(0.2)
        return outcomes

    started = time.monotonic()
    ticking = asyncio.create_task(owner.tick(tid))
    while holder(db, tid)[0] != "owner":  # the owner claims first, then the rival tries
        assert not ticking.done(), ticking.result()
        await asyncio.sleep(0.01)
    outcomes = await rival_keeps_trying(ticking)
    report = await ticking
    assert time.monotonic() - started > 4.5  # the agent outlived two leases of 2 s
    assert report.outcome == "finished" and report.transitions == 3
    # the rival's last try may land after the owner released the finished card, before
    # the owner's tick returned: it finds nothing to do (idle), which is right
    assert len(outcomes) >= 15 and set(outcomes[:-1]) == {"busy"}, outcomes
    assert outcomes[-1] in ("busy", "idle"), outcomes
    assert {(r["worker_id"], r["epoch"]) for r in history_rows(db, tid)} == {("owner", 1)}
    assert path(db, tid) == [
        ("prepare", "slow", "action.done"),
        ("slow", "finish", "action.done"),
        ("finish", "done", "action.done"),
    ]


def force_takeover(db: Database, task_id: str) -> None:
    """What another worker's claim after expiry does to the row: new owner, next epoch."""
    with db.begin() as conn:
        conn.execute(
            update(tasks)
            .where(tasks.c.id == task_id)
            .values(
                lease_owner="thief",
                lease_epoch=tasks.c.lease_epoch + 1,
                lease_expires_at=datetime.now(UTC) + timedelta(hours=1),
            )
        )


@pytest.fixture
def taken_over_mid_agent(db: Database) -> Iterator[dict[str, Any]]:
    seen: dict[str, Any] = {}

    def steal(inp: AgentInput) -> None:
        force_takeover(db, inp.task_id)
        seen["after_takeover"] = snapshot(db)

    seen["during"] = steal
    yield seen


@pytest.mark.parametrize("agent_seconds", [0.0, 0.8], ids=["quick-agent", "agent-outlives-beats"])
async def test_a_taken_over_tick_stops_with_lease_lost_and_writes_nothing_more(
    db: Database, taken_over_mid_agent: dict[str, Any], agent_seconds: float
) -> None:
    """Another worker takes the card while our agent runs.

    A quick agent is stopped by the fence on the commit; a slow one (0.8 s, heartbeats
    every 0.2 s) has its heartbeats refused first. Either way: lease_lost, nothing written.
    """
    factory = slow_factory(agent_seconds, during=taken_over_mid_agent["during"])
    tid = new_task(db, "slow")
    engine = Engine(db, {"slow": factory}, EngineConfig("owner", lease_seconds=0.6), SystemClock())

    report = await engine.tick(tid)

    assert report.outcome == "lease_lost", report
    assert report.transitions == 1  # "prepare" was committed before the takeover
    assert "was lost to another worker" in report.detail
    assert snapshot(db) == taken_over_mid_agent["after_takeover"]
    assert path(db, tid) == [("prepare", "slow", "action.done")]
    assert holder(db, tid)[0] == "thief", "the fenced worker released the thief's lease"
