"""Cost of one no-op transition: claim, run a trivial state, commit, per backend.

Run: `make bench` (or `.venv/bin/python bench/transition_cost.py [--pg URL]`).
Prints a table; numbers are wall time on this machine, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from factory import action, define_factory, done, failed, orchestrate
from factory.engine import Engine, EngineConfig
from factory.store import repo
from factory.store.db import Database, make_engine, migrate

STEPS = 100  # transitions per task, all in one tick


def noop_factory():  # type: ignore[no-untyped-def]
    states = {
        f"s{i}": orchestrate(select=lambda inp: "next", on={"next": f"s{i + 1}"})
        for i in range(STEPS - 1)
    }
    states[f"s{STEPS - 1}"] = action(
        lambda inp: {"status": "done"}, on={"done": "end", "failed": "bad"}
    )
    return define_factory(id="noop", start="s0", states=states | {"end": done(), "bad": failed()})


async def measure(db: Database, tasks: int) -> tuple[float, float, int]:
    factory = noop_factory()
    engine = Engine(
        db, {"noop": factory}, EngineConfig(worker_id="bench", max_transitions_per_tick=200)
    )
    per_transition: list[float] = []
    total = 0
    for _ in range(tasks):
        with db.begin() as conn:
            tid = repo.create_task(conn, factory_id="noop", title="bench", now=engine.clock.now())
        started = time.perf_counter()
        report = await engine.tick(tid)
        elapsed = time.perf_counter() - started
        assert report.outcome == "finished", report
        total += report.transitions
        per_transition.append(elapsed / report.transitions)
    return statistics.median(per_transition), max(per_transition), total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--pg", help="also measure a PostgreSQL URL (a scratch database!)")
    args = parser.parse_args()
    targets: list[tuple[str, str]] = []
    tmp = tempfile.TemporaryDirectory()
    targets.append(("SQLite file (WAL)", f"sqlite:///{Path(tmp.name) / 'bench.db'}"))
    if args.pg:
        targets.append(("PostgreSQL", args.pg))
    print(f"{'backend':<20} {'transitions':>11} {'median ms/transition':>21} {'worst ms':>9}")
    for name, url in targets:
        db = make_engine(url)
        migrate(db)
        median, worst, total = asyncio.run(measure(db, args.tasks))
        print(f"{name:<20} {total:>11} {median * 1000:>21.2f} {worst * 1000:>9.2f}")
        db.dispose()
    tmp.cleanup()


if __name__ == "__main__":
    main()
