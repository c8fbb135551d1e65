"""Webhook deliveries shaped like Notion's.

When a webhook URL is configured the emulator POSTs events (``page.created``,
``page.properties_updated``, ``comment.created`` ...) with Notion's envelope
and an ``X-Notion-Signature: sha256=<hex>`` header: HMAC-SHA256 of the exact
raw body, keyed with the subscription's verification token (the "secret").

Delivery is fire-and-forget for the caller: :meth:`WebhookEmitter.emit` only
schedules work, so a slow or dead receiver never slows an API response, just
as Notion's own deliveries are decoupled from the write that caused them.
Each event is delivered by its own task, so one receiver outage retrying with
backoff does not hold up later events (Notion promises no ordering either).
A failed attempt (non-2xx or connection error) is retried with exponential
backoff up to 8 attempts; the event ``id`` stays the same and
``attempt_number`` counts up, so receivers can dedupe by id.

Not reproduced: Notion's aggregation of bursts of edits into one event, and
its minutes-long real backoff (the default here is sub-second so tests and
demos stay fast); ``accessible_by`` (only sent to public integrations).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import threading
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

SIGNATURE_HEADER = "X-Notion-Signature"
MAX_ATTEMPTS = 8
_RECENT_DELIVERIES = 100


def sign(body: bytes, secret: str) -> str:
    """The ``X-Notion-Signature`` value for ``body``: ``sha256=<hex digest>``."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(body: bytes, header: str | None, secret: str) -> bool:
    """True when ``header`` is the signature of ``body`` under ``secret``.

    Compared in constant time so a receiver does not leak how many leading
    characters of a forged signature were right.
    """
    if not header:
        return False
    expected = sign(body, secret).encode("utf-8")
    return hmac.compare_digest(expected, header.strip().encode("utf-8"))


def new_verification_token() -> str:
    # Same look as Notion's tokens, so a receiver's format checks behave alike.
    return "secret_" + secrets.token_urlsafe(32)


def iso_now() -> str:
    """Notion's timestamp style: UTC, millisecond precision, ``Z`` suffix."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    return min(cap, base * (2 ** (attempt - 1)))


@dataclass(frozen=True, slots=True)
class Subscription:
    """Identity of the emulated webhook subscription, fixed for an emitter's life."""

    workspace_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    workspace_name: str = "Emulated workspace"
    subscription_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    integration_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass(frozen=True, slots=True)
class Event:
    """One event, captured with the URL and secret in force when it happened."""

    id: str
    timestamp: str
    type: str
    authors: tuple[Mapping[str, Any], ...]
    entity: Mapping[str, Any]
    data: Mapping[str, Any]
    url: str
    secret: str | None


def envelope(event: Event, subscription: Subscription, attempt_number: int) -> dict[str, Any]:
    """The JSON object Notion POSTs for ``event`` on its ``attempt_number``-th try."""
    return {
        "id": event.id,
        "timestamp": event.timestamp,
        "workspace_id": subscription.workspace_id,
        "workspace_name": subscription.workspace_name,
        "subscription_id": subscription.subscription_id,
        "integration_id": subscription.integration_id,
        "type": event.type,
        "authors": [dict(a) for a in event.authors],
        "attempt_number": attempt_number,
        "entity": dict(event.entity),
        "data": dict(event.data),
    }


def encode(payload: Mapping[str, Any]) -> bytes:
    # The signature covers these exact bytes; receivers must verify the raw body.
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def delivery_headers(body: bytes, secret: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "User-Agent": "notion-api-emulator"}
    if secret:
        headers[SIGNATURE_HEADER] = sign(body, secret)
    return headers


async def send_verification(
    url: str,
    token: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    request_timeout: float = 5.0,
) -> int | None:
    """POST Notion's one-time ``{"verification_token": ...}`` to ``url``.

    Unsigned, as Notion's is: the receiver has no secret yet.  Returns the
    receiver's status code, or ``None`` when it could not be reached.
    """
    body = encode({"verification_token": token})
    async with httpx.AsyncClient(transport=transport, timeout=request_timeout) as client:
        try:
            response = await client.post(url, content=body, headers=delivery_headers(body, None))
        except httpx.HTTPError:
            return None
    return response.status_code


