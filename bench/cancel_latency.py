"""From Cancelled to the agent's process gone: the card moved, or `nfactory task cancel`.

Run: `.venv/bin/python bench/cancel_latency.py [--tries 10] [--poll 10] [--rate 3]`.

A real `nfactory start` process works a board on the in-process Notion emulator
(Notion's rate limit, 3 requests/s, unless --rate says other). Each try adds a card
whose agent is a command_agent: a shell script that notes its pid and loops until
SIGTERM (it traps it and exits at once). Once the command runs, after a random
pause (so the cancel lands at every phase of the poll schedule):

- "moved": the person moves the card to Cancelled (the emulator's control API);
- "cli": `nfactory task cancel --task <card>` runs (timed from its launch, Python's
  start-up included).

Latency runs to the moment no live process is left in the command's process group.
The bound the issue sets is the poll interval plus 5 s. Prints p50 and max per mode.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, for the harness
from bench.latency_runs import options, per_mode
from integrations.notion_emulator.server import EmulatorServer
from integrations.notion_emulator.traffic import EmulatorConfig
from tests.worker.harness import Db, Stage, Worker, cli, group_gone, wait_for
from tests.worker.test_cancel import build_env, pids

TOKEN = "secret_bench_cancel_latency"


def measure(mode: str, tries: int, poll: float, rate: float, tmp: Path) -> list[float]:
    config = EmulatorConfig(rate_limit=rate or None, burst=10)
    with EmulatorServer(TOKEN, config=config) as emu:
        db = Db(f"sqlite:///{tmp / 'nfactory.db'}")
        flows, env = build_env(tmp)
        stage = Stage.create(
            emu,
            tmp,
            db.url,
            workflows=flows,
            NFACTORY_POLL_SECONDS=str(poll),
            NOTION_RATE_LIMIT=str(rate or 100),
            NOTION_BURST="3" if rate else "100",
            **env,
        )
        worker = Worker(stage, f"bench-{mode}")
        latencies: list[float] = []
        try:
            for i in range(tries):
                page = stage.add_card(f"Long build {i}", "build")
                wait_for(
                    lambda n=i + 1: len(pids(tmp)) >= n,
                    3 * poll + 30,
                    "the command to start",
                    explain=worker.logs,
                )
                pid = pids(tmp)[-1]
                wait_for(lambda p=page: stage.column(p) == "Running", 30, "Running on the card")
                time.sleep(random.uniform(0, poll))
                at = time.monotonic()
                if mode == "moved":
                    stage.move(page, "Cancelled")
                else:
                    asked = cli(tmp, stage.env, "task", "cancel", "--task", page)
                    assert asked.returncode == 0, asked.stdout + asked.stderr
                wait_for(lambda p=pid: group_gone(p), poll + 60, "the group", 0.01, worker.logs)
                latencies.append(time.monotonic() - at)
                print(f"  {mode}: try {len(latencies)}/{tries}: {latencies[-1]:.2f}s")
                wait_for(lambda p=page: stage.column(p) == "Cancelled", 60, "Cancelled")
            worker.terminate(within=30)
        finally:
            worker.kill()
            stage.close()
            db.dispose()
    return latencies


def main() -> None:
    opts = options(__doc__, "tries", seed=9)
    results = per_mode(("moved", "cli"), measure, opts)

    table = Table(
        title=f"Cancelled -> the agent's process group gone ({opts.count} tries, "
        f"NFACTORY_POLL_SECONDS={opts.poll:g}, bound {opts.poll + 5:g} s, "
        f"Notion limit {opts.rate:g} req/s)"
    )
    for column in ("how", "p50 s", "max s", "min s"):
        table.add_column(column, justify="left" if column == "how" else "right")
    names = {"moved": "card moved to Cancelled", "cli": "`nfactory task cancel`"}
    for mode, values in results.items():
        table.add_row(
            names[mode],
            f"{statistics.median(values):.2f}",
            f"{max(values):.2f}",
            f"{min(values):.2f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
