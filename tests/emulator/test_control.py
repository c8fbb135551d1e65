"""The /_emulator/ control API and the events the emulator emits."""

from __future__ import annotations

import time
from typing import Any

import httpx
import notion_client
import pytest

from integrations.notion_emulator.server import EmulatorServer

from .helpers import control, text


@pytest.fixture
def events(emulator: EmulatorServer) -> Any:
    """Record what the workspace hands to the webhook emitter."""
    seen: list[tuple[str, dict[str, Any], list[dict[str, Any]], dict[str, Any]]] = []
    ws = emulator.workspace
    original = ws.on_event
    ws.on_event = lambda *event: seen.append(event)  # type: ignore[assignment]
    yield seen
    ws.on_event = original


def test_root_page_exists_and_is_shared(emulator: EmulatorServer, notion: Any) -> None:
    root = control(emulator, "GET", "/root")["page_id"]
    page = notion.pages.retrieve(root)
    assert page["parent"] == {"type": "workspace", "workspace": True}


def test_control_api_needs_no_auth_and_v1_does(emulator: EmulatorServer) -> None:
    assert httpx.get(f"{emulator.base_url}/_emulator/root").status_code == 200
    assert httpx.get(f"{emulator.base_url}/v1/users/me").status_code == 401


def test_reset_forgets_everything(emulator: EmulatorServer, notion: Any, root: str) -> None:
    page = notion.pages.create(parent={"page_id": root}, properties={})
    new_root = control(emulator, "POST", "/reset")["page_id"]
    assert new_root != root
    with pytest.raises(notion_client.APIResponseError):
        notion.pages.retrieve(page["id"])
    stats = control(emulator, "GET", "/stats")
    assert stats["total"] == 1  # the failed retrieve above, counted after the reset


def test_stats_count_by_template(emulator: EmulatorServer, notion: Any, root: str) -> None:
    notion.pages.retrieve(root)
    notion.pages.retrieve(root.replace("-", ""))
    notion.users.me()
    stats = control(emulator, "GET", "/stats")
    assert stats["requests"]["GET /v1/pages/{page_id}"] == 2
    assert stats["requests"]["GET /v1/users/me"] == 1
    assert stats["total"] == 3
    assert "webhooks" in stats


def test_config_round_trip_and_errors(emulator: EmulatorServer) -> None:
    cfg = control(emulator, "PUT", "/config", json={"latency_ms": 1, "seed": 7})
    assert cfg["latency_ms"] == 1 and cfg["seed"] == 7
    bad = httpx.put(f"{emulator.base_url}/_emulator/config", json={"fault_rate": 3})
    assert bad.status_code == 400 and "fault_rate" in bad.json()["message"]


def test_faults_reach_the_client(emulator: EmulatorServer) -> None:
    control(emulator, "PUT", "/config", json={"fault_rate": 1.0, "fault_statuses": [503]})
    client = notion_client.Client(auth=emulator.token, base_url=emulator.base_url, retry=False)
    with pytest.raises(notion_client.APIResponseError) as info:
        client.users.me()
    assert info.value.status == 503
    assert control(emulator, "GET", "/stats")["faults"] == {"503": 1}


