"""Query filters and sorts as pure functions, with hypothesis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integrations.notion_emulator import filters, properties
from integrations.notion_emulator.errors import NotionError

NOW = datetime(2026, 6, 1, tzinfo=UTC)
SCHEMA = properties.build_schema(
    {
        "Name": {"title": {}},
        "N": {"number": {}},
        "S": {"select": {"options": [{"name": "x"}, {"name": "y"}, {"name": "z"}]}},
        "C": {"checkbox": {}},
    },
    "schema",
)
SELECT_NAMES = ["x", "y", "z"]


def row(n: float | None, s: str | None, c: bool, name: str = "r") -> filters.Row:
    return filters.Row(
        {
            "Name": {"type": "title", "title": [{"plain_text": name}] if name else []},
            "N": {"type": "number", "number": n},
            "S": {"type": "select", "select": {"name": s} if s else None},
            "C": {"type": "checkbox", "checkbox": c},
        },
        NOW,
        NOW,
    )


rows = st.builds(
    row,
    st.one_of(st.none(), st.integers(-50, 50)),
    st.one_of(st.none(), st.sampled_from(SELECT_NAMES)),
    st.booleans(),
    st.text("abcXYZ ", max_size=6),
)
number_ops = st.sampled_from(
    ["equals", "greater_than", "less_than", "greater_than_or_equal_to", "less_than_or_equal_to"]
)
leaves = st.one_of(
    st.builds(lambda op, v: {"property": "N", "number": {op: v}}, number_ops, st.integers(-50, 50)),
    st.builds(lambda v: {"property": "S", "select": {"equals": v}}, st.sampled_from(SELECT_NAMES)),
    st.builds(lambda v: {"property": "C", "checkbox": {"equals": v}}, st.booleans()),
)


def run(flt: dict[str, Any], r: filters.Row) -> bool:
    return filters.compile_filter(flt, SCHEMA, NOW)(r)


@given(rows, number_ops, st.integers(-50, 50))
def test_number_filters_match_python(r: filters.Row, op: str, value: int) -> None:
    actual = r.properties["N"]["number"]
    expected = (
        actual is not None
        and {
            "equals": actual == value,
            "greater_than": actual > value,
            "less_than": actual < value,
            "greater_than_or_equal_to": actual >= value,
            "less_than_or_equal_to": actual <= value,
        }[op]
    )
    assert run({"property": "N", "number": {op: value}}, r) == expected


@given(rows, leaves, leaves)
def test_and_or_are_conjunction_and_disjunction(r: filters.Row, a: Any, b: Any) -> None:
    assert run({"and": [a, b]}, r) == (run(a, r) and run(b, r))
    assert run({"or": [a, b]}, r) == (run(a, r) or run(b, r))
    assert run({"or": [{"and": [a, b]}, a]}, r) == run(a, r)


@given(rows, st.sampled_from(SELECT_NAMES))
def test_select_equals_and_does_not_equal_are_complements(r: filters.Row, name: str) -> None:
    yes = run({"property": "S", "select": {"equals": name}}, r)
    no = run({"property": "S", "select": {"does_not_equal": name}}, r)
    assert yes != no


@given(st.lists(rows, max_size=12), st.booleans())
def test_sort_is_an_ordered_permutation_with_empties_last(
    items: list[filters.Row], descending: bool
) -> None:
    direction = "descending" if descending else "ascending"
    ordered = filters.sort_rows(items, [{"property": "N", "direction": direction}], SCHEMA)
    assert sorted(map(id, ordered)) == sorted(map(id, items))
    values = [r.properties["N"]["number"] for r in ordered]
    present = [v for v in values if v is not None]
    assert values == present + [None] * (len(values) - len(present))
    assert present == sorted(present, reverse=descending)


@given(st.lists(rows, max_size=12))
def test_select_sorts_by_option_order(items: list[filters.Row]) -> None:
    ordered = filters.sort_rows(items, [{"property": "S", "direction": "ascending"}], SCHEMA)
    names = [r.properties["S"]["select"]["name"] for r in ordered if r.properties["S"]["select"]]
    assert names == sorted(names, key=SELECT_NAMES.index)


@given(st.lists(rows, max_size=12))
def test_multi_key_sort_is_lexicographic(items: list[filters.Row]) -> None:
    ordered = filters.sort_rows(
        items,
        [
            {"property": "C", "direction": "descending"},
            {"property": "Name", "direction": "ascending"},
        ],
        SCHEMA,
    )
    flags = [r.properties["C"]["checkbox"] for r in ordered]
    assert flags == sorted(flags, reverse=True)


def test_timestamp_filter_compares_given_times() -> None:
    early = filters.Row({}, NOW, NOW)
    late = filters.Row({}, NOW, NOW + timedelta(minutes=5))
    flt = {"timestamp": "last_edited_time", "last_edited_time": {"after": NOW.isoformat()}}
    assert [run(flt, r) for r in (early, late)] == [False, True]
    on_or_after = {
        "timestamp": "last_edited_time",
        "last_edited_time": {"on_or_after": "2026-06-01"},
    }
    assert run(on_or_after, early) is True


@pytest.mark.parametrize(
    "bad",
    [
        {"property": "Nope", "number": {"equals": 1}},
        {"property": "N", "select": {"equals": "x"}},
        {"property": "N", "number": {"contains": 1}},
        {"property": "N", "number": {"equals": "1"}},
        {"property": "S", "select": {"is_empty": False}},
        {"timestamp": "edited", "edited": {"after": "2026-01-01"}},
        {"and": {"property": "N"}},
        {"and": [{"or": [{"and": [{"property": "C", "checkbox": {"equals": True}}]}]}]},
        {"property": "N", "date": {"after": "yesterday"}},
    ],
)
def test_invalid_filters_are_validation_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(NotionError) as info:
        filters.compile_filter(bad, SCHEMA, NOW)
    assert info.value.code == "validation_error"
