"""Blocks: children list/append, retrieve, update, delete."""

from __future__ import annotations

from . import blocks, errors, render
from .ids import parse_id
from .routing import Ctx, Result, Route, page_size, paginate, start_cursor


def list_children(ctx: Ctx) -> Result:
    with ctx.ws.lock:
        node = ctx.ws.node(ctx.params["block_id"])
        children = ctx.ws.live_children(node.id)
        chunk, cursor = paginate(
            children, lambda n: n.id, start_cursor(ctx, "query"), page_size(ctx, "query")
        )
        return render.list_envelope([render.block(ctx.ws, n) for n in chunk], cursor, "block")


def append_children(ctx: Ctx) -> Result:
    if "children" not in ctx.body:
        raise errors.body_invalid("body.children", "should be defined", None)
    specs = blocks.normalize_children(ctx.body["children"])
    after = None
    if ctx.body.get("after") is not None:
        after = parse_id(ctx.body["after"])
        if after is None:
            raise errors.body_invalid("body.after", "should be a valid uuid", ctx.body["after"])
    with ctx.ws.lock:
        made = ctx.ws.append_blocks(ctx.params["block_id"], specs, after, ctx.actor)
        return render.list_envelope([render.block(ctx.ws, b) for b in made], None, "block")


def get_block(ctx: Ctx) -> Result:
    with ctx.ws.lock:
        return render.block(ctx.ws, ctx.ws.node(ctx.params["block_id"]))


def update_block(ctx: Ctx) -> Result:
    with ctx.ws.lock:
        node = ctx.ws.node(ctx.params["block_id"])
        return render.block(ctx.ws, ctx.ws.update_block(node, ctx.body, ctx.actor))


def delete_block(ctx: Ctx) -> Result:
    with ctx.ws.lock:
        node = ctx.ws.node(ctx.params["block_id"])
        return render.block(ctx.ws, ctx.ws.delete_block(node, ctx.actor))


ROUTES = [
    Route("GET", "/v1/blocks/{block_id}/children", list_children),
    Route("PATCH", "/v1/blocks/{block_id}/children", append_children),
    Route("GET", "/v1/blocks/{block_id}", get_block),
    Route("PATCH", "/v1/blocks/{block_id}", update_block),
    Route("DELETE", "/v1/blocks/{block_id}", delete_block),
]
