"""Intake after a bulk edit, under Notion's query index lag, through the real client.

The emulator shows each edit to data source queries only `query_lag_seconds` after it
(as Notion's index does); the bot polls every 10 s on the emulator's clock. A bulk of
cards and the edits after it are each taken in exactly once, and the bulk is read in
full at most twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from factory.store import repo
from integrations.notion import intake
from integrations.notion.cards import new_card_properties
from integrations.notion_emulator.clock import ManualClock
from integrations.notion_emulator.server import EmulatorServer
from tests.notion.journeys_factories import ALL
from tests.notion.world import World

QUERY = "POST /v1/data_sources/{data_source_id}/query"
BULK = 250  # three pages of query results


@pytest.fixture
async def world(emulator: EmulatorServer, tmp_path: Path) -> AsyncIterator[World]:
    clock, emulator.workspace.clock = (
        emulator.workspace.clock,
        ManualClock(datetime(2026, 6, 1, 8, 0, 5, tzinfo=UTC)),
    )
    w = await World(emulator, str(tmp_path / "db.sqlite"), ALL, rate=1000, burst=1000).open()
    w.configure(rate_limit=0, query_lag_seconds=45)
    yield w
    await w.close()
    emulator.workspace.clock = clock


async def test_a_bulk_and_later_edits_under_index_lag_are_each_taken_in_once(
    world: World,
) -> None:
    ws = world.emu.workspace
    clock = ws.clock
    assert isinstance(clock, ManualClock) and world.board is not None
    board = world.board.id
    created: Counter[str] = Counter()
    cancelled: Counter[str] = Counter()
    queries = 0

    async def poll() -> None:
        nonlocal queries
        before = world.stats()["requests"].get(QUERY, 0)
        report = await intake.poll(world.client, world.db, board, ALL, clock.now())
        queries += world.stats()["requests"].get(QUERY, 0) - before
        assert report.errors == []
        created.update(report.created)
        cancelled.update(report.cancelled)

    def add(title: str) -> str:
        props = new_card_properties(title, "five")
        return ws.create_page({"data_source_id": board}, props, [], world.person_id).id

    await poll()  # the first poll: an empty Queue column
    clock.advance(60)  # 08:01:05: an import adds a bulk of cards within one minute
    bulk = []
    for i in range(BULK):
        bulk.append(add(f"imported {i}"))
        clock.advance(0.2)
    later: list[str] = []
    polls = 1
    for step in range(48):  # eight minutes of polls, 10 s apart
        clock.advance(10)
        if step == 6:  # people get to work on the imported cards
            for page in bulk[:20]:
                world.move(page, "Cancelled")
        if step == 10:
            later += [add(f"new {i}") for i in range(5)]
        if step == 14:
            for page in bulk[20:25]:
                world.move(page, "Cancelled")
        await poll()
        polls += 1
    queued = bulk + later
    with world.db.connect() as conn:
        assert all(repo.find_task(conn, page) is not None for page in queued)
    assert set(created) == set(queued) and max(created.values()) == 1
    assert set(cancelled) == set(bulk[:25]) and max(cancelled.values()) == 1
    # the bulk is read in full twice (three requests each), every other poll is one request
    print(f"{polls} polls, {queries} query requests")
    assert queries <= polls + 2 * 2