class WebhookEmitter:
    """Queues events and delivers them in the background on an asyncio loop.

    ``emit`` may be called from the loop's thread or any other thread.  The
    emitter binds to the running loop the first time it is used from one
    (``emit`` on a loop, ``start``, ``drain``); events emitted before that wait
    in a backlog.  ``aclose`` drains for a moment, then cancels what is left.
    """

    def __init__(
        self,
        subscription: Subscription | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff_base: float = 0.2,
        backoff_cap: float = 5.0,
        max_attempts: int = MAX_ATTEMPTS,
        request_timeout: float = 5.0,
    ) -> None:
        if not 1 <= max_attempts <= MAX_ATTEMPTS:
            raise ValueError(f"max_attempts must be between 1 and {MAX_ATTEMPTS}")
        self.subscription = subscription or Subscription()
        self._transport = transport
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._max_attempts = max_attempts
        self._request_timeout = request_timeout
        self._lock = threading.Lock()
        self._url: str | None = None
        self._secret: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._backlog: list[Event] = []
        self._recent: deque[dict[str, Any]] = deque(maxlen=_RECENT_DELIVERIES)
        self._emitted = 0
        self._sent = 0
        self._failed_attempts = 0
        self._given_up = 0
        self._cancelled = 0
        self._pending = 0

    # configuration -----------------------------------------------------------

    def configure(self, url: str | None, secret: str | None) -> None:
        """Set where future events go; events already queued keep their target."""
        with self._lock:
            self._url = url
            self._secret = secret

    @property
    def url(self) -> str | None:
        return self._url

    # producing ---------------------------------------------------------------

    def emit(
        self,
        event_type: str,
        entity: Mapping[str, Any],
        authors: Sequence[Mapping[str, Any]],
        data: Mapping[str, Any],
    ) -> None:
        """Schedule one event; returns at once.  A no-op while no URL is set."""
        if "id" not in entity or "type" not in entity:
            raise ValueError("entity must have 'id' and 'type'")
        with self._lock:
            if self._url is None:
                return
            event = Event(
                id=str(uuid.uuid4()),
                timestamp=iso_now(),
                type=event_type,
                authors=tuple({"id": a["id"], "type": a["type"]} for a in authors),
                entity={"id": entity["id"], "type": entity["type"]},
                data=dict(data),
                url=self._url,
                secret=self._secret,
            )
            self._emitted += 1
            self._pending += 1
            loop = self._usable_loop()
            if loop is None:
                self._backlog.append(event)
                return
        if _running_loop() is loop:
            self._spawn(event)
        else:
            loop.call_soon_threadsafe(self._spawn, event)

    def _usable_loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop deliveries run on, binding to the caller's if none yet; lock held."""
        if self._loop is not None and not self._loop.is_closed():
            return self._loop
        running = _running_loop()
        if running is None:
            return None
        self._loop = running
        self._client = None
        return running

    async def start(self) -> None:
        """Bind to the running loop and send anything emitted before there was one."""
        with self._lock:
            self._usable_loop()
            backlog, self._backlog = self._backlog, []
        for event in backlog:
            self._spawn(event)

    def _spawn(self, event: Event) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # delivering --------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self._transport, timeout=self._request_timeout
            )
        return self._client

    async def _deliver(self, event: Event) -> None:
        outcome = "cancelled"
        try:
            for attempt in range(1, self._max_attempts + 1):
                status = await self._attempt(event, attempt)
                if status is not None and 200 <= status < 300:
                    outcome = "sent"
                    return
                with self._lock:
                    self._failed_attempts += 1
                if attempt < self._max_attempts:
                    await asyncio.sleep(
                        backoff_delay(attempt, self._backoff_base, self._backoff_cap)
                    )
            outcome = "given_up"
        finally:
            with self._lock:
                self._pending -= 1
                if outcome == "sent":
                    self._sent += 1
                elif outcome == "given_up":
                    self._given_up += 1
                else:
                    self._cancelled += 1

    async def _attempt(self, event: Event, attempt: int) -> int | None:
        body = encode(envelope(event, self.subscription, attempt))
        status: int | None
        try:
            response = await self._http().post(
                event.url, content=body, headers=delivery_headers(body, event.secret)
            )
            status = response.status_code
        except httpx.HTTPError as exc:
            status = None
            error = type(exc).__name__
        else:
            error = None
        with self._lock:
            self._recent.append(
                {
                    "event_id": event.id,
                    "type": event.type,
                    "attempt_number": attempt,
                    "status": status,
                    "error": error,
                }
            )
        return status

    # lifecycle ---------------------------------------------------------------

    async def drain(self, within: float | None = None) -> bool:
        """Wait up to ``within`` seconds (None: no limit) until every emitted event
        is sent or given up; False if some are still pending."""
        await self.start()
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        while True:
            with self._lock:
                if self._pending == 0:
                    return True
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            tasks = set(self._tasks)
            if tasks:
                await asyncio.wait(tasks, timeout=remaining)
            else:
                # An emit from another thread is on its way via call_soon_threadsafe.
                await asyncio.sleep(0.005)

    async def aclose(self, drain_timeout: float = 1.0) -> None:
        """Give deliveries ``drain_timeout`` seconds, then cancel the rest."""
        running = _running_loop()
        bound = self._loop
        if running is not None and (bound is None or bound.is_closed() or bound is running):
            await self.drain(drain_timeout)
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        with self._lock:
            # Events never handed to a loop cannot be delivered after close.
            self._pending -= len(self._backlog)
            self._cancelled += len(self._backlog)
            self._backlog.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # reporting ---------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Delivery counts for ``GET /_emulator/stats``."""
        with self._lock:
            return {
                "url": self._url,
                "emitted": self._emitted,
                "sent": self._sent,
                "failed_attempts": self._failed_attempts,
                "given_up": self._given_up,
                "cancelled": self._cancelled,
                "pending": self._pending,
            }

    def deliveries(self) -> list[dict[str, Any]]:
        """The most recent delivery attempts, oldest first, for debugging."""
        with self._lock:
            return list(self._recent)

    def reset_stats(self) -> None:
        with self._lock:
            self._emitted = self._sent = self._failed_attempts = 0
            self._given_up = self._cancelled = 0
            self._recent.clear()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


__all__ = [
    "MAX_ATTEMPTS",
    "SIGNATURE_HEADER",
    "Event",
    "Subscription",
    "WebhookEmitter",
    "envelope",
    "new_verification_token",
    "send_verification",
    "sign",
    "verify",
]
