"""GET /v1/users, /v1/users/me, /v1/users/{user_id}."""

from __future__ import annotations

from . import render
from .routing import Ctx, Result, Route, page_size, paginate, start_cursor


def list_users(ctx: Ctx) -> Result:
    with ctx.ws.lock:
        users = list(ctx.ws.users.values())
        page, cursor = paginate(
            users, lambda u: u.id, start_cursor(ctx, "query"), page_size(ctx, "query")
        )
        return render.list_envelope([render.user(ctx.ws, u) for u in page], cursor, "user")


def me(ctx: Ctx) -> Result:
    return render.user(ctx.ws, ctx.ws.bot)


def get_user(ctx: Ctx) -> Result:
    with ctx.ws.lock:
        return render.user(ctx.ws, ctx.ws.user(ctx.params["user_id"]))


ROUTES = [
    Route("GET", "/v1/users", list_users),
    Route("GET", "/v1/users/me", me),
    Route("GET", "/v1/users/{user_id}", get_user),
]
