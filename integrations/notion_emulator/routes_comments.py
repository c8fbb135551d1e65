"""Comments: list (unresolved, oldest first), create, retrieve, update, delete."""

from __future__ import annotations

from typing import Any

from . import errors, markdown, render, richtext
from .ids import parse_id
from .routing import Ctx, Result, Route, page_size, paginate, start_cursor


def comment_text(body: dict[str, Any]) -> list[dict[str, Any]]:
    """`rich_text` or `markdown`, exactly one of them, as Notion requires."""
    if ("rich_text" in body) == ("markdown" in body):
        raise errors.validation(
            "body failed validation: exactly one of body.rich_text or body.markdown should be "
            "defined."
        )
    if "markdown" in body:
        if not isinstance(body["markdown"], str):
            raise errors.body_invalid("body.markdown", "should be a string", body["markdown"])
        return markdown.parse_inline(body["markdown"])
    return richtext.normalize(body["rich_text"], "body.rich_text")


def list_comments(ctx: Ctx) -> Result:
    raw = ctx.query.get("block_id")
    if raw is None:
        raise errors.validation(
            "query failed validation: query.block_id should be defined, instead was `undefined`."
        )
    block_id = parse_id(raw)
    if block_id is None:
        raise errors.validation(
            f"query failed validation: query.block_id should be a valid uuid, instead was "
            f"`{errors.js(raw)}`."
        )
    with ctx.ws.lock:
        found = ctx.ws.comments_of(block_id)
        chunk, cursor = paginate(
            found, lambda c: c.id, start_cursor(ctx, "query"), page_size(ctx, "query")
        )
        return render.list_envelope([render.comment(ctx.ws, c) for c in chunk], cursor, "comment")


def create_comment(ctx: Ctx) -> Result:
    body = ctx.body
    parent = body.get("parent")
    discussion = body.get("discussion_id")
    if (parent is None) == (discussion is None):
        raise errors.validation(
            "body failed validation: exactly one of body.parent or body.discussion_id should "
            "be defined."
        )
    rich = comment_text(body)
    target: str | None = None
    if parent is not None:
        # The API cannot open a discussion on a block: a new thread needs a page parent.
        target = parse_id(parent.get("page_id")) if isinstance(parent, dict) else None
        if target is None:
            raise errors.body_invalid("body.parent.page_id", "should be a valid uuid", parent)
    else:
        discussion = parse_id(discussion)
        if discussion is None:
            raise errors.body_invalid(
                "body.discussion_id", "should be a valid uuid", body["discussion_id"]
            )
    with ctx.ws.lock:
        if target is not None:
            ctx.ws.page(target)
        made = ctx.ws.create_comment(target, discussion, rich, ctx.actor)
        return render.comment(ctx.ws, made)


def get_comment(ctx: Ctx) -> Result:
    with ctx.ws.lock:
        return render.comment(ctx.ws, ctx.ws.comment(ctx.params["comment_id"]))


def update_comment(ctx: Ctx) -> Result:
    rich = comment_text(ctx.body)
    with ctx.ws.lock:
        found = ctx.ws.comment(ctx.params["comment_id"])
        if found.created_by != ctx.actor:
            raise errors.NotionError(
                403, "restricted_resource", "Integrations can only edit their own comments."
            )
        found.rich_text = rich
        found.last_edited_time = ctx.ws.now()
        return render.comment(ctx.ws, found)


def delete_comment(ctx: Ctx) -> Result:
    with ctx.ws.lock:
        found = ctx.ws.comment(ctx.params["comment_id"])
        if found.created_by != ctx.actor:
            raise errors.NotionError(
                403, "restricted_resource", "Integrations can only delete their own comments."
            )
        del ctx.ws.comments[found.id]
        return render.comment(ctx.ws, found)


ROUTES = [
    Route("GET", "/v1/comments", list_comments),
    Route("POST", "/v1/comments", create_comment),
    Route("GET", "/v1/comments/{comment_id}", get_comment),
    Route("PATCH", "/v1/comments/{comment_id}", update_comment),
    Route("DELETE", "/v1/comments/{comment_id}", delete_comment),
]
