"""The retry policy, alone: which failures are retried, and how long each wait is."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integrations.notion.board import NotionBoard
from integrations.notion.retry import (
    MAX_RETRY_AFTER,
    doubt_grace,
    longest_request,
    parse_retry_after,
    retry_delay,
)
from integrations.notion.settings import NotionSettings
from integrations.notion.wiring import make_client
from integrations.notion_emulator.traffic import DEFAULT_TIMEOUT_SECONDS

# Notion answers 503 after its own 60 s server-side timeout (NOTION_FACTS.md).
NOTION_SERVER_TIMEOUT = 60.0

RETRYABLE = [409, 500, 502, 503, 504]
RATE = [429, 529]
# Every other 4xx: the same request cannot succeed, whatever else is said.
NEVER = [s for s in range(400, 500) if s not in (409, 429)]

attempts = st.integers(min_value=0, max_value=200)
bases = st.floats(min_value=0.001, max_value=5.0)
caps = st.floats(min_value=0.001, max_value=60.0)
retry_afters = st.none() | st.floats(min_value=0, max_value=10_000, allow_nan=False)
codes = st.none() | st.sampled_from(
    ["rate_limited", "conflict_error", "internal_server_error", "validation_error", "x"]
)
seeds = st.integers(min_value=0, max_value=2**32)


@given(attempts, st.sampled_from(NEVER), codes, retry_afters, bases, caps, seeds, st.booleans())
def test_other_client_errors_are_never_retried(
    attempt: int,
    status: int,
    code: str | None,
    retry_after: float | None,
    base: float,
    cap: float,
    seed: int,
    idempotent: bool,
) -> None:
    delay = retry_delay(
        attempt,
        status,
        code,
        retry_after,
        base=base,
        cap=cap,
        rng=random.Random(seed),
        idempotent=idempotent,
    )
    assert delay is None


@given(attempts, st.sampled_from([*RETRYABLE, None]), bases, caps, seeds)
def test_backoff_stays_within_zero_and_cap(
    attempt: int, status: int | None, base: float, cap: float, seed: int
) -> None:
    delay = retry_delay(attempt, status, None, None, base=base, cap=cap, rng=random.Random(seed))
    assert delay is not None
    assert 0 <= delay <= cap
    assert delay <= base * 2**attempt  # exponential ceiling, before the cap


@given(attempts, st.sampled_from(RATE), retry_afters, bases, caps, seeds, st.booleans())
def test_rate_limits_honour_retry_after(
    attempt: int,
    status: int,
    retry_after: float | None,
    base: float,
    cap: float,
    seed: int,
    idempotent: bool,
) -> None:
    delay = retry_delay(
        attempt,
        status,
        None,
        retry_after,
        base=base,
        cap=cap,
        rng=random.Random(seed),
        idempotent=idempotent,  # a refused request was not applied: writes retry too
    )
    assert delay is not None
    if retry_after is None:
        assert 0 <= delay <= cap
    else:
        assert delay >= min(retry_after, MAX_RETRY_AFTER)
        assert delay <= MAX_RETRY_AFTER


@given(attempts, st.sampled_from(RETRYABLE), retry_afters, bases, caps, seeds)
def test_a_retry_after_on_a_server_error_is_a_floor(
    attempt: int, status: int, retry_after: float | None, base: float, cap: float, seed: int
) -> None:
    delay = retry_delay(
        attempt, status, None, retry_after, base=base, cap=cap, rng=random.Random(seed)
    )
    assert delay is not None
    assert delay <= max(cap, MAX_RETRY_AFTER)
    if retry_after is not None:
        assert delay >= min(retry_after, MAX_RETRY_AFTER)


def test_full_jitter_spreads_over_the_whole_range() -> None:
    rng = random.Random(7)
    delays = [retry_delay(3, 503, None, None, base=1.0, cap=100.0, rng=rng) for _ in range(2000)]
    values = [d for d in delays if d is not None]
    assert len(values) == 2000
    # ceiling 1 * 2**3 = 8: callers that failed together spread over [0, 8]
    assert min(values) < 0.1
    assert max(values) > 7.9
    assert 3.5 < sum(values) / len(values) < 4.5


@given(attempts, st.sampled_from([500, 502, 503, 504, None]), bases, caps, seeds)
def test_writes_that_may_have_landed_are_not_retried(
    attempt: int, status: int | None, base: float, cap: float, seed: int
) -> None:
    rng = random.Random(seed)

    def write(status: int | None, code: str | None, after: float | None, sent: bool) -> object:
        return retry_delay(
            attempt, status, code, after, base=base, cap=cap, rng=rng, idempotent=False, sent=sent
        )

    assert write(status, None, None, True) is None
    # ...but a write that never left, or that Notion refused, is safe to resend.
    assert write(None, "connection_error", None, False) is not None
    assert write(409, "conflict_error", None, True) is not None
    assert write(429, "rate_limited", 1.0, True) == 1.0


@pytest.mark.parametrize(
    ("status", "code", "retried"),
    [
        (400, "validation_error", False),
        (401, "unauthorized", False),
        (403, "restricted_resource", False),
        (404, "object_not_found", False),
        (409, "conflict_error", True),
        (429, "rate_limited", True),
        (529, "service_overload", True),
        (500, "internal_server_error", True),
        (502, "bad_gateway", True),
        (503, "service_unavailable", True),
        (504, "gateway_timeout", True),
        (None, "timeout", True),
        (None, "connection_error", True),
        (None, "invalid_base_url", False),  # our configuration, not Notion's weather
        (400, "invalid_request_url", False),
        (501, "http_error", False),  # not a transient condition
    ],
)
def test_the_table(status: int | None, code: str, retried: bool) -> None:
    delay = retry_delay(0, status, code, None, base=0.5, cap=20, rng=random.Random(0))
    assert (delay is not None) is retried


def test_huge_retry_after_is_capped() -> None:
    rng = random.Random(0)
    assert retry_delay(0, 429, None, 3600.0, base=0.5, cap=20, rng=rng) == MAX_RETRY_AFTER
    assert retry_delay(0, 429, None, float("inf"), base=0.5, cap=20, rng=rng) == MAX_RETRY_AFTER
    nan = retry_delay(0, 429, None, float("nan"), base=0.5, cap=20, rng=rng)
    assert nan is not None and 0 <= nan <= 0.5  # unusable header: plain backoff


def test_a_caller_that_counts_attempts_stops() -> None:
    """The policy never gives up on a 503 by itself; the caller's attempt limit does."""
    rng = random.Random(0)
    max_attempts = 6
    sent = 0
    attempt = 0
    while True:
        sent += 1  # the request fails with 503 every time
        delay = None
        if attempt + 1 < max_attempts:
            delay = retry_delay(attempt, 503, None, None, base=0.5, cap=20, rng=rng)
        if delay is None:
            break
        attempt += 1
    assert sent == max_attempts


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("1", 1.0),
        (" 2 ", 2.0),
        ("0.5", 0.5),
        ("0", 0.0),
        ("-1", None),
        ("soon", None),
        ("nan", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC), usegmt=True)
    assert parse_retry_after(later, now=now.timestamp()) == 30.0
    assert parse_retry_after(later) is None  # no clock given: unusable, fall back to backoff
    earlier = format_datetime(datetime(2026, 1, 1, 11, 0, 0, tzinfo=UTC), usegmt=True)
    assert parse_retry_after(earlier, now=now.timestamp()) == 0.0


