"""The Notion board's identity kept between commands: what NOTION_BOARD_ID resolved to
(data source, database, title) and the bot's own user id, with when they were checked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from factory.store.tables import board_identity


@dataclass(frozen=True)
class IdentityRow:
    board_ref: str  # NOTION_BOARD_ID as configured (normalized)
    data_source_id: str
    database_id: str | None
    title: str
    bot_id: str
    checked_at: datetime


def load_identity(conn: Connection, board_ref: str) -> IdentityRow | None:
    row = conn.execute(
        select(board_identity).where(board_identity.c.board_ref == board_ref)
    ).one_or_none()
    return None if row is None else IdentityRow(**row._mapping)


def save_identity(conn: Connection, found: IdentityRow) -> None:
    """Insert or replace the row for `found.board_ref`; workers checking at once both
    succeed (the later check wins)."""
    values = {
        "data_source_id": found.data_source_id,
        "database_id": found.database_id,
        "title": found.title,
        "bot_id": found.bot_id,
        "checked_at": found.checked_at,
    }
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(
        insert(board_identity)
        .values(board_ref=found.board_ref, **values)
        .on_conflict_do_update(index_elements=[board_identity.c.board_ref], set_=values)
    )


def forget_identity(conn: Connection, board_ref: str) -> None:
    conn.execute(delete(board_identity).where(board_identity.c.board_ref == board_ref))
