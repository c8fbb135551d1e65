"""Opening the Notion board from settings: client, board resolution, bot identity."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from factory.store import repo
from factory.store.db import Database
from factory.threads import run_io
from integrations.notion.board import NotionBoard, Recheck
from integrations.notion.client import NotionClient
from integrations.notion.errors import NotionError
from integrations.notion.identity import identify, is_board_failure, is_fresh, moved
from integrations.notion.ratelimit import RateBudget, shared_bucket
from integrations.notion.settings import NotionSettings
from integrations.notion.shared_budget import bind_to_bot, shared_budget

log = logging.getLogger("nfactory.notion")


def rate_budget(settings: NotionSettings, db: Database | None) -> RateBudget:
    """The integration's budget: shared through `db` by every worker on it, or this
    process's own (no database, NOTION_RATE_SHARED=off, or auto on SQLite)."""
    token, rate, burst = settings.token(), settings.notion_rate_limit, settings.notion_burst
    shared = settings.notion_rate_shared
    if db is None or shared == "off" or (shared == "auto" and db.dialect.name != "postgresql"):
        return shared_bucket(token, rate, burst)
    return shared_budget(token, db, rate, burst)


def make_client(settings: NotionSettings, db: Database | None = None) -> NotionClient:
    return NotionClient(
        settings.token(),
        settings.notion_base_url,
        rate=settings.notion_rate_limit,
        burst=settings.notion_burst,
        bucket=rate_budget(settings, db),
    )


@asynccontextmanager
async def open_notion_board(
    settings: NotionSettings,
    db: Database,
    now: datetime,
    *,
    check_repliers: bool = False,
) -> AsyncIterator[NotionBoard]:
    """The configured board, ready to poll and deliver.

    Opening costs no request while the board and bot ids kept in the database are
    fresh (integrations/notion/identity.py), two or three otherwise.
    Who may answer questions is read on first need (a card in Feedback), or at once
    with `check_repliers` (`start` warns about the allow-list as it starts).
    """
    board_id = settings.notion_board_id
    if not board_id:
        raise ValueError("NOTION_BOARD_ID is not set: run `nfactory board setup` first")
    async with make_client(settings, db) as client:
        found = await identify(client, db, board_id, now)
        bind_to_bot(client.bucket, found.bot_id)
        ref = found.board

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
        board = NotionBoard(
            client,
            db,
            ref.data_source_id,
            found.bot_id,
            allowed=settings.nfactory_allowed_repliers,
            # asked just now: a failure is not the remembered identity's fault
            recheck=_rechecker(
                client, db, board_id, ref.data_source_id, asked=now if found.checked else None
            ),
        )
        if check_repliers:
            await board.check_repliers()
        yield board


def _rechecker(
    client: NotionClient,
    db: Database,
    board_id: str,
    data_source_id: str,
    asked: datetime | None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Recheck:
    """After a board request failed: ask Notion again which board NOTION_BOARD_ID names
    (at most once per RECHECK_AFTER in a long-lived worker); the caller retries the
    request only when it is still the same data source."""

    async def recheck(exc: NotionError) -> None:
        nonlocal asked
        now = clock()
        if not is_board_failure(exc) or (asked is not None and is_fresh(asked, now)):
            raise exc
        asked = now
        log.warning("the board failed a request (%s): asking Notion which board it is", exc)
        found = await identify(client, db, board_id, now, recheck=True)
        if found.board.data_source_id != data_source_id:
            raise moved(board_id, data_source_id, found.board.data_source_id)

    return recheck
