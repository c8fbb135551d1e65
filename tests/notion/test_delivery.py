"""Outbox delivery to Notion: a crash mid-delivery, and a card whose page is gone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from factory.outbox import coalesce, drain
from factory.store.outbox import backlog, pending
from factory.store.tables import outbox
from integrations.notion_emulator.server import EmulatorServer
from tests.engine.helpers import statements_on_this_thread
from tests.notion.journeys_factories import ALL
from tests.notion.world import World


@pytest.fixture
async def world(emulator: EmulatorServer, tmp_path: Path) -> AsyncIterator[World]:
    w = await World(emulator, str(tmp_path / "db.sqlite"), ALL).open()
    yield w
    await w.close()


async def test_a_crash_after_notion_answered_duplicates_nothing(world: World) -> None:
    page = world.add_card("Crashy", "ask")
    assert world.board is not None
    await world.board.poll(world.engine.factories, world.engine.clock.now())
    task = world.task(page)
    await world.engine.tick(task.id)  # runs to the question; effects wait in the outbox
    now = world.engine.clock.now()
    effects = pending(world.db, world.board.id, now)[task.id]
    send, _ = coalesce(effects)
    # the worker marks the batch, Notion applies it ... and the worker dies before recording
    with world.db.begin() as conn:
        conn.execute(
            update(outbox)
            .where(outbox.c.id.in_([e.id for e in send]))
            .values(status="sending", attempted_at=now - timedelta(minutes=5))
        )
    results = await world.board.deliver(send)
    assert all(r.ok for r in results)
    assert len(world.comments(page)) == 1
    # a new worker drains: the batch is in doubt, so it is checked against the page first
    report = await drain(world.db, world.board, world.engine.clock.now())
    assert report.delivered == len(send) and backlog(world.db) == 0
    assert world.comments(page) == [("bot", "Which colour for 'Crashy'?")]
    assert world.markdown(page).count("notion-factory log") == 1
    assert world.markdown(page).count("**ask** → **wait**") == 1
    # the question is known, so a reply still resumes the card
    world.comment(page, "Red")
    await world.until(lambda: world.column(page) == "Done")


async def test_a_deleted_page_parks_its_effects_and_others_still_flow(world: World) -> None:
    gone = world.add_card("Deleted", "five")
    kept = world.add_card("Kept", "five")
    assert world.board is not None
    await world.board.poll(world.engine.factories, world.engine.clock.now())
    world.control.patch(f"/_emulator/pages/{gone}", json={"in_trash": True}).raise_for_status()
    for task_id in (world.task(gone).id, world.task(kept).id):
        await world.engine.tick(task_id)
    report = await drain(world.db, world.board, world.engine.clock.now())
    assert report.parked > 0
    assert world.column(kept) == "Done"
    with world.db.connect() as conn:
        rows = conn.execute(
            select(outbox.c.status, outbox.c.last_error).where(
                outbox.c.task_id == world.task(gone).id
            )
        ).all()
    assert {r.status for r in rows} == {"parked", "superseded"}  # older column changes: coalesced
    assert any("archived" in (r.last_error or "") or "404" in (r.last_error or "") for r in rows)


async def test_delivery_runs_no_statement_on_the_event_loop(world: World) -> None:
    """A statement on the loop would freeze every heartbeat while another writer holds
    SQLite's lock (BEGIN IMMEDIATE waits up to 30 s): all of them go to I/O threads."""
    page = world.add_card("Quiet", "ask")
    assert world.board is not None
    await world.board.poll(world.engine.factories, world.engine.clock.now())
    await world.engine.tick(world.task(page).id)  # log lines, a column and a question wait
    on_loop = statements_on_this_thread(world.db)
    report = await drain(world.db, world.board, world.engine.clock.now())
    assert on_loop == []
    assert report.delivered > 0 and backlog(world.db) == 0
    assert world.markdown(page).count("notion-factory log") == 1


async def test_a_poll_taking_in_and_cancelling_cards_runs_no_statement_on_the_loop(
    world: World,
) -> None:
    """Intake's reads and writes (watermark, snapshots, new tasks, cancels) go through the
    worker's I/O threads: a busy database never stalls the loop's heartbeats."""
    assert world.board is not None
    kept = world.add_card("Kept", "ask")
    dropped = world.add_card("Dropped", "ask")
    on_loop = statements_on_this_thread(world.db)
    first = await world.board.poll(world.engine.factories, world.engine.clock.now())
    world.move(dropped, "Cancelled")
    second = await world.board.poll(world.engine.factories, world.engine.clock.now())
    assert on_loop == []
    assert sorted(first.created) == sorted([kept, dropped])
    assert second.cancelled == [dropped]
