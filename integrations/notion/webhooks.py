"""The webhook receiver for `nfactory start --webhook-port`: fast acks that wake jobs.

Events are only signals: Notion may deliver them late, twice or out of order,
so a valid event just wakes the matching job now, and the regular poll still
reconciles whatever a lost event would have told us.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from factory.files import write_private_atomically
from factory.ops_http import ops_routes
from factory.store import webhook_events
from factory.store.db import Database
from factory.threads import run_io
from integrations.notion.webhook_input import (
    DEFAULT_MAX_BYTES,
    VERIFICATION_MAX_BYTES,
    Refused,
    WarningLimiter,
    declared_length_ok,
    decode_json,
    is_json_content_type,
    is_verification,
    read_capped,
    verification_token,
)

log = logging.getLogger("nfactory.webhooks")

WARNING_WINDOW_SECONDS = 60.0
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
    authors = event.get("authors")
    if not isinstance(authors, list) or not authors:
        return False
    return all(isinstance(a, dict) and a.get("id") == bot_id for a in authors)


class WebhookReceiver:
    def __init__(
        self,
        db: Database,
        secret: str | None,
        bot_id: str,
        wake: Callable[[str], None],
        health: Callable[[], dict[str, Any]],
        metrics: Callable[[], str],
        token_file: Path,
        hint: Callable[[str, str], None] | None = None,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        serve_ops: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hint = hint  # (job, page id): which card the event is about, to look there first
        self.db = db
        self.secret = secret
        self.bot_id = bot_id
        self.wake = wake
        self.token_file = token_file
        self.max_bytes = max_bytes
        self.clock = clock
        self.counts: dict[str, int] = {}
        self.unconfigured_warnings = WarningLimiter(WARNING_WINDOW_SECONDS)
        self.verification_warnings = WarningLimiter(WARNING_WINDOW_SECONDS)
        routes = [Route("/webhooks/notion", self.receive, methods=["POST"])]
        if serve_ops:  # without --metrics-port they share the webhook port, as they always did
            routes += ops_routes(health, metrics)
        self.app = Starlette(routes=routes)

    def _count(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1

    async def receive(self, request: Request) -> Response:
        try:
            return await self._receive(request)
        except Refused as refused:
            self._count("too_large" if refused.status == 413 else "invalid")
            return JSONResponse({"error": refused.reason}, status_code=refused.status)

    async def _receive(self, request: Request) -> Response:
        # Unauthenticated bytes: capped while they arrive, verified before they are parsed.
        if not declared_length_ok(request.headers.get("content-length"), self.max_bytes):
            raise Refused(413, f"body larger than {self.max_bytes} bytes")
        if not self.secret:
            return await self._without_secret(request)
        body = await read_capped(request.stream(), self.max_bytes)
        if not signature_ok(body, request.headers.get("x-notion-signature"), self.secret):
            self._count("rejected")
            return JSONResponse({"error": "bad or missing X-Notion-Signature"}, status_code=401)
        _require_json(request)
        event = decode_json(body)
        if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
            self._count("invalid")
            return JSONResponse({"error": "not a Notion event"}, status_code=400)
        if not await run_io(self._first_time, str(event["id"]), str(event["type"])):
            self._count("duplicate")
            return JSONResponse({"ok": True, "duplicate": True})
        if authored_by_bot(event, self.bot_id):
            self._count("own")
            return JSONResponse({"ok": True, "ignored": "authored by this integration"})
        job = job_for(str(event["type"]))
        if job is not None:
            data = event.get("data")
            page_id = data.get("page_id") if isinstance(data, dict) else None
            if self.hint is not None and isinstance(page_id, str):
                self.hint(job, page_id)
            self.wake(job)
        self._count("accepted")
        return JSONResponse({"ok": True, "woke": job})

    async def _without_secret(self, request: Request) -> Response:
        """Only Notion's one-time verification request can be taken before there is a
        secret, so no more is read than that request can be."""
        try:
            body = await read_capped(request.stream(), min(self.max_bytes, VERIFICATION_MAX_BYTES))
        except Refused:
            return self._unconfigured()
        _require_json(request)
        doc = decode_json(body)
        if is_verification(doc):
            return await self._verification(verification_token(doc))
        return self._unconfigured()

    def _unconfigured(self) -> Response:
        self._count("rejected")
        held = self.unconfigured_warnings.admit(self.clock())
        if held is not None:
            log.warning(
                "webhook rejected: NOTION_WEBHOOK_SECRET is not set%s",
                f" ({held} more rejected since the last warning)" if held else "",
            )
        return JSONResponse({"error": "webhook secret not configured"}, status_code=401)

    def _first_time(self, event_id: str, event_type: str) -> bool:
        return webhook_events.first_time(self.db, event_id, event_type, datetime.now(UTC))

    async def _verification(self, token: str) -> Response:
        # The token becomes the signing secret, so it goes to a private file, not the log.
        await run_io(write_private_atomically, self.token_file, token + "\n")
        self._count("verification")
        held = self.verification_warnings.admit(self.clock())
        if held is not None:
            log.warning(
                "Notion sent its webhook verification token; it is in %s. Paste it into the "
                "integration's webhook settings and set NOTION_WEBHOOK_SECRET to it.%s",
                self.token_file,
                f" ({held} more verification requests since the last warning)" if held else "",
            )
        return JSONResponse({"ok": True})


def _require_json(request: Request) -> None:
    if not is_json_content_type(request.headers.get("content-type")):
        raise Refused(415, "Content-Type must be application/json")
