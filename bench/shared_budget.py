"""Several workers, one Notion budget: requests/s together and 429s, before and after.

Run: `.venv/bin/python bench/shared_budget.py [--window 30] [--cards 150] [--pg ADMIN_URL]`.

Each row runs real `nfactory start` processes on a PostgreSQL database made for it
(and dropped after) against one in-process emulator that limits the integration
as Notion does (3 requests/s, burst 10). "Busy" workers share a board holding a
backlog: cards of a factory with many short steps, each step a page write, so
there is always more to send than the limit allows. "Idle" workers work a second,
empty board of the same integration: they only poll it (every
NFACTORY_POLL_SECONDS), as a worker with nothing to do does.

After a warm-up the emulator's counts are read over a window: requests answered
(429s not counted) per second, their share of 3/s, and the 429s it sent. Rows:

- before: every process at NOTION_RATE_LIMIT=3 (the forgotten division), and at
  3/N = 0.75 as docs/operations.md used to ask (NOTION_RATE_SHARED=off);
- after: NOTION_RATE_LIMIT=3 everywhere, the budget shared through the database.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, for the harness
from integrations.notion_emulator.server import EmulatorServer
from integrations.notion_emulator.traffic import EmulatorConfig
from tests.worker.harness import Db, Stage, Worker, wait_for

TOKEN = "secret_bench_shared_budget"
LIMIT = 3.0
STEPS = 12

STEPS_FACTORY = f"""
from factory import action, define_factory, done, failed


def step(inp):
    return {{"status": "done", "message": "step of " + inp.title + " finished"}}


STATES = {{
    f"s{{i}}": action(step, on={{"done": f"s{{i + 1}}" if i < {STEPS} else "end", "failed": "bad"}})
    for i in range(1, {STEPS + 1})
}}
STATES.update({{"end": done(), "bad": failed()}})
FACTORY = define_factory(id="steps", start="s1", states=STATES)
"""


@dataclass(frozen=True)
class Scenario:
    label: str
    busy: int
    idle: int
    rate: float  # NOTION_RATE_LIMIT of each process
    shared: str  # NOTION_RATE_SHARED


SCENARIOS = [
    Scenario("before: per process, 3/s each", 4, 0, 3.0, "off"),
    Scenario("before: per process, 3/N each", 4, 0, LIMIT / 4, "off"),
    Scenario("before: per process, 3/N each", 1, 3, LIMIT / 4, "off"),
    Scenario("shared budget", 1, 0, 3.0, "on"),
    Scenario("shared budget", 4, 0, 3.0, "on"),
    Scenario("shared budget", 1, 3, 3.0, "on"),
]


@dataclass
class Result:
    scenario: Scenario
    per_second: float
    limited: int
    limited_all: int
    backlog_left: int
    died: int


def answered(control: httpx.Client) -> tuple[int, int]:
    stats = control.get("/_emulator/stats").json()
    return stats["total"] - stats["rate_limited"], stats["rate_limited"]


def control_stats(emu: EmulatorServer) -> dict[str, object]:
    stats: dict[str, object] = httpx.get(f"{emu.base_url}/_emulator/stats").json()
    return stats


def run(scenario: Scenario, opts: argparse.Namespace, tmp: Path) -> Result:
    name = f"nfactory_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(opts.pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = opts.pg.rsplit("/", 1)[0] + f"/{name}"
    flows = tmp / "flows"
    flows.mkdir()
    (flows / "steps.py").write_text(STEPS_FACTORY)
    workers: list[Worker] = []
    try:
        with EmulatorServer(TOKEN, config=EmulatorConfig(rate_limit=LIMIT, burst=10)) as emu:
            db = Db(url)
            env = {
                "NOTION_RATE_LIMIT": f"{scenario.rate:g}",
                "NOTION_BURST": "3",
                "NOTION_RATE_SHARED": scenario.shared,
                "NFACTORY_POLL_SECONDS": f"{opts.poll:g}",
            }
            busy = Stage.create(emu, tmp, url, workflows=flows, **env)
            idle = Stage.create(emu, tmp, url, workflows=flows, **env)
            pages = [busy.add_card(f"Card {i}", "steps") for i in range(opts.cards)]
            for i in range(scenario.busy):
                workers.append(Worker(busy, f"busy-{i}"))
            for i in range(scenario.idle):
                workers.append(Worker(idle, f"idle-{i}", NOTION_BOARD_ID=idle.board_id))
            wait_for(
                # a worker refused by 429s on every retry while starting exits: counted
                lambda: all(" started: board " in w.logs() or not w.alive() for w in workers),
                120,
                "every worker to start",
                explain=lambda: "\n".join(w.logs()[-2000:] for w in workers),
            )
            time.sleep(opts.warmup)
            with httpx.Client(base_url=emu.base_url, timeout=30) as control:
                start_ok, start_limited = answered(control)
                at = time.monotonic()
                time.sleep(opts.window)
                end_ok, end_limited = answered(control)
                elapsed = time.monotonic() - at
            columns = [busy.column(p) for p in pages]
            left = sum(1 for c in columns if c not in ("Done", "Failed"))
            if opts.verbose:
                print({c: columns.count(c) for c in set(columns)}, control_stats(emu))
                print(workers[0].logs()[-2000:])
            died = sum(1 for w in workers if not w.alive())
            busy.close()
            idle.close()
            db.dispose()
            return Result(
                scenario,
                (end_ok - start_ok) / elapsed,
                end_limited - start_limited,
                end_limited,
                left,
                died,
            )
    finally:
        for worker in workers:
            worker.kill()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=30.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds before measuring")
    parser.add_argument("--cards", type=int, default=150, help="cards in the busy board's backlog")
    parser.add_argument("--poll", type=float, default=5.0, help="NFACTORY_POLL_SECONDS")
    parser.add_argument(
        "--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres", help="admin URL"
    )
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--only", type=int, nargs="*", help="run these rows (0-based) only")
    opts = parser.parse_args()
    rows = [SCENARIOS[i] for i in opts.only] if opts.only else SCENARIOS
    results = []
    with tempfile.TemporaryDirectory(prefix="nfactory-bench-") as tmp:
        for n, scenario in enumerate(rows):
            folder = Path(tmp) / str(n)
            folder.mkdir()
            results.append(run(scenario, opts, folder))
            r = results[-1]
            print(
                f"  {scenario.label}, {scenario.busy} busy + {scenario.idle} idle: "
                f"{r.per_second:.2f}/s, {r.limited} 429s, {r.died} exited"
            )

    table = Table(
        title=f"Workers on one PostgreSQL database and one integration (Notion limit "
        f"{LIMIT:g} req/s, burst 10; {opts.window:g} s window after {opts.warmup:g} s warm-up)"
    )
    for column in (
        "budget",
        "NOTION_RATE_LIMIT",
        "workers",
        "busy",
        "requests/s together",
        "share of 3/s",
        "429s (window)",
        "429s (whole run)",
        "cards left",
        "workers that exited",
    ):
        table.add_column(column, justify="left" if column == "budget" else "right")
    for r in results:
        s = r.scenario
        table.add_row(
            s.label,
            f"{s.rate:g}",
            str(s.busy + s.idle),
            str(s.busy),
            f"{r.per_second:.2f}",
            f"{r.per_second / LIMIT:.0%}",
            str(r.limited),
            str(r.limited_all),
            str(r.backlog_left),
            str(r.died),
        )
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
