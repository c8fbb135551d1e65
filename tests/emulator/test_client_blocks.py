"""Blocks: every supported type, rich text, nesting, pagination, update/delete, limits."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from notion_client import APIErrorCode, APIResponseError

from integrations.notion_emulator.server import EmulatorServer

from .helpers import call, text

ALL_TYPES: list[dict[str, Any]] = [
    {"paragraph": {"rich_text": [text("plain "), text("bold", bold=True)]}},
    {"heading_1": {"rich_text": [text("H1")]}},
    {"heading_2": {"rich_text": [text("H2")]}},
    {"heading_3": {"rich_text": [text("H3")]}},
    {"bulleted_list_item": {"rich_text": [text("bullet")]}},
    {"numbered_list_item": {"rich_text": [text("number")]}},
    {"to_do": {"rich_text": [text("task")], "checked": True}},
    {"code": {"rich_text": [text("print(1)")], "language": "python"}},
    {"quote": {"rich_text": [text("quoted", italic=True)]}},
    {"callout": {"rich_text": [text("note")], "icon": {"type": "emoji", "emoji": "⚠️"}}},
    {"divider": {}},
    {
        "toggle": {
            "rich_text": [text("more")],
            "children": [{"paragraph": {"rich_text": [text("hidden")]}}],
        }
    },
]


async def new_page(api: Any, root: str) -> str:
    page = await call(api.pages.create(parent={"page_id": root}, properties={}))
    return page["id"]


def paragraph(content: str) -> dict[str, Any]:
    return {"paragraph": {"rich_text": [text(content)]}}


async def expect_validation(request: Any, fragment: str = "") -> str:
    """`request` is a thunk: the sync client would raise before `pytest.raises` otherwise."""
    with pytest.raises(APIResponseError) as info:
        await call(request())
    assert info.value.code == APIErrorCode.ValidationError
    assert fragment in str(info.value)
    return str(info.value)


async def test_append_every_supported_type(api: Any, root: str) -> None:
    page = await new_page(api, root)
    made = await call(api.blocks.children.append(page, children=ALL_TYPES))
    kinds = [b["type"] for b in made["results"]]
    assert kinds == [next(iter(b)) for b in ALL_TYPES]
    by_type = {b["type"]: b for b in made["results"]}
    para = by_type["paragraph"]["paragraph"]["rich_text"]
    assert [r["annotations"]["bold"] for r in para] == [False, True]
    assert para[1]["plain_text"] == "bold" and para[1]["href"] is None
    assert by_type["to_do"]["to_do"]["checked"] is True
    assert by_type["code"]["code"]["language"] == "python"
    assert by_type["callout"]["callout"]["icon"]["emoji"] == "⚠️"
    assert by_type["divider"]["divider"] == {}
    toggle = by_type["toggle"]
    assert toggle["has_children"] is True
    inner = await call(api.blocks.children.list(toggle["id"]))
    assert inner["results"][0]["paragraph"]["rich_text"][0]["plain_text"] == "hidden"
    assert inner["results"][0]["parent"] == {"type": "block_id", "block_id": toggle["id"]}


async def test_links_mentions_equations(api: Any, root: str) -> None:
    page = await new_page(api, root)
    rich = [
        {"text": {"content": "site", "link": {"url": "https://example.com"}}},
        {"equation": {"expression": "E = mc^2"}},
        {"mention": {"type": "date", "date": {"start": "2022-12-16"}}},
    ]
    made = await call(
        api.blocks.children.append(page, children=[{"paragraph": {"rich_text": rich}}])
    )
    items = made["results"][0]["paragraph"]["rich_text"]
    assert items[0]["href"] == "https://example.com"
    assert items[0]["text"]["link"] == {"url": "https://example.com"}
    assert items[1]["plain_text"] == "E = mc^2"
    assert items[2]["mention"]["date"] == {"start": "2022-12-16", "end": None, "time_zone": None}


async def test_children_pagination_and_after(api: Any, root: str) -> None:
    page = await new_page(api, root)
    await call(api.blocks.children.append(page, children=[paragraph(f"p{i}") for i in range(5)]))
    seen: list[str] = []
    cursor = None
    while True:
        chunk = await call(api.blocks.children.list(page, page_size=2, start_cursor=cursor))
        seen += [b["paragraph"]["rich_text"][0]["plain_text"] for b in chunk["results"]]
        if not chunk["has_more"]:
            break
        cursor = chunk["next_cursor"]
    assert seen == [f"p{i}" for i in range(5)]
    first = (await call(api.blocks.children.list(page)))["results"][0]["id"]
    await call(api.blocks.children.append(page, children=[paragraph("inserted")], after=first))
    listed = await call(api.blocks.children.list(page))
    texts = [b["paragraph"]["rich_text"][0]["plain_text"] for b in listed["results"]]
    assert texts[:3] == ["p0", "inserted", "p1"]


async def test_retrieve_update_delete(api: Any, root: str) -> None:
    page = await new_page(api, root)
    made = await call(api.blocks.children.append(page, children=[paragraph("before")]))
    block_id = made["results"][0]["id"]
    got = await call(api.blocks.retrieve(block_id))
    assert got["parent"] == {"type": "page_id", "page_id": page}
    updated = await call(
        api.blocks.update(
            block_id,
            paragraph={"rich_text": [text("after", bold=True)], "color": "red_background"},
        )
    )
    assert updated["paragraph"]["rich_text"][0]["plain_text"] == "after"
    assert updated["paragraph"]["color"] == "red_background"
    deleted = await call(api.blocks.delete(block_id))
    assert deleted["in_trash"] is True and deleted["archived"] is True
    assert (await call(api.blocks.children.list(page)))["results"] == []
    assert (await call(api.blocks.retrieve(block_id)))["in_trash"] is True
    restored = await call(api.blocks.update(block_id, archived=False))
    assert restored["in_trash"] is False
    page_as_block = await call(api.blocks.delete(page))
    assert page_as_block["type"] == "child_page"
    assert (await call(api.pages.retrieve(page)))["in_trash"] is True


async def test_unknown_block_is_404(api: Any) -> None:
    with pytest.raises(APIResponseError) as info:
        await call(api.blocks.children.list("abcdefab-cdef-4bcd-8fab-cdefabcdefab"))
    assert info.value.code == APIErrorCode.ObjectNotFound


async def test_limits(api: Any, root: str) -> None:
    page = await new_page(api, root)
    await expect_validation(
        lambda: api.blocks.children.append(page, children=[paragraph("x" * 2001)]),
        "body.children[0].paragraph.rich_text[0].text.content.length should be ≤ `2000`, "
        "instead was `2001`",
    )
    await call(api.blocks.children.append(page, children=[paragraph("x" * 2000)]))
    await expect_validation(
        lambda: api.blocks.children.append(page, children=[paragraph("p")] * 101),
        "body.children.length should be ≤ `100`, instead was `101`",
    )
    await expect_validation(
        lambda: api.blocks.children.append(
            page, children=[{"paragraph": {"rich_text": [text("a")] * 101}}]
        ),
        "rich_text.length should be ≤ `100`",
    )
    await expect_validation(
        lambda: api.blocks.children.append(
            page,
            children=[
                {
                    "paragraph": {
                        "rich_text": [{"text": {"content": "l", "link": {"url": "u" * 2001}}}]
                    }
                }
            ],
        ),
        "link.url.length should be ≤ `2000`",
    )
    three_levels = {
        "toggle": {
            "rich_text": [],
            "children": [
                {
                    "toggle": {
                        "rich_text": [],
                        "children": [
                            {"toggle": {"rich_text": [], "children": [paragraph("deep")]}}
                        ],
                    }
                }
            ],
        }
    }
    await expect_validation(lambda: api.blocks.children.append(page, children=[three_levels]))
    over_1000 = [
        {
            "toggle": {
                "rich_text": [],
                "children": [{"toggle": {"rich_text": [], "children": [paragraph("x")] * 100}}] * 5,
            }
        }
    ] * 2
    await expect_validation(lambda: api.blocks.children.append(page, children=over_1000), "1000")


def test_body_over_500kb_is_rejected(emulator: EmulatorServer, root: str) -> None:
    blocks = [paragraph("x" * 2000) for _ in range(100)]
    body = {"children": [{"toggle": {"rich_text": [], "children": blocks}}] * 3}
    raw = json.dumps(body).encode()
    assert len(raw) > 500 * 1024
    response = httpx.patch(
        f"{emulator.base_url}/v1/blocks/{root}/children",
        content=raw,
        headers={
            "Authorization": f"Bearer {emulator.token}",
            "Notion-Version": "2025-09-03",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


async def test_appending_bumps_page_last_edited(
    api: Any, root: str, emulator: EmulatorServer
) -> None:
    from datetime import UTC, datetime

    from integrations.notion_emulator.clock import ManualClock

    clock = ManualClock(datetime(2026, 2, 2, 2, 2, tzinfo=UTC))
    emulator.workspace.clock = clock
    page = await new_page(api, root)
    clock.advance(120)
    await call(api.blocks.children.append(page, children=[paragraph("x")]))
    assert (await call(api.pages.retrieve(page)))["last_edited_time"] == "2026-02-02T02:04:00.000Z"


async def test_a_mermaid_code_block_is_kept_and_an_unknown_language_refused(
    api: Any, root: str
) -> None:
    page = await new_page(api, root)
    diagram = 'flowchart TD\n    n0["a (action)"] -->|"done"| n1(["end (done)"])'
    code = {"code": {"rich_text": [text(diagram)], "language": "mermaid"}}
    made = await call(api.blocks.children.append(page, children=[code]))
    assert made["results"][0]["code"]["language"] == "mermaid"
    listed = await call(api.blocks.children.list(page))
    assert listed["results"][0]["code"]["rich_text"][0]["plain_text"] == diagram
    md = await call(api.pages.retrieve_markdown(page))
    assert f"```mermaid\n{diagram}\n```" in md["markdown"]
    refused = {"code": {"rich_text": [text("x")], "language": "klingon"}}
    message = await expect_validation(
        lambda: api.blocks.children.append(page, children=[refused]),
        "body.children[0].code.language should be",
    )
    assert '`"mermaid"`' in message and '"klingon"' in message
