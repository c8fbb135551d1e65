"""Workspace listings: POST /v1/search, data source templates, custom emojis."""

from __future__ import annotations

from typing import Any

from . import errors, render
from .records import DataSource, Node, Page
from .routing import Bare, Ctx, Result, Route, page_size, paginate, start_cursor
from .store import Workspace


def _live(ws: Workspace, node: Node) -> bool:
    """Trashing a page hides everything below it, so search must look up the ancestry."""
    current: Node | None = node
    while current is not None:
        if current.in_trash:
            return False
        ref = current.parent
        if ref["type"] == "workspace":
            return True
        if ref["type"] == "data_source_id":
            ds = ws.data_sources.get(ref["data_source_id"])
            if ds is None or ds.in_trash:
                return False
            current = ws.nodes.get(ref["database_id"])
        else:
            current = ws.nodes.get(ref[ref["type"]])
    return False


def _candidates(ws: Workspace, kind: str | None) -> list[Page | DataSource]:
    found: list[Page | DataSource] = []
    if kind in (None, "page"):
        found += [n for n in ws.nodes.values() if isinstance(n, Page) and _live(ws, n)]
    if kind in (None, "data_source"):
        found += [
            ds
            for ds in ws.data_sources.values()
            if not ds.in_trash and _live(ws, ws.nodes[ds.database_id])
        ]
    return found


def _title(ws: Workspace, item: Page | DataSource) -> str:
    if isinstance(item, DataSource):
        return "".join(t["plain_text"] for t in item.title)
    return ws.title_of(item)


def search(ctx: Ctx) -> Result:
    body = ctx.body
    query = body.get("query", "")
    if not isinstance(query, str):
        raise errors.body_invalid("body.query", "should be a string", query)
    kind = None
    flt: Any = body.get("filter")
    if flt is not None:
        if (
            not isinstance(flt, dict)
            or flt.get("property") != "object"
            or flt.get("value") not in ("page", "data_source")
        ):
            raise errors.body_invalid(
                "body.filter",
                'should be `{"property": "object", "value": "page" | "data_source"}`',
                flt,
            )
        kind = flt["value"]
    sort: Any = body.get("sort") or {"timestamp": "last_edited_time", "direction": "descending"}
    if not isinstance(sort, dict) or sort.get("timestamp") != "last_edited_time":
        raise errors.body_invalid("body.sort.timestamp", "should be `last_edited_time`", sort)
    if sort.get("direction", "descending") not in ("ascending", "descending"):
        raise errors.body_invalid(
            "body.sort.direction", "should be `ascending` or `descending`", sort.get("direction")
        )
    with ctx.ws.lock:
        ws = ctx.ws
        needle = query.lower()
        items = [i for i in _candidates(ws, kind) if needle in _title(ws, i).lower()]
        items.sort(key=lambda i: i.last_edited_time, reverse=sort.get("direction") != "ascending")
        chunk, cursor = paginate(
            items, lambda i: i.id, start_cursor(ctx, "body"), page_size(ctx, "body")
        )
        results = [
            render.data_source(ws, i) if isinstance(i, DataSource) else render.page(ws, i)
            for i in chunk
        ]
        return render.list_envelope(results, cursor, "page_or_data_source")


def list_templates(ctx: Ctx) -> Result:
    with ctx.ws.lock:
        ctx.ws.data_source(ctx.params["data_source_id"])
    # The emulator has no page templates; Notion answers this same empty list for a
    # data source without any.
    return Bare(templates=[], has_more=False, next_cursor=None)


def list_custom_emojis(ctx: Ctx) -> Result:
    # No custom emojis exist in the emulated workspace. Key set and order as recorded:
    # this list has no `custom_emoji: {}` member, unlike the other lists.
    return {
        "object": "list",
        "type": "custom_emoji",
        "results": [],
        "has_more": False,
        "next_cursor": None,
    }


ROUTES = [
    Route("POST", "/v1/search", search),
    Route("GET", "/v1/data_sources/{data_source_id}/templates", list_templates),
    Route("GET", "/v1/custom_emojis", list_custom_emojis),
]
