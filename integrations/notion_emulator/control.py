"""The person-acting control API under /_emulator/ (never under /v1/, no auth).

Tests, demos and benchmarks use it to do what a person does in the Notion app
(write comments, move cards) and to steer the emulator (reset, faults, stats).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from . import errors, render, richtext
from .ids import new_id, parse_id
from .store import Workspace
from .traffic import ConfigError, TrafficGate
from .webhooks import WebhookEmitter


def _ws(request: Request) -> Workspace:
    return request.app.state.workspace


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        import json

        body = json.loads(raw)
    except ValueError:
        raise errors.invalid_json() from None
    if not isinstance(body, dict):
        raise errors.body_invalid("body", "should be an object", body)
    return body


def _error(exc: errors.NotionError) -> JSONResponse:
    return JSONResponse(exc.body(new_id()), status_code=exc.status)


def _id_param(request: Request, name: str) -> str:
    raw = request.path_params[name]
    parsed = parse_id(raw)
    if parsed is None:
        raise errors.validation(f"path.{name} should be a valid uuid, instead was `{raw}`.")
    return parsed


def _person(ws: Workspace, body: dict[str, Any]) -> str:
    raw = body.get("user_id")
    if raw is None:
        return ws.person.id
    user_id = parse_id(raw)
    if user_id is None:
        raise errors.body_invalid("body.user_id", "should be a valid uuid", raw)
    ws.user(user_id)
    return user_id


async def root(request: Request) -> JSONResponse:
    ws = _ws(request)
    return JSONResponse({"page_id": ws.root_id, "person_id": ws.person.id, "bot_id": ws.bot.id})


async def reset(request: Request) -> JSONResponse:
    ws = _ws(request)
    ws.reset()
    gate: TrafficGate = request.app.state.gate
    gate.reset()
    emitter: WebhookEmitter = request.app.state.emitter
    emitter.configure(gate.config.webhook_url, gate.config.webhook_secret)
    return JSONResponse({"page_id": ws.root_id})


async def get_config(request: Request) -> JSONResponse:
    return JSONResponse(request.app.state.gate.config.model_dump(mode="json"))


async def put_config(request: Request) -> JSONResponse:
    try:
        body = await _json(request)
        config = request.app.state.gate.configure(body)
    except errors.NotionError as exc:
        return _error(exc)
    except ConfigError as exc:
        return JSONResponse(
            {"object": "error", "status": 400, "code": "validation_error", "message": str(exc)},
            status_code=400,
        )
    request.app.state.emitter.configure(config.webhook_url, config.webhook_secret)
    return JSONResponse(config.model_dump(mode="json"))


async def stats(request: Request) -> JSONResponse:
    out = request.app.state.gate.stats()
    out["webhooks"] = request.app.state.emitter.stats()
    return JSONResponse(out)


async def add_user(request: Request) -> JSONResponse:
    try:
        body = await _json(request)
        kind = body.get("type", "person")
        if kind not in ("person", "bot"):
            raise errors.body_invalid("body.type", "should be `person` or `bot`", kind)
        name = body.get("name", "Person" if kind == "person" else "Other integration")
        if not isinstance(name, str):
            raise errors.body_invalid("body.name", "should be a string", name)
        ws = _ws(request)
        if kind == "bot":
            return JSONResponse(render.user(ws, ws.add_bot(name)))
        person = ws.add_person(name, body.get("email"), body.get("avatar_url"))
        return JSONResponse(render.user(ws, person))
    except errors.NotionError as exc:
        return _error(exc)


async def add_comment(request: Request) -> JSONResponse:
    try:
        body = await _json(request)
        ws = _ws(request)
        text = body.get("text")
        if not isinstance(text, str):
            raise errors.body_invalid("body.text", "should be a string", text)
        with ws.lock:
            actor = _person(ws, body)
            discussion = parse_id(body["discussion_id"]) if body.get("discussion_id") else None
            target = None
            if discussion is None:
                target = parse_id(body.get("page_id") or body.get("block_id"))
                if target is None:
                    raise errors.body_invalid("body.page_id", "should be a valid uuid", body)
            made = ws.create_comment(target, discussion, richtext.from_plain(text), actor)
            return JSONResponse(render.comment(ws, made))
    except errors.NotionError as exc:
        return _error(exc)


async def add_page(request: Request) -> JSONResponse:
    """A person creates a page, e.g. adds a card to a board: `{parent, properties, user_id?}`."""
    try:
        body = await _json(request)
        ws = _ws(request)
        with ws.lock:
            actor = _person(ws, body)
            page = ws.create_page(body.get("parent"), body.get("properties"), [], actor)
            return JSONResponse(render.page(ws, page))
    except errors.NotionError as exc:
        return _error(exc)


async def edit_page(request: Request) -> JSONResponse:
    try:
        body = await _json(request)
        ws = _ws(request)
        with ws.lock:
            page = ws.page(_id_param(request, "page_id"))
            actor = _person(ws, body)
            update = {k: v for k, v in body.items() if k != "user_id"}
            ws.update_page(page, update, actor)
            return JSONResponse(render.page(ws, page))
    except errors.NotionError as exc:
        return _error(exc)


ROUTES = [
    Route("/_emulator/root", root, methods=["GET"]),
    Route("/_emulator/reset", reset, methods=["POST"]),
    Route("/_emulator/config", get_config, methods=["GET"]),
    Route("/_emulator/config", put_config, methods=["PUT"]),
    Route("/_emulator/stats", stats, methods=["GET"]),
    Route("/_emulator/users", add_user, methods=["POST"]),
    Route("/_emulator/comments", add_comment, methods=["POST"]),
    Route("/_emulator/pages", add_page, methods=["POST"]),
    Route("/_emulator/pages/{page_id}", edit_page, methods=["PATCH"]),
]
