"""Id parsing and time formatting: pure functions, checked with hypothesis."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from integrations.notion_emulator.clock import (
    floor_minute,
    iso_database,
    iso_minute,
    parse_iso,
)
from integrations.notion_emulator.ids import compact, parse_id

times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(st.uuids())
def test_parse_id_accepts_dashed_undashed_and_upper(value: uuid.UUID) -> None:
    dashed = str(value)
    assert parse_id(dashed) == dashed
    assert parse_id(value.hex) == dashed
    assert parse_id(value.hex.upper()) == dashed
    assert parse_id(f"  {dashed} ") == dashed
    assert compact(dashed) == value.hex


@given(st.text(max_size=40))
def test_parse_id_rejects_non_ids(text: str) -> None:
    parsed = parse_id(text)
    if parsed is not None:
        assert uuid.UUID(parsed).hex == re.sub("-", "", text.strip()).lower()


def test_parse_id_rejects_near_misses() -> None:
    assert parse_id("1234") is None
    assert parse_id("g" * 32) is None
    assert parse_id(None) is None
    assert parse_id("393abc1e-edcd80f3-813b-e205934558c6") is None


@given(times)
def test_floor_minute_rounds_down(when: datetime) -> None:
    floored = floor_minute(when)
    assert floored <= when < floored + timedelta(minutes=1)
    assert floored.second == 0 and floored.microsecond == 0
    assert floor_minute(floored) == floored


@given(times)
def test_iso_minute_is_notions_format(when: datetime) -> None:
    text = iso_minute(when)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:00\.000Z", text)
    assert parse_iso(text) == floor_minute(when)


@given(times)
def test_database_times_keep_milliseconds(when: datetime) -> None:
    text = iso_database(when)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", text)
    parsed = parse_iso(text)
    assert isinstance(parsed, datetime)
    assert timedelta(0) <= when - parsed < timedelta(milliseconds=1)


def test_two_edits_in_one_minute_look_the_same() -> None:
    a = datetime(2026, 1, 1, 12, 30, 1, tzinfo=UTC)
    b = datetime(2026, 1, 1, 12, 30, 59, 999000, tzinfo=UTC)
    assert iso_minute(a) == iso_minute(b) == "2026-01-01T12:30:00.000Z"
