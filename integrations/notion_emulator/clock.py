"""Time: an injectable clock and Notion's timestamp formats.

Notion stores exact times but reports `created_time`/`last_edited_time` of pages,
blocks, data sources and comments rounded *down* to the minute. Databases are the
odd one out in the recorded traffic: they report milliseconds and a `+00:00`
offset. Both formats are reproduced here so code meets the same quirks offline.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock tests move by hand, so minute boundaries can be hit on purpose."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)


def floor_minute(when: datetime) -> datetime:
    return when.replace(second=0, microsecond=0)


def iso_minute(when: datetime) -> str:
    """Notion's usual timestamp: minute-rounded, milliseconds, `Z`."""
    return floor_minute(when.astimezone(UTC)).strftime("%Y-%m-%dT%H:%M:00.000Z")


def iso_millis(when: datetime) -> str:
    """Exact to the millisecond with `Z`, as Notion reports async task times."""
    utc = when.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def iso_database(when: datetime) -> str:
    """The database object's format: exact milliseconds and a `+00:00` offset."""
    utc = when.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+00:00"


def parse_iso(text: str) -> datetime | date:
    """Parse an ISO-8601 date or date-time as sent in filters and date properties.

    A bare date stays a `date` because Notion compares date-only filter values by
    day; a naive date-time is taken as UTC.
    """
    raw = text.strip()
    if len(raw) == 10:
        return date.fromisoformat(raw)
    if raw.endswith("Z"):
        raw = raw[:-1] + "+00:00"
    parsed = datetime.fromisoformat(raw)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
