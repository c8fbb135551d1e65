"""Which failed requests to retry, and after how long. Pure: no clock, no I/O."""

from __future__ import annotations

import math
import random
from datetime import datetime
from email.utils import parsedate_to_datetime

RATE_STATUSES = frozenset({429, 529})
RETRY_STATUSES = frozenset({409, 500, 502, 503, 504})
RATE_CODES = frozenset({"rate_limited", "service_overload"})
# Codes that can arrive without a usable status (a proxy's page, a dropped
# connection) but still name a transient condition.
TRANSIENT_CODES = frozenset(
    {
        "conflict_error",
        "internal_server_error",
        "bad_gateway",
        "service_unavailable",
        "gateway_timeout",
        "database_connection_unavailable",
        "timeout",
        "connection_error",
        "invalid_response",
    }
)
# Failures of our own configuration: the same request cannot succeed.
NEVER_CODES = frozenset({"invalid_base_url", "invalid_request_url"})
# A Retry-After beyond a minute is honoured as a minute, then Notion is asked again:
# a misbehaving proxy must not park the worker for an hour.
MAX_RETRY_AFTER = 60.0


def retry_delay(
    attempt: int,
    status: int | None,
    code: str | None,
    retry_after: float | None,
    *,
    base: float,
    cap: float,
    rng: random.Random,
    idempotent: bool = True,
    sent: bool = True,
) -> float | None:
    """Seconds to wait before retry number `attempt` (0-based), or None: do not retry.

    `status` None means no HTTP answer (timeout, connection error); `sent`
    False means the request provably never left (connection refused), so even
    a non-idempotent write is safe to resend. How many attempts to make is
    the caller's business; this only says whether and when.

    - 429/529: wait what Notion asks (Retry-After), else back off.
    - 409 and 500/502/503/504, timeouts, connection errors: capped
      exponential backoff with full jitter, so many callers that failed
      together do not retry together.
    - Other 4xx (400, 401, 403, 404, ...): never; the same request cannot succeed.
    - A write that is not idempotent is not retried when it may have been
      applied (a 5xx or a timeout): the caller checks the page first
      rather than risk a duplicate comment or log block.
    """
    honoured = _honoured(retry_after)
    if status in RATE_STATUSES or (status is None and code in RATE_CODES):
        # The request was refused before anything happened: always safe to resend.
        return honoured if honoured is not None else _jittered(attempt, base, cap, rng)
    if code in NEVER_CODES:
        return None
    if status == 409:
        # A conflict means Notion applied nothing, so even a non-idempotent write may go again.
        return _backoff(attempt, honoured, base, cap, rng)
    if status is not None and status not in RETRY_STATUSES:
        return None
    if status is None and code is not None and code not in TRANSIENT_CODES:
        return None
    if not sent:
        return _backoff(attempt, honoured, base, cap, rng)
    return _backoff(attempt, honoured, base, cap, rng) if idempotent else None


def longest_request(
    *, timeout: float, max_attempts: int, backoff_base: float, backoff_cap: float
) -> float:
    """The longest the client lets one request run, retries of it included: every
    attempt runs to its timeout and every wait between two is the longest backoff
    the policy can draw.

    Waits before an attempt is sent (for a rate-limit token, or a Retry-After,
    which only ever follows an answer that applied nothing) are not in it: each
    attempt of a write is stamped as it really goes out, so only what may still
    be in flight after a stamp counts.
    """
    waits = sum(
        min(backoff_cap, backoff_base * 2 ** min(k, 60)) for k in range(max(max_attempts - 1, 0))
    )
    return max(max_attempts, 1) * timeout + waits


def doubt_grace(
    *, timeout: float, max_attempts: int, backoff_base: float, backoff_cap: float
) -> float:
    """Seconds a write in doubt is left alone, counted from its own send time, before
    the page is checked for it and it is sent again.

    A write the client gave up on may still be applied by Notion later; checking
    before it lands sends it twice. The grace outlasts the longest request the
    client lets run, with one more timeout of margin (a request's answer is only
    recorded after it returns, and clocks of several workers differ a little).
    With the client's defaults (30 s x 6 attempts) that is well past Notion's own
    60 s server-side timeout, after which it answers 503 and applies nothing new.
    """
    longest = longest_request(
        timeout=timeout,
        max_attempts=max_attempts,
        backoff_base=backoff_base,
        backoff_cap=backoff_cap,
    )
    return longest + timeout


def _honoured(retry_after: float | None) -> float | None:
    if retry_after is None or math.isnan(retry_after) or retry_after < 0:
        return None
    return min(retry_after, MAX_RETRY_AFTER)


def _backoff(
    attempt: int, honoured: float | None, base: float, cap: float, rng: random.Random
) -> float:
    delay = _jittered(attempt, base, cap, rng)
    # A server that names a wait on a 503 knows better than our guess.
    return max(delay, honoured) if honoured is not None else delay


def _jittered(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    ceiling = min(cap, base * (2 ** min(max(attempt, 0), 60)))
    return rng.uniform(0, max(0.0, ceiling))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After in seconds: delta-seconds, or an HTTP date when `now` (epoch) is given."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = _from_http_date(text, now)
        if seconds is None:
            return None
    if math.isnan(seconds) or seconds < 0:
        return None
    return seconds


def _from_http_date(text: str, now: float | None) -> float | None:
    if now is None:
        return None
    try:
        when: datetime = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)
