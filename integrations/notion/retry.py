"""Which failed requests to retry, and after how long. Pure."""

from __future__ import annotations

import random

RETRY_STATUSES = frozenset({409, 500, 502, 503, 504})
RATE_STATUSES = frozenset({429, 529})
MAX_RETRY_AFTER = 60.0  # a Retry-After beyond a minute is honoured as a minute, then re-asked


def retry_delay(
    attempt: int,
    status: int | None,
    retry_after: float | None,
    *,
    base: float,
    cap: float,
    rng: random.Random,
    idempotent: bool = True,
    sent: bool = True,
) -> float | None:
    """Seconds to wait before retry number `attempt` (0-based), or None to give up now.

    `status` None means the request timed out or never got an answer; `sent`
    False means it never left (connection refused). Rate limits wait what
    Notion asks (Retry-After) or back off; conflicts, server errors and
    timeouts back off exponentially with full jitter; other client errors are
    never retried (the same request cannot succeed). A write that is not
    idempotent is not retried when it may have been applied (a timeout or a
    5xx): the caller checks the page first instead of risking a duplicate.
    """
    if status in RATE_STATUSES:
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, MAX_RETRY_AFTER)
        return _jittered(attempt, base, cap, rng)
    if not sent or status == 409:
        return _jittered(attempt, base, cap, rng)
    if status is None or status in RETRY_STATUSES:
        return _jittered(attempt, base, cap, rng) if idempotent else None
    return None


def _jittered(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    ceiling = min(cap, base * (2 ** min(attempt, 30)))
    return rng.uniform(0, ceiling)


def parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
