"""Board journeys through the real notion-client against the emulator over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from integrations.notion_emulator.server import EmulatorServer
from tests.notion.journeys_factories import ALL, LONG_LINES
from tests.notion.world import World


@pytest.fixture
async def world(emulator: EmulatorServer, tmp_path: Path) -> AsyncIterator[World]:
    w = await World(emulator, str(tmp_path / "db.sqlite"), ALL).open()
    yield w
    await w.close()


async def test_a_queued_card_runs_to_done_with_its_log_on_the_page(world: World) -> None:
    page = world.add_card("Ship it", "five")
    before, ours = world.stats()["total"], world.client.stats.total
    await world.until(lambda: world.column(page) == "Done")
    used = world.stats()["total"] - before  # what Notion (the emulator) saw
    assert used == world.client.stats.total - ours
    md = world.markdown(page)
    assert "notion-factory log" in md
    for i in range(1, 6):
        assert f"s{i} finished" in md
    assert world.comments(page) == []  # a Done card notifies nobody (summary: problems)
    assert world.task(page).status == "done"
    print(f"five-transition card, Queue to Done: {used} Notion requests")
    assert used <= 7


async def test_feedback_question_reply_and_resume(world: World) -> None:
    page = world.add_card("Paint the shed", "ask")
    before, cycles_before = world.stats()["total"], world.cycles
    await world.until(lambda: world.column(page) == "Feedback")
    assert world.comments(page) == [("bot", "Which colour for 'Paint the shed'?")]
    for _ in range(2):  # the bot's own question never resumes anything
        await world.cycle()
    assert world.column(page) == "Feedback" and world.task(page).status == "feedback"
    world.comment(page, "Green")
    world.comment(page, "with white trim")
    await world.until(lambda: world.column(page) == "Done")
    used, cycles = world.stats()["total"] - before, world.cycles - cycles_before
    print(f"feedback journey: {used} Notion requests over {cycles} cycles")
    # per cycle one board poll and at most one comment check, plus the card's own work:
    # its description, two column updates, two log appends and the question (a Done card
    # gets no summary comment)
    assert used <= 6 + 2 * cycles
    with world.db.connect() as conn:
        from factory.store import repo

        run = repo.latest_run(conn, world.task(page).id)
    assert run is not None and run.ctx["answer"] == "Green\n\nwith white trim"
    assert [m["author"] for m in run.ctx["human_feedback_meta"]] == [world.person_id] * 2


async def test_retries_exhausted_end_failed_with_the_error_on_the_card(world: World) -> None:
    page = world.add_card("Call the API", "flaky")
    await world.until(lambda: world.column(page) == "Failed")
    assert "the service is down (attempt 3)" in world.prop_text(page, "Error")
    assert "attempt 2 failed, retrying" in world.markdown(page)


async def test_unknown_or_missing_factory_goes_blocked_naming_the_factories(world: World) -> None:
    ghost = world.add_card("Haunt", "ghost")
    none = world.add_card("No factory", None)
    await world.until(lambda: world.column(ghost) == "Blocked" and world.column(none) == "Blocked")
    assert "unknown factory 'ghost'; known factories: ask, five, flaky, long, slow" in (
        world.prop_text(ghost, "Error")
    )
    assert "names no Factory" in world.prop_text(none, "Error")


async def test_cancelled_stops_a_run_and_queue_again_starts_fresh(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    world = await World(
        emulator, str(tmp_path / "db.sqlite"), ALL, max_transitions_per_tick=1
    ).open()
    try:
        page = world.add_card("Slow one", "slow")
        await world.until(lambda: world.column(page) == "Running")
        world.move(page, "Cancelled")
        await world.until(lambda: world.task(page).status == "cancelled")
        assert world.column(page) == "Cancelled"
        with world.db.connect() as conn:
            from factory.store import repo

            steps = [h["reason"] for h in repo.history(conn, world.task(page).id)]
        assert steps[-1] == "run.cancelled" and len(steps) < 4
        world.move(page, "Queue")
        await world.until(lambda: world.column(page) == "Done")
    finally:
        await world.close()


async def test_long_output_lands_whole(world: World) -> None:
    page = world.add_card("Big report", "long")
    await world.until(lambda: world.column(page) == "Done")
    md = world.markdown(page)
    for line in LONG_LINES:
        assert line in md
    assert md.count("y") >= 10_000
