"""Pages: create, retrieve, update, move, property items, and the markdown endpoints."""

from __future__ import annotations

from typing import Any

from . import blocks, errors, markdown, properties, render, richtext
from .records import Block, Database, Page
from .routing import Ctx, Result, Route
from .store import Workspace

MARKDOWN_OPERATION = "PATCH /v1/pages/:page_id/markdown"


def _children_of_request(ctx: Ctx) -> list[blocks.BlockSpec]:
    body = ctx.body
    if "markdown" in body:
        if "children" in body:
            raise errors.validation("`markdown` and `children` cannot be used together.")
        if not isinstance(body["markdown"], str):
            raise errors.body_invalid("body.markdown", "should be a string", body["markdown"])
        return markdown.parse(body["markdown"])
    if "children" in body:
        return blocks.normalize_children(body["children"])
    return []


def create_page(ctx: Ctx) -> Result:
    specs = _children_of_request(ctx)
    props = ctx.body.get("properties")
    if "markdown" in ctx.body and not (isinstance(props, dict) and props):
        # Notion takes the first level-1 heading as the title when none is given.
        first_h1 = next((s for s in specs if s.type == "heading_1"), None)
        if first_h1 is not None:
            specs.remove(first_h1)
            props = {"title": first_h1.payload["rich_text"]}
    with ctx.ws.lock:
        page = ctx.ws.create_page(
            ctx.body.get("parent"),
            props,
            specs,
            ctx.actor,
            icon=ctx.body.get("icon"),
            cover=ctx.body.get("cover"),
        )
        return render.page(ctx.ws, page)


def get_page(ctx: Ctx) -> Result:
    with ctx.ws.lock:
        return render.page(ctx.ws, ctx.ws.page(ctx.params["page_id"]))


def update_page(ctx: Ctx) -> Result:
    with ctx.ws.lock:
        page = ctx.ws.page(ctx.params["page_id"])
        ctx.ws.update_page(page, ctx.body, ctx.actor)
        return render.page(ctx.ws, page)


def move_page(ctx: Ctx) -> Result:
    with ctx.ws.lock:
        page = ctx.ws.page(ctx.params["page_id"])
        return render.page(ctx.ws, ctx.ws.move_page(page, ctx.body.get("parent"), ctx.actor))


def get_property(ctx: Ctx) -> Result:
    with ctx.ws.lock:
        page = ctx.ws.page(ctx.params["page_id"])
        key = ctx.params["property_id"]
        entry = properties.find(ctx.ws.schema_of(page), key)
        if entry is None:
            raise errors.validation(f"Could not find property with name or id: {key}")
        return render.property_item(ctx.ws, page, entry)


# -- markdown ---------------------------------------------------------------


def _md_tree(ws: Workspace, container_id: str) -> list[markdown.MdBlock]:
    out: list[markdown.MdBlock] = []
    for node in ws.live_children(container_id):
        if isinstance(node, Block):
            out.append((node.type, node.payload, _md_tree(ws, node.id)))
        elif isinstance(node, Page | Database):
            kind = "child_page" if isinstance(node, Page) else "child_database"
            url = render.page_url(ws.title_of(node), node.id)
            out.append((kind, {"title": ws.title_of(node), "url": url}, []))
    return out


def page_markdown_text(ws: Workspace, page_id: str) -> str:
    return markdown.render(_md_tree(ws, page_id))


def get_markdown(ctx: Ctx) -> Result:
    with ctx.ws.lock:
        page = ctx.ws.page(ctx.params["page_id"])
        return render.page_markdown(page.id, page_markdown_text(ctx.ws, page.id), [])


def _content(body: dict[str, Any], key: str, field: str) -> str:
    section = body.get(key)
    if not isinstance(section, dict) or not isinstance(section.get(field), str):
        raise errors.body_invalid(f"body.{key}.{field}", "should be a string", section)
    return section[field]


def _insert(ws: Workspace, page: Page, body: dict[str, Any], actor: str) -> None:
    specs = markdown.parse(_content(body, "insert_content", "content"))
    section = body["insert_content"]
    after: str | None = None
    position = section.get("position") or {}
    at_start = isinstance(position, dict) and position.get("type") == "start"
    if not at_start and isinstance(section.get("after"), str):
        # `after` is an ellipsis selection ("start text...end text"); matching on the
        # start text within one top-level block is an approximation of Notion's.
        head = section["after"].split("...")[0]
        for node in ws.live_children(page.id):
            if not isinstance(node, Block):
                continue
            line = markdown.render([(node.type, node.payload, [])])
            if head and head in line:
                after = node.id
                break
        else:
            raise errors.validation(f"Could not find the `after` selection: {section['after']}")
    ws.append_blocks(page.id, specs, after, actor, at_start)


def _update(ws: Workspace, page: Page, body: dict[str, Any], actor: str) -> None:
    section = body.get("update_content")
    updates = section.get("content_updates") if isinstance(section, dict) else None
    updates = richtext.check_array(updates, "body.update_content.content_updates")
    text = page_markdown_text(ws, page.id)
    for i, update in enumerate(updates):
        path = f"body.update_content.content_updates[{i}]"
        old, new = (
            (update.get("old_str"), update.get("new_str"))
            if isinstance(update, dict)
            else (None, None)
        )
        if not isinstance(old, str) or not isinstance(new, str):
            raise errors.body_invalid(path, "should have string `old_str` and `new_str`", update)
        if old not in text:
            raise errors.validation(f"Could not find `old_str` in the page content: {old}")
        count = -1 if update.get("replace_all_matches") else 1
        text = text.replace(old, new, count)
    ws.replace_content(page, markdown.parse(text), actor)


def update_markdown(ctx: Ctx) -> Result:
    ws = ctx.ws
    body = ctx.body
    with ws.lock:
        page = ws.page(ctx.params["page_id"])
        if page.in_trash:
            raise errors.archived_edit()
        kind = body.get("type")
        if kind == "insert_content":
            _insert(ws, page, body, ctx.actor)
        elif kind == "replace_content":
            ws.replace_content(
                page, markdown.parse(_content(body, "replace_content", "new_str")), ctx.actor
            )
        elif kind == "update_content":
            _update(ws, page, body, ctx.actor)
        else:
            raise errors.body_invalid(
                "body.type",
                "should be one of `insert_content`, `replace_content`, `update_content`",
                kind,
            )
        result = render.page_markdown(page.id, page_markdown_text(ws, page.id), [])
        if body.get("allow_async") is True:
            task = ws.add_task(MARKDOWN_OPERATION, result)
            return 202, render.async_task(task, finished=False)
        return result


def get_async_task(ctx: Ctx) -> Result:
    with ctx.ws.lock:
        task = ctx.ws.tasks.get(ctx.params["task_id"])
        if task is None:
            raise ctx.ws.not_found("async task", ctx.params["task_id"])
        # Work is applied synchronously, so every task is already done when polled.
        return render.async_task(task, finished=True)


ROUTES = [
    Route("POST", "/v1/pages", create_page),
    Route("GET", "/v1/pages/{page_id}", get_page),
    Route("PATCH", "/v1/pages/{page_id}", update_page),
    Route("POST", "/v1/pages/{page_id}/move", move_page),
    Route("GET", "/v1/pages/{page_id}/markdown", get_markdown),
    Route("PATCH", "/v1/pages/{page_id}/markdown", update_markdown),
    Route("GET", "/v1/pages/{page_id}/properties/{property_id}", get_property),
    Route("GET", "/v1/async_tasks/{task_id}", get_async_task),
]
