"""A card title full of markdown stays inside the command's code blocks on the page
(issue 8, item 8), through the real client against the emulator."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from factory import action, command_agent, define_factory, done, failed
from integrations.notion_emulator.server import EmulatorServer
from tests.notion.world import World

HOSTILE = "Fix `login`\n```\n# pwned\n~~~\n- [ ] injected"


@pytest.fixture
async def world(emulator: EmulatorServer, tmp_path: Path) -> AsyncIterator[World]:
    echo = command_agent(
        lambda inp: [sys.executable, "-c", "import sys; print(sys.argv[1])", inp.title]
    )
    factory = define_factory(
        id="echo",
        start="run",
        states={
            "run": action(echo, on={"done": "done", "failed": "failed"}),
            "done": done(),
            "failed": failed(),
        },
    )
    w = await World(emulator, str(tmp_path / "db.sqlite"), {"echo": factory}).open()
    yield w
    await w.close()


async def test_a_hostile_title_stays_inside_the_code_blocks_on_the_card(world: World) -> None:
    page = world.add_card(HOSTILE, "echo")
    await world.until(lambda: world.column(page) == "Done")
    blocks = await world.client.list_children_all(page)
    kinds = [b["type"] for b in blocks]
    assert "heading_1" not in kinds and "to_do" not in kinds, kinds
    codes = [
        "".join(t["text"]["content"] for t in b["code"]["rich_text"])
        for b in blocks
        if b["type"] == "code" and b["code"]["language"] != "mermaid"
    ]
    # the factory's diagram, shown when the run started
    assert next(b["code"]["language"] for b in blocks if b["type"] == "code") == "mermaid"
    # the command, one line, the whole title inside it; then the output, the title as printed
    assert len(codes) == 2, codes
    assert "\n" not in codes[0] and "Fix `login`\\n```\\n# pwned" in codes[0]
    assert codes[1].replace("\u200b", "") == HOSTILE
    assert "Command exited with 0:" in world.markdown(page)
