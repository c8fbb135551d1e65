"""Pages: create, retrieve, update, trash, move, property items, times and authorship."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from notion_client import APIErrorCode, APIResponseError

from integrations.notion_emulator.clock import ManualClock
from integrations.notion_emulator.server import EmulatorServer

from .helpers import call, control, text


async def test_create_retrieve_update_page(api: Any, root: str, emulator: EmulatorServer) -> None:
    page = await call(
        api.pages.create(
            parent={"page_id": root},
            properties={"title": [text("Hello world")]},
            icon={"type": "emoji", "emoji": "🚀"},
        )
    )
    assert page["object"] == "page"
    assert page["parent"] == {"type": "page_id", "page_id": root}
    assert page["properties"]["title"]["title"][0]["plain_text"] == "Hello world"
    assert page["url"] == "https://app.notion.com/p/Hello-world-" + page["id"].replace("-", "")
    assert page["created_by"]["id"] == emulator.workspace.bot.id

    got = await call(api.pages.retrieve(page["id"].replace("-", "")))
    assert got["id"] == page["id"] and got["icon"] == {"type": "emoji", "emoji": "🚀"}

    updated = await call(
        api.pages.update(page["id"], properties={"title": [text("Renamed", bold=True)]})
    )
    title = updated["properties"]["title"]["title"][0]
    assert title["plain_text"] == "Renamed" and title["annotations"]["bold"] is True


async def test_workspace_parent(api: Any) -> None:
    page = await call(
        api.pages.create(
            parent={"type": "workspace", "workspace": True},
            properties={"title": [text("Top")]},
        )
    )
    assert page["parent"] == {"type": "workspace", "workspace": True}


async def test_trash_and_restore(api: Any, root: str) -> None:
    page = await call(api.pages.create(parent={"page_id": root}, properties={}))
    trashed = await call(api.pages.update(page["id"], in_trash=True))
    assert trashed["in_trash"] is True and trashed["archived"] is True
    with pytest.raises(APIResponseError) as info:
        await call(api.pages.update(page["id"], properties={"title": [text("x")]}))
    assert info.value.code == APIErrorCode.ValidationError
    restored = await call(api.pages.update(page["id"], archived=False))
    assert restored["in_trash"] is False
    children = await call(api.blocks.children.list(root))
    assert [c["id"] for c in children["results"]] == [page["id"]]
    assert children["results"][0]["type"] == "child_page"


async def test_unknown_page_is_404(api: Any) -> None:
    with pytest.raises(APIResponseError) as info:
        await call(api.pages.retrieve("00000000-0000-0000-0000-000000000000"))
    assert info.value.code == APIErrorCode.ObjectNotFound
    assert "Make sure the relevant pages and databases are shared" in str(info.value)
    assert info.value.additional_data == {
        "integration_id": info.value.additional_data["integration_id"]
    }


async def test_unknown_parent_is_404(api: Any) -> None:
    with pytest.raises(APIResponseError) as info:
        await call(
            api.pages.create(parent={"page_id": "0f0f0f0f0f0f4f0f8f0f0f0f0f0f0f0f"}, properties={})
        )
    assert info.value.code == APIErrorCode.ObjectNotFound


async def test_title_over_2000_chars_is_rejected(api: Any, root: str) -> None:
    with pytest.raises(APIResponseError) as info:
        await call(
            api.pages.create(parent={"page_id": root}, properties={"title": [text("x" * 2001)]})
        )
    assert info.value.code == APIErrorCode.ValidationError
    assert "should be ≤ `2000`, instead was `2001`" in str(info.value)


async def test_times_are_rounded_down_to_the_minute(
    api: Any, root: str, emulator: EmulatorServer
) -> None:
    clock = ManualClock(datetime(2026, 3, 4, 10, 15, 59, 999000, tzinfo=UTC))
    emulator.workspace.clock = clock
    page = await call(api.pages.create(parent={"page_id": root}, properties={}))
    assert page["created_time"] == "2026-03-04T10:15:00.000Z"
    clock.advance(0.002)  # crosses into 10:16
    edited = await call(api.pages.update(page["id"], icon={"type": "emoji", "emoji": "✅"}))
    assert edited["created_time"] == "2026-03-04T10:15:00.000Z"
    assert edited["last_edited_time"] == "2026-03-04T10:16:00.000Z"


async def test_person_edit_sets_last_edited_by(
    api: Any, root: str, emulator: EmulatorServer
) -> None:
    page = await call(api.pages.create(parent={"page_id": root}, properties={}))
    person = control(emulator, "POST", "/users", json={"name": "Grace"})
    control(
        emulator,
        "PATCH",
        f"/pages/{page['id']}",
        json={"properties": {"title": [text("By Grace")]}, "user_id": person["id"]},
    )
    got = await call(api.pages.retrieve(page["id"]))
    assert got["last_edited_by"] == {"object": "user", "id": person["id"]}
    assert got["created_by"]["id"] == emulator.workspace.bot.id


async def test_move_and_property_item(api: Any, root: str) -> None:
    target = await call(api.pages.create(parent={"page_id": root}, properties={}))
    page = await call(
        api.pages.create(parent={"page_id": root}, properties={"title": [text("Mover")]})
    )
    moved = await call(api.pages.move(page["id"], parent={"page_id": target["id"]}))
    assert moved["parent"]["page_id"] == target["id"]
    item = await call(api.pages.properties.retrieve(page["id"], "title"))
    assert item["object"] == "list" and item["results"][0]["title"]["plain_text"] == "Mover"
