"""When the board's remembered identity is trusted, and how NOTION_BOARD_ID keys it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from integrations.notion.identity import RECHECK_AFTER, board_key, is_fresh

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
ages = st.timedeltas(min_value=timedelta(days=-2), max_value=timedelta(days=2))


@given(ages)
def test_an_identity_is_trusted_for_an_hour_and_never_from_the_future(age: timedelta) -> None:
    assert is_fresh(T0, T0 + age) == (timedelta(0) <= age < RECHECK_AFTER)


def test_the_boundaries() -> None:
    assert timedelta(hours=1) == RECHECK_AFTER
    assert is_fresh(T0, T0)
    assert is_fresh(T0, T0 + RECHECK_AFTER - timedelta(microseconds=1))
    assert not is_fresh(T0, T0 + RECHECK_AFTER)
    assert not is_fresh(T0, T0 - timedelta(seconds=1))


@given(st.uuids(), st.booleans(), st.booleans())
def test_one_board_id_however_written_is_one_key(raw: object, dashes: bool, upper: bool) -> None:
    text = str(raw) if dashes else str(raw).replace("-", "")
    text = text.upper() if upper else text
    assert board_key(f" {text} ") == str(raw)


@given(st.uuids(), st.uuids())
def test_two_board_ids_never_share_a_key(a: object, b: object) -> None:
    assert (board_key(str(a)) == board_key(str(b))) == (a == b)
