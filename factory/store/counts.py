"""Counts for the live view and `/metrics`: cards by status, runs by status."""

from __future__ import annotations

from sqlalchemy import func, select

from factory.store.db import Database
from factory.store.tables import runs, tasks


def tasks_by_status(db: Database, board_id: str) -> dict[str, int]:
    """One board's cards by status (statuses with no card are absent)."""
    with db.connect() as conn:
        rows = conn.execute(
            select(tasks.c.status, func.count())
            .where(tasks.c.board_id == board_id)
            .group_by(tasks.c.status)
        ).all()
    return {status: n for status, n in rows}


def runs_by_status(db: Database, board_id: str | None = None) -> dict[str, int]:
    """Runs by status: of one board's cards, or of every board in the database."""
    query = select(runs.c.status, func.count()).group_by(runs.c.status)
    if board_id is not None:
        query = query.join(tasks, tasks.c.id == runs.c.task_id).where(tasks.c.board_id == board_id)
    with db.connect() as conn:
        return {status: n for status, n in conn.execute(query)}
