"""The board's identity and the bot's own id, asked of Notion at most once an hour.

People run `nfactory tick` from cron. Asking Notion at every tick which data source
NOTION_BOARD_ID names and who the bot is would triple the cost of an idle tick (one
poll), so both are kept in the database (factory/store/identity.py) and asked again:
when a request on the board fails (`BoardIdentity.recheck`), by `nfactory doctor`, and
once they are RECHECK_AFTER old.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from factory.store import identity as store
from factory.store.db import Database
from factory.threads import run_io
from integrations.notion.board import BoardRef, resolve_board
from integrations.notion.client import NotionClient
from integrations.notion.errors import NotionError
from integrations.notion.repliers import normalize_id

# How long a checked identity is trusted without a failure to doubt it.
RECHECK_AFTER = timedelta(hours=1)


def board_key(board_id: str) -> str:
    """NOTION_BOARD_ID as the cache is keyed: a changed setting never finds another's row."""
    return normalize_id(board_id) or board_id.strip()


def is_fresh(checked_at: datetime, now: datetime, max_age: timedelta = RECHECK_AFTER) -> bool:
    """Whether an identity checked at `checked_at` is still trusted at `now`. One checked
    "in the future" (the clock was set back) is not: better one request than a stale id."""
    return timedelta(0) <= now - checked_at < max_age


def is_board_failure(exc: NotionError) -> bool:
    """A failure that may mean the remembered board is wrong: not found / not shared (404),
    or a request Notion rejects as sent (400), e.g. a data source that is no longer one."""
    return exc.status in (400, 404)


@dataclass(frozen=True)
class Identity:
    board: BoardRef
    bot_id: str
    checked: bool  # asked of Notion in this process, not read from the database


def gone(board_id: str, exc: NotionError) -> NotionError:
    """The error a command reports when the board cannot be found again."""
    return NotionError(
        status=exc.status,
        code=exc.code,
        message=f"the board NOTION_BOARD_ID={board_id} cannot be read: {exc.message}",
        hint=(
            "it was deleted, or is no longer shared with the integration (open it in Notion, "
            "••• → Connections → add the integration), or NOTION_BOARD_ID is wrong; "
            "`nfactory doctor` checks it"
        ),
        request_id=exc.request_id,
    )


def moved(board_id: str, old: str, new: str) -> NotionError:
    """NOTION_BOARD_ID names another data source than the one this process works on."""
    return NotionError(
        status=None,
        code="board_changed",
        message=f"NOTION_BOARD_ID={board_id} now names data source {new}, not {old}",
        hint=(
            "the next command (or a restarted `nfactory start`) uses the new one; cards "
            "taken in from the old one stay in the database (`nfactory status`)"
        ),
    )


async def identify(
    client: NotionClient, db: Database, board_id: str, now: datetime, *, recheck: bool = False
) -> Identity:
    """The board NOTION_BOARD_ID names and the bot's id: from the database while fresh,
    else from Notion (then remembered). A board Notion no longer finds is forgotten."""
    key = board_key(board_id)
    if not recheck:
        row = await run_io(_load, db, key)
        if row is not None and is_fresh(row.checked_at, now):
            ref = BoardRef(row.database_id, row.data_source_id, row.title)
            return Identity(ref, row.bot_id, checked=False)
    try:
        ref = await resolve_board(client, board_id)
    except NotionError as exc:
        if exc.status == 404:
            await run_io(forget, db, board_id)
            raise gone(board_id, exc) from None
        raise
    me = await client.me()
    await run_io(remember, db, board_id, ref, me["id"], now)
    return Identity(ref, me["id"], checked=True)


def remember(db: Database, board_id: str, ref: BoardRef, bot_id: str, now: datetime) -> None:
    row = store.IdentityRow(
        board_key(board_id), ref.data_source_id, ref.database_id, ref.title, bot_id, now
    )
    with db.begin() as conn:
        store.save_identity(conn, row)


def forget(db: Database, board_id: str) -> None:
    with db.begin() as conn:
        store.forget_identity(conn, board_key(board_id))


def _load(db: Database, key: str) -> store.IdentityRow | None:
    with db.connect() as conn:
        return store.load_identity(conn, key)
