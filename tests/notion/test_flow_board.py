"""The flow-style workflow on a Notion board (the emulator over HTTP, the real client): a
reply it cannot read is answered by a new question comment, and the card still finishes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from integrations.notion_emulator.server import EmulatorServer
from tests.notion.world import World
from workflows.writing_flow import FACTORY, QUESTION


@pytest.fixture
async def world(emulator: EmulatorServer, tmp_path: Path) -> AsyncIterator[World]:
    w = await World(emulator, str(tmp_path / "db.sqlite"), {FACTORY.id: FACTORY}).open()
    yield w
    await w.close()


async def test_an_unreadable_reply_is_asked_again_in_a_new_comment(world: World) -> None:
    page = world.add_card("Release notes", FACTORY.id)
    await world.until(lambda: world.column(page) == "Feedback")
    assert world.comments(page) == [("bot", QUESTION)]
    assert "## Next steps" in world.markdown(page)  # the draft, shown for review

    world.comment(page, "Hmm, not sure yet")
    await world.until(lambda: len(world.comments(page)) == 3)
    assert world.comments(page)[-1] == ("bot", "Please reply with approve or revise.")
    for _ in range(2):  # the bot's own question, and the used-up reply, resume nothing
        await world.cycle()
    assert world.column(page) == "Feedback" and len(world.comments(page)) == 3

    world.comment(page, "approve")
    await world.until(lambda: world.column(page) == "Done")
    assert "**Published** (approved by" in world.markdown(page)
    assert [who for who, _ in world.comments(page)] == ["bot", "person", "bot", "person"]
