"""The one way notion-factory talks to Notion: notion-client behind a shared rate limit.

notion-client's own retries are switched off: this layer is the only one that
retries, so attempts are counted once, every attempt waits for the shared
token bucket, a Retry-After pauses every caller sharing the token, and writes
(POST/PATCH) are retried on 409 and 5xx too, which is safe here because every
board write is idempotent or marked `idempotent=False` and checked before
re-sending.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx
import notion_client
from notion_client.errors import (
    HTTPResponseError,
    InvalidPathParameterError,
    RequestTimeoutError,
    validate_request_path,
)

from factory.redact import register as redact_register
from factory.settings import SettingsError
from integrations.notion.errors import NotionError, redact
from integrations.notion.ratelimit import RateBudget, shared_bucket
from integrations.notion.retry import RATE_STATUSES, parse_retry_after, retry_delay
from integrations.notion.settings import header_problem

log = logging.getLogger("nfactory.notion")
# notion-client adds a stdout handler to its package logger for every client it
# builds unless given a logger; this one stays quiet (failures are reported once, here).
_sdk_log = logging.getLogger("nfactory.notion.sdk")

NOTION_VERSION = "2025-09-03"
MAX_PAGE_SIZE = 100
_UUIDISH = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)

Json = dict[str, Any]
# Awaited as a request's attempt is sent: lets a caller record the real send time.
OnSend = Callable[[], Awaitable[None]]


def normalise_path(path: str) -> str:
    """`pages/x` for any of `pages/x`, `/pages/x`, `v1/pages/x`, `/v1/pages/x`."""
    return path.strip().lstrip("/").removeprefix("v1/").lstrip("/")


def template(method: str, path: str) -> str:
    """`PATCH /v1/pages/{id}`: the endpoint, for counting requests without ids."""
    return f"{method.upper()} /v1/{_UUIDISH.sub('{id}', normalise_path(path))}"


@dataclass
class ClientStats:
    """What this client sent; the CLI and the benchmarks print it."""

    total: int = 0  # requests sent, retries included
    spare: int = 0  # of which sent on spare budget only (progress lines), never waited for
    background: int = 0  # of which sent only when no other request waited (reply checks)
    skipped: int = 0  # spare-budget requests not sent: no budget to spare then
    retries: int = 0
    rate_limited: int = 0  # 429 and 529 answers received
    by_endpoint: dict[str, int] = field(default_factory=dict)  # "METHOD /v1/path/{id}" -> sent
    errors: dict[str, int] = field(default_factory=dict)  # error code -> failed attempts
    by_object: dict[str, int] = field(default_factory=dict)  # page/block id (undashed) -> sent

    def for_object(self, object_id: str) -> int:
        return self.by_object.get(object_id.replace("-", ""), 0)

    def summary(self) -> str:
        """One line: `42 requests, 3 retries, 0 rate limited (errors: ...)`."""
        text = f"{self.total} requests, {self.retries} retries, {self.rate_limited} rate limited"
        if self.errors:
            text += " (errors: " + ", ".join(f"{k} {v}" for k, v in sorted(self.errors.items()))
            text += ")"
        return text


class NoSpareBudget(Exception):
    """A spare-budget request was not sent: the rate budget has nothing to spare now."""


def _rich_title(title: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(title, str):
        return [{"type": "text", "text": {"content": title}}]
    return title


class NotionClient:
    """notion-client's AsyncClient behind the shared bucket and the one retry policy."""

    def __init__(
        self,
        token: str,
        base_url: str = "https://api.notion.com",
        *,
        rate: float = 3.0,
        burst: int = 3,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_cap: float = 20.0,
        timeout: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        bucket: RateBudget | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        # Before anything can quote it: every later message is scrubbed of the token.
        redact_register(token)
        problem = header_problem(token)
        if problem is not None:
            # httpx would fail on the first request with the header (token included) in
            # its message, or with an encoding error that names nothing.
            raise SettingsError(f"NOTION_TOKEN: {problem}")
        self.base_url = base_url.rstrip("/")
        self._sdk = notion_client.AsyncClient(
            auth=token,
            base_url=self.base_url,
            notion_version=NOTION_VERSION,
            timeout_ms=int(timeout * 1000),
            retry=False,
            logger=_sdk_log,
            log_level=logging.ERROR,
        )
        # Kept only to scrub it from server-provided text; never logged or shown.
        self._secret = token
        # `bucket` lets a test or benchmark isolate itself from the process-wide one.
        self.bucket: RateBudget = bucket or shared_bucket(token, rate, burst)
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.rng = rng or random.Random()
        self._sleep = sleep
        # how often a background request asks the bucket again: a few times per token
        self._background_poll = 1.0 / (4 * rate)
        self.stats = ClientStats()

    def __repr__(self) -> str:
        return (
            f"NotionClient(base_url={self.base_url!r}, bucket={self.bucket!r}, "
            f"max_attempts={self.max_attempts})"
        )

    async def aclose(self) -> None:
        await self._sdk.aclose()

    async def __aenter__(self) -> NotionClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- the one request path ---------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Json | None = None,
        query: Json | None = None,
        idempotent: bool = True,
        on_send: OnSend | None = None,
        spare: bool = False,
        background: bool = False,
    ) -> Json:
        """One API call, retried as the retry policy allows; raises NotionError.

        Pass idempotent=False for writes that would duplicate if applied twice
        (comments, appends): those are not retried once they may have landed,
        and the error says so (`maybe_applied`) so the caller can check first.
        `on_send` is awaited as each attempt really goes out (after the wait for
        the rate limit), so a caller can stamp the write's own send time.
        With spare=True the call never waits: it goes once, at once, if the bucket has
        a token to spare (else NoSpareBudget, nothing sent), and is not retried.
        With background=True (reply checks) the call waits its turn behind every other
        request: each attempt goes only when no other caller is waiting for a token.
        """
        method = method.upper()
        path = normalise_path(path)
        endpoint = template(method, path)
        objects = [
            found.replace("-", "")
            for found in _UUIDISH.findall(f"{path} {(query or {}).get('block_id', '')}")
        ]
        bad_path = _path_problem(path)
        if bad_path is not None:
            # A programming error: fail before spending a token or counting a request.
            raise bad_path
        attempt = 0
        while True:
            if spare:
                if not self.bucket.try_spare():
                    self.stats.skipped += 1
                    raise NoSpareBudget(endpoint)
                self.stats.spare += 1
            elif background:
                await self._background_token()
                self.stats.background += 1
            else:
                await self.bucket.acquire()
            if on_send is not None:
                await on_send()
            self._count_sent(endpoint, objects)
            try:
                result: Json = await self._sdk.request(path, method, query=query, body=body)
                return result
            except Exception as exc:
                error, retry_after, sent = _translate(exc, self._secret)
            # Raised outside the except block on purpose: no exception chain
            # (whose httpx request carries the Authorization header) is attached.
            self.stats.errors[error.code] = self.stats.errors.get(error.code, 0) + 1
            rate_limited = error.status in RATE_STATUSES
            if rate_limited:
                self.stats.rate_limited += 1
            if spare and rate_limited:
                # not retried, but told to slow down all the same: everyone waits
                self.bucket.pause_until(self.bucket.clock() + (retry_after or self.backoff_cap))
            delay = None
            if attempt + 1 < self.max_attempts and not spare:
                delay = retry_delay(
                    attempt,
                    error.status,
                    error.code,
                    retry_after,
                    base=self.backoff_base,
                    cap=self.backoff_cap,
                    rng=self.rng,
                    idempotent=idempotent,
                    sent=sent,
                )
            if delay is None:
                error.maybe_applied = (
                    not idempotent
                    and sent
                    and (error.status is None or error.status >= 500)
                    and error.status not in RATE_STATUSES
                )
                raise error
            if rate_limited:
                # Everyone on this token waits, not just the caller that was told.
                self.bucket.pause_until(self.bucket.clock() + delay)
            log.info(
                "Notion %s failed (%s %s), retry %d/%d in %.2fs",
                endpoint,
                error.status if error.status is not None else "-",
                error.code,
                attempt + 1,
                self.max_attempts - 1,
                delay,
            )
            self.stats.retries += 1
            attempt += 1
            await self._sleep(delay)

    async def _background_token(self) -> None:
        """A token taken only when no foreground request is waiting for one.

        `try_spare(0)` refuses while a caller is queued in `acquire`, so a delivery or a
        poll issued now goes before every background request, however many wait.
        """
        while not self.bucket.try_spare(0.0):
            await self._sleep(self._background_poll)

    def _count_sent(self, endpoint: str, objects: list[str]) -> None:
        self.stats.total += 1
        self.stats.by_endpoint[endpoint] = self.stats.by_endpoint.get(endpoint, 0) + 1
        for key in objects:
            self.stats.by_object[key] = self.stats.by_object.get(key, 0) + 1

    async def paginate(
        self,
        method: str,
        path: str,
        *,
        body: Json | None = None,
        query: Json | None = None,
        page_size: int = 100,
        background: bool = False,
    ) -> AsyncIterator[Json]:
        """Every result of a list endpoint, following has_more / next_cursor.

        The cursor goes in the body for POST (queries), in the query string otherwise.
        """
        size = max(1, min(page_size, MAX_PAGE_SIZE))
        in_body = method.upper() != "GET"
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            if in_body:
                page_body: Json = {**(body or {}), "page_size": size}
                if cursor:
                    page_body["start_cursor"] = cursor
                page = await self.request(
                    method, path, body=page_body, query=query, background=background
                )
            else:
                page_query: Json = {**(query or {}), "page_size": size}
                if cursor:
                    page_query["start_cursor"] = cursor
                page = await self.request(
                    method, path, body=body, query=page_query, background=background
                )
            for item in page.get("results", []):
                yield item
            cursor = page.get("next_cursor")
            if not page.get("has_more") or not cursor:
                return
            if cursor in seen:
                # A server that hands back a cursor twice would loop forever.
                raise NotionError(
                    status=None,
                    code="invalid_response",
                    message=f"{template(method, path)} returned the same cursor twice",
                )
            seen.add(cursor)

    async def _all(self, method: str, path: str, **kwargs: Any) -> list[Json]:
        return [item async for item in self.paginate(method, path, **kwargs)]

    # -- endpoints the board uses -----------------------------------------------------

    async def me(self) -> Json:
        return await self.request("GET", "users/me")

    async def retrieve_database(self, database_id: str) -> Json:
        return await self.request("GET", f"databases/{database_id}")

    async def create_database(
        self, parent_page_id: str, title: str, properties: dict[str, Any]
    ) -> Json:
        """A database with one data source holding `properties` (2025-09-03 shape)."""
        return await self.request(
            "POST",
            "databases",
            body={
                "parent": {"type": "page_id", "page_id": parent_page_id},
                "title": _rich_title(title),
                "initial_data_source": {"properties": properties},
            },
        )

    async def retrieve_data_source(self, data_source_id: str) -> Json:
        return await self.request("GET", f"data_sources/{data_source_id}")

    async def update_data_source(
        self,
        data_source_id: str,
        properties: dict[str, Any] | None = None,
        title: str | list[dict[str, Any]] | None = None,
    ) -> Json:
        body: Json = {}
        if properties is not None:
            body["properties"] = properties
        if title is not None:
            body["title"] = _rich_title(title)
        return await self.request("PATCH", f"data_sources/{data_source_id}", body=body)

    async def query_page(
        self,
        data_source_id: str,
        filter: dict[str, Any] | None = None,
        sorts: list[dict[str, Any]] | None = None,
        start_cursor: str | None = None,
        page_size: int = 100,
    ) -> Json:
        """One page of a query, for callers that may stop early."""
        body: Json = {"page_size": max(1, min(page_size, MAX_PAGE_SIZE))}
        if filter:
            body["filter"] = filter
        if sorts:
            body["sorts"] = sorts
        if start_cursor:
            body["start_cursor"] = start_cursor
        return await self.request("POST", f"data_sources/{data_source_id}/query", body=body)

    async def query_all(
        self,
        data_source_id: str,
        filter: dict[str, Any] | None = None,
        sorts: list[dict[str, Any]] | None = None,
    ) -> list[Json]:
        body: Json = {}
        if filter:
            body["filter"] = filter
        if sorts:
            body["sorts"] = sorts
        return await self._all("POST", f"data_sources/{data_source_id}/query", body=body)

    async def retrieve_page(self, page_id: str) -> Json:
        return await self.request("GET", f"pages/{page_id}")

    async def create_page(
        self,
        parent: dict[str, Any],
        properties: dict[str, Any],
        children: list[dict[str, Any]] | None = None,
        markdown: str | None = None,
        *,
        idempotent: bool = True,
    ) -> Json:
        """A page; pass idempotent=False where a duplicate after a lost answer would hurt."""
        body: Json = {"parent": parent, "properties": properties}
        if children:
            body["children"] = children
        if markdown:
            body["markdown"] = markdown
        return await self.request("POST", "pages", body=body, idempotent=idempotent)

    async def update_page(
        self,
        page_id: str,
        properties: dict[str, Any] | None = None,
        in_trash: bool | None = None,
        *,
        on_send: OnSend | None = None,
    ) -> Json:
        body: Json = {}
        if properties is not None:
            body["properties"] = properties
        if in_trash is not None:
            body["in_trash"] = in_trash
        return await self.request("PATCH", f"pages/{page_id}", body=body, on_send=on_send)

    async def get_markdown(self, page_id: str) -> Json:
        return await self.request("GET", f"pages/{page_id}/markdown")

    async def insert_markdown(
        self, page_id: str, content: str, *, on_send: OnSend | None = None
    ) -> Json:
        return await self.request(
            "PATCH",
            f"pages/{page_id}/markdown",
            body={"type": "insert_content", "insert_content": {"content": content}},
            idempotent=False,
            on_send=on_send,
        )

    async def append_blocks(
        self,
        block_id: str,
        children: list[dict[str, Any]],
        after: str | None = None,
        *,
        on_send: OnSend | None = None,
        spare: bool = False,
    ) -> Json:
        body: Json = {"children": children}
        if after:
            body["after"] = after
        return await self.request(
            "PATCH",
            f"blocks/{block_id}/children",
            body=body,
            idempotent=False,
            on_send=on_send,
            spare=spare,
        )

    async def update_block(self, block_id: str, body: Json, *, spare: bool = False) -> Json:
        return await self.request("PATCH", f"blocks/{block_id}", body=body, spare=spare)

    async def delete_block(self, block_id: str) -> Json:
        return await self.request("DELETE", f"blocks/{block_id}")

    async def list_children_all(self, block_id: str) -> list[Json]:
        return await self._all("GET", f"blocks/{block_id}/children")

    async def list_comments_page(
        self, page_id: str, start_cursor: str | None = None, page_size: int = 100
    ) -> Json:
        query: Json = {"block_id": page_id, "page_size": max(1, min(page_size, MAX_PAGE_SIZE))}
        if start_cursor:
            query["start_cursor"] = start_cursor
        return await self.request("GET", "comments", query=query)

    async def list_comments_all(self, page_id: str, *, background: bool = False) -> list[Json]:
        """Every unresolved comment of the page; background=True lets any other request go
        first (a look for replies can wait, a delivery should not)."""
        return await self._all(
            "GET", "comments", query={"block_id": page_id}, background=background
        )

    async def create_comment(
        self, page_id: str, rich_text: list[dict[str, Any]], *, on_send: OnSend | None = None
    ) -> Json:
        return await self.request(
            "POST",
            "comments",
            body={"parent": {"page_id": page_id}, "rich_text": rich_text},
            idempotent=False,
            on_send=on_send,
        )


