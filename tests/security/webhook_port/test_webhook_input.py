"""The pure checks behind the webhook port: the warning limiter and the JSON decoder."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from integrations.notion.webhook_input import (
    MAX_DEPTH,
    Refused,
    WarningLimiter,
    decode_json,
    depth,
)

times = st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), max_size=200).map(sorted)


@given(times, st.floats(min_value=0.001, max_value=1e4))
def test_the_limiter_logs_at_most_once_per_window_and_accounts_for_every_warning(
    moments: list[float], window: float
) -> None:
    limiter = WarningLimiter(window)
    logged: list[tuple[float, int]] = []
    for now in moments:
        held = limiter.admit(now)
        if held is not None:
            logged.append((now, held))
    assert all(b[0] - a[0] >= window for a, b in pairwise(logged))
    if moments:
        assert logged[0] == (moments[0], 0), "the first warning is always logged"
    # nothing is lost: each warning was logged or counted in a later one, or is still held
    assert len(logged) + sum(held for _, held in logged) + limiter.held_back == len(moments)


def test_the_limiter_speaks_again_once_the_window_has_passed() -> None:
    limiter = WarningLimiter(60)
    assert limiter.admit(0) == 0
    assert [limiter.admit(t) for t in (1, 30, 59.9)] == [None, None, None]
    assert limiter.admit(60) == 3
    assert limiter.admit(61) is None


json_docs = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=30,
)


def reference_depth(doc: Any) -> int:
    if isinstance(doc, dict):
        doc = list(doc.values())
    if isinstance(doc, list):
        return 1 + max((reference_depth(d) for d in doc), default=0)
    return 0


@given(json_docs)
def test_depth_matches_the_recursive_definition_and_shallow_json_decodes(doc: Any) -> None:
    assert depth(doc) == reference_depth(doc)
    if depth(doc) <= MAX_DEPTH:
        assert decode_json(json.dumps(doc).encode()) == doc


@given(st.binary(max_size=300))
def test_any_bytes_decode_or_are_refused_400_never_anything_else(body: bytes) -> None:
    try:
        decode_json(body)
    except Refused as refused:
        assert refused.status == 400


@given(st.integers(min_value=MAX_DEPTH + 1, max_value=200_000))
def test_json_nested_past_the_limit_is_refused_400(levels: int) -> None:
    body = b"[" * levels + b"]" * levels
    try:
        decode_json(body)
    except Refused as refused:
        assert refused.status == 400 and "nested deeper" in refused.reason
    else:
        raise AssertionError(f"{levels} levels were accepted")
