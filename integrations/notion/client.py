"""The one way notion-factory talks to Notion: notion-client behind a shared rate limit.

notion-client's own retries are switched off: this layer is the only one that
retries, so attempts are counted once, Retry-After pauses every caller sharing
the token, and writes (POST/PATCH) are retried on 409 and 5xx too, which is
safe here because every board write is idempotent or checked before re-sending.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx
import notion_client
from notion_client.errors import HTTPResponseError, RequestTimeoutError

from integrations.notion.errors import NotionError
from integrations.notion.ratelimit import TokenBucket, shared_bucket
from integrations.notion.retry import parse_retry_after, retry_delay

log = logging.getLogger("nfactory.notion")

NOTION_VERSION = "2025-09-03"
_UUIDISH = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)


def template(method: str, path: str) -> str:
    """`PATCH pages/{id}` for counting requests by endpoint."""
    return f"{method.upper()} /v1/{_UUIDISH.sub('{id}', path)}"


@dataclass
class ClientStats:
    total: int = 0
    retries: int = 0
    rate_limited: int = 0
    by_endpoint: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    by_object: dict[str, int] = field(default_factory=dict)  # page/block id (undashed) -> requests

    def for_object(self, object_id: str) -> int:
        return self.by_object.get(object_id.replace("-", ""), 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "by_endpoint": dict(self.by_endpoint),
            "errors": dict(self.errors),
        }


class NotionClient:
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
        sleep: Callable[[float], Awaitable[None]] | None = None,
        rng: random.Random | None = None,
        bucket: TokenBucket | None = None,
    ) -> None:
        self._sdk = notion_client.AsyncClient(
            auth=token,
            base_url=base_url.rstrip("/"),
            notion_version=NOTION_VERSION,
            timeout_ms=int(timeout * 1000),
            retry=False,
            log_level=logging.ERROR,  # failures are reported once, by this layer
        )
        self.bucket = bucket or shared_bucket(token, rate, burst)
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.rng = rng or random.Random()
        self._sleep = sleep
        self.stats = ClientStats()

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

    async def _pause(self, seconds: float) -> None:
        await (self._sleep or asyncio.sleep)(seconds)

    # -- the one request path ---------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """One API call, retried as the retry policy allows; raises NotionError.

        Pass idempotent=False for writes that would duplicate if applied twice
        (comments, appends): those are not retried once they may have landed,
        and the error says so (`maybe_applied`) so the caller can check first.
        """
        path = path.removeprefix("/").removeprefix("v1/")
        endpoint = template(method, path)
        attempt = 0
        while True:
            await self.bucket.acquire()
            self.stats.total += 1
            self.stats.by_endpoint[endpoint] = self.stats.by_endpoint.get(endpoint, 0) + 1
            for object_id in _UUIDISH.findall(f"{path} {(query or {}).get('block_id', '')}"):
                key = object_id.replace("-", "")
                self.stats.by_object[key] = self.stats.by_object.get(key, 0) + 1
            try:
                return await self._sdk.request(path, method.upper(), query=query, body=body)
            except Exception as exc:
                error, retry_after, sent = _translate(exc)
            self.stats.errors[error.code] = self.stats.errors.get(error.code, 0) + 1
            if error.status in (429, 529):
                self.stats.rate_limited += 1
            delay = None
            if attempt + 1 < self.max_attempts:
                delay = retry_delay(
                    attempt,
                    error.status,
                    retry_after,
                    base=self.backoff_base,
                    cap=self.backoff_cap,
                    rng=self.rng,
                    idempotent=idempotent,
                    sent=sent,
                )
            if delay is None:
                error.maybe_applied = (
                    not idempotent and sent and (error.status is None or error.status >= 500)
                )
                raise error
            if error.status in (429, 529):
                self.bucket.pause_for(delay)
            log.info(
                "%s failed (%s %s), retry %d in %.2fs",
                endpoint,
                error.status,
                error.code,
                attempt + 1,
                delay,
            )
            self.stats.retries += 1
            attempt += 1
            await self._pause(delay)

    async def paginate(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            if method.upper() == "GET":
                q = {**(query or {}), "page_size": page_size}
                if cursor:
                    q["start_cursor"] = cursor
                page = await self.request(method, path, query=q)
            else:
                b = {**(body or {}), "page_size": page_size}
                if cursor:
                    b["start_cursor"] = cursor
                page = await self.request(method, path, body=b, query=query)
            for item in page.get("results", []):
                yield item
            cursor = page.get("next_cursor")
            if not page.get("has_more") or not cursor:
                return

    async def _all(self, method: str, path: str, **kwargs: Any) -> list[dict[str, Any]]:
        return [item async for item in self.paginate(method, path, **kwargs)]

    # -- endpoints the board uses -----------------------------------------------------

    async def me(self) -> dict[str, Any]:
        return await self.request("GET", "users/me")

    async def retrieve_database(self, database_id: str) -> dict[str, Any]:
        return await self.request("GET", f"databases/{database_id}")

    async def create_database(
        self, parent_page_id: str, title: str, properties: dict[str, Any]
    ) -> dict[str, Any]:
        return await self.request(
            "POST",
            "databases",
            body={
                "parent": {"type": "page_id", "page_id": parent_page_id},
                "title": [{"type": "text", "text": {"content": title}}],
                "initial_data_source": {"properties": properties},
            },
        )

    async def retrieve_data_source(self, data_source_id: str) -> dict[str, Any]:
        return await self.request("GET", f"data_sources/{data_source_id}")

    async def update_data_source(
        self, data_source_id: str, *, properties: dict[str, Any]
    ) -> dict[str, Any]:
        return await self.request(
            "PATCH", f"data_sources/{data_source_id}", body={"properties": properties}
        )

    async def query_page(
        self,
        data_source_id: str,
        *,
        filter: dict[str, Any] | None = None,
        sorts: list[dict[str, Any]] | None = None,
        start_cursor: str | None = None,
        page_size: int = 100,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"page_size": page_size}
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
        *,
        filter: dict[str, Any] | None = None,
        sorts: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {}
        if filter:
            body["filter"] = filter
        if sorts:
            body["sorts"] = sorts
        return await self._all("POST", f"data_sources/{data_source_id}/query", body=body)

    async def retrieve_page(self, page_id: str) -> dict[str, Any]:
        return await self.request("GET", f"pages/{page_id}")

    async def create_page(
        self,
        parent: dict[str, Any],
        properties: dict[str, Any],
        *,
        children: list[dict[str, Any]] | None = None,
        markdown: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"parent": parent, "properties": properties}
        if children:
            body["children"] = children
        if markdown:
            body["markdown"] = markdown
        return await self.request("POST", "pages", body=body)

    async def update_page(
        self,
        page_id: str,
        *,
        properties: dict[str, Any] | None = None,
        in_trash: bool | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if properties is not None:
            body["properties"] = properties
        if in_trash is not None:
            body["in_trash"] = in_trash
        return await self.request("PATCH", f"pages/{page_id}", body=body)

    async def get_markdown(self, page_id: str) -> dict[str, Any]:
        return await self.request("GET", f"pages/{page_id}/markdown")

    async def insert_markdown(self, page_id: str, content: str) -> dict[str, Any]:
        return await self.request(
            "PATCH",
            f"pages/{page_id}/markdown",
            body={"type": "insert_content", "insert_content": {"content": content}},
            idempotent=False,
        )

    async def append_blocks(
        self, block_id: str, children: list[dict[str, Any]], after: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"children": children}
        if after:
            body["after"] = after
        return await self.request(
            "PATCH", f"blocks/{block_id}/children", body=body, idempotent=False
        )

    async def list_children_all(self, block_id: str) -> list[dict[str, Any]]:
        return await self._all("GET", f"blocks/{block_id}/children")

    async def list_comments_page(
        self, page_id: str, start_cursor: str | None = None, page_size: int = 100
    ) -> dict[str, Any]:
        query: dict[str, Any] = {"block_id": page_id, "page_size": page_size}
        if start_cursor:
            query["start_cursor"] = start_cursor
        return await self.request("GET", "comments", query=query)

    async def list_comments_all(self, page_id: str) -> list[dict[str, Any]]:
        return await self._all("GET", "comments", query={"block_id": page_id})

    async def create_comment(self, page_id: str, rich_text: list[dict[str, Any]]) -> dict[str, Any]:
        return await self.request(
            "POST",
            "comments",
            body={"parent": {"page_id": page_id}, "rich_text": rich_text},
            idempotent=False,
        )


def _translate(exc: Exception) -> tuple[NotionError, float | None, bool]:
    """(NotionError, Retry-After, whether the request reached Notion) for a failure.

    Only the message is kept: never headers, which carry the token.
    """
    if isinstance(exc, HTTPResponseError):
        code = str(getattr(exc.code, "value", exc.code))
        if code == "notionhq_client_response_error":
            code = {502: "bad_gateway", 529: "service_overload"}.get(exc.status, "http_error")
        retry_after = parse_retry_after(exc.headers.get("retry-after"))
        message = str(exc) if exc.body.lstrip().startswith("{") else f"HTTP {exc.status}"
        error = NotionError(
            status=exc.status, code=code, message=message, request_id=exc.request_id
        )
        return error, retry_after, True
    if isinstance(exc, RequestTimeoutError):
        return NotionError(status=None, code="timeout", message="the request timed out"), None, True
    if isinstance(exc, httpx.HTTPError):
        sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
        error = NotionError(
            status=None, code="connection_error", message=f"{type(exc).__name__}: {exc}"
        )
        return error, None, sent
    raise exc
