"""The Notion board: the Board protocol over notion-client, for one data source."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from factory.board_protocol import Delivery, PendingEffect, PollReport, Reply, RequestStats, Sending
from factory.progress import ProgressUpdate
from factory.store import outbox, repo
from factory.store.db import Database
from factory.threads import run_io
from integrations.notion.client import NotionClient
from integrations.notion.deliver import NotionDeliverer
from integrations.notion.errors import NotionError
from integrations.notion.feedback import answering, author_of, new_replies
from integrations.notion.intake import poll
from integrations.notion.progress import NotionProgress
from integrations.notion.repliers import (
    USERS_UNREADABLE,
    Repliers,
    UserDirectory,
    replier_warnings,
)
from integrations.notion.retry import doubt_grace

log = logging.getLogger("nfactory.notion")
# Called when a request on the board failed: re-raises unless the board is found again.
Recheck = Callable[[NotionError], Awaitable[None]]


@dataclass(frozen=True)
class BoardRef:
    database_id: str | None
    data_source_id: str
    title: str


async def resolve_board(client: NotionClient, board_id: str) -> BoardRef:
    """NOTION_BOARD_ID may name a database or one of its data sources; answer the source."""
    try:
        database = await client.retrieve_database(board_id)
    except NotionError as exc:
        if exc.status != 404:
            raise
    else:
        sources = database.get("data_sources") or []
        if not sources:
            raise NotionError(
                status=None,
                code="no_data_source",
                message=f"database {board_id} has no data source to use as the board",
                hint="open the database in Notion and make sure it has a table",
            )
        title = "".join(t.get("plain_text", "") for t in database.get("title", []))
        return BoardRef(database["id"], sources[0]["id"], title)
    source = await client.retrieve_data_source(board_id)
    title = "".join(t.get("plain_text", "") for t in source.get("title", []))
    parent = source.get("parent") or {}
    return BoardRef(parent.get("database_id"), source["id"], title)


class NotionBoard:
    def __init__(
        self,
        client: NotionClient,
        db: Database,
        data_source_id: str,
        bot_id: str,
        allowed: Sequence[str] = (),
        recheck: Recheck | None = None,
    ) -> None:
        self.id = data_source_id
        self.client = client
        self.db = db
        self.bot_id = bot_id
        # NFACTORY_ALLOWED_REPLIERS, resolved on first need (see _repliers_now)
        self.allowed = tuple(allowed)
        self._repliers: Repliers | None = None
        self._resolving = asyncio.Lock()
        # Who is a person: the /users listing on first need, then one lookup per newcomer.
        self.directory = UserDirectory(client)
        self.recheck = recheck
        self.progress = NotionProgress(client, db, bot_id)
        self.deliverer = NotionDeliverer(client, db, bot_id, self.progress)
        # a write the client gave up on may still be applied: outlast any request it lets run
        self.doubt_grace = doubt_grace(
            timeout=client.timeout,
            max_attempts=client.max_attempts,
            backoff_base=client.backoff_base,
            backoff_cap=client.backoff_cap,
        )

    async def poll(
        self, factories: Iterable[str], now: datetime, unloaded: Mapping[str, str] | None = None
    ) -> PollReport:
        try:
            return await poll(self.client, self.db, self.id, factories, now, unloaded)
        except NotionError as exc:
            if self.recheck is None:
                raise
            await self.recheck(exc)  # the remembered board may be stale: asked again, once
            return await poll(self.client, self.db, self.id, factories, now, unloaded)

    def request_stats(self) -> RequestStats:
        stats = self.client.stats
        return RequestStats(
            total=stats.total,
            retries=stats.retries,
            rate_limited=stats.rate_limited,
            by_endpoint=dict(stats.by_endpoint),
            errors=dict(stats.errors),
        )

    async def deliver(
        self, effects: Sequence[PendingEffect], sending: Sending | None = None
    ) -> list[Delivery]:
        return await self.deliverer.deliver(effects, sending)

    async def show_progress(self, update: ProgressUpdate) -> bool:
        return await self.progress.show(update)

    async def replies(self, task_id: str) -> list[Reply]:
        task, question, consumed = await run_io(self._feedback_state, task_id)
        if task.external_id is None or question is None:
            return []  # the question has not reached the card yet: nobody can answer it
        # in the background: deliveries and intake go first (docs/operations.md)
        comments = await self.client.list_comments_all(task.external_id, background=True)
        question_id = question or None
        candidates = answering(
            comments, bot_id=self.bot_id, question_id=question_id, consumed=consumed
        )
        # Only authors the allow-list admits are worth asking Notion about.
        repliers = await self._repliers_now()
        authors = {a for a in map(author_of, candidates) if repliers.admits_id(a)}
        people = {a for a in authors if await self.directory.kind(a) == "person"}
        return new_replies(
            comments,
            bot_id=self.bot_id,
            question_id=question_id,
            consumed=consumed,
            people=people,
            repliers=repliers,
        )

    async def check_repliers(self) -> None:
        """What `start` does at once: read who may answer, warning about the allow-list."""
        await self._repliers_now()

    async def _repliers_now(self) -> Repliers:
        """Who may answer, read on first need: the workspace's users cost requests that a
        tick with no card in Feedback must not pay. Fails closed as `resolve` does."""
        if self._repliers is not None:
            return self._repliers
        async with self._resolving:
            if self._repliers is None:
                if not self.directory.loaded:
                    await self.directory.load()
                    if not self.directory.readable:
                        log.warning("%s", USERS_UNREADABLE)
                repliers = await self.directory.resolve(self.allowed)
                for line in replier_warnings(repliers):
                    log.warning("%s", line)
                self._repliers = repliers
            return self._repliers

    def _feedback_state(self, task_id: str) -> tuple[repo.TaskRow, str | None, set[str]]:
        with self.db.connect() as conn:
            task = repo.get_task(conn, task_id)
            # the newest comment effect is the question; until it is delivered, wait
            question = outbox.question_comment(conn, task_id)
            return task, question, repo.consumed_comment_ids(conn, task_id)
