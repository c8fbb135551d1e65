"""Grants from one shared bucket: the pure arithmetic several workers run on one row."""

from __future__ import annotations

import heapq

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factory.store.budget import BudgetRow
from integrations.notion.budget_rows import row_state, state_row
from integrations.notion.ratelimit import BucketState, give_back, grant, pause
from integrations.notion.shared_budget import HOLD

TOLERANCE = 1e-6
rates = st.floats(min_value=0.2, max_value=50, allow_nan=False)
bursts = st.integers(min_value=1, max_value=12)

# One event: after `gap` seconds, worker `who` asks for `want` tokens and sends `spend`
# of those granted at once (the rest go back HOLD seconds later), or a 429 pauses the row.
asks = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=2, allow_nan=False),
        st.integers(min_value=0, max_value=3),
        st.integers(min_value=1, max_value=3),
        st.integers(min_value=0, max_value=3),
        st.one_of(st.none(), st.floats(min_value=0, max_value=5, allow_nan=False)),
    ),
    min_size=1,
    max_size=120,
)


def simulate(
    rate: float, burst: int, script: list[tuple[float, int, int, int, float | None]]
) -> list[float]:
    """The times requests were sent by all workers together, on the pure grant core."""
    state = BucketState(float(burst), 0.0)
    now = 0.0
    sent: list[float] = []
    returns: list[tuple[float, int]] = []  # (when, unused tokens) still held by a worker
    for gap, _who, want, spend, pause_for in script:
        now += gap
        while returns and returns[0][0] <= now:
            when, unused = heapq.heappop(returns)
            state = give_back(state, when, rate, burst, unused)
        if pause_for is not None:
            state = pause(state, now, now + pause_for, rate, burst)
            continue
        state, granted, wait = grant(state, now, rate, burst, want)
        assert (granted == 0) == (wait > 0)
        used = min(spend, granted)
        sent += [now] * used
        if granted > used:
            heapq.heappush(returns, (now + HOLD, granted - used))
    return sent


@settings(max_examples=300)
@given(rates, bursts, asks)
def test_workers_together_never_send_more_than_burst_plus_rate_times_window(
    rate: float, burst: int, script: list[tuple[float, int, int, int, float | None]]
) -> None:
    sent = simulate(rate, burst, script)
    for i, start in enumerate(sent):
        for j in range(i, len(sent)):
            assert j - i + 1 <= burst + rate * (sent[j] - start) + TOLERANCE


@settings(max_examples=200)
@given(rates, bursts, st.integers(1, 3), st.floats(min_value=1, max_value=60))
def test_one_busy_worker_gets_the_whole_rate(
    rate: float, burst: int, want: int, length: float
) -> None:
    """Asking again as soon as the row says it can answer, one worker is granted every
    token the row makes: nothing is lost to its asking in small grants."""
    state = BucketState(float(burst), 0.0)
    now, granted_total = 0.0, 0
    while True:
        state, granted, wait = grant(state, now, rate, burst, want)
        granted_total += granted
        if now + wait > length:
            break
        now += wait
    assert granted_total >= burst + int(rate * length + TOLERANCE) - 1


@given(rates, bursts, st.integers(0, 12), st.integers(1, 3))
def test_a_reserve_stays_behind(rate: float, burst: int, reserve: int, want: int) -> None:
    state, granted, wait = grant(BucketState(float(burst), 0.0), 0.0, rate, burst, want, reserve)
    assert granted == max(0, min(want, burst - reserve))
    assert state.tokens >= min(reserve, burst) - TOLERANCE
    assert (granted == 0) == (wait > 0)


@given(rates, bursts, st.integers(1, 20))
def test_a_charge_is_paid_before_anything_is_granted(rate: float, burst: int, debt: int) -> None:
    _, granted, wait = grant(BucketState(float(burst), 0.0), 0.0, rate, burst, 1, charge=debt)
    assert granted == (1 if burst - debt >= 1 else 0)
    if not granted:
        # the row makes up the debt at the rate before the next token
        assert wait == pytest.approx((1 - (burst - debt)) / rate)


def test_nothing_is_granted_during_a_pause_and_nothing_comes_back_into_it() -> None:
    state = pause(BucketState(3.0, 0.0), 0.0, 10.0, 3, 3)
    assert grant(state, 4.0, 3, 3, 3)[1:] == (0, 6.0)
    assert give_back(state, 4.0, 3, 3, 3) == state  # the pause's cap of one token holds


def test_given_back_tokens_never_overfill_the_row() -> None:
    state, granted, _ = grant(BucketState(3.0, 0.0), 0.0, 3, 3, 3)
    assert granted == 3
    assert give_back(state, 5.0, 3, 3, 3).tokens == 3.0


@given(
    st.floats(min_value=-5, max_value=5, allow_nan=False),
    st.floats(min_value=0, max_value=1e6, allow_nan=False),
    st.one_of(st.none(), st.floats(min_value=0, max_value=2e6, allow_nan=False)),
    st.floats(min_value=0, max_value=2e6, allow_nan=False),
)
def test_a_row_and_its_bucket_state_say_the_same(
    tokens: float, updated: float, paused: float | None, now: float
) -> None:
    row = BudgetRow(tokens, updated, paused)
    state = row_state(row)
    assert row_state(state_row(state, max(now, updated), row)) == state
