"""The intake watermark against Notion's minute-rounded edit times, and the card decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.notion.cards import Card
from integrations.notion.intake_rules import (
    TaskSnapshot,
    Watermark,
    advance,
    decide_card,
    poll_filter,
)

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
STATES = ["Queue", "Running", "Feedback", "Done", "Cancelled"]


def minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def card(page: str, state: str, at: datetime, factory: str | None = "f") -> Card:
    return Card(page, "title", state, factory, minute(at), None, False)


def query(board: dict[str, Card], mark: Watermark) -> list[Card]:
    """What Notion answers to `poll_filter(mark)`, sorted by edit time as the poll asks."""
    found = [
        c
        for c in board.values()
        if c.state == "Queue" or (mark.minute is not None and c.last_edited_time >= mark.minute)
    ]
    return sorted(found, key=lambda c: c.last_edited_time)


events = st.lists(
    st.tuples(
        st.sampled_from(["edit", "poll"]),
        st.integers(0, 4),  # which card
        st.sampled_from(STATES),
        st.sampled_from([0, 1, 5, 30, 59, 61, 200, 400]),  # seconds that pass first
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(events)
def test_no_change_is_missed_and_none_is_handled_twice(
    script: list[tuple[str, int, str, int]],
) -> None:
    now = T0
    board: dict[str, Card] = {}
    mark = Watermark()
    handled: dict[str, str] = {}  # page -> the last version handled
    first: datetime | None = None  # when a poll first set the watermark
    edited: dict[str, datetime] = {}  # page -> the exact time of its last edit

    def poll() -> None:
        nonlocal mark, first
        fresh, mark = advance(mark, query(board, mark), now)
        if first is None and mark.minute is not None:
            first = now
        for c in fresh:
            assert handled.get(c.page_id) != c.key, f"handled twice: {c}"
            handled[c.page_id] = c.key

    for kind, which, state, wait in script:
        now += timedelta(seconds=wait)
        if kind == "edit":
            board[f"p{which}"] = card(f"p{which}", state, now)
            edited[f"p{which}"] = now
        else:
            poll()
    now += timedelta(minutes=2)
    poll()
    for page, current in board.items():
        # Queue cards are always taken in; other cards matter once intake has begun
        # (a card edited outside Queue before then has no task to update)
        if current.state == "Queue" or (first is not None and edited[page] > first):
            assert handled.get(page) == current.key, f"missed the last change of {page}"


def test_an_unchanged_board_is_one_query_with_nothing_fresh() -> None:
    board = {f"p{i}": card(f"p{i}", "Done", T0 - timedelta(hours=1)) for i in range(500)}
    board["q"] = card("q", "Queue", T0)
    fresh, mark = advance(Watermark(), query(board, Watermark()))
    assert [c.page_id for c in fresh] == ["q"]
    fresh, mark = advance(mark, query(board, mark))
    assert fresh == []


def test_filter_rereads_the_boundary_minute() -> None:
    f = poll_filter(Watermark(T0, frozenset()))
    assert f["or"][1]["last_edited_time"] == {"on_or_after": "2026-11-23T09:00:00Z"}
    assert poll_filter(Watermark()) == {"property": "State", "select": {"equals": "Queue"}}


def snap(status: str, delivered: str | None, pending: bool = False) -> TaskSnapshot:
    return TaskSnapshot("t", status, delivered, pending)


def test_decisions() -> None:
    q = card("p", "Queue", T0)
    assert decide_card(q, None, ["f"]).action == "create"
    assert decide_card(card("p", "Queue", T0, "zz"), None, ["f"]).reason.startswith(
        "unknown factory 'zz'; known factories: f"
    )
    assert decide_card(card("p", "Queue", T0, None), None, ["f"]).action == "block"
    assert decide_card(q, snap("running", None), ["f"]).action == "ignore"
    # finished, but the bot has not moved the card yet: not a re-run
    assert decide_card(q, snap("done", None, pending=True), ["f"]).action == "ignore"
    assert decide_card(q, snap("done", "Done"), ["f"]).action == "requeue"
    assert decide_card(card("p", "Cancelled", T0), snap("feedback", "Feedback"), ["f"]).action == (
        "cancel"
    )
    assert decide_card(card("p", "Cancelled", T0), snap("done", "Done"), ["f"]).action == "ignore"


def test_a_card_naming_a_factory_that_may_be_in_a_module_that_failed_is_taken_in() -> None:
    """It waits in Queue (the engine holds it, the card says why) instead of being blocked."""
    unloaded = {"flows/beta.py": "import failed: ModuleNotFoundError"}
    beta = card("p", "Queue", T0, "beta")
    assert decide_card(beta, None, ["f"], unloaded).action == "create"
    assert decide_card(beta, snap("done", "Done"), ["f"], unloaded).action == "requeue"
    # no factory named: no module fix helps, but the reason says the list may be short
    nameless = decide_card(card("p", "Queue", T0, None), None, ["f"], unloaded)
    assert nameless.action == "block" and "flows/beta.py" in nameless.reason


def test_an_idle_boundary_minute_settles_so_a_big_bulk_edit_is_not_reread_forever() -> None:
    board = {f"p{i}": card(f"p{i}", "Done", T0) for i in range(300)}
    board["q"] = card("q", "Queue", T0)
    mark = Watermark(T0, frozenset())
    fresh, mark = advance(mark, query(board, mark), T0 + timedelta(seconds=30))
    assert len(fresh) == 301 and mark.minute == T0  # still inside the window: re-read
    fresh, mark = advance(mark, query(board, mark), T0 + timedelta(minutes=7))
    assert fresh == [] and mark.minute == T0 + timedelta(minutes=1)
    assert [c.page_id for c in query(board, mark)] == ["q"]  # from now on, one small query
    fresh, mark = advance(mark, query(board, mark), T0 + timedelta(minutes=8))
    assert fresh == []
