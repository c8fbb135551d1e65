"""Token bucket rate limiting, as a pure core plus a small per-token registry.

Notion documents "an average of three requests per second per integration,
bursts allowed" and answers excess with 429 ``rate_limited`` and a
``Retry-After`` header in whole seconds.  A token bucket is the standard model
of "average rate with bursts": it refills continuously at ``rate`` tokens per
second up to ``burst`` tokens, and each admitted request spends one token.  It
therefore never admits more than ``burst + rate * t`` requests in any window
of length ``t``.

The core (:func:`take`) is a pure function of the bucket state and the current
time so it can be property-tested with an arbitrary clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

# Float slack when comparing token counts: a client that waited exactly the
# Retry-After it was given must not be refused because 0.1 + 0.2 != 0.3.
# It can over-admit by at most a billionth of a token, i.e. never in practice.
EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class BucketState:
    """Tokens available as of ``updated_at`` (seconds on the caller's clock)."""

    tokens: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Decision:
    """Outcome of asking the bucket for one token.

    ``retry_after`` is 0 when admitted; otherwise the whole number of seconds
    (at least 1) after which a retry will be admitted if nobody else spends
    tokens meanwhile.
    """

    admitted: bool
    state: BucketState
    retry_after: int


def full_bucket(burst: int, now: float) -> BucketState:
    # A fresh integration starts with a full burst allowance, as an idle one would.
    return BucketState(tokens=float(burst), updated_at=now)


def refill(state: BucketState, now: float, rate: float, burst: int) -> BucketState:
    """Bring the bucket forward to ``now``; a clock that steps backwards adds nothing."""
    elapsed = max(0.0, now - state.updated_at)
    tokens = min(float(burst), state.tokens + elapsed * rate)
    return BucketState(tokens=tokens, updated_at=max(now, state.updated_at))


def retry_after_seconds(tokens: float, rate: float) -> int:
    """Whole seconds until one token is available, never less than 1.

    Rounded up because ``Retry-After`` is an integer and a client that waits
    exactly that long must then be admitted; floored at 1 because "retry after
    0 seconds" invites a hot loop and Notion never sends it.
    """
    deficit = max(0.0, 1.0 - EPSILON - tokens)
    return max(1, math.ceil(deficit / rate))


def take(state: BucketState, now: float, rate: float, burst: int) -> Decision:
    """Try to spend one token at time ``now``.

    Rejected requests spend nothing: Notion's limit is on work done, and a
    client honouring Retry-After must be able to get through afterwards.
    """
    if rate <= 0:
        raise ValueError("rate must be positive; a disabled limiter should not call take()")
    if burst < 1:
        raise ValueError("burst must be at least 1 or no request could ever pass")
    current = refill(state, now, rate, burst)
    if current.tokens >= 1.0 - EPSILON:
        spent = BucketState(tokens=max(0.0, current.tokens - 1.0), updated_at=current.updated_at)
        return Decision(admitted=True, state=spent, retry_after=0)
    return Decision(
        admitted=False,
        state=current,
        retry_after=retry_after_seconds(current.tokens, rate),
    )


class TokenBuckets:
    """One bucket per integration token; not thread-safe (the gate holds the lock)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        # Times are kept relative to the registry's birth: small numbers keep
        # float rounding far below EPSILON even on a host with a huge uptime.
        self._origin = clock()
        self._buckets: dict[str, BucketState] = {}

    def take(self, key: str, rate: float, burst: int) -> Decision:
        now = self._clock() - self._origin
        state = self._buckets.get(key) or full_bucket(burst, now)
        decision = take(state, now, rate, burst)
        self._buckets[key] = decision.state
        return decision

    def clear(self) -> None:
        self._buckets.clear()
