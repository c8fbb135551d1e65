"""The page markdown endpoints: read, insert, replace, update, create from markdown."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from notion_client import APIErrorCode, APIResponseError

from integrations.notion_emulator.server import EmulatorServer

from .helpers import call, text

DOC = (
    "# Title\n\n"
    "Some **bold**, *italic*, ~~gone~~, `code` and a [link](https://example.com).\n\n"
    "- one\n"
    "\t- nested\n"
    "- two\n"
    "1. first\n"
    "2. second\n"
    "- [ ] open task\n"
    "- [x] done task\n"
    "> quoted\n"
    "---\n"
    "```python\nprint('hi')\n```"
)
CANONICAL = DOC.replace("\n\n", "\n")


async def new_page(api: Any, root: str) -> str:
    return (await call(api.pages.create(parent={"page_id": root}, properties={})))["id"]


async def test_empty_page_markdown(api: Any, root: str) -> None:
    page = await new_page(api, root)
    got = await call(api.pages.retrieve_markdown(page))
    assert got == {
        "object": "page_markdown",
        "id": page,
        "markdown": "",
        "truncated": False,
        "unknown_block_ids": [],
        "request_id": got["request_id"],
    }


async def test_insert_content_matches_recorded_rendering(api: Any, root: str) -> None:
    page = await new_page(api, root)
    got = await call(
        api.pages.update_markdown(
            page,
            type="insert_content",
            insert_content={"content": "## New Section\n\nHello from markdown."},
        )
    )
    # Notion's own answer to this exact request (interactions.json).
    assert got["markdown"] == "## New Section\nHello from markdown."


async def test_insert_then_replace_round_trip(api: Any, root: str) -> None:
    page = await new_page(api, root)
    inserted = await call(
        api.pages.update_markdown(page, type="insert_content", insert_content={"content": DOC})
    )
    assert inserted["markdown"] == CANONICAL
    blocks = (await call(api.blocks.children.list(page)))["results"]
    kinds = [b["type"] for b in blocks]
    assert kinds[:3] == ["heading_1", "paragraph", "bulleted_list_item"]
    rich = blocks[1]["paragraph"]["rich_text"]
    assert [r["plain_text"] for r in rich if r["annotations"]["bold"]] == ["bold"]
    assert [r["href"] for r in rich if r["href"]] == ["https://example.com"]
    assert blocks[2]["has_children"] is True
    assert "code" in kinds and "divider" in kinds and "to_do" in kinds

    again = await call(
        api.pages.update_markdown(page, type="insert_content", insert_content={"content": "tail"})
    )
    assert again["markdown"] == CANONICAL + "\ntail"

    replaced = await call(
        api.pages.update_markdown(
            page, type="replace_content", replace_content={"new_str": "## Only\nthis"}
        )
    )
    assert replaced["markdown"] == "## Only\nthis"
    assert len((await call(api.blocks.children.list(page)))["results"]) == 2
    fetched = await call(api.pages.retrieve_markdown(page))
    assert fetched["markdown"] == "## Only\nthis"


async def test_update_content_search_and_replace(api: Any, root: str) -> None:
    page = await new_page(api, root)
    await call(
        api.pages.update_markdown(
            page, type="replace_content", replace_content={"new_str": "status: DRAFT\nDRAFT"}
        )
    )
    got = await call(
        api.pages.update_markdown(
            page,
            type="update_content",
            update_content={
                "content_updates": [
                    {"old_str": "DRAFT", "new_str": "FINAL", "replace_all_matches": True}
                ]
            },
        )
    )
    assert got["markdown"] == "status: FINAL\nFINAL"
    with pytest.raises(APIResponseError) as info:
        await call(
            api.pages.update_markdown(
                page,
                type="update_content",
                update_content={"content_updates": [{"old_str": "nope", "new_str": "x"}]},
            )
        )
    assert info.value.code == APIErrorCode.ValidationError


async def test_long_paragraph_is_split_at_2000(api: Any, root: str) -> None:
    page = await new_page(api, root)
    await call(
        api.pages.update_markdown(
            page, type="insert_content", insert_content={"content": "y" * 4500}
        )
    )
    para = (await call(api.blocks.children.list(page)))["results"][0]["paragraph"]
    assert [len(r["plain_text"]) for r in para["rich_text"]] == [2000, 2000, 500]


async def test_create_page_from_markdown(api: Any, root: str) -> None:
    page = await call(
        api.pages.create(
            parent={"page_id": root}, markdown="# Meeting Notes\n\nDiscussed.\n\n- [ ] follow up"
        )
    )
    assert page["properties"]["title"]["title"][0]["plain_text"] == "Meeting Notes"
    got = await call(api.pages.retrieve_markdown(page["id"]))
    assert got["markdown"] == "Discussed.\n- [ ] follow up"


async def test_child_pages_render_as_page_tags(api: Any, root: str) -> None:
    page = await new_page(api, root)
    await call(api.pages.create(parent={"page_id": page}, properties={"title": [text("Kid")]}))
    got = await call(api.pages.retrieve_markdown(page))
    assert got["markdown"].startswith('<page url="https://app.notion.com/p/Kid-')


def test_allow_async_answers_202_and_a_task(emulator: EmulatorServer, root: str) -> None:
    headers = {"Authorization": f"Bearer {emulator.token}", "Notion-Version": "2025-09-03"}
    response = httpx.patch(
        f"{emulator.base_url}/v1/pages/{root}/markdown",
        headers=headers,
        json={
            "allow_async": True,
            "type": "insert_content",
            "insert_content": {"content": "# Hello\n\nAsync"},
        },
    )
    assert response.status_code == 202
    task = response.json()
    assert task["object"] == "async_task" and task["status"] == "queued"
    polled = httpx.get(f"{emulator.base_url}/v1/async_tasks/{task['id']}", headers=headers)
    assert polled.json()["status"] == "succeeded"
    assert polled.json()["result"]["markdown"] == "# Hello\nAsync"


async def test_insert_at_start_and_after_selection(api: Any, root: str) -> None:
    page = await new_page(api, root)
    await call(
        api.pages.update_markdown(
            page, type="replace_content", replace_content={"new_str": "one\nthree"}
        )
    )
    await call(
        api.pages.update_markdown(
            page,
            type="insert_content",
            insert_content={"content": "zero", "position": {"type": "start"}},
        )
    )
    got = await call(
        api.pages.update_markdown(
            page, type="insert_content", insert_content={"content": "two", "after": "one...one"}
        )
    )
    assert got["markdown"] == "zero\none\ntwo\nthree"
