"""Opening the Notion board from settings: client, board resolution, bot identity."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy import Engine

from factory.store import repo
from factory.threads import run_io
from integrations.notion.board import NotionBoard, resolve_board
from integrations.notion.client import NotionClient
from integrations.notion.ratelimit import RateBudget, shared_bucket
from integrations.notion.repliers import USERS_UNREADABLE, UserDirectory, replier_warnings
from integrations.notion.settings import NotionSettings
from integrations.notion.shared_budget import bind_to_bot, shared_budget

log = logging.getLogger("nfactory.notion")


def rate_budget(settings: NotionSettings, db: Engine | None) -> RateBudget:
    """The integration's budget: shared through `db` by every worker on it, or this
    process's own (no database, NOTION_RATE_SHARED=off, or auto on SQLite)."""
    token, rate, burst = settings.token(), settings.notion_rate_limit, settings.notion_burst
    shared = settings.notion_rate_shared
    if db is None or shared == "off" or (shared == "auto" and db.dialect.name != "postgresql"):
        return shared_bucket(token, rate, burst)
    return shared_budget(token, db, rate, burst)


def make_client(settings: NotionSettings, db: Engine | None = None) -> NotionClient:
    return NotionClient(
        settings.token(),
        settings.notion_base_url,
        rate=settings.notion_rate_limit,
        burst=settings.notion_burst,
        bucket=rate_budget(settings, db),
    )


@asynccontextmanager
async def open_notion_board(
    settings: NotionSettings, db: Engine, now: datetime
) -> AsyncIterator[NotionBoard]:
    """The configured board, ready to poll and deliver (four requests to open: the board,
    the bot, the workspace's users; plus one per allow-listed id not among those users)."""
    if not settings.notion_board_id:
        raise ValueError("NOTION_BOARD_ID is not set: run `nfactory board setup` first")
    async with make_client(settings, db) as client:
        ref = await resolve_board(client, settings.notion_board_id)
        me = await client.me()
        bind_to_bot(client.bucket, me["id"])
        directory = UserDirectory(client)
        await directory.load()
        if not directory.readable:
            log.warning("%s", USERS_UNREADABLE)
        repliers = await directory.resolve(settings.nfactory_allowed_repliers)
        for line in replier_warnings(repliers):
            log.warning("%s", line)

        def register() -> None:
            with db.begin() as conn:
                repo.ensure_board(
                    conn,
                    ref.data_source_id,
                    "notion",
                    now,
                    title=ref.title,
                    external_id=ref.database_id,
                )

        await run_io(register)
        yield NotionBoard(client, db, ref.data_source_id, me["id"], repliers, directory)
