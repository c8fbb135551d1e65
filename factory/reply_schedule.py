"""When to look for replies on cards waiting in Feedback: a pure schedule, no I/O.

A board like Notion has no way to list new comments across pages, so each look
at a card's comments is one request. People answer a question soon or much
later, so a card is looked at every cycle for the first `fresh` seconds after
its question reached the card, then ever less often (the interval doubles at
each check) up to a cap. A card a webhook named, or whose page intake saw
edited (a hint), is looked at first.

Every cycle may spend at most `budget` reads (a share of the board's rate
limit, see `reply_budget`), never more. Due cards are taken in this order:
hinted, then cards still in their fresh window, then the rest; within a tier,
earliest due first (the most overdue), ties to the oldest last check. That
order is what makes the guarantee: once a card falls due, every card ahead of
it fell due earlier, and a card checked from then on falls due later than it,
so each card is ahead of it at most once. Hence, hints aside, a fresh card is
checked within ceil(F / budget) cycles of falling due (F fresh cards waiting)
and an old card within ceil(A / (budget - F)) (A old cards) while fewer than
`budget` questions are fresh, which lasts minutes. When more old cards wait
than the budget can look at every cap, the interval stretches evenly to about
A / budget cycles (round-robin by oldest check) rather than the reads
exceeding their share: with 1,000 old cards and one read per second, each is
looked at about every 17 minutes. Only a webhook comment event (a hint) beats
that.

A card whose question has not reached the card yet is never due: nobody can
answer it, and looking costs a request.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

# Defaults: every poll for 5 minutes after the question, then doubling up to
# a reply picked up within 10 minutes at most; one third of the rate limit.
REPLY_FRESH_SECONDS = 300.0
REPLY_CAP_SECONDS = 600.0
REPLY_SHARE = 1 / 3


@dataclass(frozen=True)
class ReplySchedule:
    """How often to look, and how many looks one cycle may spend.

    `every` is the time between cycles (the feedback job's interval); `cap` bounds
    the wait for a reply to an old question, one cycle's wait included.
    """

    every: float
    budget: int
    fresh: float = REPLY_FRESH_SECONDS
    cap: float = REPLY_CAP_SECONDS

    def __post_init__(self) -> None:
        if self.every <= 0:
            raise ValueError(f"the reply check interval must be positive, got {self.every}")
        if self.budget < 1:
            raise ValueError(f"the reply check budget must be at least 1, got {self.budget}")
        if self.fresh < 0 or self.cap < 2 * self.every:
            raise ValueError(
                f"the reply check cap ({self.cap:g}s) must be at least two intervals "
                f"({2 * self.every:g}s) and the fresh window ({self.fresh:g}s) not negative"
            )


@dataclass(frozen=True)
class Waiting:
    """A card waiting in Feedback, as the schedule sees it.

    `asked_at`: when its question reached the card (None: not yet). `checked_at`: when
    its comments were last read (None: never). `hinted`: a webhook or intake named it.
    """

    task_id: str
    asked_at: datetime | None
    checked_at: datetime | None
    hinted: bool = False


def feedback_every(poll_seconds: float, share: float, rate: float) -> float:
    """Seconds between reply passes: the poll, or longer when one read per poll would
    exceed the share (a poll of 0.5 s at 1 read/s), so every pass may read at least once."""
    _check_share(share, rate)
    return max(poll_seconds, 1.0 / (share * rate))


def reply_budget(share: float, rate: float, every: float) -> int:
    """Comment reads one pass may spend: `share` of `rate` requests/s over `every` seconds,
    at least one (`feedback_every` stretches passes so that one fits the share)."""
    _check_share(share, rate)
    # a hair of slack: 1/3 * 3 * 10 is 9.999999999999998 in floats
    return max(1, math.floor(share * rate * every + 1e-9))


def schedule_for(
    poll_seconds: float, share: float, rate: float, cap: float = REPLY_CAP_SECONDS
) -> ReplySchedule:
    """The schedule for a board limited to `rate` requests/s, `share` of it for replies."""
    every = feedback_every(poll_seconds, share, rate)
    return ReplySchedule(every, reply_budget(share, rate, every), cap=max(cap, 2 * every))


def budget_for(schedule: ReplySchedule, elapsed: float) -> int:
    """Reads a pass may spend `elapsed` seconds after the previous one began.

    A webhook wakes the pass early; an early pass gets the share of the time since the
    last one (at least one read, for the card the webhook named), so woken passes do not
    add up to more than the share.
    """
    if elapsed >= schedule.every:
        return schedule.budget
    return max(1, math.floor(schedule.budget * max(elapsed, 0.0) / schedule.every + 1e-9))


def _check_share(share: float, rate: float) -> None:
    if not 0 < share <= 1:
        raise ValueError(f"the reply check share must be in (0, 1], got {share}")
    if rate <= 0:
        raise ValueError(f"the rate limit must be positive, got {rate}")


def interval(schedule: ReplySchedule, age: float) -> float:
    """Seconds between looks at a card whose question is `age` seconds old at its last look.

    Every cycle while fresh; then `age - fresh + 2 * every`, which doubles at each look
    taken when due (20 s, 40 s, 80 s... after 5 minutes for a 10 s cycle); capped so a
    look plus the wait for the next cycle stays within `cap`.
    """
    if age < schedule.fresh:
        return schedule.every
    return min(schedule.cap - schedule.every, age - schedule.fresh + 2 * schedule.every)


def due_at(schedule: ReplySchedule, card: Waiting) -> datetime | None:
    """When the card is next worth a look (None: its question has not reached it)."""
    if card.asked_at is None:
        return None
    since = card.asked_at
    if card.checked_at is not None and card.checked_at > since:
        since = card.checked_at
    age = (since - card.asked_at).total_seconds()
    return since + timedelta(seconds=interval(schedule, age))


def is_fresh(schedule: ReplySchedule, card: Waiting, now: datetime) -> bool:
    if card.asked_at is None:
        return False
    return (now - card.asked_at).total_seconds() < schedule.fresh


def plan(schedule: ReplySchedule, waiting: Iterable[Waiting], now: datetime) -> list[str]:
    """The task ids to look at this cycle, in order: at most `schedule.budget` of them.

    A card is due half a cycle early: passes do not start exactly `every` apart, and a
    card due a moment after this pass would otherwise wait a whole cycle more.
    """
    slack = timedelta(seconds=schedule.every / 2)
    ranked: list[tuple[int, datetime, datetime, str]] = []
    for card in waiting:
        due = due_at(schedule, card)
        if due is None:
            continue  # nothing to answer yet, hint or not
        if card.hinted:
            tier = 0
        elif due - slack > now:
            continue
        else:
            tier = 1 if is_fresh(schedule, card, now) else 2
        last = card.checked_at or card.asked_at or now
        ranked.append((tier, due, last, card.task_id))
    ranked.sort()
    return [task_id for *_, task_id in ranked[: schedule.budget]]
