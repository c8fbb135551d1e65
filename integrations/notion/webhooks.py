"""The webhook receiver for `nfactory start --webhook-port`: fast acks that wake jobs.

Events are only signals: Notion may deliver them late, twice or out of order,
so a valid event just wakes the matching job now, and the regular poll still
reconciles whatever a lost event would have told us.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert
from sqlalchemy.exc import IntegrityError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from factory.store.tables import webhook_events

log = logging.getLogger("nfactory.webhooks")

WAKES = {"comment.created": "feedback", "comment.updated": "feedback"}


def signature_ok(body: bytes, header: str | None, secret: str) -> bool:
    """`X-Notion-Signature: sha256=<hex HMAC-SHA256 of the raw body>`, compared in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256="))


def job_for(event_type: str) -> str | None:
    if event_type in WAKES:
        return WAKES[event_type]
    return "intake" if event_type.startswith("page.") else None


def authored_by_bot(event: dict[str, Any], bot_id: str) -> bool:
    authors = event.get("authors") or []
    return bool(authors) and all(a.get("id") == bot_id for a in authors)


class WebhookReceiver:
    def __init__(
        self,
        db: Engine,
        secret: str | None,
        bot_id: str,
        wake: Callable[[str], None],
        health: Callable[[], dict[str, Any]],
        metrics: Callable[[], str],
        token_file: Path,
        hint: Callable[[str, str], None] | None = None,
    ) -> None:
        self.hint = hint  # (job, page id): which card the event is about, to look there first
        self.db = db
        self.secret = secret
        self.bot_id = bot_id
        self.wake = wake
        self.health = health
        self.metrics = metrics
        self.token_file = token_file
        self.counts: dict[str, int] = {}
        self.app = Starlette(
            routes=[
                Route("/webhooks/notion", self.receive, methods=["POST"]),
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/metrics", self.prometheus, methods=["GET"]),
            ]
        )

    def _count(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        try:
            event = json.loads(body)
        except ValueError:
            self._count("invalid")
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        if isinstance(event, dict) and "verification_token" in event and "type" not in event:
            return await self._verification(str(event["verification_token"]))
        if not self.secret:
            self._count("rejected")
            log.warning("webhook rejected: NOTION_WEBHOOK_SECRET is not set")
            return JSONResponse({"error": "webhook secret not configured"}, status_code=401)
        if not signature_ok(body, request.headers.get("x-notion-signature"), self.secret):
            self._count("rejected")
            return JSONResponse({"error": "bad or missing X-Notion-Signature"}, status_code=401)
        if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
            self._count("invalid")
            return JSONResponse({"error": "not a Notion event"}, status_code=400)
        if not await asyncio.to_thread(self._first_time, str(event["id"]), str(event["type"])):
            self._count("duplicate")
            return JSONResponse({"ok": True, "duplicate": True})
        if authored_by_bot(event, self.bot_id):
            self._count("own")
            return JSONResponse({"ok": True, "ignored": "authored by this integration"})
        job = job_for(str(event["type"]))
        if job is not None:
            page_id = (event.get("data") or {}).get("page_id")
            if self.hint is not None and isinstance(page_id, str):
                self.hint(job, page_id)
            self.wake(job)
        self._count("accepted")
        return JSONResponse({"ok": True, "woke": job})

    def _first_time(self, event_id: str, event_type: str) -> bool:
        try:
            with self.db.begin() as conn:
                conn.execute(
                    insert(webhook_events).values(
                        id=event_id[:64], type=event_type[:64], received_at=datetime.now(UTC)
                    )
                )
            return True
        except IntegrityError:
            return False

    async def _verification(self, token: str) -> Response:
        # The token becomes the signing secret, so it goes to a private file, not the log.
        def write() -> None:
            self.token_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(token + "\n")

        await asyncio.to_thread(write)
        log.warning(
            "Notion sent its webhook verification token; it is in %s. Paste it into the "
            "integration's webhook settings and set NOTION_WEBHOOK_SECRET to it.",
            self.token_file,
        )
        self._count("verification")
        return JSONResponse({"ok": True})

    async def healthz(self, request: Request) -> Response:
        report = await asyncio.to_thread(self.health)
        # degraded (some workflow module failed to load) still works the other cards: a 503
        # would get the worker restarted by its orchestrator, which fixes nothing
        ok = all(v == "ok" or str(v).startswith("degraded") for v in report.values())
        return JSONResponse(report, status_code=200 if ok else 503)

    async def prometheus(self, request: Request) -> Response:
        text = await asyncio.to_thread(self.metrics)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
