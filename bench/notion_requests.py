"""Notion requests the bot spends: one card's journey, one poll of an idle board, and
one idle `nfactory tick` (opening the board included).

Run: `.venv/bin/python bench/notion_requests.py [--cards 10000]`. Everything goes
through the real client against the emulator over HTTP, and the emulator
counts the requests it answered. Prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from factory.clock import SystemClock
from factory.cycle import run_cycle
from factory.engine import Engine, EngineConfig
from factory.store import repo
from factory.store.db import open_database
from integrations.notion.cards import new_card_properties
from integrations.notion.client import NotionClient
from integrations.notion.ratelimit import TokenBucket
from integrations.notion.settings import NotionSettings
from integrations.notion.setup import setup_board
from integrations.notion.wiring import board_on, open_notion_board
from integrations.notion_emulator.clock import ManualClock
from integrations.notion_emulator.clock import SystemClock as EmulatorClock
from integrations.notion_emulator.server import EmulatorServer
from integrations.notion_emulator.traffic import EmulatorConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, for the test factories
from tests.notion.journeys_factories import ALL


async def total(control: httpx.AsyncClient) -> int:
    return (await control.get("/_emulator/stats")).json()["total"]


async def measure(emu: EmulatorServer, cards: int, tmp: Path) -> list[tuple[str, int, float]]:
    control = httpx.AsyncClient(base_url=emu.base_url)
    root = (await control.get("/_emulator/root")).json()
    client = NotionClient(emu.token, emu.base_url, bucket=TokenBucket(1000, 1000))
    db = open_database(f"sqlite:///{tmp / 'bench.db'}")
    made = await setup_board(client, ALL, board_id=None, parent_page=root["page_id"])
    ds = made.board.data_source_id
    board = await board_on(client, db, ds, SystemClock().now(), know_people=True)
    engine = Engine(db, ALL, EngineConfig(worker_id="bench"), SystemClock())
    rows = []

    # one five-transition card from Queue to Done
    card = {"parent": {"data_source_id": ds}, "properties": new_card_properties("Bench", "five")}
    page = (await control.post("/_emulator/pages", json=card)).json()["id"]
    before, started = await total(control), time.perf_counter()
    while True:
        await run_cycle(engine, board)
        with db.connect() as conn:
            if repo.find_task(conn, page).status == "done":
                break
    await run_cycle(engine, board)  # the quiet poll after it
    rows.append(
        (
            "five-transition card, Queue to Done (+1 idle cycle)",
            await total(control) - before,
            time.perf_counter() - started,
        )
    )

    # a large board where nothing changes: its cards were last edited an hour ago
    ws = emu.workspace
    ws.clock = ManualClock(datetime.now(UTC) - timedelta(hours=1))
    done_props = new_card_properties("old card", "five")
    done_props["State"] = {"select": {"name": "Done"}}
    for i in range(cards):
        done_props["Name"] = {"title": [{"type": "text", "text": {"content": f"old card {i}"}}]}
        ws.create_page({"data_source_id": ds}, done_props, [], root["person_id"])
    ws.clock = EmulatorClock()
    await board.poll(engine.factories, engine.clock.now())
    before, started = await total(control), time.perf_counter()
    await board.poll(engine.factories, engine.clock.now())
    rows.append(
        (
            f"poll of an unchanged {cards:,}-card board",
            await total(control) - before,
            time.perf_counter() - started,
        )
    )

    # `nfactory tick` from cron on that settled board: open the board, then one cycle
    settings = NotionSettings(
        notion_token=emu.token,
        notion_base_url=emu.base_url,
        notion_board_id=made.board.database_id,
        nfactory_allowed_repliers=[root["person_id"]],  # resolved only when a card waits
        _env_file=None,
    )

    async def tick() -> None:
        async with open_notion_board(settings, db, SystemClock().now()) as opened:
            await run_cycle(engine, opened)

    await tick()  # the first asks Notion which board NOTION_BOARD_ID names and who the bot is
    before, started = await total(control), time.perf_counter()
    await tick()
    rows.append(
        (
            f"idle `nfactory tick` on the {cards:,}-card board",
            await total(control) - before,
            time.perf_counter() - started,
        )
    )
    await client.aclose()
    await control.aclose()
    db.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cards", type=int, default=10_000)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmulatorServer("secret_bench", config=EmulatorConfig(rate_limit=0)) as emu,
    ):
        rows = asyncio.run(measure(emu, args.cards, Path(tmp)))
    print(f"{'what':<55} {'Notion requests':>15} {'seconds':>8}")
    for what, n, secs in rows:
        print(f"{what:<55} {n:>15} {secs:>8.2f}")


if __name__ == "__main__":
    main()
