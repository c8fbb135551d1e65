"""Reply checks on the Notion board follow the schedule, within the budget, across
processes (`nfactory tick` from cron), and look first at cards intake saw edited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from factory.clock import FakeClock
from factory.cycle import run_cycle, run_task
from factory.engine import Engine, EngineConfig
from factory.reply_schedule import ReplySchedule
from factory.store.replies import record_reply_check
from factory.store.tables import outbox
from factory.worker import Worker, WorkerConfig
from integrations.notion_emulator.server import EmulatorServer
from tests.notion.journeys_factories import ALL
from tests.notion.world import World

SCHEDULE = ReplySchedule(every=10.0, budget=10)


@pytest.fixture
async def world(emulator: EmulatorServer, tmp_path: Path) -> AsyncIterator[World]:
    w = await World(emulator, str(tmp_path / "db.sqlite"), ALL, rate=100.0).open()
    w.configure(rate_limit=0)  # these tests count requests; the pace is not the point
    w.clock = FakeClock(datetime.now(UTC))  # type: ignore[attr-defined]
    yield w
    await w.close()


def process(world: World) -> Engine:
    """A new engine on the same database: what each `nfactory tick` from cron starts."""
    return Engine(world.db, world.factories, EngineConfig(worker_id="cron"), world.clock)  # type: ignore[attr-defined]


def comment_reads(world: World, page: str | None = None) -> int:
    if page is not None:
        return world.client.stats.for_object(page)
    return world.client.stats.by_endpoint.get("GET /v1/comments", 0)


async def tick(world: World, seconds: float = 0.0) -> None:
    world.clock.advance(seconds)  # type: ignore[attr-defined]
    assert world.board is not None
    await run_cycle(process(world), world.board, SCHEDULE)


async def waiting_cards(world: World, n: int) -> list[str]:
    pages = [world.add_card(f"Colour {i}", "ask") for i in range(n)]
    assert world.board is not None
    for _ in range(10):
        await run_cycle(process(world), world.board, SCHEDULE)
        if all(world.column(p) == "Feedback" for p in pages):
            # the bot's own move to Feedback shows to intake as an edit: one look (a hint)
            await run_cycle(process(world), world.board, SCHEDULE)
            return pages
    raise AssertionError("the cards did not all reach Feedback")


async def test_a_tick_from_cron_reads_a_fresh_questions_comments_once_per_poll(
    world: World,
) -> None:
    [page] = await waiting_cards(world, 1)
    before = comment_reads(world)
    await tick(world, 3)  # the question is seconds old: nobody has answered yet
    await tick(world, 0)
    assert comment_reads(world) == before
    await tick(world, 8)  # a poll after the question: due
    assert comment_reads(world) == before + 1
    await tick(world, 1)  # another process, a second later: the look is in the database
    assert comment_reads(world) == before + 1
    world.comment(page, "Green")
    await tick(world, 10)
    assert comment_reads(world) == before + 2
    await tick(world, 1)  # its effects go out
    assert world.column(page) == "Done"
    assert world.task(page).status == "done"


async def test_an_old_question_is_read_about_every_ten_minutes_not_every_poll(
    world: World,
) -> None:
    [page] = await waiting_cards(world, 1)
    base = comment_reads(world, page)
    for _ in range(30):  # the first five minutes: every poll
        await tick(world, 10)
    first = comment_reads(world, page) - base
    assert 28 <= first <= 31
    for _ in range(6 * 60):  # the next hour, a tick every 10 s
        await tick(world, 10)
    later = comment_reads(world, page) - base - first
    # doubling from 20 s to the cap (20+40+80+160+320 s), then every 590 s
    assert 7 <= later <= 12, later
    world.comment(page, "Blue, finally")
    for n in range(1, 61):  # noqa: B007 - n is read after the loop
        await tick(world, 10)
        if world.task(page).status != "feedback":
            break
    assert n * 10 <= 600  # picked up within the cap


async def test_a_pass_reads_no_more_than_its_budget_and_the_rest_wait_their_turn(
    world: World,
) -> None:
    pages = await waiting_cards(world, 14)
    world.clock.advance(600)  # type: ignore[attr-defined]
    small = ReplySchedule(every=10.0, budget=4)
    before = comment_reads(world)
    assert world.board is not None
    await run_cycle(process(world), world.board, small)
    assert comment_reads(world) - before == 4
    for _ in range(3):
        world.clock.advance(10)  # type: ignore[attr-defined]
        await run_cycle(process(world), world.board, small)
    assert comment_reads(world) - before == 14
    assert all(comment_reads(world, p) >= 1 for p in pages)


async def test_a_card_intake_sees_edited_is_looked_at_before_its_turn(world: World) -> None:
    [page] = await waiting_cards(world, 1)
    task_id = world.task(page).id
    with world.db.begin() as conn:  # a day-old question, looked at a moment ago
        conn.execute(
            update(outbox)
            .where(outbox.c.task_id == task_id, outbox.c.kind == "comment")
            .values(delivered_at=world.clock.now() - timedelta(days=1))  # type: ignore[attr-defined]
        )
        record_reply_check(conn, task_id, world.clock.now())  # type: ignore[attr-defined]
    await tick(world, 10)
    reads = comment_reads(world)
    assert world.task(page).status == "feedback"
    world.comment(page, "Red")
    await tick(world, 10)  # the reply alone: not looked at before its turn (590 s)
    assert comment_reads(world) == reads
    world.control.patch(
        f"/_emulator/pages/{page}",
        json={"properties": {"Name": {"title": [{"text": {"content": "Colour (answered)"}}]}}},
    ).raise_for_status()
    await tick(world, 1)  # intake saw the page edited: looked at now
    assert comment_reads(world) == reads + 1
    assert world.task(page).status != "feedback"


async def test_the_worker_hints_the_feedback_pass_with_the_cards_intake_saw_edited(
    world: World,
) -> None:
    [page] = await waiting_cards(world, 1)
    assert world.board is not None
    worker = Worker(process(world), world.board, WorkerConfig(replies=SCHEDULE))
    world.control.patch(
        f"/_emulator/pages/{page}",
        json={"properties": {"Name": {"title": [{"text": {"content": "Renamed"}}]}}},
    ).raise_for_status()
    await worker.intake()
    assert page.replace("-", "") in worker.hints["feedback"]
    reads = comment_reads(world, page)
    await worker.feedback()
    assert comment_reads(world, page) == reads + 1
    assert worker.hints["feedback"] == set()  # looked at: the hint is spent


async def test_run_task_reads_its_cards_replies_whatever_the_schedule_says(
    world: World,
) -> None:
    [page] = await waiting_cards(world, 1)
    await tick(world, 10)  # looked at just now: not due again for a while
    world.comment(page, "Yellow")
    report = await run_task(process(world), world.board, world.task(page).id)  # type: ignore[arg-type]
    assert report.ticks and world.task(page).status == "done"


async def test_a_pass_woken_right_after_another_reads_only_its_share_of_the_gap(
    world: World,
) -> None:
    """Webhooks wake the feedback job at any time: passes in quick succession must not add
    up to more than the share. A pass right after another gets one read, the hinted card."""
    pages = await waiting_cards(world, 3)
    assert world.board is not None
    worker = Worker(process(world), world.board, WorkerConfig(replies=SCHEDULE))
    world.clock.advance(600)  # type: ignore[attr-defined]
    before = comment_reads(world)
    await worker.feedback()
    assert comment_reads(world) - before == 3  # all due, within the pass's 10
    world.clock.advance(600)  # type: ignore[attr-defined]  # all due again, but no time passed
    worker.hint("feedback", pages[2])
    await worker.feedback()
    assert comment_reads(world) - before == 4
    assert world.client.stats.for_object(pages[2]) > world.client.stats.for_object(pages[0])