_UNKNOWN_STATUS_CODES = {
    409: "conflict_error",
    429: "rate_limited",
    500: "internal_server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
    529: "service_overload",
}


def _translate(exc: Exception, secret: str) -> tuple[NotionError, float | None, bool]:
    """(NotionError, Retry-After seconds, whether the request may have reached Notion).

    Built from the answer's status and JSON body only, never from headers or the
    request (which carries the token), and scrubbed of the token regardless.
    """
    if isinstance(exc, HTTPResponseError):
        code = str(getattr(exc.code, "value", exc.code))
        message = str(exc)
        request_id = exc.request_id
        if code == "notionhq_client_response_error":
            # An error notion-client does not know (529 service_overload, a proxy's page):
            # read Notion's JSON ourselves when there is some.
            parsed = _error_body(exc.body)
            code = str(parsed.get("code") or _UNKNOWN_STATUS_CODES.get(exc.status, "http_error"))
            message = str(parsed.get("message") or f"HTTP {exc.status}")
            request_id = request_id or _str_or_none(parsed.get("request_id"))
        retry_after = parse_retry_after(exc.headers.get("retry-after"), now=time.time())
        error = NotionError(
            status=exc.status,
            code=code,
            message=redact(message, secret),
            request_id=request_id,
        )
        return error, retry_after, True
    if isinstance(exc, RequestTimeoutError):
        error = NotionError(status=None, code="timeout", message="the request timed out")
        return error, None, True
    if isinstance(exc, InvalidPathParameterError):
        error = NotionError(status=400, code="invalid_request_url", message=str(exc))
        return error, None, False
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        error = NotionError(
            status=None, code="invalid_base_url", message=redact(f"{type(exc).__name__}", secret)
        )
        return error, None, False
    if isinstance(exc, httpx.HTTPError):
        # Only a refused connection provably sent nothing; a read error may follow a write.
        sent = not isinstance(exc, httpx.ConnectError)
        error = NotionError(
            status=None,
            code="connection_error",
            message=redact(f"{type(exc).__name__}: {exc}", secret),
        )
        return error, None, sent
    if isinstance(exc, json.JSONDecodeError):
        error = NotionError(status=None, code="invalid_response", message="the answer was not JSON")
        return error, None, True
    raise exc


def _path_problem(path: str) -> NotionError | None:
    try:
        validate_request_path(path)
    except InvalidPathParameterError as exc:
        return NotionError(status=400, code="invalid_request_url", message=str(exc))
    return None


def _error_body(text: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
