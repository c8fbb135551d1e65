"""The small vocabulary shared by the /v1 route modules.

Handlers are plain synchronous functions of a `Ctx`: the store is in memory, so
there is nothing to await, and keeping them sync keeps them easy to test. The
app (app.py) owns HTTP concerns: auth, version header, JSON parsing, error
bodies, request ids, the traffic gate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from . import errors
from .ids import parse_id
from .store import Workspace

T = TypeVar("T")
MAX_PAGE_SIZE = 100


@dataclass
class Ctx:
    ws: Workspace
    params: dict[str, str]
    query: Mapping[str, str]
    body: dict[str, Any]
    actor: str  # the user the request acts as: the integration's bot


class Bare(dict[str, Any]):
    """A response body Notion sends without `request_id` (seen on the templates list)."""


Result = dict[str, Any] | tuple[int, dict[str, Any]]
Handler = Callable[[Ctx], Result]


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # e.g. "/v1/pages/{page_id}", also the stats key
    handler: Handler


def page_size(ctx: Ctx, where: str) -> int:
    """`page_size` from the query string (GET) or the body (POST), 1..100, default 100."""
    raw: Any = ctx.query.get("page_size") if where == "query" else ctx.body.get("page_size")
    if raw is None:
        return MAX_PAGE_SIZE
    if where == "query":
        try:
            raw = int(raw)
        except ValueError:
            raise errors.validation(
                f"query failed validation: query.page_size should be a number, instead was "
                f"`{errors.js(raw)}`."
            ) from None
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise errors.body_invalid(f"{where}.page_size", "should be a number", raw)
    if raw > MAX_PAGE_SIZE:
        raise errors.validation(
            f"{where} failed validation: {where}.page_size should be ≤ `{MAX_PAGE_SIZE}`, "
            f"instead was `{raw}`."
        )
    if raw < 1:
        raise errors.validation(
            f"{where} failed validation: {where}.page_size should be ≥ `1`, instead was `{raw}`."
        )
    return raw


def start_cursor(ctx: Ctx, where: str) -> str | None:
    raw = ctx.query.get("start_cursor") if where == "query" else ctx.body.get("start_cursor")
    if raw is None:
        return None
    cursor = parse_id(raw)
    if cursor is None:
        raise errors.validation(f"The start_cursor provided is invalid: {raw}")
    return cursor


def paginate(
    items: list[T], key: Callable[[T], str], cursor: str | None, size: int
) -> tuple[list[T], str | None]:
    """Notion's cursors are the id of the first item of the next page."""
    start = 0
    if cursor is not None:
        ids = [key(item) for item in items]
        if cursor not in ids:
            raise errors.validation(f"The start_cursor provided is invalid: {cursor}")
        start = ids.index(cursor)
    page = items[start : start + size]
    after = start + size
    return page, (key(items[after]) if after < len(items) else None)


def require_object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise errors.body_invalid(path, "should be an object", value)
    return value
