"""The board's reply check against the emulator: who is a person is asked once per user."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from integrations.notion_emulator.server import EmulatorServer
from tests.notion.journeys_factories import ALL
from tests.notion.world import World

LOOKUP = "GET /v1/users/{user_id}"


@pytest.fixture
async def world(emulator: EmulatorServer, tmp_path: Path) -> AsyncIterator[World]:
    w = await World(emulator, str(tmp_path / "db.sqlite"), ALL).open()
    yield w
    await w.close()


def add_user(world: World, **body: Any) -> str:
    made = world.control.post("/_emulator/users", json=body)
    made.raise_for_status()
    return str(made.json()["id"])


def comment_as(world: World, page: str, user_id: str, text: str) -> None:
    world.control.post(
        "/_emulator/comments", json={"page_id": page, "text": text, "user_id": user_id}
    ).raise_for_status()


async def test_users_who_join_after_open_are_looked_up_once_and_bots_never_answer(
    world: World,
) -> None:
    world.configure(rate_limit=0)  # no 429 retries: every lookup counted is a real one
    page = world.add_card("Paint the shed", "ask")
    await world.until(lambda: world.column(page) == "Feedback")
    lookups = world.stats()["requests"].get(LOOKUP, 0)

    # a bot installed after the board was opened comments on the card, twice
    bot = add_user(world, type="bot", name="Another integration")
    comment_as(world, page, bot, "approve")
    for _ in range(3):
        await world.cycle()
    comment_as(world, page, bot, "approve, really")
    await world.cycle()
    assert world.column(page) == "Feedback" and world.task(page).status == "feedback"
    assert world.stats()["requests"].get(LOOKUP, 0) == lookups + 1  # asked about once

    # a person who joined after the board was opened answers: looked up once, counts
    newcomer = add_user(world, name="Newcomer", email="new@example.com")
    comment_as(world, page, newcomer, "Green")
    await world.until(lambda: world.column(page) == "Done")
    assert world.stats()["requests"].get(LOOKUP, 0) == lookups + 2