def test_person_comment_and_edit_emit_events(
    emulator: EmulatorServer, notion: Any, root: str, events: list[Any]
) -> None:
    person = control(emulator, "POST", "/users", json={"name": "Pat"})
    db = notion.databases.create(
        parent={"page_id": root},
        title=[text("Board")],
        initial_data_source={
            "properties": {"Name": {"title": {}}, "State": {"select": {"options": [{"name": "A"}]}}}
        },
    )
    ds = db["data_sources"][0]["id"]
    card = notion.pages.create(
        parent={"data_source_id": ds}, properties={"Name": {"title": [text("card")]}}
    )
    edited = control(
        emulator,
        "PATCH",
        f"/pages/{card['id']}",
        json={"properties": {"State": {"select": {"name": "A"}}}, "user_id": person["id"]},
    )
    assert edited["last_edited_by"]["id"] == person["id"]
    comment = control(
        emulator,
        "POST",
        "/comments",
        json={"page_id": card["id"], "text": "please redo", "user_id": person["id"]},
    )
    assert comment["created_by"]["id"] == person["id"]
    notion.comments.create(parent={"page_id": card["id"]}, rich_text=[text("ok")])

    kinds = [(e[0], e[2][0]["type"]) for e in events]
    assert kinds == [
        ("page.created", "bot"),
        ("page.properties_updated", "person"),
        ("comment.created", "person"),
        ("comment.created", "bot"),
    ]
    state_id = notion.data_sources.retrieve(ds)["properties"]["State"]["id"]
    assert events[1][3]["updated_properties"] == [state_id]
    assert events[1][1] == {"id": card["id"], "type": "page"}
    assert events[2][3]["page_id"] == card["id"]


def test_unchanged_properties_emit_nothing(
    emulator: EmulatorServer, notion: Any, root: str, events: list[Any]
) -> None:
    page = notion.pages.create(parent={"page_id": root}, properties={"title": [text("same")]})
    notion.pages.update(page["id"], properties={"title": [text("same")]})
    assert [e[0] for e in events] == ["page.created"]


def test_control_errors_use_notion_bodies(emulator: EmulatorServer) -> None:
    missing = "12345678-1234-4234-8234-123456789012"
    response = httpx.post(
        f"{emulator.base_url}/_emulator/comments", json={"page_id": missing, "text": "x"}
    )
    assert response.status_code == 404 and response.json()["code"] == "object_not_found"


def test_a_write_held_past_the_client_timeout_still_happens(
    emulator: EmulatorServer, root: str
) -> None:
    control(emulator, "PUT", "/config", json={"timeout_rate": 1.0, "timeout_seconds": 0.4})
    client = notion_client.Client(
        auth=emulator.token, base_url=emulator.base_url, timeout_ms=100, retry=False
    )
    with pytest.raises(notion_client.errors.RequestTimeoutError):
        client.pages.create(parent={"page_id": root}, properties={"title": [text("late")]})
    control(emulator, "PUT", "/config", json={"timeout_rate": 0.0})
    deadline = time.monotonic() + 3
    titles: list[str] = []
    while time.monotonic() < deadline and "late" not in titles:
        time.sleep(0.05)
        kids = notion_client.Client(auth=emulator.token, base_url=emulator.base_url)
        listed = kids.blocks.children.list(root)["results"]
        titles = [b["child_page"]["title"] for b in listed if b["type"] == "child_page"]
    assert titles == ["late"]


def test_person_adds_a_card(
    emulator: EmulatorServer, notion: Any, root: str, events: list[Any]
) -> None:
    db = notion.databases.create(parent={"page_id": root}, title=[text("Board")])
    ds = db["data_sources"][0]["id"]
    card = control(
        emulator,
        "POST",
        "/pages",
        json={"parent": {"data_source_id": ds}, "properties": {"Name": {"title": [text("t")]}}},
    )
    assert card["created_by"]["id"] == emulator.workspace.person.id
    found = notion.data_sources.query(ds)["results"]
    assert [p["id"] for p in found] == [card["id"]]
    assert events[-1][0] == "page.created" and events[-1][2] == [
        {"id": emulator.workspace.person.id, "type": "person"}
    ]


def test_toggleable_headings_take_children(notion: Any, root: str) -> None:
    made = notion.blocks.children.append(
        root,
        children=[
            {
                "heading_2": {
                    "rich_text": [text("Section")],
                    "is_toggleable": True,
                    "children": [{"paragraph": {"rich_text": [text("inside")]}}],
                }
            }
        ],
    )
    assert made["results"][0]["has_children"] is True
    with pytest.raises(notion_client.APIResponseError):
        notion.blocks.children.append(
            root,
            children=[{"heading_2": {"rich_text": [], "children": [{"divider": {}}]}}],
        )
