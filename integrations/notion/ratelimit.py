"""A token bucket shared by every client of one integration token.

Notion allows about 3 requests per second per integration, so the limit
belongs to the token, not to a client object: all clients in the process
using the same token draw from one bucket, and a 429 pauses all of them.

The arithmetic is pure (`BucketState`, `refill`, `take`, `pause`) so it can be
checked with any clock; `TokenBucket` only adds waiting and locking.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("nfactory.notion")

# Float sums of rate * elapsed land a hair under 1 after sleeping exactly the
# computed wait; without this slack the caller would wake for a nanosecond nap.
_EPSILON = 1e-9


@dataclass(frozen=True)
class BucketState:
    """`tokens` available as of `updated`.

    `updated` may lie in the future: that is a pause (Retry-After), during
    which nothing is admitted and nothing refills.
    """

    tokens: float
    updated: float


def refill(state: BucketState, now: float, rate: float, burst: float) -> BucketState:
    elapsed = max(0.0, now - state.updated)
    return BucketState(min(burst, state.tokens + elapsed * rate), max(now, state.updated))


def wait_needed(state: BucketState, rate: float) -> float:
    """Seconds until one token is available (0 when one is)."""
    return 0.0 if state.tokens >= 1 - _EPSILON else (1 - state.tokens) / rate


def take(state: BucketState, now: float, rate: float, burst: float) -> tuple[BucketState, float]:
    """Spend one token at `now`: (new state, 0.0) if admitted, else (state, seconds to wait)."""
    if now < state.updated:
        return state, state.updated - now
    current = refill(state, now, rate, burst)
    wait = wait_needed(current, rate)
    if wait > 0:
        return current, wait
    return BucketState(max(0.0, current.tokens - 1), current.updated), 0.0


def take_spare(
    state: BucketState, now: float, rate: float, burst: float, reserve: float
) -> tuple[BucketState, bool]:
    """Spend one token only if `reserve` more stay behind (and no pause is on).

    For writes that may be dropped (progress lines): they never wait, and never take
    the token a delivery arriving next would need, so they never delay one.
    """
    if now < state.updated:
        return state, False
    current = refill(state, now, rate, burst)
    if current.tokens < 1 + reserve - _EPSILON:
        return current, False
    return BucketState(current.tokens - 1, current.updated), True


def pause(state: BucketState, now: float, until: float, rate: float, burst: float) -> BucketState:
    """Nothing is admitted before `until`; afterwards traffic resumes at the steady rate.

    At most one token survives the pause: the server just told us we were too
    fast, so releasing a whole burst the moment it ends would earn another 429.
    """
    current = refill(state, now, rate, burst)
    if until <= current.updated:
        return current
    return BucketState(min(current.tokens, 1.0), until)


def grant(
    state: BucketState,
    now: float,
    rate: float,
    burst: float,
    want: int,
    reserve: float = 0.0,
    charge: float = 0.0,
) -> tuple[BucketState, int, float]:
    """Hand out up to `want` whole tokens at once, leaving `reserve` behind.

    (new state, tokens granted, 0.0), or (state, 0, seconds until one could be).
    `charge` is spent first, whatever the level: tokens used elsewhere that this
    bucket must still pay for, so the level may go below zero and then refills.
    """
    state = BucketState(state.tokens - charge, state.updated)
    if now < state.updated:
        return state, 0, state.updated - now
    current = refill(state, now, rate, burst)
    granted = min(want, math.floor(current.tokens - reserve + _EPSILON))
    if granted < 1:
        return current, 0, max(_EPSILON, 1 + reserve - current.tokens) / rate
    return BucketState(current.tokens - granted, current.updated), granted, 0.0


def give_back(
    state: BucketState, now: float, rate: float, burst: float, unused: int
) -> BucketState:
    """Return granted tokens nobody sent with; a paused bucket keeps its cap of one."""
    if now < state.updated:
        return state
    current = refill(state, now, rate, burst)
    return BucketState(min(burst, current.tokens + unused), current.updated)


class RateBudget(Protocol):
    """What NotionClient (and anything pacing requests) needs of a rate budget.

    `TokenBucket` is one process's budget; `shared_budget.SharedBudget` is one
    integration's budget shared by every worker through the database.
    """

    rate: float
    burst: float
    clock: Callable[[], float]

    @property
    def paused_until(self) -> float: ...

    def try_take(self) -> float: ...

    def try_spare(self, reserve: float = 1.0) -> bool: ...

    async def acquire(self) -> None: ...

    def pause_until(self, t: float) -> None: ...

    def pause_for(self, seconds: float) -> None: ...


class TokenBucket:
    """`rate` requests per second on average, up to `burst` at once, for every caller."""

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self.clock = clock
        self.sleep = sleep
        self.state = BucketState(float(burst), clock())
        # The state is updated from any thread that runs a loop; this lock is
        # only held for the arithmetic, never across an await.
        self._state_lock = threading.Lock()
        # One asyncio lock per event loop (a bucket outlives the loop that first
        # used it): callers of one loop queue in arrival order, so none starves.
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self.rate:g}, burst={self.burst:g})"

    @property
    def paused_until(self) -> float:
        """The clock time before which nothing is sent (in the past when not paused)."""
        return self.state.updated

    def try_take(self) -> float:
        """Spend a token now if one is there: 0.0, else the seconds to wait (nothing spent)."""
        with self._state_lock:
            self.state, wait = take(self.state, self.clock(), self.rate, self.burst)
        return wait

    def try_spare(self, reserve: float = 1.0) -> bool:
        """Spend a token now only if `reserve` more remain and nobody is waiting for one."""
        lock = self._locks.get(asyncio.get_running_loop())
        if lock is not None and lock.locked():
            return False  # a caller is queued for a token: it goes first
        with self._state_lock:
            self.state, ok = take_spare(self.state, self.clock(), self.rate, self.burst, reserve)
        return ok

    async def acquire(self) -> None:
        """Wait for and spend one token."""
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        async with lock:
            while True:
                wait = self.try_take()
                if wait <= 0:
                    return
                await self.sleep(wait)

    def pause_until(self, t: float) -> None:
        """Notion said slow down: nobody sharing this bucket sends before clock time `t`."""
        with self._state_lock:
            self.state = pause(self.state, self.clock(), t, self.rate, self.burst)

    def pause_for(self, seconds: float) -> None:
        self.pause_until(self.clock() + max(0.0, seconds))

    def tighten(self, rate: float, burst: int) -> None:
        """Adopt the stricter of the current and the given limits."""
        with self._state_lock:
            self.rate = min(self.rate, float(rate))
            self.burst = min(self.burst, float(burst))
            self.state = BucketState(min(self.state.tokens, self.burst), self.state.updated)


# Registry keys are keyed hashes: the registry never holds a token, and the
# key printed in a debugger cannot be checked against a guessed token offline.
_KEY_SALT = os.urandom(16)
_BUCKETS: dict[str, TokenBucket] = {}
_REGISTRY_LOCK = threading.Lock()


def token_key(token: str) -> str:
    return hmac.new(_KEY_SALT, token.encode(), hashlib.sha256).hexdigest()[:16]


def shared_bucket(token: str, rate: float, burst: int) -> TokenBucket:
    """The one bucket for `token` in this process.

    Notion limits the integration, not a client object, so two clients of one
    token must not each get their own 3/s. If they were configured with
    different limits, the stricter one holds for both.
    """
    key = token_key(token)
    with _REGISTRY_LOCK:
        bucket = _BUCKETS.get(key)
        if bucket is None:
            bucket = _BUCKETS[key] = TokenBucket(rate, burst)
        elif rate < bucket.rate or burst < bucket.burst:
            log.info(
                "two Notion clients share a token with different limits; using the stricter "
                "(%g/s, burst %d)",
                min(rate, bucket.rate),
                min(burst, int(bucket.burst)),
            )
            bucket.tighten(rate, burst)
        return bucket


def clear_shared_buckets() -> None:
    """Forget every shared bucket (tests, or a process that rotates its token)."""
    with _REGISTRY_LOCK:
        _BUCKETS.clear()
