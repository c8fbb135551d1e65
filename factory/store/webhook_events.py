"""Webhook event ids already seen: Notion may deliver one event twice."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from factory.store.db import Database
from factory.store.tables import webhook_events

ID_LENGTH = 64  # the columns' width: longer ids and types are cut, not refused


def first_time(db: Database, event_id: str, event_type: str, now: datetime) -> bool:
    """Record the event; False when its id was recorded before (a redelivery)."""
    try:
        with db.begin() as conn:
            conn.execute(
                insert(webhook_events).values(
                    id=event_id[:ID_LENGTH], type=event_type[:ID_LENGTH], received_at=now
                )
            )
    except IntegrityError:
        return False
    return True
