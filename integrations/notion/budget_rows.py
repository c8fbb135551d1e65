"""Budget rows as token buckets: the pure changes workers make to a shared budget row.

A `rate_budget` row (factory.store.budget) holds a bucket's level, its refill time
and a pause; these functions map it to ratelimit's `BucketState` and back, and
build the changes `change_budget` applies under the row lock: a grant, a give-back,
a pause. No I/O here: the arithmetic is ratelimit's, tested with any clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from factory.store.budget import BudgetRow
from integrations.notion.ratelimit import BucketState, give_back, grant, pause

UNBOUND = "*"  # the row of every worker that does not know its bot id yet


def budget_key(bot_id: str) -> str:
    return f"bot:{bot_id.replace('-', '')}"


def row_state(row: BudgetRow) -> BucketState:
    """A pause is a refill time in the future, as in ratelimit's BucketState."""
    return BucketState(row.tokens, max(row.updated, row.paused_until or -math.inf))


def state_row(state: BucketState, now: float, before: BudgetRow) -> BudgetRow:
    if state.updated > now:
        return BudgetRow(state.tokens, now, state.updated)
    return BudgetRow(state.tokens, state.updated, before.paused_until)


@dataclass(frozen=True)
class Answer:
    """What the row said: tokens granted, else the wait; the pause left; the level left."""

    granted: int
    wait: float
    paused_for: float
    tokens: float


def grant_change(
    want: int, reserve: float, charge: float, rate: float, burst: float
) -> Callable[[BudgetRow, float], tuple[BudgetRow, Answer]]:
    def change(row: BudgetRow, now: float) -> tuple[BudgetRow, Answer]:
        state, granted, wait = grant(row_state(row), now, rate, burst, want, reserve, charge)
        answer = Answer(granted, wait, max(0.0, state.updated - now), state.tokens)
        return state_row(state, now, row), answer

    return change


def give_back_change(
    unused: int, rate: float, burst: float
) -> Callable[[BudgetRow, float], tuple[BudgetRow, None]]:
    def change(row: BudgetRow, now: float) -> tuple[BudgetRow, None]:
        state = give_back(row_state(row), now, rate, burst, unused)
        return state_row(state, now, row), None

    return change


def pause_change(
    seconds: float, rate: float, burst: float
) -> Callable[[BudgetRow, float], tuple[BudgetRow, None]]:
    def change(row: BudgetRow, now: float) -> tuple[BudgetRow, None]:
        state = pause(row_state(row), now, now + seconds, rate, burst)
        return state_row(state, now, row), None

    return change
