"""The factory's diagram on a started card's page, through notion-client and the emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from factory import AgentInput, action, define_factory, done, failed
from factory.graph import CARD_DIAGRAM_MAX, mermaid
from integrations.notion.markdown import batches, markdown_to_blocks
from integrations.notion.richtext import MAX_ITEMS, MAX_TEXT, plain
from integrations.notion_emulator.server import EmulatorServer
from tests.notion.journeys_factories import ALL, FIVE
from tests.notion.world import World


def finish(inp: AgentInput) -> dict[str, Any]:
    return {"status": "done", "message": "finished"}


# Long state names: the diagram runs to many text objects of a code block.
BIG_STATES = [f"stage_{i:03d}_with_a_name_long_enough_to_fill_the_picture" for i in range(60)]
BIG = define_factory(
    id="big",
    start=BIG_STATES[0],
    states={
        **{
            name: action(
                finish,
                on={
                    "done": BIG_STATES[i + 1] if i + 1 < len(BIG_STATES) else "end",
                    "failed": "bad",
                },
            )
            for i, name in enumerate(BIG_STATES)
        },
        "end": done(),
        "bad": failed(),
    },
)


def code_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b["code"] for b in blocks if b["type"] == "code"]


async def run_five(world: World) -> tuple[str, dict[str, int]]:
    """One card of `five` from Queue to Done: its page and the requests the run made."""
    page = world.add_card("Ship it", "five")
    before = world.stats()["requests"]
    await world.until(lambda: world.column(page) == "Done")
    after = world.stats()["requests"]
    used = {k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0)}
    return page, used


async def test_a_started_card_shows_its_factory_in_the_first_log_append_at_no_extra_request(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    plain_world = await World(emulator, str(tmp_path / "a.sqlite"), ALL, card_graph=False).open()
    try:
        _page, without = await run_five(plain_world)
    finally:
        await plain_world.close()
    world = await World(emulator, str(tmp_path / "b.sqlite"), ALL).open()
    try:
        page, used = await run_five(world)
        blocks = await world.client.list_children_all(page)  # read as an integration does
    finally:
        await world.close()

    [code] = code_blocks(blocks)
    assert code["language"] == "mermaid"
    assert plain(code["rich_text"]) == mermaid(FIVE, current="s1")
    assert '["▶ s1 (action)"]' in plain(code["rich_text"])
    kinds = [b["type"] for b in blocks]
    # the log heading, the run-started line, the picture, then the transitions
    started = next(
        i for i, b in enumerate(blocks) if "run started" in plain(b[b["type"]].get("rich_text", []))
    )
    assert kinds[started + 1] == "code"
    # The picture rides in the log's append: as many appends as without it. Reads and
    # column updates vary with timing (a loaded machine splits a run over more polls),
    # with or without the picture, so the appends are what is compared.
    appends = ("PATCH /v1/pages/{page_id}/markdown", "PATCH /v1/blocks/{block_id}/children")
    assert [used.get(k, 0) for k in appends] == [without.get(k, 0) for k in appends] == [1, 0]
    print(f"five-transition card: {used} with its diagram, {without} without")


async def test_a_large_factory_diagram_is_split_across_text_objects_of_one_code_block(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    diagram = mermaid(BIG, current=BIG.start)
    assert MAX_TEXT * 4 < len(diagram) < CARD_DIAGRAM_MAX
    world = await World(emulator, str(tmp_path / "db.sqlite"), {**ALL, "big": BIG}).open()
    try:
        page = world.add_card("Many stages", "big")
        await world.until(lambda: world.column(page) == "Done", cycles=10)
        [code] = code_blocks(await world.client.list_children_all(page))
        assert code["language"] == "mermaid"
        assert 4 < len(code["rich_text"]) <= MAX_ITEMS
        assert all(len(t["text"]["content"]) <= MAX_TEXT for t in code["rich_text"])
        assert plain(code["rich_text"]) == diagram

        # The blocks API (the deliverer's fallback when the markdown endpoint refuses)
        # takes the same picture as one code block too.
        fallback = markdown_to_blocks(f"```mermaid\n{diagram}\n```")
        assert len(fallback) == 1
        for batch in batches(fallback):
            await world.client.append_blocks(page, batch)
        *_, again = code_blocks(await world.client.list_children_all(page))
        assert again["language"] == "mermaid" and plain(again["rich_text"]) == diagram
        assert all(len(t["text"]["content"]) <= MAX_TEXT for t in again["rich_text"])
    finally:
        await world.close()
