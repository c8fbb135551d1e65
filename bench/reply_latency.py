"""From a person's reply comment to the card resuming: polling only vs webhooks.

Run: `.venv/bin/python bench/reply_latency.py [--replies 10] [--poll 10] [--rate 3]`.

For each mode a real `nfactory start` process works a board on the in-process
Notion emulator (Notion's rate limit, 3 requests/s, unless --rate says other):
`--replies` cards of the bundled `writing` factory wait in Feedback, then a
person answers them one at a time, after a random pause (so replies land at
every phase of the poll schedule). Latency is from just before the comment is
posted to the start of the transition that consumed it (from the database).
With webhooks the emulator posts signed events to `start --webhook-port`; the
poll interval stays the same, so the difference is the webhook's doing.
Prints a table with p50/p90 per mode.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, for the harness
from bench.latency_runs import options, per_mode
from factory.store.tables import tasks, transitions
from integrations.notion_emulator.server import EmulatorServer, free_port
from integrations.notion_emulator.traffic import EmulatorConfig
from tests.worker.harness import Db, Stage, Worker, wait_for

SECRET = "secret_bench_webhooks_0123456789"
TOKEN = "secret_bench_reply_latency"


def resumed_at(db: Db, page_id: str) -> datetime | None:
    """When the worker started the transition that consumed the reply, if it has."""
    with db.engine.connect() as conn:
        found = conn.execute(
            select(transitions.c.started_at)
            .join(tasks, tasks.c.id == transitions.c.task_id)
            .where(tasks.c.external_id == page_id, transitions.c.from_state == "approval")
            .limit(1)
        ).scalar_one_or_none()
    if found is not None and found.tzinfo is None:
        found = found.replace(tzinfo=UTC)
    return found


def measure(mode: str, replies: int, poll: float, rate: float, tmp: Path) -> list[float]:
    webhooks = mode == "webhooks"
    config = EmulatorConfig(rate_limit=rate or None, burst=10)
    with EmulatorServer(TOKEN, config=config) as emu:
        db = Db(f"sqlite:///{tmp / f'{mode}.db'}")
        stage = Stage.create(
            emu,
            tmp,
            db.url,
            NFACTORY_POLL_SECONDS=str(poll),
            NOTION_RATE_LIMIT=str(rate or 100),
            NOTION_BURST="3" if rate else "100",
            NOTION_WEBHOOK_SECRET=SECRET,
        )
        args: list[str] = []
        if webhooks:
            port = free_port()
            args = ["--webhook-port", str(port)]
            stage.control.put(
                "/_emulator/config",
                json={
                    "webhook_url": f"http://127.0.0.1:{port}/webhooks/notion",
                    "webhook_secret": SECRET,
                },
            ).raise_for_status()
        pages = [stage.add_card(f"Notes {i}", "writing") for i in range(replies)]
        worker = Worker(stage, f"bench-{mode}", *args)
        latencies: list[float] = []
        try:
            wait_for(
                lambda: all(stage.column(p) == "Feedback" for p in pages) and db.backlog() == 0,
                60 + 3 * poll,
                "every card to wait in Feedback",
                explain=worker.logs,
            )
            for page in pages:
                time.sleep(random.uniform(0, poll if not webhooks else 1.0))
                posted = datetime.now(UTC)
                stage.comment(page, "Looks good, approve.")
                wait_for(
                    lambda p=page: resumed_at(db, p) is not None, 3 * poll + 30, "resume", 0.02
                )
                at = resumed_at(db, page)
                assert at is not None
                latencies.append((at - posted).total_seconds())
                print(f"  {mode}: reply {len(latencies)}/{replies}: {latencies[-1]:.2f}s")
            worker.terminate(within=30)
        finally:
            worker.kill()
            stage.close()
            db.dispose()
    return latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(p) - 1]


def main() -> None:
    opts = options(__doc__, "replies", seed=5)
    results = per_mode(("polling", "webhooks"), measure, opts)

    table = Table(
        title=f"Reply -> card resumes ({opts.count} replies, "
        f"NFACTORY_POLL_SECONDS={opts.poll:g}, Notion limit {opts.rate:g} req/s)"
    )
    for column in ("mode", "p50 s", "p90 s", "min s", "max s"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for mode, values in results.items():
        table.add_row(
            "polling only" if mode == "polling" else "webhooks (+ polling)",
            f"{percentile(values, 50):.2f}",
            f"{percentile(values, 90):.2f}",
            f"{min(values):.2f}",
            f"{max(values):.2f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
