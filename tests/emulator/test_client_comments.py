"""Comments: create, list oldest first with pagination, threads, person comments, errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from notion_client import APIErrorCode, APIResponseError

from integrations.notion_emulator.clock import ManualClock
from integrations.notion_emulator.server import EmulatorServer

from .helpers import call, control, text


async def test_create_get_list(api: Any, root: str, emulator: EmulatorServer) -> None:
    made = await call(
        api.comments.create(parent={"page_id": root}, rich_text=[text("hello", bold=True)])
    )
    assert made["object"] == "comment"
    assert made["parent"] == {"type": "page_id", "page_id": root}
    assert made["created_by"] == {"object": "user", "id": emulator.workspace.bot.id}
    assert made["display_name"]["type"] == "integration"
    got = await call(api.comments.retrieve(made["id"]))
    assert got["rich_text"][0]["annotations"]["bold"] is True
    listed = await call(api.comments.list(block_id=root))
    assert listed["type"] == "comment" and [c["id"] for c in listed["results"]] == [made["id"]]


async def test_oldest_first_with_pagination(api: Any, root: str, emulator: EmulatorServer) -> None:
    clock = ManualClock(datetime(2026, 4, 1, 9, 0, tzinfo=UTC))
    emulator.workspace.clock = clock
    person = control(emulator, "POST", "/users", json={"name": "Reviewer"})
    for i in range(130):
        clock.advance(30)
        if i % 2:
            control(
                emulator,
                "POST",
                "/comments",
                json={"page_id": root, "text": f"c{i}", "user_id": person["id"]},
            )
        else:
            await call(api.comments.create(parent={"page_id": root}, rich_text=[text(f"c{i}")]))
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        chunk = await call(api.comments.list(block_id=root, start_cursor=cursor))
        assert len(chunk["results"]) <= 100
        seen += chunk["results"]
        if not chunk["has_more"]:
            break
        cursor = chunk["next_cursor"]
    assert [c["rich_text"][0]["plain_text"] for c in seen] == [f"c{i}" for i in range(130)]
    assert [c["created_time"] for c in seen] == sorted(c["created_time"] for c in seen)
    authors = {c["created_by"]["id"] for c in seen}
    assert authors == {person["id"], emulator.workspace.bot.id}
    person_comment = seen[1]
    assert person_comment["display_name"] == {"type": "user", "resolved_name": "Reviewer"}


async def test_reply_in_discussion_and_markdown_body(api: Any, root: str) -> None:
    first = await call(api.comments.create(parent={"page_id": root}, rich_text=[text("q?")]))
    reply = await call(
        api.comments.create(discussion_id=first["discussion_id"], markdown="**yes**")
    )
    assert reply["discussion_id"] == first["discussion_id"]
    assert reply["parent"] == first["parent"]
    assert reply["rich_text"][0]["annotations"]["bold"] is True


async def test_comment_errors(api: Any, root: str) -> None:
    missing = "99999999-9999-4999-8999-999999999999"
    with pytest.raises(APIResponseError) as info:
        await call(api.comments.create(parent={"page_id": missing}, rich_text=[text("x")]))
    assert info.value.code == APIErrorCode.ObjectNotFound
    with pytest.raises(APIResponseError) as info:
        await call(api.comments.retrieve(missing))
    assert info.value.code == APIErrorCode.ObjectNotFound
    with pytest.raises(APIResponseError) as info:
        await call(api.comments.create(parent={"page_id": root}, rich_text=[text("x" * 2001)]))
    assert info.value.code == APIErrorCode.ValidationError
    with pytest.raises(APIResponseError) as info:
        await call(api.comments.list(block_id=root, page_size=101))
    assert info.value.code == APIErrorCode.ValidationError


async def test_update_and_delete_own_comment(api: Any, root: str) -> None:
    made = await call(api.comments.create(parent={"page_id": root}, rich_text=[text("v1")]))
    updated = await call(api.comments.update(made["id"], rich_text=[text("v2")]))
    assert updated["rich_text"][0]["plain_text"] == "v2"
    await call(api.comments.delete(made["id"]))
    assert (await call(api.comments.list(block_id=root)))["results"] == []


async def test_no_new_discussion_on_a_block(api: Any, root: str) -> None:
    made = await call(
        api.blocks.children.append(root, children=[{"paragraph": {"rich_text": [text("b")]}}])
    )
    with pytest.raises(APIResponseError) as info:
        await call(
            api.comments.create(
                parent={"block_id": made["results"][0]["id"]}, rich_text=[text("x")]
            )
        )
    assert info.value.code == APIErrorCode.ValidationError


async def test_user_mentions_render_the_name(api: Any, root: str, emulator: EmulatorServer) -> None:
    person = control(emulator, "POST", "/users", json={"name": "Dana"})
    made = await call(
        api.comments.create(
            parent={"page_id": root},
            rich_text=[{"mention": {"user": {"id": person["id"]}}}, text(" please look")],
        )
    )
    assert made["rich_text"][0]["plain_text"] == "@Dana"
    assert made["rich_text"][0]["mention"] == {
        "type": "user",
        "user": {"object": "user", "id": person["id"]},
    }
