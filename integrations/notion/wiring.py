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
from integrations.notion.repliers import USERS_UNREADABLE, UserDirectory, replier_warnings
from integrations.notion.settings import NotionSettings

log = logging.getLogger("nfactory.notion")


def make_client(settings: NotionSettings) -> NotionClient:
    return NotionClient(
        settings.token(),
        settings.notion_base_url,
        rate=settings.notion_rate_limit,
        burst=settings.notion_burst,
    )


@asynccontextmanager
async def open_notion_board(
    settings: NotionSettings, db: Engine, now: datetime
) -> AsyncIterator[NotionBoard]:
    """The configured board, ready to poll and deliver (four requests to open: the board,
    the bot, the workspace's users; plus one per allow-listed id not among those users)."""
    if not settings.notion_board_id:
        raise ValueError("NOTION_BOARD_ID is not set: run `nfactory board setup` first")
    async with make_client(settings) as client:
        ref = await resolve_board(client, settings.notion_board_id)
        me = await client.me()
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
