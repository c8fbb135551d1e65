"""Search over shared pages and data sources, and the (empty) data source templates."""

from __future__ import annotations

from typing import Any

from .helpers import call, text


async def test_search_titles_objects_and_trash(api: Any, root: str) -> None:
    keep = await call(
        api.pages.create(parent={"page_id": root}, properties={"title": [text("Weekly report")]})
    )
    gone = await call(
        api.pages.create(parent={"page_id": root}, properties={"title": [text("Old report")]})
    )
    child = await call(
        api.pages.create(
            parent={"page_id": gone["id"]}, properties={"title": [text("report child")]}
        )
    )
    db = await call(api.databases.create(parent={"page_id": root}, title=[text("Reports")]))
    await call(api.blocks.delete(gone["id"]))

    found = await call(api.search(query="REPORT"))
    ids = {r["id"] for r in found["results"]}
    assert keep["id"] in ids and db["data_sources"][0]["id"] in ids
    assert gone["id"] not in ids and child["id"] not in ids  # under a trashed page

    only_pages = await call(
        api.search(query="report", filter={"property": "object", "value": "page"})
    )
    assert {r["object"] for r in only_pages["results"]} == {"page"}
    assert (await call(api.search(query="nothing like this")))["results"] == []


async def test_templates_list_is_empty(api: Any, root: str) -> None:
    db = await call(api.databases.create(parent={"page_id": root}, title=[text("T")]))
    got = await call(api.data_sources.list_templates(db["data_sources"][0]["id"]))
    assert got == {"templates": [], "has_more": False, "next_cursor": None}


async def test_custom_emojis_list_is_empty(api: Any) -> None:
    got = await call(api.custom_emojis.list())
    assert got["object"] == "list" and got["type"] == "custom_emoji" and got["results"] == []
