"""The reply schedule's rows: which cards wait, since when their question is on the card,
and when they were last looked at (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, update

from factory.store import repo
from factory.store.db import Database
from factory.store.replies import record_reply_check, waiting_for_replies
from factory.store.tables import outbox, tasks

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def comment_effect(conn, task_id: str, key: str, status: str, at: datetime | None) -> None:  # type: ignore[no-untyped-def]
    conn.execute(
        insert(outbox).values(
            task_id=task_id,
            board_id=repo.LOCAL_BOARD,
            kind="comment",
            payload={"text": key},
            effect_key=key,
            status=status,
            created_at=T0,
            delivered_at=at,
        )
    )


def test_a_card_is_asked_once_its_newest_comment_is_delivered_and_looks_keep_the_newest(
    db: Database,
) -> None:
    with db.begin() as conn:
        a = repo.create_task(conn, factory_id="f", title="a", now=T0, external_id="page-a")
        b = repo.create_task(conn, factory_id="f", title="b", now=T0, external_id="page-b")
        idle = repo.create_task(conn, factory_id="f", title="c", now=T0, external_id="page-c")
        conn.execute(update(tasks).where(tasks.c.id.in_([a, b])).values(status="feedback"))
        comment_effect(conn, a, "a-old", "delivered", T0 - timedelta(days=2))
        comment_effect(conn, a, "a-question", "delivered", T0 - timedelta(days=1))
        comment_effect(conn, b, "b-first", "delivered", T0 - timedelta(hours=1))
        comment_effect(conn, b, "b-question", "pending", None)
        comment_effect(conn, idle, "c-question", "delivered", T0)
    with db.connect() as conn:
        rows = {r.task_id: r for r in waiting_for_replies(conn, repo.LOCAL_BOARD)}
    assert set(rows) == {a, b}  # only cards in feedback
    assert rows[a].asked_at == T0 - timedelta(days=1) and rows[a].external_id == "page-a"
    assert rows[b].asked_at is None  # its question has not reached the card yet
    assert rows[a].checked_at is None

    with db.begin() as conn:
        record_reply_check(conn, a, T0)
        record_reply_check(conn, a, T0 + timedelta(seconds=10))
        record_reply_check(conn, a, T0 + timedelta(seconds=5))  # a slower worker's look
    with db.connect() as conn:
        rows = {r.task_id: r for r in waiting_for_replies(conn, repo.LOCAL_BOARD)}
    assert rows[a].checked_at == T0 + timedelta(seconds=10)
    assert rows[b].checked_at is None
