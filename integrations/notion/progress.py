"""A running agent's latest progress line on its Notion card: one block, updated in place.

The block is a paragraph under the run's log, appended once per agent step and then
updated with PATCH /v1/blocks/{id}. Every such write goes only on spare rate budget
(it never waits for a token, is never retried, and leaves a token for the next
delivery): progress is dropped before a delivery is delayed.

Before the card's next log or output is appended, the delivery removes the block
(`remove`, under the card's lock), so the log reads in order and the final page
holds the log and the output, never a stale progress line. Its id is kept in the
database so that a restart or another worker still removes it. A block whose
creation may or may not have landed (a timeout) is looked for among the page's
blocks the bot made, never among the person's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from factory.clock import SystemClock
from factory.progress import ProgressUpdate
from factory.store import progress as progress_store
from factory.store import repo
from factory.store.db import Database
from factory.threads import run_io
from integrations.notion.client import NoSpareBudget, NotionClient
from integrations.notion.errors import NotionError
from integrations.notion.richtext import plain

log = logging.getLogger("nfactory.notion")

MARKER = "⏳"
# a progress block whose creation is in doubt: its id is unknown, look for it
UNKNOWN_BLOCK = "?"


def progress_block_text(update: ProgressUpdate) -> str:
    return f"{MARKER} {update.state_id}: {update.line}"


def progress_rich_text(update: ProgressUpdate) -> list[dict[str, Any]]:
    return [
        {
            "type": "text",
            "text": {"content": progress_block_text(update)[:2000]},
            "annotations": {"italic": True, "color": "gray"},
        }
    ]


def is_gone(exc: NotionError) -> bool:
    """The block is no longer there to edit (deleted, by us before, or by a person)."""
    return exc.status == 404 or (exc.status == 400 and "archived" in exc.message.lower())


def is_progress_block(block: dict[str, Any], bot_id: str) -> bool:
    if block.get("type") != "paragraph" or (block.get("created_by") or {}).get("id") != bot_id:
        return False
    return plain(block.get("paragraph", {}).get("rich_text", [])).startswith(MARKER + " ")


class NotionProgress:
    def __init__(self, client: NotionClient, db: Database, bot_id: str) -> None:
        self.client = client
        self.db = db
        self.bot_id = bot_id
        self._locks: dict[str, asyncio.Lock] = {}
        self.removed = 0  # progress blocks removed before a step's log (requests spent)

    @asynccontextmanager
    async def card(self, task_id: str) -> AsyncIterator[None]:
        """One card's progress writes and its deliveries, one at a time."""
        lock = self._locks.setdefault(task_id, asyncio.Lock())
        async with lock:
            yield

    async def show(self, update: ProgressUpdate) -> bool:
        async with self.card(update.task_id):
            page_id, block_id, settled = await run_io(self._read, update.task_id)
            if page_id is None or not settled or block_id == UNKNOWN_BLOCK:
                # no log section yet, log lines waiting (the block would sit above them),
                # or a block in doubt (another would make two): not now
                return False
            text = progress_rich_text(update)
            try:
                if block_id is None:
                    made = await self.client.append_blocks(
                        page_id,
                        [{"type": "paragraph", "paragraph": {"rich_text": text}}],
                        spare=True,
                    )
                    await run_io(self._remember, update, made["results"][0]["id"])
                else:
                    await self.client.update_block(
                        block_id, {"paragraph": {"rich_text": text}}, spare=True
                    )
                    await run_io(self._remember, update, block_id)
            except NoSpareBudget:
                return False
            except NotionError as exc:
                if block_id is None and exc.maybe_applied:
                    await run_io(self._remember, update, UNKNOWN_BLOCK)
                elif block_id is not None and is_gone(exc):
                    await run_io(self._forget, update.task_id, block_id)  # a new one next time
                log.info("progress on card %s not shown: %s", update.task_id[:8], exc)
            return True

    async def remove(self, task_id: str, page_id: str) -> None:
        """Take the card's progress block off the page (the caller holds `card`)."""
        block_id = await run_io(self._block, task_id)
        if block_id is None:
            return
        if block_id == UNKNOWN_BLOCK:
            for block in await self.client.list_children_all(page_id):
                if is_progress_block(block, self.bot_id) and not block.get("in_trash"):
                    await self._delete(block["id"])
        else:
            await self._delete(block_id)
        await run_io(self._forget, task_id, block_id)

    async def _delete(self, block_id: str) -> None:
        try:
            await self.client.delete_block(block_id)
            self.removed += 1
        except NotionError as exc:
            if not is_gone(exc):
                raise

    # -- the database -------------------------------------------------------------------

    def _read(self, task_id: str) -> tuple[str | None, str | None, bool]:
        with self.db.connect() as conn:
            task = repo.get_task(conn, task_id)
            return (
                task.external_id,
                progress_store.get_block(conn, task_id),
                progress_store.log_settled(conn, task_id),
            )

    def _block(self, task_id: str) -> str | None:
        with self.db.connect() as conn:
            return progress_store.get_block(conn, task_id)

    def _remember(self, update: ProgressUpdate, block_id: str) -> None:
        now = SystemClock().now()
        with self.db.begin() as conn:
            progress_store.set_block(conn, update.task_id, block_id, now)
            progress_store.set_line(conn, update.task_id, update.state_id, update.line, now)

    def _forget(self, task_id: str, block_id: str) -> None:
        with self.db.begin() as conn:
            progress_store.forget_block(conn, task_id, block_id)
