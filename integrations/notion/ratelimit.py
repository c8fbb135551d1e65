"""A token bucket shared by every client of one integration token.

Notion allows about 3 requests per second per integration, so the limit
belongs to the token, not to a client object: all clients in the process
using the same token draw from one bucket, and a 429 pauses all of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass
class BucketState:
    tokens: float
    updated: float


def refill(state: BucketState, now: float, rate: float, burst: float) -> BucketState:
    elapsed = max(0.0, now - state.updated)
    return BucketState(min(burst, state.tokens + elapsed * rate), max(now, state.updated))


def wait_needed(state: BucketState, rate: float) -> float:
    """Seconds until one token is available (0 when one is)."""
    return 0.0 if state.tokens >= 1 else (1 - state.tokens) / rate


class TokenBucket:
    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self.sleep = sleep
        self.state = BucketState(float(burst), clock())
        self.paused_until = 0.0
        # one lock per event loop: a bucket may outlive the loop that first used it
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        async with lock:  # callers queue in order: no starvation
            while True:
                now = self.clock()
                if now < self.paused_until:
                    await self.sleep(self.paused_until - now)
                    continue
                self.state = refill(self.state, now, self.rate, self.burst)
                wait = wait_needed(self.state, self.rate)
                if wait <= 0:
                    self.state.tokens -= 1
                    return
                await self.sleep(wait)

    def pause_for(self, seconds: float) -> None:
        """Notion said slow down: nobody sharing this token sends until then."""
        self.paused_until = max(self.paused_until, self.clock() + seconds)
        self.state = BucketState(0.0, self.clock())


_BUCKETS: dict[tuple[str, float, int], TokenBucket] = {}


def shared_bucket(token: str, rate: float, burst: int) -> TokenBucket:
    # keyed by a digest: the registry must never hold the token itself
    key = (hashlib.sha256(token.encode()).hexdigest(), rate, burst)
    loop_bucket = _BUCKETS.get(key)
    if loop_bucket is None:
        loop_bucket = _BUCKETS[key] = TokenBucket(rate, burst)
    return loop_bucket
