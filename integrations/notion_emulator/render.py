"""Workspace records to Notion's JSON objects (Notion-Version 2025-09-03).

Key sets and their order follow the recorded responses in
../shared/notion-recorded/interactions.json; the conformance suite checks them.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from . import properties, richtext
from .clock import iso_database, iso_millis, iso_minute
from .ids import compact
from .records import AsyncTask, Block, Comment, Database, DataSource, Node, Page, User
from .store import Workspace

APP_URL = "https://app.notion.com/p/"


def with_mentions(ws: Workspace, value: Any) -> Any:
    """Fill user mentions' `plain_text` ("@Name") from the workspace's current users.

    Rich text is validated without access to the workspace, so names are looked
    up when rendering, which also follows renames as Notion does.
    """
    if isinstance(value, list):
        return [with_mentions(ws, item) for item in value]
    if not isinstance(value, dict):
        return value
    mention = value.get("mention")
    if value.get("type") == "mention" and isinstance(mention, dict) and "user" in mention:
        name = ws.user_name(mention["user"]["id"]) or ""
        return {**value, "plain_text": f"@{name}"}
    return {key: with_mentions(ws, item) for key, item in value.items()}


def partial_user(user_id: str) -> dict[str, Any]:
    return {"object": "user", "id": user_id}


def user(ws: Workspace, found: User) -> dict[str, Any]:
    out: dict[str, Any] = {
        "object": "user",
        "id": found.id,
        "name": found.name,
        "avatar_url": found.avatar_url,
        "type": found.type,
    }
    if found.type == "bot":
        out["bot"] = {
            "owner": {"type": "workspace", "workspace": True},
            "workspace_name": ws.workspace_name,
            "workspace_id": ws.workspace_id,
            "workspace_limits": {"max_file_upload_size_in_bytes": 5242880},
        }
    else:
        out["person"] = {"email": found.email, "email_verified": True}
    return out


def list_envelope(results: list[Any], next_cursor: str | None, kind: str) -> dict[str, Any]:
    return {
        "object": "list",
        "results": results,
        "next_cursor": next_cursor,
        "has_more": next_cursor is not None,
        "type": kind,
        kind: {},
    }


def page_url(title: str, id_: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-")
    return f"{APP_URL}{slug + '-' if slug else ''}{compact(id_)}"


def property_value(ws: Workspace, page: Page, entry: dict[str, Any]) -> dict[str, Any]:
    kind = entry["type"]
    payload: Any
    if kind == "created_time":
        payload = iso_minute(page.created_time)
    elif kind == "last_edited_time":
        payload = iso_minute(page.last_edited_time)
    elif kind == "created_by":
        payload = user_or_partial(ws, page.created_by)
    elif kind == "last_edited_by":
        payload = user_or_partial(ws, page.last_edited_by)
    else:
        payload = copy.deepcopy(page.values.get(entry["id"], properties.empty_value(kind)))
        payload = properties.current_options(entry, payload)
        if kind == "people":
            payload = [user_or_partial(ws, uid) for uid in payload]
        elif kind in ("title", "rich_text"):
            payload = with_mentions(ws, payload)
    return {"id": entry["id"], "type": kind, kind: payload}


def user_or_partial(ws: Workspace, user_id: str) -> dict[str, Any]:
    found = ws.users.get(user_id)
    return user(ws, found) if found else partial_user(user_id)


def page_properties(ws: Workspace, page: Page) -> dict[str, Any]:
    return {entry["name"]: property_value(ws, page, entry) for entry in ws.schema_of(page).values()}


def page(ws: Workspace, found: Page) -> dict[str, Any]:
    return {
        "object": "page",
        "id": found.id,
        "created_time": iso_minute(found.created_time),
        "last_edited_time": iso_minute(found.last_edited_time),
        "created_by": partial_user(found.created_by),
        "last_edited_by": partial_user(found.last_edited_by),
        "cover": found.cover,
        "icon": found.icon,
        "parent": dict(found.parent),
        "in_trash": found.in_trash,
        "is_archived": found.in_trash,
        "is_locked": found.is_locked,
        "properties": page_properties(ws, found),
        "url": page_url(ws.title_of(found), found.id),
        "public_url": None,
        "archived": found.in_trash,
    }


def database(ws: Workspace, found: Database) -> dict[str, Any]:
    return {
        "object": "database",
        "id": found.id,
        "title": copy.deepcopy(found.title),
        "description": copy.deepcopy(found.description),
        "parent": dict(found.parent),
        "is_inline": found.is_inline,
        "in_trash": found.in_trash,
        "is_locked": found.is_locked,
        "created_time": iso_database(found.created_time),
        "last_edited_time": iso_database(found.last_edited_time),
        "data_sources": [
            {"id": ds_id, "name": richtext.plain_text(ws.data_sources[ds_id].title)}
            for ds_id in found.data_source_ids
        ],
        "icon": found.icon,
        "cover": found.cover,
        "url": page_url("", found.id),
        "public_url": None,
        "archived": found.in_trash,
    }


def data_source(ws: Workspace, found: DataSource) -> dict[str, Any]:
    db = ws.database(found.database_id)
    return {
        "object": "data_source",
        "id": found.id,
        "cover": found.cover,
        "icon": found.icon,
        "created_time": iso_minute(found.created_time),
        "created_by": partial_user(found.created_by),
        "last_edited_by": partial_user(found.last_edited_by),
        "last_edited_time": iso_minute(found.last_edited_time),
        "title": copy.deepcopy(found.title),
        "description": copy.deepcopy(found.description),
        "is_inline": db.is_inline,
        "properties": {e["name"]: copy.deepcopy(e) for e in found.schema.values()},
        "parent": {"type": "database_id", "database_id": db.id},
        "database_parent": dict(db.parent),
        "url": page_url("", db.id),
        "public_url": None,
        "in_trash": found.in_trash,
        "archived": found.in_trash,
    }


def block(ws: Workspace, node: Node) -> dict[str, Any]:
    """Any node seen through the block endpoints: blocks, child pages, child databases."""
    if isinstance(node, Block):
        kind, payload = node.type, with_mentions(ws, copy.deepcopy(node.payload))
    elif isinstance(node, Page):
        kind, payload = "child_page", {"title": ws.title_of(node)}
    else:
        kind, payload = "child_database", {"title": ws.title_of(node)}
    has_children = not isinstance(node, Database) and any(
        not ws.nodes[c].in_trash for c in node.children
    )
    parent = dict(node.parent)
    if parent["type"] == "data_source_id":
        parent = {"type": "database_id", "database_id": parent["database_id"]}
    return {
        "object": "block",
        "id": node.id,
        "parent": parent,
        "created_time": iso_minute(node.created_time),
        "last_edited_time": iso_minute(node.last_edited_time),
        "created_by": partial_user(node.created_by),
        "last_edited_by": partial_user(node.last_edited_by),
        "has_children": has_children,
        "in_trash": node.in_trash,
        "type": kind,
        kind: payload,
        "archived": node.in_trash,
    }


def comment(ws: Workspace, found: Comment) -> dict[str, Any]:
    author = ws.users.get(found.created_by)
    is_bot = author is not None and author.type == "bot"
    return {
        "object": "comment",
        "id": found.id,
        "parent": dict(found.parent),
        "discussion_id": found.discussion_id,
        "created_time": iso_minute(found.created_time),
        "last_edited_time": iso_minute(found.last_edited_time),
        "created_by": partial_user(found.created_by),
        "rich_text": with_mentions(ws, copy.deepcopy(found.rich_text)),
        "display_name": {
            "type": "integration" if is_bot else "user",
            "resolved_name": author.name if author else None,
        },
    }


def page_markdown(page_id: str, markdown: str, unknown: list[str]) -> dict[str, Any]:
    return {
        "object": "page_markdown",
        "id": page_id,
        "markdown": markdown,
        "truncated": False,
        "unknown_block_ids": unknown,
    }


def async_task(task: AsyncTask, finished: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "object": "async_task",
        "id": task.id,
        "status": "succeeded" if finished else "queued",
        "status_url": f"https://api.notion.com/v1/async_tasks/{task.id}",
        "created_time": iso_millis(task.created_time),
    }
    if not finished:
        out["poll_after_seconds"] = 2
    out["operation"] = {"surface": "rest", "name": task.operation}
    if finished:
        out["result"] = task.result
    return out


def property_item(ws: Workspace, page: Page, entry: dict[str, Any]) -> dict[str, Any]:
    """GET /v1/pages/{id}/properties/{property_id}: lists for text-like and people values."""
    value = property_value(ws, page, entry)
    kind = entry["type"]
    if kind in ("title", "rich_text", "people"):
        results = [
            {"object": "property_item", "type": kind, "id": entry["id"], kind: item}
            for item in value[kind]
        ]
        out = list_envelope(results, None, "property_item")
        out["property_item"] = {"id": entry["id"], "next_url": None, "type": kind, kind: {}}
        return out
    return {"object": "property_item", "id": entry["id"], "type": kind, kind: value[kind]}
