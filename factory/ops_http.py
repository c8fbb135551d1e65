"""`GET /healthz` and `GET /metrics`: the worker's operator endpoints, servable on any port.

They are routes rather than an app so the webhook port can still carry them when no
separate `--metrics-port` is given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from factory.threads import run_io


def ops_routes(health: Callable[[], dict[str, Any]], metrics: Callable[[], str]) -> list[Route]:
    async def healthz(request: Request) -> Response:
        report = await run_io(health)  # both read the database
        # degraded (some workflow module failed to load) still works the other cards: a 503
        # would get the worker restarted by its orchestrator, which fixes nothing
        ok = all(v == "ok" or str(v).startswith("degraded") for v in report.values())
        return JSONResponse(report, status_code=200 if ok else 503)

    async def prometheus(request: Request) -> Response:
        text = await run_io(metrics)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
    ]


def ops_app(health: Callable[[], dict[str, Any]], metrics: Callable[[], str]) -> Starlette:
    return Starlette(routes=ops_routes(health, metrics))
