"""Databases, data sources and data source queries."""

from __future__ import annotations

from . import filters, render
from .clock import floor_minute
from .records import Page
from .routing import Ctx, Result, Route, page_size, paginate, start_cursor


def create_database(ctx: Ctx) -> Result:
    return render.database(ctx.ws, ctx.ws.create_database(ctx.body, ctx.actor))


def get_database(ctx: Ctx) -> Result:
    with ctx.ws.lock:
        return render.database(ctx.ws, ctx.ws.database(ctx.params["database_id"]))


def update_database(ctx: Ctx) -> Result:
    with ctx.ws.lock:
        db = ctx.ws.database(ctx.params["database_id"])
        return render.database(ctx.ws, ctx.ws.update_database(db, ctx.body, ctx.actor))


def create_data_source(ctx: Ctx) -> Result:
    with ctx.ws.lock:
        return render.data_source(ctx.ws, ctx.ws.create_data_source(ctx.body, ctx.actor))


def get_data_source(ctx: Ctx) -> Result:
    with ctx.ws.lock:
        return render.data_source(ctx.ws, ctx.ws.data_source(ctx.params["data_source_id"]))


def update_data_source(ctx: Ctx) -> Result:
    with ctx.ws.lock:
        ds = ctx.ws.data_source(ctx.params["data_source_id"])
        return render.data_source(ctx.ws, ctx.ws.update_data_source(ds, ctx.body, ctx.actor))


def query(ctx: Ctx) -> Result:
    with ctx.ws.lock:
        ws = ctx.ws
        ds = ws.data_source(ctx.params["data_source_id"])
        size = page_size(ctx, "body")
        cursor = start_cursor(ctx, "body")
        predicate = None
        if ctx.body.get("filter") is not None:
            predicate = filters.compile_filter(ctx.body["filter"], ds.schema, ws.now())
        pages = [ws.nodes[pid] for pid in ds.pages]
        # under a query index lag, each row as the index shows it (see index_lag.py)
        indexed = [ws.queried(p) for p in pages if isinstance(p, Page)]
        live = [p for p in indexed if p is not None and not p.in_trash]
        by_id = {p.id: p for p in live}
        rows = [
            filters.Row(
                render.page_properties(ws, p),
                floor_minute(p.created_time),
                floor_minute(p.last_edited_time),
                p.id,
            )
            for p in live
        ]
        selected = [row for row in rows if predicate is None or predicate(row)]
        ordered = filters.sort_rows(selected, ctx.body.get("sorts"), ds.schema)
        ids = [row.id for row in ordered]
        chunk, next_cursor = paginate(ids, lambda pid: pid, cursor, size)
        results = [render.page(ws, by_id[pid]) for pid in chunk]
        return render.list_envelope(results, next_cursor, "page_or_data_source")


ROUTES = [
    Route("POST", "/v1/databases", create_database),
    Route("GET", "/v1/databases/{database_id}", get_database),
    Route("PATCH", "/v1/databases/{database_id}", update_database),
    Route("POST", "/v1/data_sources", create_data_source),
    Route("GET", "/v1/data_sources/{data_source_id}", get_data_source),
    Route("PATCH", "/v1/data_sources/{data_source_id}", update_data_source),
    Route("POST", "/v1/data_sources/{data_source_id}/query", query),
]
