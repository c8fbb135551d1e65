"""Opening the Notion board from settings: client, board resolution, bot identity."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy import Engine

from factory.store import repo
from factory.threads import run_io
from integrations.notion.board import NotionBoard, resolve_board, resolve_repliers
from integrations.notion.client import NotionClient
from integrations.notion.settings import NotionSettings


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
    """The configured board, ready to poll and deliver (three requests to open)."""
    if not settings.notion_board_id:
        raise ValueError("NOTION_BOARD_ID is not set: run `nfactory board setup` first")
    async with make_client(settings) as client:
        ref = await resolve_board(client, settings.notion_board_id)
        me = await client.me()
        allowed = await resolve_repliers(client, settings.nfactory_allowed_repliers)

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
        yield NotionBoard(client, db, ref.data_source_id, me["id"], allowed)
