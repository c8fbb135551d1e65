"""The reply schedule: which waiting cards a pass looks at, within its budget."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factory.reply_schedule import (
    REPLY_CAP_SECONDS,
    ReplySchedule,
    Waiting,
    budget_for,
    due_at,
    feedback_every,
    interval,
    plan,
    reply_budget,
    schedule_for,
)

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_defaults_give_ten_reads_per_ten_second_poll_at_one_third_of_three_per_second() -> None:
    schedule = schedule_for(10.0, 1 / 3, 3.0)
    assert (schedule.every, schedule.budget, schedule.cap) == (10.0, 10, REPLY_CAP_SECONDS)
    # a poll faster than one read per share: the passes stretch so each may read once
    assert feedback_every(0.5, 1 / 3, 3.0) == pytest.approx(1.0)
    assert reply_budget(1 / 3, 3.0, 1.0) == 1
    assert reply_budget(1.0, 3.0, 10.0) == 30


@given(
    share=st.floats(0.01, 1.0),
    rate=st.floats(0.1, 100.0),
    poll=st.floats(0.5, 3600.0),
)
def test_a_full_pass_never_reads_more_than_the_share_of_its_interval(
    share: float, rate: float, poll: float
) -> None:
    schedule = schedule_for(poll, share, rate)
    assert schedule.every >= poll
    assert schedule.budget >= 1
    assert schedule.budget <= share * rate * schedule.every + 1e-6
    assert schedule.cap >= 2 * schedule.every


@given(st.integers(1, 100), st.floats(0.1, 100.0), st.floats(0.0, 1000.0))
def test_a_pass_woken_early_gets_its_share_of_the_time_since_the_last(
    budget: int, every: float, elapsed: float
) -> None:
    schedule = ReplySchedule(every, budget, cap=max(600.0, 2 * every))
    got = budget_for(schedule, elapsed)
    assert 1 <= got <= budget
    if elapsed >= every:
        assert got == budget
    else:
        assert got <= max(1, budget * elapsed / every + 1e-6)


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.01])
def test_a_share_outside_zero_to_one_is_refused_naming_it(bad: float) -> None:
    with pytest.raises(ValueError, match="reply check share"):
        reply_budget(bad, 3.0, 10.0)


def test_every_poll_while_fresh_then_doubling_to_the_cap() -> None:
    schedule = ReplySchedule(every=10.0, budget=10)
    card = Waiting("t", asked_at=T0, checked_at=None)
    looks = []
    now = T0
    for _ in range(60):
        due = due_at(schedule, card)
        assert due is not None
        now = due
        looks.append((now - T0).total_seconds())
        card = Waiting("t", T0, now)
    gaps = [b - a for a, b in itertools.pairwise(looks)]
    assert looks[0] == 10.0  # nobody answers within no time: the first look is a poll later
    assert set(gaps[: looks.index(300.0)]) == {10.0}
    assert gaps[looks.index(300.0) : looks.index(300.0) + 5] == [20.0, 40.0, 80.0, 160.0, 320.0]
    assert max(gaps) == 590.0 and gaps[-1] == 590.0  # the cap, a poll's wait included


@given(age=st.floats(0.0, 200_000.0), every=st.floats(0.5, 100.0))
def test_the_interval_is_one_poll_while_fresh_and_never_above_the_cap(
    age: float, every: float
) -> None:
    schedule = ReplySchedule(every=every, budget=1, cap=max(600.0, 2 * every))
    got = interval(schedule, age)
    assert every <= got <= max(every, schedule.cap - every)
    if age < schedule.fresh:
        assert got == every


cards_st = st.lists(
    st.tuples(
        st.one_of(st.none(), st.floats(0.0, 100_000.0)),  # question age at T0 (None: not yet)
        st.one_of(st.none(), st.floats(0.0, 2_000.0)),  # seconds since the last look
        st.booleans(),  # hinted
    ),
    max_size=40,
)


def waiting_from(drawn: list[tuple[float | None, float | None, bool]]) -> list[Waiting]:
    return [
        Waiting(
            f"t{i}",
            None if age is None else at(-age),
            None if since is None else at(-since),
            hint,
        )
        for i, (age, since, hint) in enumerate(drawn)
    ]


@given(cards_st, st.integers(1, 15))
def test_a_pass_looks_at_most_budget_cards_hinted_first_never_an_unasked_one(
    drawn: list[tuple[float | None, float | None, bool]], budget: int
) -> None:
    schedule = ReplySchedule(every=10.0, budget=budget)
    cards = waiting_from(drawn)
    picked = plan(schedule, cards, T0)
    by_id = {c.task_id: c for c in cards}
    assert len(picked) <= budget and len(set(picked)) == len(picked)
    assert all(by_id[t].asked_at is not None for t in picked)
    hinted_flags = [by_id[t].hinted for t in picked]
    assert hinted_flags == sorted(hinted_flags, reverse=True)  # hinted ones first
    askable_hints = [c for c in cards if c.hinted and c.asked_at is not None]
    assert sum(hinted_flags) == min(budget, len(askable_hints))
    # with room to spare, every due card is in
    due = [
        c.task_id
        for c in cards
        if (d := due_at(schedule, c)) is not None and d <= T0 + timedelta(seconds=5)
    ]
    if len(due) + len(askable_hints) <= budget:
        assert set(due) <= set(picked)


def simulate(
    schedule: ReplySchedule, cards: list[Waiting], cycles: int, steps: list[float]
) -> dict[str, list[tuple[datetime, datetime]]]:
    """Run passes from T0; per card, (when it fell due, or T0 if earlier; when looked at)."""
    looks: dict[str, list[tuple[datetime, datetime]]] = {c.task_id: [] for c in cards}
    now = T0
    state = {c.task_id: c for c in cards}
    slack = timedelta(seconds=schedule.every / 2)
    for n in range(cycles):
        picked = plan(schedule, list(state.values()), now)
        assert len(picked) <= schedule.budget
        for task_id in picked:
            card = state[task_id]
            due = due_at(schedule, card)
            assert due is not None and due - slack <= now  # never looked at before due
            looks[task_id].append((max(due, T0), now))  # due before the first pass: T0
            state[task_id] = Waiting(task_id, card.asked_at, now)
        now += timedelta(seconds=schedule.every * steps[n % len(steps)])
    return looks


@settings(max_examples=60, deadline=None)
@given(
    ages=st.lists(st.floats(0.0, 200_000.0), min_size=1, max_size=60),
    steps=st.lists(st.floats(0.6, 1.0), min_size=1, max_size=5),
)
def test_with_enough_budget_every_card_is_looked_at_within_its_interval_and_one_pass(
    ages: list[float], steps: list[float]
) -> None:
    schedule = ReplySchedule(every=10.0, budget=len(ages))
    cards = [Waiting(f"t{i}", at(-age), None) for i, age in enumerate(ages)]
    looks = simulate(schedule, cards, 200, steps)
    for task_id, seen in looks.items():
        assert seen, f"{task_id} never looked at"
        for due, when in seen:
            assert when - due <= timedelta(seconds=schedule.every)


@settings(max_examples=60, deadline=None)
@given(
    ages=st.lists(st.floats(300.0, 200_000.0), min_size=1, max_size=120),
    budget=st.integers(1, 12),
)
def test_short_of_budget_each_old_card_is_looked_at_within_n_over_budget_passes_of_due(
    ages: list[float], budget: int
) -> None:
    """Round-robin: a due card waits at most ceil(N / budget) passes, N the waiting cards."""
    schedule = ReplySchedule(every=10.0, budget=budget)
    cards = [Waiting(f"t{i}", at(-age), at(-age)) for i, age in enumerate(ages)]
    rounds = math.ceil(len(cards) / budget)
    looks = simulate(schedule, cards, 3 * rounds + 80, [1.0])
    bound = timedelta(seconds=schedule.every * rounds)
    for task_id, seen in looks.items():
        assert seen, f"{task_id} never looked at"
        for due, when in seen:
            assert when - due < bound + timedelta(seconds=schedule.every / 2), task_id


@settings(max_examples=60, deadline=None)
@given(
    fresh_ages=st.lists(st.floats(0.0, 250.0), min_size=1, max_size=8),
    old_ages=st.lists(st.floats(300.0, 200_000.0), max_size=200),
)
def test_fresh_questions_go_before_a_crowd_of_old_ones(
    fresh_ages: list[float], old_ages: list[float]
) -> None:
    """With 10 reads per pass, fresh cards are looked at every pass however many old ones
    wait; the old ones share what is left (the fresh window lasts five minutes)."""
    schedule = ReplySchedule(every=10.0, budget=10)
    fresh = [Waiting(f"f{i}", at(-a), at(-a)) for i, a in enumerate(fresh_ages)]
    old = [Waiting(f"o{i}", at(-a), at(-a)) for i, a in enumerate(old_ages)]
    looks = simulate(schedule, fresh + old, 25, [1.0])
    for card in fresh:
        assert card.asked_at is not None
        for due, when in looks[card.task_id]:
            if (due - card.asked_at).total_seconds() < schedule.fresh:
                assert when - due <= timedelta(seconds=schedule.every / 2)
    # fresh cards age into the crowd during the run
    rounds = math.ceil((len(old) + len(fresh)) / (schedule.budget - len(fresh)))
    for card in old:
        first = looks[card.task_id][:1]
        if rounds < 20:  # the simulation is long enough to see it
            assert first, card.task_id
            assert first[0][1] - first[0][0] < timedelta(seconds=schedule.every * (rounds + 1))
