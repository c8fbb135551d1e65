"""Databases, data sources and queries: schema, filters, sorts, pagination, limits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from notion_client import APIErrorCode, APIResponseError
from notion_client.helpers import async_collect_paginated_api, collect_paginated_api

from integrations.notion_emulator.clock import ManualClock
from integrations.notion_emulator.server import EmulatorServer

from .helpers import call, control, text

SCHEMA = {
    "Name": {"title": {}},
    "State": {
        "select": {
            "options": [
                {"name": "Queued", "color": "blue"},
                {"name": "Running", "color": "yellow"},
                {"name": "Done", "color": "green"},
            ]
        }
    },
    "Status": {"status": {}},
    "Notes": {"rich_text": {}},
    "Done": {"checkbox": {}},
    "Points": {"number": {"format": "number"}},
    "Due": {"date": {}},
    "Tags": {"multi_select": {"options": [{"name": "a"}, {"name": "b"}]}},
    "Owner": {"people": {}},
    "Link": {"url": {}},
}


async def make_board(api: Any, root: str) -> tuple[dict[str, Any], str]:
    db = await call(
        api.databases.create(
            parent={"type": "page_id", "page_id": root},
            title=[text("Board")],
            initial_data_source={"properties": SCHEMA},
        )
    )
    return db, db["data_sources"][0]["id"]


async def add_card(api: Any, ds: str, name: str, **props: Any) -> dict[str, Any]:
    properties: dict[str, Any] = {"Name": {"title": [text(name)]}}
    properties.update(props)
    return await call(api.pages.create(parent={"data_source_id": ds}, properties=properties))


async def names(api: Any, ds: str, **query: Any) -> list[str]:
    found = await call(api.data_sources.query(ds, **query))
    return [p["properties"]["Name"]["title"][0]["plain_text"] for p in found["results"]]


async def test_database_and_data_source_objects(api: Any, root: str) -> None:
    db, ds_id = await make_board(api, root)
    assert db["object"] == "database"
    assert db["data_sources"] == [{"id": ds_id, "name": "Board"}]
    assert (await call(api.databases.retrieve(db["id"])))["id"] == db["id"]
    ds = await call(api.data_sources.retrieve(ds_id))
    assert ds["object"] == "data_source"
    assert ds["parent"] == {"type": "database_id", "database_id": db["id"]}
    assert ds["database_parent"] == {"type": "page_id", "page_id": root}
    props = ds["properties"]
    assert props["Name"]["id"] == "title"
    assert [o["name"] for o in props["State"]["select"]["options"]] == ["Queued", "Running", "Done"]
    assert props["State"]["select"]["options"][0]["color"] == "blue"
    assert {g["name"] for g in props["Status"]["status"]["groups"]} == {
        "To-do",
        "In progress",
        "Complete",
    }
    child = await call(api.blocks.retrieve(db["id"]))
    assert child["type"] == "child_database" and child["child_database"]["title"] == "Board"


async def test_update_data_source_schema(api: Any, root: str) -> None:
    _, ds_id = await make_board(api, root)
    updated = await call(
        api.data_sources.update(
            ds_id,
            title=[text("Renamed")],
            properties={"Points": {"name": "Score"}, "Link": None, "Extra": {"email": {}}},
        )
    )
    props = updated["properties"]
    assert "Score" in props and "Points" not in props and "Link" not in props
    assert props["Extra"]["type"] == "email"
    assert updated["title"][0]["plain_text"] == "Renamed"


async def test_card_properties_round_trip(api: Any, root: str, emulator: EmulatorServer) -> None:
    _, ds = await make_board(api, root)
    person = control(emulator, "POST", "/users", json={"name": "Lin"})
    card = await add_card(
        api,
        ds,
        "Card",
        State={"select": {"name": "Queued"}},
        Status={"status": {"name": "In progress"}},
        Notes={"rich_text": [text("note", italic=True)]},
        Done={"checkbox": True},
        Points={"number": 5},
        Due={"date": {"start": "2026-05-01"}},
        Tags={"multi_select": [{"name": "a"}, {"name": "new"}]},
        Owner={"people": [{"id": person["id"]}]},
        Link={"url": "https://example.com"},
    )
    p = card["properties"]
    assert card["parent"]["type"] == "data_source_id" and card["parent"]["data_source_id"] == ds
    assert p["State"]["select"]["name"] == "Queued" and p["State"]["select"]["color"] == "blue"
    assert p["Status"]["status"]["name"] == "In progress"
    assert p["Notes"]["rich_text"][0]["annotations"]["italic"] is True
    assert p["Done"]["checkbox"] is True and p["Points"]["number"] == 5
    assert p["Due"]["date"] == {"start": "2026-05-01", "end": None, "time_zone": None}
    assert [t["name"] for t in p["Tags"]["multi_select"]] == ["a", "new"]
    assert p["Owner"]["people"][0]["id"] == person["id"]
    assert p["Link"]["url"] == "https://example.com"
    empty = await add_card(api, ds, "Empty")
    e = empty["properties"]
    assert e["State"]["select"] is None and e["Tags"]["multi_select"] == []
    assert e["Done"]["checkbox"] is False and e["Due"]["date"] is None


async def test_property_errors(api: Any, root: str) -> None:
    _, ds = await make_board(api, root)
    for props in (
        {"Nope": {"rich_text": []}},
        {"Status": {"status": {"name": "Not a status"}}},
        {"Points": {"select": {"name": "x"}}},
    ):
        with pytest.raises(APIResponseError) as info:
            await add_card(api, ds, "Bad", **props)
        assert info.value.code == APIErrorCode.ValidationError


async def test_filters(api: Any, root: str) -> None:
    _, ds = await make_board(api, root)
    await add_card(
        api,
        ds,
        "alpha",
        State={"select": {"name": "Queued"}},
        Status={"status": {"name": "Done"}},
        Done={"checkbox": True},
        Points={"number": 1},
        Due={"date": {"start": "2026-01-10"}},
        Notes={"rich_text": [text("Urgent fix")]},
    )
    await add_card(
        api,
        ds,
        "beta",
        State={"select": {"name": "Running"}},
        Points={"number": 7},
        Due={"date": {"start": "2026-02-10T09:30:00.000Z"}},
    )
    await add_card(api, ds, "gamma", State={"select": {"name": "Queued"}}, Points={"number": 3})

    async def q(flt: dict[str, Any]) -> list[str]:
        return sorted(await names(api, ds, filter=flt))

    assert await q({"property": "State", "select": {"equals": "Queued"}}) == ["alpha", "gamma"]
    assert await q({"property": "State", "select": {"does_not_equal": "Queued"}}) == ["beta"]
    assert await q({"property": "Status", "status": {"equals": "Done"}}) == ["alpha"]
    assert await q({"property": "Notes", "rich_text": {"contains": "urgent"}}) == ["alpha"]
    assert await q({"property": "Notes", "rich_text": {"is_empty": True}}) == ["beta", "gamma"]
    assert await q({"property": "Name", "title": {"starts_with": "g"}}) == ["gamma"]
    assert await q({"property": "Name", "title": {"equals": "beta"}}) == ["beta"]
    assert await q({"property": "Done", "checkbox": {"equals": True}}) == ["alpha"]
    assert await q({"property": "Points", "number": {"greater_than": 2}}) == ["beta", "gamma"]
    assert await q({"property": "Points", "number": {"less_than_or_equal_to": 3}}) == [
        "alpha",
        "gamma",
    ]
    assert await q({"property": "Due", "date": {"on_or_after": "2026-02-01"}}) == ["beta"]
    assert await q({"property": "Due", "date": {"before": "2026-02-10T10:00:00Z"}}) == [
        "alpha",
        "beta",
    ]
    assert await q({"property": "Due", "date": {"is_empty": True}}) == ["gamma"]
    nested = {
        "or": [
            {"property": "State", "select": {"equals": "Running"}},
            {
                "and": [
                    {"property": "State", "select": {"equals": "Queued"}},
                    {"property": "Points", "number": {"greater_than": 2}},
                ]
            },
        ]
    }
    assert await q(nested) == ["beta", "gamma"]


async def test_filter_errors(api: Any, root: str) -> None:
    _, ds = await make_board(api, root)
    bad_filters = [
        {"property": "Missing", "select": {"equals": "x"}},
        {"property": "State", "number": {"equals": 1}},
        {"property": "Points", "number": {"equals": "1"}},
        {"and": [{"or": [{"and": [{"property": "Done", "checkbox": {"equals": True}}]}]}]},
    ]
    for flt in bad_filters:
        with pytest.raises(APIResponseError) as info:
            await call(api.data_sources.query(ds, filter=flt))
        assert info.value.code == APIErrorCode.ValidationError, flt


async def test_timestamp_filter_uses_minute_rounded_times(
    api: Any, root: str, emulator: EmulatorServer
) -> None:
    clock = ManualClock(datetime(2026, 6, 1, 8, 0, 10, tzinfo=UTC))
    emulator.workspace.clock = clock
    _, ds = await make_board(api, root)
    await add_card(api, ds, "early")
    clock.advance(40)  # 08:00:50, same minute
    await add_card(api, ds, "same-minute")
    clock.advance(60)  # 08:01:50
    late = await add_card(api, ds, "late")
    since = {
        "timestamp": "last_edited_time",
        "last_edited_time": {"on_or_after": "2026-06-01T08:00:30Z"},
    }
    # The 08:00:10 and 08:00:50 edits both read as 08:00:00, so both fall before 08:00:30:
    # exactly the boundary trap integrations must handle.
    assert await names(api, ds, filter=since) == ["late"]
    boundary = {
        "and": [
            {
                "timestamp": "last_edited_time",
                "last_edited_time": {"on_or_after": "2026-06-01T08:00:00Z"},
            },
            {"property": "Name", "title": {"does_not_equal": "late"}},
        ]
    }
    assert sorted(await names(api, ds, filter=boundary)) == ["early", "same-minute"]
    assert late["last_edited_time"] == "2026-06-01T08:01:00.000Z"
    created = {"timestamp": "created_time", "created_time": {"after": "2026-06-01T08:00:00Z"}}
    assert await names(api, ds, filter=created) == ["late"]


async def test_sorts(api: Any, root: str, emulator: EmulatorServer) -> None:
    clock = ManualClock(datetime(2026, 6, 1, 8, 0, tzinfo=UTC))
    emulator.workspace.clock = clock
    _, ds = await make_board(api, root)
    for name, state, points in (("c", "Done", 2), ("a", "Queued", None), ("b", "Running", 9)):
        clock.advance(60)
        await add_card(api, ds, name, State={"select": {"name": state}}, Points={"number": points})
    by_name = await names(api, ds, sorts=[{"property": "Name", "direction": "ascending"}])
    assert by_name == ["a", "b", "c"]
    # Select sorts follow the option order of the schema: Queued, Running, Done.
    by_state = await names(api, ds, sorts=[{"property": "State", "direction": "ascending"}])
    assert by_state == ["a", "b", "c"]
    by_points = await names(api, ds, sorts=[{"property": "Points", "direction": "descending"}])
    assert by_points == ["b", "c", "a"]  # empty values last
    newest = await names(api, ds, sorts=[{"timestamp": "created_time", "direction": "descending"}])
    assert newest == ["b", "a", "c"]


async def test_pagination_over_250_pages(api: Any, root: str) -> None:
    _, ds = await make_board(api, root)
    for i in range(260):
        await add_card(api, ds, f"card {i:03d}", Points={"number": i})
    first = await call(
        api.data_sources.query(ds, sorts=[{"property": "Points", "direction": "ascending"}])
    )
    assert len(first["results"]) == 100 and first["has_more"] is True
    collect = async_collect_paginated_api if hasattr(api, "aclose") else collect_paginated_api
    everything = await call(
        collect(
            api.data_sources.query,
            data_source_id=ds,
            page_size=70,
            sorts=[{"property": "Points", "direction": "ascending"}],
        )
    )
    assert [p["properties"]["Points"]["number"] for p in everything] == list(range(260))
    filtered = await call(
        collect(
            api.data_sources.query,
            data_source_id=ds,
            filter={"property": "Points", "number": {"greater_than_or_equal_to": 100}},
        )
    )
    assert len(filtered) == 160


async def test_page_size_over_100_is_rejected(api: Any, root: str) -> None:
    _, ds = await make_board(api, root)
    with pytest.raises(APIResponseError) as info:
        await call(api.data_sources.query(ds, page_size=101))
    assert info.value.code == APIErrorCode.ValidationError
    assert "page_size should be ≤ `100`, instead was `101`" in str(info.value)
    with pytest.raises(APIResponseError) as info:
        await call(api.blocks.children.list(root, page_size=101))
    assert info.value.code == APIErrorCode.ValidationError


async def test_trashed_pages_leave_queries(api: Any, root: str) -> None:
    _, ds = await make_board(api, root)
    card = await add_card(api, ds, "gone")
    await add_card(api, ds, "stays")
    await call(api.pages.update(card["id"], in_trash=True))
    assert await names(api, ds) == ["stays"]


async def test_unknown_ids_are_404(api: Any) -> None:
    missing = "11111111-2222-4333-8444-555555555555"
    for request in (
        lambda: api.databases.retrieve(missing),
        lambda: api.data_sources.retrieve(missing),
        lambda: api.data_sources.query(missing),
    ):
        with pytest.raises(APIResponseError) as info:
            await call(request())
        assert info.value.code == APIErrorCode.ObjectNotFound


async def test_status_defaults_and_option_changes(api: Any, root: str) -> None:
    _, ds = await make_board(api, root)
    card = await add_card(
        api, ds, "new", State={"select": {"name": "Queued"}}, Points={"number": 4}
    )
    assert card["properties"]["Status"]["status"]["name"] == "Not started"
    schema = (await call(api.data_sources.retrieve(ds)))["properties"]
    queued = next(o for o in schema["State"]["select"]["options"] if o["name"] == "Queued")
    await call(
        api.data_sources.update(
            ds,
            properties={
                "State": {
                    "select": {"options": [{"id": queued["id"], "name": "Waiting", "color": "red"}]}
                },
                "Points": {"rich_text": {}},
            },
        )
    )
    got = (await call(api.pages.retrieve(card["id"])))["properties"]
    assert got["State"]["select"] == {"id": queued["id"], "name": "Waiting", "color": "red"}
    assert got["Points"] == {"id": got["Points"]["id"], "type": "rich_text", "rich_text": []}


async def test_page_parent_accepts_only_the_title(api: Any, root: str) -> None:
    with pytest.raises(APIResponseError) as info:
        await call(
            api.pages.create(parent={"page_id": root}, properties={"Name": {"title": [text("x")]}})
        )
    assert info.value.code == APIErrorCode.ValidationError


async def test_people_and_time_property_filters(
    api: Any, root: str, emulator: EmulatorServer
) -> None:
    clock = ManualClock(datetime(2026, 7, 1, 12, 0, tzinfo=UTC))
    emulator.workspace.clock = clock
    db = await call(
        api.databases.create(
            parent={"page_id": root},
            title=[text("People")],
            initial_data_source={
                "properties": {
                    "Name": {"title": {}},
                    "Owner": {"people": {}},
                    "Made": {"created_time": {}},
                    "By": {"created_by": {}},
                }
            },
        )
    )
    ds = db["data_sources"][0]["id"]
    person = control(emulator, "POST", "/users", json={"name": "Owner"})
    await add_card(api, ds, "mine", Owner={"people": [{"id": person["id"]}]})
    clock.advance(3600)
    await add_card(api, ds, "later")
    owned = {"property": "Owner", "people": {"contains": person["id"]}}
    assert await names(api, ds, filter=owned) == ["mine"]
    made = {"property": "Made", "created_time": {"after": "2026-07-01T12:30:00Z"}}
    assert await names(api, ds, filter=made) == ["later"]
    bot = emulator.workspace.bot.id
    by_bot = {"property": "By", "created_by": {"contains": bot}}
    assert sorted(await names(api, ds, filter=by_bot)) == ["later", "mine"]
    card = (await call(api.data_sources.query(ds)))["results"][0]["properties"]
    assert card["Made"]["created_time"].endswith(":00.000Z")
    assert card["By"]["created_by"]["id"] == bot


async def test_update_database_and_add_a_data_source(api: Any, root: str) -> None:
    db, first = await make_board(api, root)
    updated = await call(
        api.databases.update(
            db["id"], title=[text("Renamed board")], icon={"type": "emoji", "emoji": "🔥"}
        )
    )
    assert updated["title"][0]["plain_text"] == "Renamed board"
    assert updated["icon"] == {"type": "emoji", "emoji": "🔥"}
    second = await call(
        api.data_sources.create(
            parent={"type": "database_id", "database_id": db["id"]},
            title=[text("Second")],
            properties={"Title": {"title": {}}, "Count": {"number": {}}},
        )
    )
    listed = (await call(api.databases.retrieve(db["id"])))["data_sources"]
    assert [d["id"] for d in listed] == [first, second["id"]]
    card = await call(
        api.pages.create(
            parent={"data_source_id": second["id"]},
            properties={"Title": {"title": [text("x")]}, "Count": {"number": 2}},
        )
    )
    item = await call(api.pages.properties.retrieve(card["id"], card["properties"]["Count"]["id"]))
    assert item == {
        "object": "property_item",
        "id": card["properties"]["Count"]["id"],
        "type": "number",
        "number": 2,
        "request_id": item["request_id"],
    }
    # A database parent resolves to its first data source, as in 2025-09-03.
    via_db = await call(
        api.pages.create(
            parent={"database_id": db["id"]}, properties={"Name": {"title": [text("y")]}}
        )
    )
    assert via_db["parent"] == {
        "type": "data_source_id",
        "data_source_id": first,
        "database_id": db["id"],
    }
    trashed = await call(api.data_sources.update(second["id"], in_trash=True))
    assert trashed["in_trash"] is True


async def test_concurrent_writers_do_not_lose_cards(
    anotion: Any, root: str, emulator: EmulatorServer
) -> None:
    _, ds = await make_board(anotion, root)
    await asyncio.gather(*(add_card(anotion, ds, f"c{i}") for i in range(60)))
    found = await async_collect_paginated_api(anotion.data_sources.query, data_source_id=ds)
    assert sorted(p["properties"]["Name"]["title"][0]["plain_text"] for p in found) == sorted(
        f"c{i}" for i in range(60)
    )