# --- how long a write may still land after it was sent --------------------------------


@given(
    st.floats(min_value=0.1, max_value=120.0),
    st.integers(min_value=1, max_value=12),
    bases,
    caps,
    seeds,
)
def test_the_doubt_grace_outlasts_every_request_the_client_lets_run(
    timeout: float, max_attempts: int, base: float, cap: float, seed: int
) -> None:
    """Whatever waits the policy draws, a write retried on every timeout (each attempt
    running to the client's timeout) is over before the grace ends."""
    rng = random.Random(seed)
    ran = timeout  # the first attempt
    for attempt in range(max_attempts - 1):
        delay = retry_delay(attempt, None, "timeout", None, base=base, cap=cap, rng=rng)
        assert delay is not None
        ran += delay + timeout
    settings = {
        "timeout": timeout,
        "max_attempts": max_attempts,
        "backoff_base": base,
        "backoff_cap": cap,
    }
    longest = longest_request(**settings)
    assert ran <= longest + 1e-9
    assert doubt_grace(**settings) > longest


def test_with_the_workers_settings_the_grace_outlasts_notion_and_the_emulator() -> None:
    """The board the worker opens checks a write in doubt only after Notion itself has
    given up on it, and after the emulator's default hold has applied it."""
    client = make_client(NotionSettings(notion_token="secret_for_a_pure_test"))
    board = NotionBoard(client, None, "data-source", "bot")  # type: ignore[arg-type]  # no db needed
    assert board.doubt_grace == doubt_grace(
        timeout=client.timeout,
        max_attempts=client.max_attempts,
        backoff_base=client.backoff_base,
        backoff_cap=client.backoff_cap,
    )
    assert board.doubt_grace > DEFAULT_TIMEOUT_SECONDS > NOTION_SERVER_TIMEOUT
    assert board.doubt_grace > client.max_attempts * client.timeout
