"""The conformance comparator itself: it must catch what it claims to catch."""

from __future__ import annotations

from .shapes import compare

PAGE = {
    "object": "page",
    "id": "a",
    "created_time": "2026-07-04T09:50:00.000Z",
    "icon": None,
    "properties": {"title": {"id": "title", "type": "title", "title": [{"type": "text"}]}},
}


def test_same_shape_with_different_values_passes() -> None:
    other = {**PAGE, "id": "b", "created_time": "2027-01-01T00:00:00.000Z"}
    assert compare(PAGE, other) == []


def test_missing_and_extra_keys() -> None:
    got = {k: v for k, v in PAGE.items() if k != "icon"} | {"extra": 1}
    diffs = compare(PAGE, got)
    assert "$: missing key 'icon' (expected None)" in diffs
    assert "$: unexpected key 'extra' (got 1)" in diffs


def test_types_nulls_objects_and_times() -> None:
    assert compare({"a": None}, {"a": {}}) == ["$.a: expected null None, got object {}"]
    assert compare({"a": 1}, {"a": 1.5}) == []
    assert compare({"a": True}, {"a": 1}) == ["$.a: expected boolean True, got number 1"]
    assert compare({"object": "page"}, {"object": "block"}) == [
        "$.object: expected 'page', got 'block'"
    ]
    assert compare(
        {"created_time": "2026-07-04T09:13:00.290+00:00"},
        {"created_time": "2026-07-04T09:13:00.000Z"},
    )


def test_arrays_compare_elements_by_kind() -> None:
    recorded = [
        {"object": "user", "type": "person", "person": {}},
        {"object": "user", "type": "bot"},
    ]
    assert compare(recorded, [{"object": "user", "type": "bot"}]) == []
    assert compare(recorded, []) == []
    diffs = compare(recorded, [{"object": "user", "type": "bot", "extra": 1}])
    assert diffs == ["$[0]: unexpected key 'extra' (got 1)"]
    assert compare(
        [{"object": "block", "type": "paragraph"}], [{"object": "block", "type": "toggle"}]
    )
