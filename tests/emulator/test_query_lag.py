"""Query index lag: with `query_lag_seconds` set, data source queries see each page as
it was before its edits younger than the lag; page reads are never stale."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import notion_client

from integrations.notion_emulator.clock import ManualClock
from integrations.notion_emulator.server import EmulatorServer

from .helpers import control, text
from .test_client_databases import SCHEMA

STARTED = datetime(2026, 6, 1, 8, 0, 10, tzinfo=UTC)


def board(notion: notion_client.Client, root: str) -> str:
    db: Any = notion.databases.create(
        parent={"type": "page_id", "page_id": root},
        title=[text("Board")],
        initial_data_source={"properties": SCHEMA},
    )
    return db["data_sources"][0]["id"]


def card(notion: notion_client.Client, ds: str, name: str, state: str) -> str:
    props = {"Name": {"title": [text(name)]}, "State": {"select": {"name": state}}}
    page: Any = notion.pages.create(parent={"data_source_id": ds}, properties=props)
    return page["id"]


def move(notion: notion_client.Client, page: str, state: str) -> None:
    notion.pages.update(page, properties={"State": {"select": {"name": state}}})


def rows(notion: notion_client.Client, ds: str, **query: Any) -> list[tuple[str, str, str]]:
    found: Any = notion.data_sources.query(ds, **query)
    return [
        (
            p["properties"]["Name"]["title"][0]["plain_text"],
            p["properties"]["State"]["select"]["name"],
            p["last_edited_time"][11:16],
        )
        for p in found["results"]
    ]


def in_state(state: str) -> dict[str, Any]:
    return {"property": "State", "select": {"equals": state}}


def test_queries_lag_behind_edits_and_page_reads_do_not(
    emulator: EmulatorServer, notion: notion_client.Client, root: str
) -> None:
    clock = ManualClock(STARTED)
    emulator.workspace.clock = clock
    ds = board(notion, root)
    old = card(notion, ds, "old", "Queued")
    clock.advance(120)  # 08:02:10
    control(emulator, "PUT", "/config", json={"query_lag_seconds": 30})
    move(notion, old, "Running")
    card(notion, ds, "new", "Queued")
    # the index still shows "old" as it was, by its old values and edit time, and not "new"
    assert rows(notion, ds) == [("old", "Queued", "08:00")]
    assert rows(notion, ds, filter=in_state("Queued")) == [("old", "Queued", "08:00")]
    assert rows(notion, ds, filter=in_state("Running")) == []
    page: Any = notion.pages.retrieve(old)
    assert page["properties"]["State"]["select"]["name"] == "Running"
    clock.advance(20)  # 08:02:30: a second edit, while the first is still unseen
    move(notion, old, "Done")
    clock.advance(15)  # 08:02:45: the first edit has reached the index, the second not
    assert sorted(rows(notion, ds)) == [("new", "Queued", "08:02"), ("old", "Running", "08:02")]
    clock.advance(30)  # 08:03:15: everything is visible
    assert rows(notion, ds, filter=in_state("Done")) == [("old", "Done", "08:02")]


def test_no_lag_by_default(
    emulator: EmulatorServer, notion: notion_client.Client, root: str
) -> None:
    assert control(emulator, "GET", "/config")["query_lag_seconds"] == 0
    emulator.workspace.clock = ManualClock(STARTED)
    ds = board(notion, root)
    page = card(notion, ds, "a", "Queued")
    move(notion, page, "Done")
    assert rows(notion, ds) == [("a", "Done", "08:00")]


def test_a_trashed_card_stays_in_queries_until_the_index_catches_up(
    emulator: EmulatorServer, notion: notion_client.Client, root: str
) -> None:
    clock = ManualClock(STARTED)
    emulator.workspace.clock = clock
    control(emulator, "PUT", "/config", json={"query_lag_seconds": 10})
    ds = board(notion, root)
    page = card(notion, ds, "a", "Queued")
    clock.advance(11)
    notion.pages.update(page, in_trash=True)
    assert rows(notion, ds) == [("a", "Queued", "08:00")]
    clock.advance(11)
    assert rows(notion, ds) == []
