"""Writes Notion holds past the client's timeout and applies later land once, and
one held request does not hold up delivery to the other cards.

The emulator's `holds` rules pick exactly which requests are held, so the
scenario is the same on every run whatever order concurrent requests take.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from factory.effects import SummaryComment
from factory.outbox import drain
from factory.store.outbox import backlog
from factory.store.tables import outbox
from integrations.notion.cards import new_card_properties
from integrations.notion.feedback import comment_text
from integrations.notion.schema import STATE
from integrations.notion_emulator.server import EmulatorServer
from tests.notion.journeys_factories import ALL
from tests.notion.world import World

pytestmark = pytest.mark.slow

CARDS = 30
TIMEOUT = 2.0  # the client's, short so a held write shows its effect in seconds
DONE = "Done: reached 'end' after 5 transitions."


def hold_rules(pages: list[str]) -> list[dict[str, Any]]:
    """Every third card's first log append and every third card's summary comment are
    held 4.5-7.2 s (past the client's 2 s timeout), then applied."""
    rules: list[dict[str, Any]] = []
    for i, page in enumerate(pages):
        seconds = 4.5 + (i % 4) * 0.9
        if i % 3 == 0:
            rules.append(
                {
                    "method": "PATCH",
                    "path": "/v1/pages/{page_id}/markdown",
                    "contains": page,
                    "seconds": seconds,
                }
            )
        elif i % 3 == 1:
            rules.append(
                {"method": "POST", "path": "/v1/comments", "contains": page, "seconds": seconds}
            )
    return rules


def add_parked_cards(world: World, n: int) -> list[str]:
    """Cards with no column yet: the bot leaves them alone until a person queues them."""
    assert world.board is not None
    pages = []
    for i in range(n):
        props = new_card_properties(f"Card {i}", "five")
        props[STATE] = {"select": None}
        made = world.control.post(
            "/_emulator/pages",
            json={"parent": {"data_source_id": world.board.id}, "properties": props},
        )
        made.raise_for_status()
        pages.append(made.json()["id"])
    return pages


async def settle(world: World, pages: list[str], seconds: float, per_cycle: int = 2) -> None:
    """Queue `per_cycle` more cards each cycle, as people add them through the day, and
    cycle until every card is Done, the outbox is empty and no held write is still to land."""
    waiting = list(pages)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for page in waiting[:per_cycle]:
            world.move(page, "Queue")
        del waiting[:per_cycle]
        await world.cycle()
        if (
            all(world.column(p) == "Done" for p in pages)
            and backlog(world.db) == 0
            and world.stats()["holding"] == 0
        ):
            return
        await asyncio.sleep(0.2)
    columns = [world.column(p) for p in pages]
    raise AssertionError(
        f"not settled in {seconds}s: columns {columns}, backlog {backlog(world.db)}, "
        f"held {world.stats()['holding']}"
    )


async def test_writes_held_past_the_client_timeout_land_exactly_once(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    world = await World(
        emulator,
        str(tmp_path / "db.sqlite"),
        ALL,
        timeout=TIMEOUT,
        max_attempts=4,
        rate=10.0,
        burst=10,
        summary_comment=SummaryComment.all,  # Done cards' comments are among the held writes
    ).open()
    try:
        # Notion's pace is not what this is about: let requests go faster than 3/s
        world.configure(rate_limit=10, burst=10)
        pages = add_parked_cards(world, CARDS)
        rules = hold_rules(pages)
        world.configure(holds=rules)
        assert world.board is not None
        # the relation the fix rests on: no held write outlasts the grace before a check
        await settle(world, pages, seconds=150)
        assert world.stats()["delayed"] == len(rules)  # every rule really held its request

        duplicated: dict[str, Any] = {}
        for i, page in enumerate(pages):
            # read back through the product's own client, as the bot would see the card
            markdown = (await world.client.get_markdown(page))["markdown"]
            bot_comments = [
                comment_text(c)
                for c in await world.client.list_comments_all(page)
                if c["created_by"]["id"] == world.bot_id
            ]
            counts = {
                "heading": markdown.count("notion-factory log"),
                **{f"s{n}": markdown.count(f"s{n} finished") for n in range(1, 6)},
            }
            if set(counts.values()) != {1} or bot_comments != [DONE]:
                duplicated[f"card {i}"] = (counts, bot_comments)
        assert duplicated == {}
        # what makes it hold: no write is held longer than the grace before a check
        assert world.board.doubt_grace > max(r["seconds"] for r in rules)
    finally:
        await world.close()


async def test_a_held_request_on_one_card_does_not_hold_up_the_others(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    """Card A's log append is held past the client's timeout. Card B, queued with it, and
    card C, whose effects appear only while A's request is out, are both on their pages
    before A's request has even given up."""
    world = await World(
        emulator,
        str(tmp_path / "db.sqlite"),
        ALL,
        timeout=10.0,
        max_attempts=2,
        summary_comment=SummaryComment.all,  # each card's effects end with a comment
    ).open()
    try:
        assert world.board is not None
        a, b, c = (world.add_card(f"Card {n}", "five") for n in "ABC")
        world.configure(
            holds=[
                {
                    "method": "PATCH",
                    "path": "/v1/pages/{page_id}/markdown",
                    "contains": a,
                    "seconds": 12,
                }
            ]
        )
        await world.board.poll(world.engine.factories, world.engine.clock.now())
        for page in (a, b):  # A first: its effects are the oldest in the outbox
            await world.engine.tick(world.task(page).id)
        delivery = asyncio.create_task(drain(world.db, world.board, world.engine.clock.now()))
        # A's append has reached Notion and is held
        await until(lambda: world.stats()["holding"] > 0 or delivery.done())
        assert not delivery.done(), delivery
        await world.engine.tick(world.task(c).id)  # C's effects appear while A is stuck

        def on_page(page: str) -> bool:
            return world.comments(page) == [("bot", DONE)] and "s5 finished" in world.markdown(page)

        await until(lambda: (on_page(b) and on_page(c)) or delivery.done())
        # A's request is still out: not given up on, nothing recorded for its card yet
        a_rows = outbox_rows(world, a)
        assert on_page(b) and on_page(c), (world.comments(b), world.comments(c))
        assert not delivery.done() and all(r.attempts == 0 for r in a_rows), a_rows

        report = await delivery
        assert report.failed > 0  # A's append timed out: in doubt, checked after the grace
        assert {r.status for r in outbox_rows(world, a) if r.kind == "log"} == {"sending"}
        await until(lambda: world.stats()["holding"] == 0)  # A's append has landed
    finally:
        await world.close()


async def until(done: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"still waiting after {seconds}s"
        await asyncio.sleep(0.05)


def outbox_rows(world: World, page: str) -> list[Any]:
    with world.db.connect() as conn:
        return list(
            conn.execute(
                select(outbox.c.kind, outbox.c.status, outbox.c.attempts).where(
                    outbox.c.task_id == world.task(page).id
                )
            )
        )
