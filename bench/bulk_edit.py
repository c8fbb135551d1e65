"""Notion requests per poll after a bulk edit of a board.

Run: `.venv/bin/python bench/bulk_edit.py [--cards 10000] [--polls 10] [--interval 60]`.

Two bulks, each made within one minute on a board the bot already polls:
- an import of N new cards in Queue, which the bot takes in (one page-body read each);
- a bulk property change (the Step text) on N cards the bot handled an hour ago.
Then the bot polls every `--interval` seconds. The emulator's clock (ManualClock) and
the time each poll is given advance together; cards are created and edited directly
in the emulator's workspace, as a person's bulk edit would land (over 50 s, so with
polls 10 s apart the first polls come while it lands). Everything the bot
does goes through the real client over HTTP, and the emulator counts the requests.
Prints a table: per poll, the query requests, the other requests (page bodies of
cards taken in) and the cards taken in.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from factory.store import repo
from factory.store.db import open_database
from integrations.notion import intake
from integrations.notion.cards import new_card_properties
from integrations.notion.client import NotionClient
from integrations.notion.ratelimit import TokenBucket
from integrations.notion.setup import setup_board
from integrations.notion_emulator.clock import ManualClock
from integrations.notion_emulator.server import EmulatorServer
from integrations.notion_emulator.traffic import EmulatorConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, for the test factories
from tests.notion.journeys_factories import ALL

BULKS = ("import", "property change")
QUERY = "POST /v1/data_sources/{data_source_id}/query"
Row = tuple[str, int, int, int, int, int]  # bulk, poll, seconds after, queries, others, taken in


async def counts(control: httpx.AsyncClient) -> tuple[int, int]:
    stats = (await control.get("/_emulator/stats")).json()
    return stats["requests"].get(QUERY, 0), stats["total"]


async def run(
    emu: EmulatorServer, kind: str, cards: int, polls: int, interval: int, tmp: Path
) -> list[Row]:
    clock = ManualClock(datetime(2026, 11, 23, 8, 0, 5, tzinfo=UTC))
    ws = emu.workspace
    ws.clock = clock
    control = httpx.AsyncClient(base_url=emu.base_url, timeout=120)
    root = (await control.get("/_emulator/root")).json()
    client = NotionClient(emu.token, emu.base_url, bucket=TokenBucket(10_000, 10_000))
    db = open_database(f"sqlite:///{tmp / f'{kind}.db'}")
    made = await setup_board(client, ALL, board_id=None, parent_page=root["page_id"])
    board = made.board.data_source_id
    with db.begin() as conn:
        repo.ensure_board(conn, board, "notion", clock.now())
    person = root["person_id"]

    def card(i: int, state: str) -> str:
        props = new_card_properties(f"card {i}", "five")
        props["State"] = {"select": {"name": state}}
        return ws.create_page({"data_source_id": board}, props, [], person).id

    old = [card(i, "Done") for i in range(cards)] if kind == "property change" else []
    clock.advance(3600)  # an hour later the bot is polling a settled board
    if kind == "property change":
        card(cards, "Queue")  # a card someone added lately, which the bot takes in
    for _ in range(3):
        await intake.poll(client, db, board, ALL, clock.now())
        clock.advance(interval)
    start = clock.now().replace(second=5, microsecond=0) + timedelta(minutes=1)
    step = 50 / cards  # the whole bulk lands within 50 s of one minute, polls go on meanwhile
    note = {"Step": {"rich_text": [{"type": "text", "text": {"content": "archived"}}]}}
    edits = [start + timedelta(seconds=i * step) for i in range(cards)]
    done = 0
    rows: list[Row] = []
    for n in range(1, polls + 1):
        at = start + timedelta(seconds=n * interval)
        while done < cards and edits[done] <= at:
            clock.set(edits[done])
            if kind == "import":
                card(done, "Queue")
            else:
                ws.update_page(ws.page(old[done]), {"properties": note}, person)
            done += 1
        clock.set(at)
        queries, total = await counts(control)
        report = await intake.poll(client, db, board, ALL, clock.now())
        queries2, total2 = await counts(control)
        q = queries2 - queries
        rows.append((kind, n, n * interval, q, total2 - total - q, len(report.created)))
    await client.aclose()
    await control.aclose()
    db.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--polls", type=int, default=10)
    parser.add_argument("--interval", type=int, default=60, help="seconds between polls")
    parser.add_argument("--bulk", choices=[*BULKS, "both"], default="both")
    args = parser.parse_args()
    rows: list[Row] = []
    for kind in BULKS if args.bulk == "both" else [args.bulk]:
        with (
            tempfile.TemporaryDirectory() as tmp,
            EmulatorServer("secret_bench", config=EmulatorConfig(rate_limit=0)) as emu,
        ):
            rows += asyncio.run(run(emu, kind, args.cards, args.polls, args.interval, Path(tmp)))
    print(f"{args.cards:,} cards edited within one minute; a poll every {args.interval} s")
    print(
        f"{'bulk':<16} {'poll':>4} {'s after':>7} {'query requests':>14} "
        f"{'other requests':>14} {'taken in':>8}"
    )
    for kind, n, seconds, q, other, taken in rows:
        print(f"{kind:<16} {n:>4} {seconds:>7} {q:>14} {other:>14} {taken:>8}")
    for kind in sorted({r[0] for r in rows}):
        mine = [r for r in rows if r[0] == kind]
        full = sum(1 for r in mine if r[3] > 1)
        print(f"{kind}: {full} polls read more than one page; {sum(r[3] for r in mine)} queries")


if __name__ == "__main__":
    main()
