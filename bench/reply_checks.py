"""Reply checks at 10, 100 and 1,000 waiting cards: the rate share they take, how soon
replies are picked up, and whether intake and deliveries still keep up.

Run: `.venv/bin/python bench/reply_checks.py [--minutes 20] [--sizes 10,100,1000]
[--poll 10] [--webhooks]`. Each size runs in its own process (in parallel), with
its own in-process Notion emulator at Notion's limit (3 requests/s) and the real
worker (factory/worker.py Worker, NotionBoard, NotionClient over HTTP) with
the default reply schedule and share (one third). Before it starts, the size's
cards of a one-question factory are driven into Feedback over an unlimited
emulator and their questions backdated a day (their last looks spread over the
schedule's cycle, as a worker that had been running would have left them).

Then, for `--minutes`, a person keeps adding new cards (each asks a question,
answered 0 to 90 s after it lands) and answering day-old questions at random.
Measured: the share of the 3 requests/s spent on `GET /v1/comments`; p50 pick-up
latency (reply posted -> consumed by a transition) for questions asked within 5
minutes; max pick-up latency for day-old questions (the run goes on until the
last one is picked up); the largest delay from a new card's creation to its
intake, and from an effect's outbox row to its delivery. `--webhooks` adds a
1,000-card run whose worker also receives the emulator's signed webhook events.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import delete, func, insert, select, update

from factory.store.db import Database

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, for the factories
from factory.clock import SystemClock
from factory.cycle import run_cycle
from factory.engine import Engine, EngineConfig
from factory.reply_schedule import REPLY_SHARE, schedule_for
from factory.store import intake as intake_store
from factory.store.db import open_database
from factory.store.outbox import backlog
from factory.store.tables import consumed_comments, outbox, reply_checks, tasks
from factory.worker import Worker, WorkerConfig, quiet_chatty_loggers
from integrations.notion.cards import new_card_properties
from integrations.notion.client import NotionClient
from integrations.notion.ratelimit import TokenBucket
from integrations.notion.setup import setup_board
from integrations.notion.wiring import board_on
from integrations.notion_emulator.records import Page
from integrations.notion_emulator.server import EmulatorServer, free_port
from integrations.notion_emulator.traffic import EmulatorConfig
from tests.notion.journeys_factories import ASK

TOKEN = "secret_bench_reply_checks"
SECRET = "secret_bench_reply_checks_webhooks_0123"
RATE = 3.0
FACTORIES = {"ask": ASK}


def now() -> datetime:
    return datetime.now(UTC)


async def in_thread(fn: Any, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


def waiting_count(db: Database) -> int:
    with db.connect() as conn:
        query = select(func.count()).select_from(tasks).where(tasks.c.status == "feedback")
        return int(conn.execute(query).scalar_one())


def consumed_at(db: Database, comment_id: str) -> datetime | None:
    with db.connect() as conn:
        found = conn.execute(
            select(consumed_comments.c.consumed_at).where(
                consumed_comments.c.comment_id == comment_id
            )
        ).scalar_one_or_none()
    return found


def task_of(db: Database, page_id: str) -> tuple[str, datetime] | None:
    with db.connect() as conn:
        row = conn.execute(
            select(tasks.c.id, tasks.c.created_at).where(tasks.c.external_id == page_id)
        ).first()
    return None if row is None else (row.id, row.created_at)


def question_delivered(db: Database, task_id: str) -> bool:
    with db.connect() as conn:
        return (
            conn.execute(
                select(outbox.c.id).where(
                    outbox.c.task_id == task_id,
                    outbox.c.kind == "comment",
                    outbox.c.status == "delivered",
                )
            ).first()
            is not None
        )


def delivery_delays(db: Database, since: datetime) -> list[float]:
    with db.connect() as conn:
        rows = conn.execute(
            select(outbox.c.created_at, outbox.c.delivered_at).where(
                outbox.c.created_at >= since, outbox.c.status == "delivered"
            )
        ).all()
    return [(r.delivered_at - r.created_at).total_seconds() for r in rows]


async def prepare(emu: EmulatorServer, db: Database, n: int, every: float) -> tuple[str, str]:
    """`n` cards waiting in Feedback with day-old questions; (data source id, bot id)."""
    control = httpx.AsyncClient(base_url=emu.base_url, timeout=60)
    root = (await control.get("/_emulator/root")).json()
    fast = NotionClient(emu.token, emu.base_url, bucket=TokenBucket(1000, 1000))
    made = await setup_board(fast, FACTORIES, board_id=None, parent_page=root["page_id"])
    ds = made.board.data_source_id
    board = await board_on(fast, db, ds, now(), know_people=True)
    bot = board.bot_id
    engine = Engine(db, FACTORIES, EngineConfig(worker_id="bench-setup"), SystemClock())
    for i in range(n):
        card = {
            "parent": {"data_source_id": ds},
            "properties": new_card_properties(f"Old {i}", "ask"),
        }
        (await control.post("/_emulator/pages", json=card)).raise_for_status()
    schedule = schedule_for(every, REPLY_SHARE, RATE)  # few looks: nobody answers yet
    while waiting_count(db) < n or backlog(db, ds) > 0:
        await run_cycle(engine, board, schedule)
    day = timedelta(days=1)
    ws = emu.workspace  # a day-old question: nobody touched its card since (no intake hint)
    with ws.lock:
        for node in ws.nodes.values():
            if isinstance(node, Page) and node.data_source_id == ds:
                node.last_edited_time -= day
                node.created_time -= day
    spread = max(600.0, n * every / schedule_for(every, REPLY_SHARE, RATE).budget)
    # the intake watermark of a board untouched for a day: settled, no heavy minute. Left
    # as the fast setup made it, the setup would look like a bulk edit of this minute,
    # whose new cards wait for it to settle (docs/operations.md): not what is measured
    settled = now().replace(second=0, microsecond=0) - timedelta(minutes=3)
    intake_store.save_watermark(db, ds, settled, [], [])
    with db.begin() as conn:
        rows = conn.execute(
            select(outbox.c.id, outbox.c.delivered_at).where(outbox.c.kind == "comment")
        )
        for row in rows.all():
            conn.execute(
                update(outbox)
                .where(outbox.c.id == row.id)
                .values(delivered_at=row.delivered_at - day)
            )
        conn.execute(delete(reply_checks))
        ids = conn.execute(select(tasks.c.id).where(tasks.c.status == "feedback")).scalars().all()
        for task_id in ids:
            seen = now() - timedelta(seconds=random.uniform(0, spread))
            conn.execute(insert(reply_checks).values(task_id=task_id, checked_at=seen))
    await fast.aclose()
    await control.aclose()
    return ds, bot


async def measure(n: int, minutes: float, poll: float, webhooks: bool) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="nfactory-bench-") as tmp,
        EmulatorServer(TOKEN, config=EmulatorConfig(rate_limit=None)) as emu,
    ):
        db = open_database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        ds, bot = await prepare(emu, db, n, poll)
        say(f"{n} cards waiting with day-old questions; people act for {minutes:g} min")
        # a fresh connection per person's action: a kept-alive one the emulator's server
        # closes while idle (its keep-alive timeout) fails the next post with ReadError
        control = httpx.AsyncClient(
            base_url=emu.base_url, timeout=60, limits=httpx.Limits(max_keepalive_connections=0)
        )
        (await control.put("/_emulator/config", json={"rate_limit": RATE})).raise_for_status()
        client = NotionClient(emu.token, emu.base_url, bucket=TokenBucket(RATE, 3))
        board = await board_on(client, db, ds, now(), bot_id=bot, know_people=True)
        engine = Engine(db, FACTORIES, EngineConfig(worker_id="bench"), SystemClock())
        schedule = schedule_for(poll, REPLY_SHARE, RATE)
        worker = Worker(engine, board, WorkerConfig(poll_seconds=poll, replies=schedule))
        servers = []
        if webhooks:
            servers.append(await serve_webhooks(control, db, worker, bot, Path(tmp)))
        old_pages = await in_thread(old_cards, db)
        random.shuffle(old_pages)
        fresh: list[float] = []
        old: list[float] = []
        intake: list[float] = []
        jobs: list[asyncio.Task[None]] = []
        started = now()
        before = client.stats.by_endpoint.get("GET /v1/comments", 0)
        worker.start()

        async def fresh_card(i: int) -> None:
            card = {
                "parent": {"data_source_id": ds},
                "properties": new_card_properties(f"New {i}", "ask"),
            }
            posted = now()
            page = (await control.post("/_emulator/pages", json=card)).json()["id"]
            found = None
            while found is None:
                await asyncio.sleep(0.2)
                found = await in_thread(task_of, db, page)
            intake.append((found[1] - posted).total_seconds())
            while not await in_thread(question_delivered, db, found[0]):  # noqa: ASYNC110
                await asyncio.sleep(0.2)
            await asyncio.sleep(random.uniform(0, 90))
            fresh.append(await reply_and_wait(control, db, page))

        async def old_reply(page: str) -> None:
            old.append(await reply_and_wait(control, db, page))

        end = time.monotonic() + minutes * 60
        i = 0
        while time.monotonic() < end:
            await asyncio.sleep(random.uniform(5, 25))
            i += 1
            if i % 2:
                jobs.append(asyncio.create_task(fresh_card(i)))
            elif old_pages:
                jobs.append(asyncio.create_task(old_reply(old_pages.pop())))
        window = (now() - started).total_seconds()
        say(f"{n} cards: waiting for the last {sum(not j.done() for j in jobs)} replies")
        reads = client.stats.by_endpoint.get("GET /v1/comments", 0) - before
        await asyncio.gather(*jobs)
        await worker.stop(grace=5)
        for server, serving in servers:
            server.should_exit = True
            await serving
        delays = await in_thread(delivery_delays, db, started)
        await client.aclose()
        await control.aclose()
        db.dispose()
    return {
        "cards": n,
        "webhooks": webhooks,
        "share": reads / (RATE * window),
        "fresh_p50": statistics.median(fresh) if fresh else None,
        "fresh_n": len(fresh),
        "old_max": max(old) if old else None,
        "old_p50": statistics.median(old) if old else None,
        "old_n": len(old),
        "intake_max": max(intake) if intake else None,
        "delivery_max": max(delays) if delays else None,
        "rate_limited": client.stats.rate_limited,
    }


def old_cards(db: Database) -> list[str]:
    with db.connect() as conn:
        query = select(tasks.c.external_id).where(tasks.c.status == "feedback")
        return [str(p) for p in conn.execute(query).scalars()]


async def reply_and_wait(control: httpx.AsyncClient, db: Database, page: str) -> float:
    posted = now()
    made = await control.post("/_emulator/comments", json={"page_id": page, "text": "Yes, go."})
    comment_id = made.json()["id"]
    while (at := await in_thread(consumed_at, db, comment_id)) is None:  # noqa: ASYNC110
        await asyncio.sleep(0.25)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return (at - posted).total_seconds()


async def serve_webhooks(
    control: httpx.AsyncClient, db: Database, worker: Worker, bot: str, tmp: Path
) -> Any:
    """The worker's webhook receiver, as `start --webhook-port` serves it; the emulator
    posts its signed events there."""
    import contextlib

    import uvicorn

    from integrations.notion.webhooks import WebhookReceiver

    receiver = WebhookReceiver(
        db, SECRET, bot, worker.wake, dict, str, tmp / "token", hint=worker.hint
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            receiver.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
    )
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn has no event for it
        await asyncio.sleep(0.05)
    await control.put(
        "/_emulator/config",
        json={"webhook_url": f"http://127.0.0.1:{port}/webhooks/notion", "webhook_secret": SECRET},
    )
    return server, serving


def say(line: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S} {line}", file=sys.stderr, flush=True)


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="how long people act")
    parser.add_argument("--sizes", default="10,100,1000", help="waiting cards, comma-separated")
    parser.add_argument("--poll", type=float, default=10.0, help="NFACTORY_POLL_SECONDS")
    parser.add_argument("--webhooks", action="store_true", help="add a 1,000-card webhook run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child: one size
    parser.add_argument("--with-webhooks", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    random.seed(opts.seed)
    if opts.one is not None:
        quiet_chatty_loggers()
        result = asyncio.run(measure(opts.one, opts.minutes, opts.poll, opts.with_webhooks))
        print(json.dumps(result))
        return
    runs = [(int(s), False) for s in opts.sizes.split(",") if s.strip()]
    if opts.webhooks:
        runs.append((1000, True))
    children = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--one",
                str(n),
                "--minutes",
                str(opts.minutes),
                "--poll",
                str(opts.poll),
                "--seed",
                str(opts.seed + n),
            ]
            + (["--with-webhooks"] if hooks else []),
            stdout=subprocess.PIPE,
            text=True,
        )
        for n, hooks in runs
    ]
    results = []
    for child in children:
        out, _ = child.communicate()
        if child.returncode != 0:
            raise SystemExit(f"a bench run failed (exit {child.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    table = Table(
        title=f"Reply checks ({opts.minutes:g} min of people acting, poll {opts.poll:g} s, "
        f"Notion limit {RATE:g} req/s, reply share {REPLY_SHARE:.2f})"
    )
    for column in (
        "waiting cards",
        "comment reads, share of limit",
        "fresh reply p50 s (n)",
        "day-old reply max s (p50, n)",
        "new card intake max s",
        "effect delivery max s",
        "429s",
    ):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            f"{r['cards']:,}" + (" + webhooks" if r["webhooks"] else ""),
            f"{r['share']:.0%}",
            f"{seconds(r['fresh_p50'])} ({r['fresh_n']})",
            f"{seconds(r['old_max'])} ({seconds(r['old_p50'])}, {r['old_n']})",
            seconds(r["intake_max"]),
            seconds(r["delivery_max"]),
            str(r["rate_limited"]),
        )
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
