"""The local board's comment threads: the bot's comments and people's replies."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select

from factory.statuses import TaskStatus
from factory.store.db import Database
from factory.store.repo import LOCAL_BOARD, consumed_comment_ids, get_task
from factory.store.tables import local_comments


def post_once(conn: Connection, task_id: str, author: str, text: str, now: datetime) -> str:
    """The bot's comment signed `author` (unique per effect key), posted unless it is there.

    The key is checked in the caller's transaction first, so a crash after the insert
    and before the outbox records it cannot post twice.
    """
    found = conn.execute(
        select(local_comments.c.id).where(local_comments.c.author == author)
    ).scalar_one_or_none()
    if found is not None:
        return str(found)
    return str(
        conn.execute(
            insert(local_comments)
            .values(task_id=task_id, author=author, is_bot=True, text=text, created_at=now)
            .returning(local_comments.c.id)
        ).scalar_one()
    )


def unconsumed_replies(db: Database, task_id: str) -> list[tuple[str, str, str, datetime]]:
    """People's comments on a card not yet taken by a tick: (id, text, author, created_at)."""
    with db.connect() as conn:
        consumed = consumed_comment_ids(conn, task_id)
        rows = conn.execute(
            select(local_comments)
            .where(local_comments.c.task_id == task_id, ~local_comments.c.is_bot)
            .order_by(local_comments.c.id)
        ).mappings()
        return [
            (str(r["id"]), r["text"], r["author"], r["created_at"])
            for r in rows
            if str(r["id"]) not in consumed
        ]


def add_reply(db: Database, task_id: str, text: str, author: str, now: datetime) -> int:
    """A person answers a card waiting in feedback (`nfactory task reply`)."""
    if not text.strip():
        raise ValueError("the reply is empty")
    with db.begin() as conn:
        task = get_task(conn, task_id)
        if task.board_id != LOCAL_BOARD:
            raise ValueError(
                f"task {task_id} is on Notion board {task.board_id}: reply with a comment on "
                "its card in Notion"
            )
        if task.status != TaskStatus.feedback:
            raise ValueError(
                f"task {task_id} is {task.status}, not waiting for feedback; nothing to reply to"
            )
        return conn.execute(
            insert(local_comments)
            .values(task_id=task_id, author=author, is_bot=False, text=text, created_at=now)
            .returning(local_comments.c.id)
        ).scalar_one()
