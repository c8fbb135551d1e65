"""The in-memory workspace: users, pages, databases, data sources, blocks, comments.

One `Workspace` holds every record behind a re-entrant lock: Starlette runs
handlers concurrently and the control API mutates the same records as the
integration does. Records are plain dataclasses; turning them into Notion's
JSON lives in `render.py`, and request validation in the pure modules.

Pages, databases and blocks share one id space (`nodes`) because Notion's
block endpoints accept all three: a child page *is* a `child_page` block of its
parent, and a database a `child_database` block.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from . import errors, properties, richtext
from .blocks import BlockSpec, update_payload
from .clock import Clock, SystemClock
from .ids import new_id, parse_id
from .index_lag import QueryIndex
from .records import (
    AsyncTask,
    Block,
    Comment,
    Database,
    DataSource,
    Node,
    Page,
    User,
)

EventSink = Callable[[str, dict[str, Any], list[dict[str, Any]], dict[str, Any]], None]

BOT_NAME = "Notion Factory Emulator"
PERSON_NAME = "Emulator Person"


def _ignore_event(*_: Any) -> None:
    return None


class Workspace:
    def __init__(self, clock: Clock | None = None, bot_name: str = BOT_NAME) -> None:
        self.clock: Clock = clock or SystemClock()
        self.lock = threading.RLock()
        self.bot = User(id=new_id(), name=bot_name, type="bot")
        self.workspace_id = new_id()
        self.workspace_name = "Emulator Workspace"
        self.on_event: EventSink = _ignore_event
        # seconds an edit takes to reach data source queries (the app reads its config)
        self.query_lag: Callable[[], float] = lambda: 0.0
        self.reset()

    # -- lifecycle ------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything but the bot; recreate the default person and root page."""
        with self.lock:
            self.users: dict[str, User] = {self.bot.id: self.bot}
            self.nodes: dict[str, Node] = {}
            self.data_sources: dict[str, DataSource] = {}
            self.comments: dict[str, Comment] = {}
            self.tasks: dict[str, AsyncTask] = {}
            self.workspace_children: list[str] = []
            self.index = QueryIndex()
            self.person = self.add_person(PERSON_NAME, "person@emulator.invalid")
            root = self._new_page(
                {"type": "workspace", "workspace": True},
                {"title": richtext.from_plain("Emulator root")},
                self.person.id,
            )
            self.root_id = root.id

    def now(self) -> datetime:
        return self.clock.now()

    def queried(self, page: Page) -> Page | None:
        """The version of a data source row its query sees now (see index_lag.py)."""
        return self.index.view(page, self.now(), self.query_lag())

    # -- lookups --------------------------------------------------------------

    def not_found(self, kind: str, id_: str) -> errors.NotionError:
        return errors.not_found(kind, id_, self.bot.name, self.bot.id)

    def user(self, user_id: str) -> User:
        found = self.users.get(user_id)
        if found is None:
            raise self.not_found("user", user_id)
        return found

    def page(self, page_id: str) -> Page:
        node = self.nodes.get(page_id)
        if not isinstance(node, Page):
            raise self.not_found("page", page_id)
        return node

    def database(self, database_id: str) -> Database:
        node = self.nodes.get(database_id)
        if not isinstance(node, Database):
            raise self.not_found("database", database_id)
        return node

    def data_source(self, data_source_id: str) -> DataSource:
        found = self.data_sources.get(data_source_id)
        if found is None:
            raise self.not_found("data_source", data_source_id)
        return found

    def node(self, block_id: str) -> Node:
        found = self.nodes.get(block_id)
        if found is None:
            raise self.not_found("block", block_id)
        return found

    def comment(self, comment_id: str) -> Comment:
        found = self.comments.get(comment_id)
        if found is None:
            raise self.not_found("comment", comment_id)
        return found

    def title_of(self, node: Node) -> str:
        if isinstance(node, Database):
            return richtext.plain_text(node.title)
        if isinstance(node, Page):
            # The title property's id is always "title", under a page or a data source.
            return richtext.plain_text(node.values.get("title", []))
        return ""

    def schema_of(self, page: Page) -> properties.Schema:
        if page.data_source_id is None:
            return {"title": {"id": "title", "name": "title", "type": "title", "title": {}}}
        return self.data_sources[page.data_source_id].schema

    def user_name(self, user_id: str) -> str | None:
        found = self.users.get(user_id)
        return found.name if found else None

    def live_children(self, container_id: str) -> list[Node]:
        container = self.nodes[container_id]
        return [self.nodes[c] for c in container.children if not self.nodes[c].in_trash]

    # -- users ----------------------------------------------------------------

    def add_person(
        self, name: str, email: str | None = None, avatar_url: str | None = None
    ) -> User:
        with self.lock:
            person_id = new_id()
            # People in a real workspace nearly always have a picture; bots do not.
            avatar = avatar_url or f"https://emulator.invalid/avatars/{person_id}.png"
            person = User(id=person_id, name=name, type="person", email=email, avatar_url=avatar)
            self.users[person.id] = person
            return person

    def add_bot(self, name: str) -> User:
        """Another integration's bot in the workspace: it can comment, it is no person."""
        with self.lock:
            bot = User(id=new_id(), name=name, type="bot")
            self.users[bot.id] = bot
            return bot

    # -- parents --------------------------------------------------------------

    def resolve_parent(self, raw: Any, path: str = "body.parent") -> dict[str, Any]:
        """A request `parent` to its response form, checking the target exists."""
        if not isinstance(raw, dict):
            raise errors.body_invalid(path, "should be an object", raw)
        kind = raw.get("type") or next(
            (
                k
                for k in ("data_source_id", "database_id", "page_id", "block_id", "workspace")
                if k in raw
            ),
            None,
        )
        if kind == "workspace":
            if raw.get("workspace") is not True:
                raise errors.body_invalid(f"{path}.workspace", "should be `true`", raw)
            return {"type": "workspace", "workspace": True}
        if kind not in ("data_source_id", "database_id", "page_id", "block_id"):
            raise errors.body_invalid(
                path,
                "should be defined as one of `page_id`, `database_id`, `data_source_id`, "
                "`workspace`",
                raw,
            )
        target = parse_id(raw.get(kind))
        if target is None:
            raise errors.body_invalid(f"{path}.{kind}", "should be a valid uuid", raw.get(kind))
        if kind == "data_source_id":
            ds = self.data_source(target)
            return {
                "type": "data_source_id",
                "data_source_id": ds.id,
                "database_id": ds.database_id,
            }
        if kind == "database_id":
            db = self.database(target)
            ds = self.data_sources[db.data_source_ids[0]]
            return {"type": "data_source_id", "data_source_id": ds.id, "database_id": db.id}
        if kind == "page_id":
            return {"type": "page_id", "page_id": self.page(target).id}
        return {"type": "block_id", "block_id": self.node(target).id}

    def _attach(self, node: Node) -> None:
        parent = node.parent
        if parent["type"] == "workspace":
            self.workspace_children.append(node.id)
        elif parent["type"] == "data_source_id":
            self.data_sources[parent["data_source_id"]].pages.append(node.id)
        else:
            self.nodes[parent[parent["type"]]].children.append(node.id)

    def _detach(self, node: Node) -> None:
        parent = node.parent
        if parent["type"] == "workspace":
            self.workspace_children.remove(node.id)
        elif parent["type"] == "data_source_id":
            self.data_sources[parent["data_source_id"]].pages.remove(node.id)
        else:
            self.nodes[parent[parent["type"]]].children.remove(node.id)

    def touch(self, node_id: str, actor: str) -> None:
        """Content edits bump the enclosing page's last edit, as Notion does."""
        current: Node | None = self.nodes.get(node_id)
        while current is not None:
            if isinstance(current, Page):
                self.index.before_edit(current, self.now(), self.query_lag())
            current.last_edited_time = self.now()
            current.last_edited_by = actor
            if isinstance(current, Page):
                return
            ref = current.parent
            current = self.nodes.get(ref.get(ref["type"])) if ref["type"] != "workspace" else None

    # -- pages ----------------------------------------------------------------

    def _new_page(self, parent: dict[str, Any], values: dict[str, Any], actor: str) -> Page:
        now = self.now()
        page = Page(
            id=new_id(),
            parent=parent,
            created_time=now,
            last_edited_time=now,
            created_by=actor,
            last_edited_by=actor,
            values=values,
            data_source_id=parent.get("data_source_id"),
        )
        self.nodes[page.id] = page
        self._attach(page)
        return page

    def _values(
        self, schema: properties.Schema, raw: Any, path: str, on_page_parent: bool
    ) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise errors.body_invalid(path, "should be an object", raw)
        out: dict[str, Any] = {}
        for key, value in raw.items():
            entry = properties.find(schema, key)
            if entry is None:
                raise errors.validation(f"{key} is not a property that exists.")
            out[entry["id"]] = properties.normalize_value(
                entry, value, f"{path}.{key}", lambda uid: uid in self.users
            )
        return out

    def create_page(
        self,
        parent_raw: Any,
        props_raw: Any,
        children: list[BlockSpec],
        actor: str,
        icon: Any = None,
        cover: Any = None,
    ) -> Page:
        with self.lock:
            parent = self.resolve_parent(parent_raw)
            if parent["type"] == "block_id":
                raise errors.body_invalid(
                    "body.parent", "should be a page, data source or database", parent_raw
                )
            ds_id = parent.get("data_source_id")
            if ds_id is not None:
                schema = self.data_sources[ds_id].schema
                values = self._values(schema, props_raw, "body.properties", False)
                for entry in schema.values():
                    # A new card starts in the status property's default ("Not started").
                    if entry["type"] == "status" and entry["id"] not in values:
                        values[entry["id"]] = properties.default_status(entry)
            else:
                page_schema = {
                    "title": {"id": "title", "name": "title", "type": "title", "title": {}}
                }
                values = self._values(page_schema, props_raw, "body.properties", True)
            page = self._new_page(parent, values, actor)
            page.icon = icon
            page.cover = cover
            self._insert_blocks(page.id, children, None, actor)
            self.on_event(
                "page.created",
                {"id": page.id, "type": "page"},
                [self.author(actor)],
                {"parent": self._event_parent(parent)},
            )
            return page

    def _event_parent(self, parent: dict[str, Any]) -> dict[str, Any]:
        if parent["type"] == "data_source_id":
            return {
                "id": parent["database_id"],
                "type": "database",
                "data_source_id": parent["data_source_id"],
            }
        if parent["type"] == "workspace":
            return {"id": self.workspace_id, "type": "space"}
        return {"id": parent[parent["type"]], "type": "page"}

    def author(self, user_id: str) -> dict[str, Any]:
        user = self.users.get(user_id)
        return {"id": user_id, "type": user.type if user else "person"}

    def update_page(
        self, page: Page, body: dict[str, Any], actor: str, path: str = "body"
    ) -> list[str]:
        """Apply a PATCH body; return ids of the properties whose value changed."""
        with self.lock:
            trash = body.get("in_trash", body.get("archived"))
            if page.in_trash and trash is not False and ("properties" in body):
                raise errors.archived_edit()
            self.index.before_edit(page, self.now(), self.query_lag())
            changed: list[str] = []
            if "properties" in body:
                schema = self.schema_of(page)
                values = self._values(
                    schema, body["properties"], f"{path}.properties", page.data_source_id is None
                )
                for pid, value in values.items():
                    if page.values.get(pid, properties.empty_value(schema[pid]["type"])) != value:
                        changed.append(pid)
                    page.values[pid] = value
            for key in ("icon", "cover"):
                if key in body:
                    setattr(page, key, body[key])
            if "is_locked" in body:
                page.is_locked = bool(body["is_locked"])
            if trash is not None:
                if not isinstance(trash, bool):
                    raise errors.body_invalid(f"{path}.in_trash", "should be a boolean", trash)
                page.in_trash = trash
            page.last_edited_time = self.now()
            page.last_edited_by = actor
            if changed:
                self.on_event(
                    "page.properties_updated",
                    {"id": page.id, "type": "page"},
                    [self.author(actor)],
                    {"parent": self._event_parent(page.parent), "updated_properties": changed},
                )
            return changed

    def move_page(self, page: Page, parent_raw: Any, actor: str) -> Page:
        with self.lock:
            parent = self.resolve_parent(parent_raw)
            if parent["type"] not in ("page_id", "data_source_id"):
                raise errors.body_invalid(
                    "body.parent", "should be a page or data source", parent_raw
                )
            self.index.before_edit(page, self.now(), self.query_lag())
            self._detach(page)
            page.parent = parent
            page.data_source_id = parent.get("data_source_id")
            if page.data_source_id is not None:
                title = page.values.get("title", [])
                page.values = {"title": title}
            self._attach(page)
            page.last_edited_time = self.now()
            page.last_edited_by = actor
            return page

    # -- databases and data sources --------------------------------------------

    def create_database(self, body: dict[str, Any], actor: str) -> Database:
        with self.lock:
            parent = self.resolve_parent(body.get("parent"))
            if parent["type"] not in ("page_id", "workspace"):
                raise errors.body_invalid(
                    "body.parent", "should be a page or the workspace", body.get("parent")
                )
            title = richtext.normalize(body.get("title", []), "body.title")
            initial = body.get("initial_data_source") or {}
            if not isinstance(initial, dict):
                raise errors.body_invalid(
                    "body.initial_data_source", "should be an object", initial
                )
            schema_raw = initial.get("properties") or {"Name": {"title": {}}}
            schema = properties.build_schema(schema_raw, "body.initial_data_source.properties")
            now = self.now()
            db = Database(
                id=new_id(),
                parent=parent,
                created_time=now,
                last_edited_time=now,
                created_by=actor,
                last_edited_by=actor,
                title=title,
                description=richtext.normalize(body.get("description", []), "body.description"),
                icon=body.get("icon"),
                cover=body.get("cover"),
                is_inline=bool(body.get("is_inline", False)),
            )
            self.nodes[db.id] = db
            self._attach(db)
            self._new_data_source(db, title, schema, actor, body.get("icon"))
            return db

    def _new_data_source(
        self,
        db: Database,
        title: list[dict[str, Any]],
        schema: properties.Schema,
        actor: str,
        icon: Any,
    ) -> DataSource:
        now = self.now()
        ds = DataSource(
            id=new_id(),
            database_id=db.id,
            title=title,
            schema=schema,
            created_time=now,
            last_edited_time=now,
            created_by=actor,
            last_edited_by=actor,
            icon=icon,
        )
        self.data_sources[ds.id] = ds
        db.data_source_ids.append(ds.id)
        return ds

    def create_data_source(self, body: dict[str, Any], actor: str) -> DataSource:
        with self.lock:
            parent = body.get("parent")
            db_id = parse_id(parent.get("database_id")) if isinstance(parent, dict) else None
            if db_id is None:
                raise errors.body_invalid(
                    "body.parent.database_id", "should be a valid uuid", parent
                )
            db = self.database(db_id)
            title = richtext.normalize(body.get("title", []), "body.title")
            schema = properties.build_schema(body.get("properties"), "body.properties")
            return self._new_data_source(db, title, schema, actor, body.get("icon"))

    def update_database(self, db: Database, body: dict[str, Any], actor: str) -> Database:
        with self.lock:
            if "title" in body:
                db.title = richtext.normalize(body["title"], "body.title")
            if "description" in body:
                db.description = richtext.normalize(body["description"], "body.description")
            for key in ("icon", "cover"):
                if key in body:
                    setattr(db, key, body[key])
            for key in ("is_inline", "is_locked"):
                if key in body:
                    setattr(db, key, bool(body[key]))
            trash = body.get("in_trash", body.get("archived"))
            if isinstance(trash, bool):
                db.in_trash = trash
            db.last_edited_time = self.now()
            db.last_edited_by = actor
            return db

    def update_data_source(self, ds: DataSource, body: dict[str, Any], actor: str) -> DataSource:
        with self.lock:
            if "title" in body:
                ds.title = richtext.normalize(body["title"], "body.title")
            if "description" in body:
                ds.description = richtext.normalize(body["description"], "body.description")
            if "icon" in body:
                ds.icon = body["icon"]
            if "properties" in body:
                old = ds.schema
                ds.schema = properties.update_schema(old, body["properties"], "body.properties")
                # A property whose type changed (or that is gone) loses its values, as on
                # Notion: the stored payloads have the old type's shape.
                stale = [
                    pid for pid in old if ds.schema.get(pid, {}).get("type") != old[pid]["type"]
                ]
                for page_id in ds.pages:
                    page = self.nodes[page_id]
                    if isinstance(page, Page):
                        for pid in stale:
                            page.values.pop(pid, None)
            trash = body.get("in_trash", body.get("archived"))
            if trash is not None:
                if not isinstance(trash, bool):
                    raise errors.body_invalid("body.in_trash", "should be a boolean", trash)
                ds.in_trash = trash
            ds.last_edited_time = self.now()
            ds.last_edited_by = actor
            return ds

    # -- blocks ---------------------------------------------------------------

    def _insert_blocks(
        self,
        container_id: str,
        specs: list[BlockSpec],
        after: str | None,
        actor: str,
        at_start: bool = False,
    ) -> list[Block]:
        container = self.nodes[container_id]
        kind = "page_id" if isinstance(container, Page) else "block_id"
        position = 0 if at_start else len(container.children)
        if after is not None:
            if after not in container.children:
                raise errors.validation(
                    f"Could not find block with ID: {after} among the children of {container_id}."
                )
            position = container.children.index(after) + 1
        made: list[Block] = []
        now = self.now()
        for spec in specs:
            block = Block(
                id=new_id(),
                parent={"type": kind, kind: container_id},
                created_time=now,
                last_edited_time=now,
                created_by=actor,
                last_edited_by=actor,
                type=spec.type,
                payload=spec.payload,
            )
            self.nodes[block.id] = block
            container.children.insert(position, block.id)
            position += 1
            self._insert_blocks(block.id, spec.children, None, actor)
            made.append(block)
        return made

    def append_blocks(
        self,
        container_id: str,
        specs: list[BlockSpec],
        after: str | None,
        actor: str,
        at_start: bool = False,
    ) -> list[Block]:
        with self.lock:
            container = self.node(container_id)
            if isinstance(container, Database):
                raise errors.validation("Cannot append children to a database.")
            if container.in_trash:
                raise errors.archived_edit()
            made = self._insert_blocks(container.id, specs, after, actor, at_start)
            self.touch(container.id, actor)
            return made

    def update_block(self, node: Node, body: dict[str, Any], actor: str) -> Node:
        with self.lock:
            trash = body.get("in_trash", body.get("archived"))
            if isinstance(node, Block):
                if node.type in body:
                    if node.in_trash and trash is not False:
                        raise errors.archived_edit()
                    node.payload = update_payload(
                        node.type, node.payload, body[node.type], f"body.{node.type}"
                    )
                else:
                    others = [k for k in body if k not in ("in_trash", "archived", "type")]
                    if others:
                        raise errors.body_invalid(
                            f"body.{others[0]}", f"should be `{node.type}`", body[others[0]]
                        )
            if trash is not None:
                if not isinstance(trash, bool):
                    raise errors.body_invalid("body.in_trash", "should be a boolean", trash)
                node.in_trash = trash
            self.touch(node.id, actor)
            return node

    def delete_block(self, node: Node, actor: str) -> Node:
        with self.lock:
            if node.in_trash:
                raise errors.archived_edit()
            node.in_trash = True
            node.last_edited_by = actor
            if node.parent["type"] != "workspace":
                self.touch(node.parent[node.parent["type"]], actor)
            return node

    def replace_content(self, page: Page, specs: list[BlockSpec], actor: str) -> None:
        with self.lock:
            for child_id in page.children:
                child = self.nodes[child_id]
                if isinstance(child, Block):
                    child.in_trash = True
            page.children = [c for c in page.children if not isinstance(self.nodes[c], Block)]
            self._insert_blocks(page.id, specs, None, actor)
            self.touch(page.id, actor)

    # -- comments -------------------------------------------------------------

    def create_comment(
        self,
        page_or_block_id: str | None,
        discussion_id: str | None,
        rich_text: list[dict[str, Any]],
        actor: str,
    ) -> Comment:
        with self.lock:
            if discussion_id is not None:
                thread = [c for c in self.comments.values() if c.discussion_id == discussion_id]
                if not thread:
                    raise self.not_found("discussion", discussion_id)
                parent = thread[0].parent
            else:
                assert page_or_block_id is not None
                node = self.node(page_or_block_id)
                if isinstance(node, Page):
                    parent = {"type": "page_id", "page_id": node.id}
                else:
                    parent = {"type": "block_id", "block_id": node.id}
                discussion_id = new_id()
            now = self.now()
            comment = Comment(
                id=new_id(),
                parent=parent,
                discussion_id=discussion_id,
                created_time=now,
                last_edited_time=now,
                created_by=actor,
                rich_text=rich_text,
            )
            self.comments[comment.id] = comment
            page_id = parent.get("page_id") or parent.get("block_id")
            self.on_event(
                "comment.created",
                {"id": comment.id, "type": "comment"},
                [self.author(actor)],
                {"page_id": page_id, "parent": {"id": page_id, "type": parent["type"][:-3]}},
            )
            return comment

    def comments_of(self, block_id: str) -> list[Comment]:
        with self.lock:
            self.node(block_id)
            return [c for c in self.comments.values() if c.parent.get(c.parent["type"]) == block_id]

    # -- async tasks (markdown writes with allow_async) -------------------------

    def add_task(self, operation: str, result: dict[str, Any]) -> AsyncTask:
        with self.lock:
            task = AsyncTask(
                id=f"task_{uuid.uuid4().hex}",
                created_time=self.now(),
                operation=operation,
                result=result,
            )
            self.tasks[task.id] = task
            return task
