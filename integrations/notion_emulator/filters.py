"""Data source query filters and sorts, as pure functions over rendered rows.

A `Row` is what a filter can see of a page: its rendered property values by
name and its *minute-rounded* timestamps. Filtering on the rounded times is
deliberate: it is what makes a `last_edited_time` "since" query on the minute
boundary repeat changes on Notion, and integrations must cope with that.

`compile_filter` validates the whole filter up front (so a bad filter fails even
on an empty data source, as on Notion) and returns a predicate.

Semantics chosen where Notion's docs are silent (documented in the report):
text `contains`/`starts_with`/`ends_with` compare case-insensitively, `equals`
exactly; empty values never satisfy comparisons; sorts put empty values last in
both directions; select/status sort by option order in the schema.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from . import errors
from .clock import parse_iso

MAX_COMPOUND_DEPTH = 2

Predicate = Callable[["Row"], bool]


@dataclass(frozen=True)
class Row:
    properties: dict[str, dict[str, Any]]  # name -> rendered property value
    created_time: datetime
    last_edited_time: datetime
    id: str = ""  # the page the row stands for


TEXT = ("title", "rich_text", "url", "email", "phone_number")
PEOPLE = ("people", "created_by", "last_edited_by")
TEXT_OPS = frozenset(
    {
        "equals",
        "does_not_equal",
        "contains",
        "does_not_contain",
        "starts_with",
        "ends_with",
        "is_empty",
        "is_not_empty",
    }
)
NUMBER_OPS = frozenset(
    {
        "equals",
        "does_not_equal",
        "greater_than",
        "less_than",
        "greater_than_or_equal_to",
        "less_than_or_equal_to",
        "is_empty",
        "is_not_empty",
    }
)
SELECT_OPS = frozenset({"equals", "does_not_equal", "is_empty", "is_not_empty"})
MULTI_OPS = frozenset({"contains", "does_not_contain", "is_empty", "is_not_empty"})
CHECKBOX_OPS = frozenset({"equals", "does_not_equal"})
DATE_OPS = frozenset(
    {
        "equals",
        "before",
        "after",
        "on_or_before",
        "on_or_after",
        "is_empty",
        "is_not_empty",
        "past_week",
        "past_month",
        "past_year",
        "next_week",
        "next_month",
        "next_year",
        "this_week",
    }
)
OPS_BY_FILTER = {
    **dict.fromkeys(TEXT, TEXT_OPS),
    "number": NUMBER_OPS,
    "select": SELECT_OPS,
    "status": SELECT_OPS,
    "multi_select": MULTI_OPS,
    "checkbox": CHECKBOX_OPS,
    **dict.fromkeys(("date", "created_time", "last_edited_time"), DATE_OPS),
    **dict.fromkeys(PEOPLE, MULTI_OPS),
}


def _fail(path: str, expectation: str, value: Any) -> errors.NotionError:
    return errors.body_invalid(path, expectation, value)


def find_property(schema: dict[str, dict[str, Any]], key: Any) -> dict[str, Any]:
    if isinstance(key, str):
        for entry in schema.values():
            if entry["name"] == key or entry["id"] == key:
                return entry
    raise errors.validation(f"Could not find property with name or id: {key}")


def _text_of(value: Any) -> str | None:
    if isinstance(value, list):
        text = "".join(item.get("plain_text", "") for item in value)
        return text or None
    return value or None


def _as_datetime(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def _date_compare(op: str, actual: datetime | None, wanted: Any, now: datetime, path: str) -> bool:
    if op in ("is_empty", "is_not_empty"):
        return (actual is None) == (op == "is_empty")
    if actual is None:
        return False
    if op.startswith(("past_", "next_")) or op == "this_week":
        span = {"week": 7, "month": 30, "year": 365}[op.split("_")[1]]
        if op.startswith("past_"):
            return now - timedelta(days=span) <= actual <= now
        if op == "this_week":
            start = (now - timedelta(days=now.weekday())).replace(
                hour=0, minute=0, second=0, microsecond=0
            )
            return start <= actual < start + timedelta(days=7)
        return now <= actual <= now + timedelta(days=span)
    target = parse_iso(wanted)
    if isinstance(target, datetime):
        left, right = actual, target
    else:
        left, right = actual.date(), target  # type: ignore[assignment]
    return {
        "equals": left == right,
        "before": left < right,
        "after": left > right,
        "on_or_before": left <= right,
        "on_or_after": left >= right,
    }[op]


def _check_operand(kind: str, op: str, value: Any, path: str) -> None:
    if op in ("is_empty", "is_not_empty"):
        if value is not True:
            raise _fail(path, "should be `true`", value)
        return
    if kind == "checkbox":
        if not isinstance(value, bool):
            raise _fail(path, "should be a boolean", value)
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(path, "should be a number", value)
    elif kind in ("date", "created_time", "last_edited_time"):
        if op.startswith(("past_", "next_")) or op == "this_week":
            if value != {}:
                raise _fail(path, "should be an empty object", value)
            return
        try:
            parse_iso(value)
        except (TypeError, ValueError, AttributeError):
            raise _fail(path, "should be a valid ISO 8601 date string", value) from None
    elif not isinstance(value, str):
        raise _fail(path, "should be a string", value)


def _condition(kind: str, op: str, wanted: Any, now: datetime, path: str) -> Callable[[Any], bool]:
    """A test on one raw property payload (or timestamp) for one filter operator."""
    if kind in TEXT:

        def text_test(value: Any) -> bool:
            text = _text_of(value)
            if op in ("is_empty", "is_not_empty"):
                return (text is None) == (op == "is_empty")
            have, want = (text or ""), wanted
            if op == "equals":
                return have == want
            if op == "does_not_equal":
                return have != want
            low, needle = have.lower(), want.lower()
            return {
                "contains": needle in low,
                "does_not_contain": needle not in low,
                "starts_with": low.startswith(needle),
                "ends_with": low.endswith(needle),
            }[op]

        return text_test
    if kind == "number":

        def number_test(value: Any) -> bool:
            if op in ("is_empty", "is_not_empty"):
                return (value is None) == (op == "is_empty")
            if op == "does_not_equal":
                return value != wanted
            if value is None:
                return False
            return {
                "equals": value == wanted,
                "greater_than": value > wanted,
                "less_than": value < wanted,
                "greater_than_or_equal_to": value >= wanted,
                "less_than_or_equal_to": value <= wanted,
            }[op]

        return number_test
    if kind == "checkbox":
        return lambda value: (bool(value) == wanted) == (op == "equals")
    if kind in ("select", "status"):

        def select_test(value: Any) -> bool:
            name = value["name"] if value else None
            if op in ("is_empty", "is_not_empty"):
                return (name is None) == (op == "is_empty")
            return (name == wanted) == (op == "equals")

        return select_test
    if kind == "multi_select" or kind in PEOPLE:
        # Multi-select filters name options; people filters name users by id.
        field = "name" if kind == "multi_select" else "id"

        def member_test(value: Any) -> bool:
            items = value if isinstance(value, list) else ([value] if value else [])
            keys = {item.get(field) for item in items}
            if op in ("is_empty", "is_not_empty"):
                return (not keys) == (op == "is_empty")
            return (wanted in keys) == (op == "contains")

        return member_test

    def date_test(value: Any) -> bool:
        if isinstance(value, datetime):
            actual: datetime | None = value
        elif isinstance(value, str):  # created_time / last_edited_time properties
            actual = _as_datetime(parse_iso(value))
        elif isinstance(value, dict) and value.get("start"):
            actual = _as_datetime(parse_iso(value["start"]))
        else:
            actual = None
        return _date_compare(op, actual, wanted, now, path)

    return date_test


def _leaf(kind: str, spec: Any, path: str, now: datetime) -> Callable[[Any], bool]:
    if not isinstance(spec, dict) or len(spec) != 1:
        raise _fail(path, "should be an object with exactly one condition", spec)
    op, wanted = next(iter(spec.items()))
    if op not in OPS_BY_FILTER[kind]:
        raise _fail(f"{path}.{op}", f"should be one of {sorted(OPS_BY_FILTER[kind])}", wanted)
    if kind in PEOPLE and op in ("contains", "does_not_contain"):
        from .ids import parse_id

        canonical = parse_id(wanted)
        if canonical is None:
            raise _fail(f"{path}.{op}", "should be a valid uuid", wanted)
        wanted = canonical
    else:
        _check_operand(kind, op, wanted, f"{path}.{op}")
    return _condition(kind, op, wanted, now, path)


def compile_filter(
    raw: Any,
    schema: dict[str, dict[str, Any]],
    now: datetime,
    path: str = "body.filter",
    depth: int = 0,
) -> Predicate:
    if not isinstance(raw, dict):
        raise _fail(path, "should be an object", raw)
    for joiner in ("and", "or"):
        if joiner in raw:
            if depth >= MAX_COMPOUND_DEPTH:
                raise errors.validation(
                    f"body failed validation: {path}.{joiner} exceeds the maximum filter "
                    f"nesting depth of {MAX_COMPOUND_DEPTH}."
                )
            items = raw[joiner]
            if not isinstance(items, list):
                raise _fail(f"{path}.{joiner}", "should be an array", items)
            if len(items) > 100:
                raise errors.too_long(f"{path}.{joiner}", 100, len(items))
            parts = [
                compile_filter(item, schema, now, f"{path}.{joiner}[{i}]", depth + 1)
                for i, item in enumerate(items)
            ]
            if joiner == "and":
                return lambda row: all(p(row) for p in parts)
            return lambda row: any(p(row) for p in parts)
    if "timestamp" in raw:
        stamp = raw["timestamp"]
        if stamp not in ("created_time", "last_edited_time"):
            raise _fail(
                f"{path}.timestamp", "should be `created_time` or `last_edited_time`", stamp
            )
        test = _leaf(stamp, raw.get(stamp), f"{path}.{stamp}", now)
        return lambda row: test(getattr(row, stamp))
    if "property" not in raw:
        raise _fail(path, "should be defined as one of `and`, `or`, `property`, `timestamp`", raw)
    entry = find_property(schema, raw["property"])
    kinds = [k for k in raw if k != "property"]
    if len(kinds) != 1 or kinds[0] not in OPS_BY_FILTER:
        raise _fail(path, f"should have one `{entry['type']}` condition", raw)
    kind = kinds[0]
    compatible = kind == entry["type"] or (kind in TEXT and entry["type"] in TEXT)
    if not compatible:
        raise errors.validation(
            f"body failed validation: {path}.{kind} is not valid for property "
            f'"{entry["name"]}" of type {entry["type"]}.'
        )
    test = _leaf(kind, raw[kind], f"{path}.{kind}", now)
    name = entry["name"]
    prop_kind = entry["type"]
    return lambda row: test(row.properties[name][prop_kind])


def _sort_value(entry: dict[str, Any] | None, stamp: str | None, row: Row) -> Any:
    """A comparable key, or None for an empty value (always sorted last)."""
    if stamp is not None:
        return getattr(row, stamp)
    assert entry is not None
    kind = entry["type"]
    value = row.properties[entry["name"]][kind]
    if kind in TEXT:
        text = _text_of(value)
        return text.lower() if text else None
    if kind in ("select", "status"):
        if not value:
            return None
        names = [o["name"] for o in entry[kind]["options"]]
        return names.index(value["name"]) if value["name"] in names else len(names)
    if kind == "multi_select" or kind in PEOPLE:
        items = value if isinstance(value, list) else ([value] if value else [])
        return (items[0].get("name") or items[0].get("id") or "").lower() if items else None
    if kind == "date":
        return _as_datetime(parse_iso(value["start"])) if value else None
    if kind in ("created_time", "last_edited_time"):
        return parse_iso(value)
    return value


def sort_rows(rows: list[Row], sorts: Any, schema: dict[str, dict[str, Any]]) -> list[Row]:
    if sorts is None:
        return list(rows)
    if not isinstance(sorts, list):
        raise _fail("body.sorts", "should be an array", sorts)
    if len(sorts) > 100:
        raise errors.too_long("body.sorts", 100, len(sorts))
    keys: list[tuple[dict[str, Any] | None, str | None, bool]] = []
    for i, spec in enumerate(sorts):
        path = f"body.sorts[{i}]"
        if not isinstance(spec, dict):
            raise _fail(path, "should be an object", spec)
        direction = spec.get("direction", "ascending")
        if direction not in ("ascending", "descending"):
            raise _fail(f"{path}.direction", "should be `ascending` or `descending`", direction)
        if "timestamp" in spec:
            if spec["timestamp"] not in ("created_time", "last_edited_time"):
                raise _fail(
                    f"{path}.timestamp",
                    "should be `created_time` or `last_edited_time`",
                    spec["timestamp"],
                )
            keys.append((None, spec["timestamp"], direction == "descending"))
        elif "property" in spec:
            keys.append((find_property(schema, spec["property"]), None, direction == "descending"))
        else:
            raise _fail(path, "should define `property` or `timestamp`", spec)
    ordered = list(rows)
    # Stable multi-pass sort, least significant key first; empties stay at the end.
    for entry, stamp, descending in reversed(keys):
        valued = [(r, _sort_value(entry, stamp, r)) for r in ordered]
        full = [pair for pair in valued if pair[1] is not None]
        empty = [pair[0] for pair in valued if pair[1] is None]
        full.sort(key=lambda pair: pair[1], reverse=descending)
        ordered = [pair[0] for pair in full] + empty
    return ordered
