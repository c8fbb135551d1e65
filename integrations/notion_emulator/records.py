"""The records the workspace holds: plain dataclasses, rendered by render.py.

Pages, databases and blocks are `Node`s: they share one id space and one tree,
because Notion's block endpoints accept all three.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .properties import Schema


@dataclass(kw_only=True)
class User:
    id: str
    name: str
    type: str  # "person" | "bot"
    email: str | None = None
    avatar_url: str | None = None


@dataclass(kw_only=True)
class Node:
    id: str
    parent: dict[str, Any]  # already in response form
    created_time: datetime
    last_edited_time: datetime
    created_by: str
    last_edited_by: str
    in_trash: bool = False
    children: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class Page(Node):
    values: dict[str, Any] = field(default_factory=dict)  # property id -> payload
    icon: dict[str, Any] | None = None
    cover: dict[str, Any] | None = None
    is_locked: bool = False
    data_source_id: str | None = None


@dataclass(kw_only=True)
class Database(Node):
    title: list[dict[str, Any]]
    description: list[dict[str, Any]] = field(default_factory=list)
    icon: dict[str, Any] | None = None
    cover: dict[str, Any] | None = None
    is_inline: bool = False
    is_locked: bool = False
    data_source_ids: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class Block(Node):
    type: str
    payload: dict[str, Any]


@dataclass(kw_only=True)
class DataSource:
    id: str
    database_id: str
    title: list[dict[str, Any]]
    schema: Schema
    created_time: datetime
    last_edited_time: datetime
    created_by: str
    last_edited_by: str
    description: list[dict[str, Any]] = field(default_factory=list)
    icon: dict[str, Any] | None = None
    cover: dict[str, Any] | None = None
    in_trash: bool = False
    pages: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class Comment:
    id: str
    parent: dict[str, Any]
    discussion_id: str
    created_time: datetime
    last_edited_time: datetime
    created_by: str
    rich_text: list[dict[str, Any]]


@dataclass(kw_only=True)
class AsyncTask:
    id: str
    created_time: datetime
    operation: str
    result: dict[str, Any]
