"""Shape comparison of JSON bodies: the rule the conformance suite judges by.

Two bodies have the same shape when, recursively:

* objects have exactly the same keys;
* values have the same JSON type (string, number, boolean, null, object, array;
  int and float are both "number");
* `object` and `type` values are equal, and so are error `code` and `status`
  (they name *what* a thing is, not which one it is);
* keys ending in `_time` hold strings of the same format class (digits
  masked), so `2026-07-04T09:13:00.000Z` and `2026-07-04T09:13:00.290+00:00`
  differ while two minute-rounded times do not;
* arrays: lengths may differ. Each element the emulator returned is compared
  with the recorded element of the same kind, the kind being its (`object`,
  `type`) pair: the element at the same index if it is of that kind, else the
  first recorded element of that kind. An element of a kind Notion never
  returned in that array is a mismatch. When either array is empty there is
  nothing to compare.

Null is a type like any other: null against an object (or a string) is a
mismatch. That is fair because the conformance suite replays the *same*
request, so the same field being null or not depends only on the request and
the emulator, not on data that differs between the two runs. Ids, names,
contents and times may differ in value.
"""

from __future__ import annotations

import re
from typing import Any

EXACT_KEYS = frozenset({"object", "type", "code", "status"})


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _kind(value: Any) -> tuple[Any, Any] | None:
    if isinstance(value, dict):
        return value.get("object"), value.get("type")
    return None


def _time_format(text: str) -> str:
    return re.sub(r"\d", "d", text)


def pair_elements(expected: list[Any], got: list[Any]) -> list[tuple[int, int | None]]:
    """For each index in `got`, the index in `expected` it is compared with (None: no kind)."""
    pairs: list[tuple[int, int | None]] = []
    for i, item in enumerate(got):
        kind = _kind(item)
        if i < len(expected) and _kind(expected[i]) == kind:
            pairs.append((i, i))
            continue
        match = next((j for j, e in enumerate(expected) if _kind(e) == kind), None)
        pairs.append((i, match))
    return pairs


def compare(expected: Any, got: Any, path: str = "$") -> list[str]:
    """Every difference in shape, as 'path: expected ..., got ...' lines."""
    out: list[str] = []
    te, tg = json_type(expected), json_type(got)
    if te != tg:
        return [f"{path}: expected {te} {_brief(expected)}, got {tg} {_brief(got)}"]
    if te == "object":
        for key in sorted(expected.keys() - got.keys()):
            out.append(f"{path}: missing key {key!r} (expected {_brief(expected[key])})")
        for key in sorted(got.keys() - expected.keys()):
            out.append(f"{path}: unexpected key {key!r} (got {_brief(got[key])})")
        for key in sorted(expected.keys() & got.keys()):
            sub = f"{path}.{key}"
            e, g = expected[key], got[key]
            if key in EXACT_KEYS and not isinstance(e, dict | list) and e != g:
                out.append(f"{sub}: expected {e!r}, got {g!r}")
                continue
            if key.endswith("_time") and isinstance(e, str) and isinstance(g, str):
                if _time_format(e) != _time_format(g):
                    out.append(f"{sub}: expected time like {e!r}, got {g!r}")
                continue
            out.extend(compare(e, g, sub))
    elif te == "array" and expected and got:
        for i, j in pair_elements(expected, got):
            if j is None:
                kinds = sorted({str(_kind(e)) for e in expected})
                out.append(
                    f"{path}[{i}]: element of kind {_kind(got[i])} never recorded here "
                    f"(recorded kinds: {', '.join(kinds)})"
                )
            else:
                out.extend(compare(expected[j], got[i], f"{path}[{i}]"))
    return out


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
