"""The model: reply checks on a schedule find every reply exactly once, and in time.

Cards wait in Feedback with their question on the page; people reply at random
times; passes look at the cards the schedule picks and take the replies the
board's own rule finds (`new_replies`, with the consumed comment ids as the
database keeps them). Nothing is missed, nothing is taken twice, and a reply
waits no longer than the schedule promises.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from factory.reply_schedule import ReplySchedule, Waiting, plan
from integrations.notion.feedback import new_replies

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
BOT, PERSON = "bot", "person"
EVERY = 10.0


def comment(cid: str, author: str) -> dict[str, Any]:
    return {
        "id": cid,
        "created_by": {"object": "user", "id": author},
        "created_time": "2026-11-29T12:00:00.000Z",
        "rich_text": [{"type": "text", "plain_text": cid, "text": {"content": cid}}],
    }


def run(
    question_ages: list[float],
    replies: list[tuple[int, float, bool]],
    budget: int,
    passes: int,
) -> tuple[dict[str, list[str]], dict[str, float], dict[str, float]]:
    """(comment ids taken per card, pick-up latency per reply, question age per reply)."""
    schedule = ReplySchedule(every=EVERY, budget=budget)
    cards = {
        f"t{i}": Waiting(f"t{i}", T0 - timedelta(seconds=a), None)
        for i, a in enumerate(question_ages)
    }
    threads: dict[str, list[dict[str, Any]]] = {t: [comment(f"q-{t}", BOT)] for t in cards}
    arrivals = sorted(
        (T0 + timedelta(seconds=when), f"t{card % len(cards)}", f"r{n}", hint)
        for n, (card, when, hint) in enumerate(replies)
    )
    taken: dict[str, list[str]] = {t: [] for t in cards}
    consumed: dict[str, set[str]] = {t: set() for t in cards}
    posted: dict[str, datetime] = {}
    latency: dict[str, float] = {}
    age: dict[str, float] = {}
    hints: set[str] = set()
    now = T0
    for _ in range(passes):
        while arrivals and arrivals[0][0] <= now:
            when, task_id, cid, hint = arrivals.pop(0)
            threads[task_id].append(comment(cid, PERSON))
            posted[cid] = when
            asked = cards[task_id].asked_at
            assert asked is not None
            age[cid] = (when - asked).total_seconds()
            if hint:
                hints.add(task_id)  # a webhook comment event names the card
        waiting = [
            Waiting(c.task_id, c.asked_at, c.checked_at, c.task_id in hints) for c in cards.values()
        ]
        for task_id in plan(schedule, waiting, now):
            found = new_replies(
                threads[task_id],
                bot_id=BOT,
                question_id=f"q-{task_id}",
                consumed=consumed[task_id],
                people={PERSON},
            )
            for reply in found:
                taken[task_id].append(reply.comment_id)
                latency[reply.comment_id] = (now - posted[reply.comment_id]).total_seconds()
            consumed[task_id] |= {r.comment_id for r in found}  # in the tick's transaction
            hints.discard(task_id)
            card = cards[task_id]
            cards[task_id] = Waiting(task_id, card.asked_at, now)
        now += timedelta(seconds=EVERY)
    return taken, latency, age


reply_st = st.tuples(st.integers(0, 200), st.floats(0.0, 3000.0), st.booleans())


@settings(max_examples=80, deadline=None)
@given(
    question_ages=st.lists(st.floats(0.0, 100_000.0), min_size=1, max_size=30),
    replies=st.lists(reply_st, max_size=40),
)
def test_with_enough_budget_every_reply_is_taken_once_within_the_promised_wait(
    question_ages: list[float], replies: list[tuple[int, float, bool]]
) -> None:
    taken, latency, age = run(question_ages, replies, budget=len(question_ages), passes=400)
    flat = [cid for ids in taken.values() for cid in ids]
    assert len(flat) == len(set(flat))  # never twice
    assert sorted(flat) == sorted(f"r{n}" for n in range(len(replies)))  # none missed
    for n, (_card, _when, hint) in enumerate(replies):
        cid = f"r{n}"
        if hint:
            assert latency[cid] <= EVERY  # the next pass
        elif age[cid] < 300 - EVERY:
            assert latency[cid] <= EVERY  # fresh question: every pass
        else:
            assert latency[cid] <= 600  # old question: the cap, one pass included


@settings(max_examples=60, deadline=None)
@given(
    question_ages=st.lists(st.floats(300.0, 100_000.0), min_size=1, max_size=80),
    replies=st.lists(reply_st, max_size=40),
    budget=st.integers(1, 5),
)
def test_short_of_budget_nothing_is_missed_or_taken_twice_and_hints_still_go_first(
    question_ages: list[float], replies: list[tuple[int, float, bool]], budget: int
) -> None:
    passes = 300 + 2 * len(question_ages) // budget + 200
    taken, latency, _age = run(question_ages, replies, budget=budget, passes=passes)
    flat = [cid for ids in taken.values() for cid in ids]
    assert len(flat) == len(set(flat))
    assert sorted(flat) == sorted(f"r{n}" for n in range(len(replies)))
    hinted = [f"r{n}" for n, (_c, _w, hint) in enumerate(replies) if hint]
    # hints queue only behind other hints: at most one pass per `budget` of them
    for cid in hinted:
        assert latency[cid] <= EVERY * (1 + len(hinted) // budget)
