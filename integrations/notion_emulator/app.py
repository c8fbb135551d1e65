"""create_app(): the emulator as one Starlette application.

Every /v1 request goes through the same pipeline, in this order:
body bytes read (size limit) -> traffic gate (rate limit, faults, latency,
timeouts; counts stats) -> bearer token -> Notion-Version header -> route match
-> JSON parse -> path ids -> handler. Failures anywhere become Notion's error
body with a request id.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as StarletteRoute

from . import (
    control,
    errors,
    routes_blocks,
    routes_comments,
    routes_databases,
    routes_pages,
    routes_search,
    routes_users,
)
from .clock import Clock
from .ids import new_id, parse_id
from .routing import Bare, Ctx, Route
from .store import Workspace
from .traffic import EmulatorConfig, TrafficGate
from .webhooks import Subscription, WebhookEmitter

log = logging.getLogger(__name__)

DEFAULT_TOKEN = "secret_emulator_token"
# The endpoints the "Read user information" capability guards.
USER_READS = frozenset({"/v1/users", "/v1/users/{user_id}"})
MAX_BODY_BYTES = 500 * 1024
UNKNOWN_TEMPLATE = "/v1/{unknown}"
# Path parameters that are not UUIDs.
_FREE_PARAMS = frozenset({"property_id", "task_id"})


@dataclass(frozen=True)
class _Compiled:
    route: Route
    pattern: re.Pattern[str]


def _compile(route: Route) -> _Compiled:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", route.template)
    return _Compiled(route, re.compile(f"^{regex}/?$"))


ALL_ROUTES: list[Route] = [
    *routes_users.ROUTES,
    *routes_databases.ROUTES,
    *routes_pages.ROUTES,
    *routes_blocks.ROUTES,
    *routes_comments.ROUTES,
    *routes_search.ROUTES,
]


class V1Dispatcher:
    def __init__(self, routes: list[Route]) -> None:
        self.compiled = [_compile(r) for r in routes]

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], str]:
        """The route, its raw params and the template to count the request under."""
        path_template = None
        for item in self.compiled:
            found = item.pattern.match(path)
            if found is None:
                continue
            if item.route.method == method:
                return item.route, found.groupdict(), item.route.template
            path_template = path_template or item.route.template
        # A known path with the wrong method is still an invalid URL on Notion.
        return None, {}, path_template or UNKNOWN_TEMPLATE


def _json_response(body: dict[str, Any], status: int, request_id: str) -> JSONResponse:
    if isinstance(body, Bare):
        return JSONResponse(dict(body), status_code=status)
    return JSONResponse({**body, "request_id": request_id}, status_code=status)


async def _raw_body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise _too_large(int(length))
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise _too_large(len(raw))
    return raw


def _parse_body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise errors.invalid_json() from None
    if not isinstance(body, dict):
        raise errors.body_invalid("body", "should be an object", body)
    return body


def _too_large(size: int) -> errors.NotionError:
    return errors.validation(
        f"Request body too large: {size} bytes is more than the limit of {MAX_BODY_BYTES} bytes."
    )


def _path_ids(params: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, raw in params.items():
        if name in _FREE_PARAMS:
            out[name] = raw
            continue
        parsed = parse_id(raw)
        if parsed is None:
            raise errors.validation(
                f"path failed validation: path.{name} should be a valid uuid, instead was "
                f"`{errors.js(raw)}`."
            )
        out[name] = parsed
    return out


def create_app(
    token: str = DEFAULT_TOKEN,
    *,
    config: EmulatorConfig | None = None,
    workspace: Workspace | None = None,
    gate: TrafficGate | None = None,
    emitter: WebhookEmitter | None = None,
    clock: Clock | None = None,
) -> Starlette:
    ws = workspace or Workspace(clock=clock)
    gate = gate or TrafficGate(config)
    emitter = emitter or WebhookEmitter(
        Subscription(workspace_id=ws.workspace_id, integration_id=ws.bot.id)
    )
    emitter.configure(gate.config.webhook_url, gate.config.webhook_secret)
    ws.on_event = emitter.emit
    ws.query_lag = lambda: gate.config.query_lag_seconds
    dispatcher = V1Dispatcher(ALL_ROUTES)

    async def v1(request: Request) -> Response:
        request_id = new_id()
        method = request.method
        route, raw_params, template = dispatcher.match(method, request.url.path)
        auth = request.headers.get("authorization", "")
        bearer = auth[7:] if auth.lower().startswith("bearer ") else None
        raw: bytes | errors.NotionError = b""
        try:
            # Read the body before the gate: a request the gate holds past the
            # client's timeout is still applied afterwards, which is the ambiguous
            # "timed out but written" case idempotent delivery has to survive.
            if method in ("POST", "PATCH"):
                raw = await _raw_body(request)
        except errors.NotionError as exc:
            raw = exc
        except ClientDisconnect:
            return Response(status_code=499)
        # what `holds` rules look for: the concrete path (page ids) and the body's text
        target = request.url.path
        if isinstance(raw, bytes) and raw:
            target += " " + raw.decode("utf-8", "replace")
        rejected = await gate.admit(method, template, bearer, target)
        if rejected is not None:
            return rejected
        try:
            if bearer != token:
                raise errors.unauthorized()
            if not request.headers.get("notion-version"):
                raise errors.missing_version()
            if route is None:
                raise errors.invalid_request_url()
            if isinstance(raw, errors.NotionError):
                raise raw
            if template in USER_READS and not gate.config.user_information:
                raise errors.NotionError(
                    403, "restricted_resource", "Insufficient permissions for this endpoint."
                )
            ctx = Ctx(ws, _path_ids(raw_params), request.query_params, _parse_body(raw), ws.bot.id)
            result = route.handler(ctx)
        except errors.NotionError as exc:
            return JSONResponse(exc.body(request_id), status_code=exc.status)
        except Exception:  # a bug in the emulator must still answer like Notion does
            log.exception("emulator handler failed: %s %s", method, request.url.path)
            failure = errors.NotionError(500, "internal_server_error", "Unexpected error occurred.")
            return JSONResponse(failure.body(request_id), status_code=500)
        status, payload = result if isinstance(result, tuple) else (200, result)
        return _json_response(payload, status, request_id)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await emitter.start()
        try:
            yield
        finally:
            await emitter.aclose()

    methods = ["GET", "POST", "PATCH", "DELETE", "PUT"]
    app = Starlette(
        routes=[
            *control.ROUTES,
            StarletteRoute("/v1/{rest:path}", v1, methods=methods),
        ],
        lifespan=lifespan,
    )
    app.state.workspace = ws
    app.state.gate = gate
    app.state.emitter = emitter
    app.state.token = token
    return app
