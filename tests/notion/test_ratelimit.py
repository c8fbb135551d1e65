"""The token bucket: the pure arithmetic under any clock, the waiting, the process-wide registry."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.notion import ratelimit
from integrations.notion.ratelimit import (
    BucketState,
    TokenBucket,
    clear_shared_buckets,
    pause,
    shared_bucket,
    take,
)

TOLERANCE = 1e-6

# One event: after `gap` seconds, either a caller wants a token (and waits for
# it), or a 429 pauses the bucket for `pause` seconds from then.
events = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=3, allow_nan=False),
        st.one_of(st.none(), st.floats(min_value=0, max_value=5, allow_nan=False)),
    ),
    min_size=1,
    max_size=120,
)
rates = st.floats(min_value=0.2, max_value=50, allow_nan=False)
bursts = st.integers(min_value=1, max_value=12)


def simulate(
    rate: float, burst: int, script: list[tuple[float, float | None]]
) -> tuple[list[float], list[float]]:
    """Admission times, and each admitted caller's wait, for a script run on the pure core.

    Callers are served one at a time, as TokenBucket.acquire serves them.
    """
    state = BucketState(float(burst), 0.0)
    now = 0.0
    admitted: list[float] = []
    waits: list[float] = []
    for gap, pause_for in script:
        now += gap
        if pause_for is not None:
            state = pause(state, now, now + pause_for, rate, burst)
            continue
        asked = now
        while True:
            state, wait = take(state, now, rate, burst)
            if wait <= 0:
                break
            now += wait
        admitted.append(now)
        waits.append(now - asked)
    return admitted, waits


@settings(max_examples=300)
@given(rates, bursts, events)
def test_no_window_admits_more_than_burst_plus_rate_times_length(
    rate: float, burst: int, script: list[tuple[float, float | None]]
) -> None:
    admitted, _ = simulate(rate, burst, script)
    # The tightest windows start and end on admissions: check every such pair.
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            length = admitted[j] - start
            assert j - i + 1 <= burst + rate * length + TOLERANCE


@settings(max_examples=300)
@given(rates, bursts, events)
def test_every_caller_is_served_within_its_queue_and_pauses(
    rate: float, burst: int, script: list[tuple[float, float | None]]
) -> None:
    admitted, waits = simulate(rate, burst, script)
    pauses = sum(p for _, p in script if p is not None)
    for n, wait in enumerate(waits):
        # Nobody waits longer than every earlier caller's token plus every pause.
        assert wait <= (n + 1) / rate + pauses + TOLERANCE
    assert admitted == sorted(admitted)


@given(rates, bursts, st.floats(min_value=0.01, max_value=30), st.integers(0, 12))
def test_nothing_is_admitted_during_a_pause_and_no_burst_after_it(
    rate: float, burst: int, length: float, spent: int
) -> None:
    state = BucketState(float(burst), 0.0)
    for _ in range(min(spent, burst)):
        state, wait = take(state, 0.0, rate, burst)
        assert wait == 0
    state = pause(state, 0.0, length, rate, burst)
    during, wait = take(state, length / 2, rate, burst)
    assert wait == pytest.approx(length / 2)
    assert during == state
    # After the pause at most one request goes at once; the rest follow at the rate.
    after, wait = take(state, length, rate, burst)
    if wait == 0:
        _, wait = take(after, length, rate, burst)
    assert wait > 0


def test_a_later_pause_never_shortens_an_earlier_one() -> None:
    state = pause(BucketState(3.0, 0.0), 0.0, 10.0, 3, 3)
    assert pause(state, 1.0, 2.0, 3, 3).updated == 10.0


def test_steady_pace_after_the_burst() -> None:
    admitted, _ = simulate(3.0, 3, [(0.0, None)] * 9)
    assert admitted[:3] == [0.0, 0.0, 0.0]
    gaps = [b - a for a, b in itertools.pairwise(admitted[2:])]
    assert gaps == pytest.approx([1 / 3] * 6)


class FakeClock:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


async def test_concurrent_callers_are_paced_in_arrival_order() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, 2, clock=clock, sleep=clock.sleep)
    served: list[tuple[int, float]] = []

    async def caller(n: int) -> None:
        await bucket.acquire()
        served.append((n, clock.now - 100.0))

    await asyncio.gather(*(caller(n) for n in range(6)))
    assert [n for n, _ in served] == list(range(6))
    assert [t for _, t in served] == pytest.approx([0, 0, 0.5, 1.0, 1.5, 2.0])


async def test_pause_until_holds_every_caller_of_the_bucket() -> None:
    clock = FakeClock()
    bucket = TokenBucket(3.0, 3, clock=clock, sleep=clock.sleep)
    bucket.pause_until(clock.now + 5)
    assert bucket.paused_until == 105.0
    await asyncio.gather(bucket.acquire(), bucket.acquire())
    assert clock.now >= 105.0  # neither went before the pause ended
    assert clock.now == pytest.approx(105.0 + 1 / 3)  # and only one went at once after it


async def test_a_cancelled_waiter_spends_nothing() -> None:
    bucket = TokenBucket(1.0, 1)
    await bucket.acquire()
    waiter = asyncio.create_task(bucket.acquire())
    await asyncio.sleep(0.05)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert bucket.try_take() > 0.5  # the one token still refills for the next caller


def test_threads_with_their_own_loops_share_one_limit() -> None:
    """Two event loops in two threads, one bucket: still burst + rate * t at most."""
    rate, burst = 40.0, 4
    bucket = TokenBucket(rate, burst)
    times: list[float] = []
    guard = threading.Lock()

    def worker() -> None:
        async def run() -> None:
            for _ in range(12):
                await bucket.acquire()
                with guard:
                    times.append(time.monotonic())

        asyncio.run(run())

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    times.sort()
    assert len(times) == 24
    for i, start in enumerate(times):
        # admissions are timestamped a little after the bucket decided: allow 5 ms
        j = bisect.bisect_right(times, start + 0.25)
        assert j - i <= burst + rate * (0.25 + 0.005) + 1


def test_one_token_one_bucket_and_no_token_in_the_registry() -> None:
    clear_shared_buckets()
    secret = "ntn_registry_canary_0123456789"
    try:
        first = shared_bucket(secret, 3.0, 3)
        assert shared_bucket(secret, 3.0, 3) is first
        assert shared_bucket("ntn_someone_else", 3.0, 3) is not first
        for text in (repr(ratelimit._BUCKETS), str(list(ratelimit._BUCKETS)), repr(first)):
            assert secret not in text
    finally:
        clear_shared_buckets()


def test_clients_configured_differently_share_the_stricter_limit() -> None:
    clear_shared_buckets()
    try:
        bucket = shared_bucket("ntn_token_a", 3.0, 3)
        assert shared_bucket("ntn_token_a", 10.0, 10) is bucket
        assert (bucket.rate, bucket.burst) == (3.0, 3.0)  # a faster client cannot loosen it
        shared_bucket("ntn_token_a", 2.0, 5)
        assert (bucket.rate, bucket.burst) == (2.0, 3.0)
    finally:
        clear_shared_buckets()


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(0, 3)
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(3, 0)
