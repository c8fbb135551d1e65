"""The Notion board wired once: its client and rate budget from settings, the board on a
data source (registered in the database, its bot known), and the webhook receiver."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

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
from integrations.notion.webhooks import WebhookReceiver

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

        board = await board_on(
            client,
            db,
            ref.data_source_id,
            now,
            bot_id=found.bot_id,
            title=ref.title,
            database_id=ref.database_id,
            allowed=settings.nfactory_allowed_repliers,
            # asked just now: a failure is not the remembered identity's fault
            recheck=_rechecker(
                client, db, board_id, ref.data_source_id, asked=now if found.checked else None
            ),
        )
        if check_repliers:
            await board.check_repliers()
        yield board


async def board_on(
    client: NotionClient,
    db: Database,
    data_source_id: str,
    now: datetime,
    *,
    bot_id: str | None = None,
    title: str = "",
    database_id: str | None = None,
    allowed: Sequence[str] = (),
    recheck: Recheck | None = None,
    know_people: bool = False,
) -> NotionBoard:
    """The board on `data_source_id`, registered in `db`. `bot_id` costs a request
    (`GET /v1/users/me`) when not given; `know_people` reads who is a person at once
    (one `GET /v1/users`) instead of on first need."""
    if bot_id is None:
        bot_id = str((await client.me())["id"])
    await run_io(
        repo.register_board,
        db,
        data_source_id,
        "notion",
        now,
        title=title,
        external_id=database_id,
    )
    board = NotionBoard(client, db, data_source_id, bot_id, allowed=allowed, recheck=recheck)
    if know_people:
        await board.directory.load()
    return board


def webhook_app(
    settings: NotionSettings,
    db: Database,
    board: NotionBoard,
    *,
    wake: Callable[[str], None],
    hint: Callable[[str, str], None],
    health: Callable[[], dict[str, Any]],
    metrics: Callable[[], str],
    serve_ops: bool,
    token_file: Path = Path(".nfactory") / "webhook-verification-token",
) -> Starlette:
    """`POST /webhooks/notion` for `board`, checked against NOTION_WEBHOOK_SECRET (and
    `/healthz`, `/metrics` beside it when `serve_ops`)."""
    secret = settings.notion_webhook_secret
    receiver = WebhookReceiver(
        db,
        secret.get_secret_value() if secret else None,
        board.bot_id,
        wake,
        health,
        metrics,
        token_file,
        hint=hint,
        max_bytes=settings.nfactory_webhook_max_bytes,
        serve_ops=serve_ops,
    )
    return receiver.app


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
