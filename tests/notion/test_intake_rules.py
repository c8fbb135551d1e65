"""The intake watermark against Notion's minute-rounded edit times and its query index
lag, and the card decisions."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.notion.cards import Card
from integrations.notion.intake_rules import (
    CLOCK_SKEW,
    INDEX_LAG,
    TaskSnapshot,
    Watermark,
    advance,
    decide_card,
    interrupted,
    poll_filter,
    settled,
)

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
STATES = ["Queue", "Running", "Feedback", "Done", "Cancelled"]
PAGE = 3  # a small page of results, so the model reaches heavy minutes with a few cards


def minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def card(page: str, state: str, at: datetime, factory: str | None = "f") -> Card:
    return Card(page, "title", state, factory, minute(at), None, False)


def _time(raw: str) -> datetime:
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def matches(spec: dict[str, Any], c: Card) -> bool:
    """Notion's evaluation of the filters a poll sends (on minute-rounded edit times)."""
    if "and" in spec:
        return all(matches(s, c) for s in spec["and"])
    if "or" in spec:
        return any(matches(s, c) for s in spec["or"])
    if "timestamp" in spec:
        ((op, raw),) = spec["last_edited_time"].items()
        at, t = c.last_edited_time, _time(raw)
        return {"before": at < t, "after": at > t, "on_or_before": at <= t, "on_or_after": at >= t}[
            op
        ]
    assert spec["property"] == "State"
    return c.state == spec["select"]["equals"]


def query(board: dict[str, Card], mark: Watermark, now: datetime = T0) -> list[Card]:
    """What Notion answers to `poll_filter(mark, now)`, sorted by edit time as the poll asks."""
    found = [c for c in board.values() if matches(poll_filter(mark, now), c)]
    return sorted(found, key=lambda c: c.last_edited_time)


@dataclass
class LaggingNotion:
    """A board whose query shows each edit only `delay` after it (at most INDEX_LAG), on a
    clock `skew` ahead of ours (ours at most CLOCK_SKEW ahead of it)."""

    skew: timedelta
    versions: dict[str, list[tuple[datetime, Card]]] = field(default_factory=dict)

    def edit(self, page: str, state: str, now: datetime, delay: timedelta) -> Card:
        at = now + self.skew
        new = card(page, state, at)
        self.versions.setdefault(page, []).append((at + delay, new))
        return new

    def visible(self, now: datetime) -> dict[str, Card]:
        shown: dict[str, Card] = {}
        for page, versions in self.versions.items():
            ready = [c for when, c in versions if when <= now + self.skew]
            if ready:
                shown[page] = ready[-1]
        return shown


events = st.lists(
    st.tuples(
        st.sampled_from(["edit", "edit", "bulk", "poll", "poll"]),
        st.integers(0, 9),  # which card (a bulk edits every card from it on)
        st.sampled_from(STATES),
        # seconds that pass first
        st.sampled_from([0, 1, 5, 30, 59, 61, 200, 400]) | st.integers(0, 130),
        # the edit's index lag
        st.sampled_from([0, int(INDEX_LAG.total_seconds())])
        | st.integers(0, int(INDEX_LAG.total_seconds())),
    ),
    max_size=60,
)
_skew = int(CLOCK_SKEW.total_seconds())
skews = st.sampled_from([-_skew, 0, _skew]) | st.integers(-_skew, _skew)


@settings(max_examples=1000, deadline=None)
@given(events, skews, st.booleans())
def test_no_change_is_missed_and_none_is_handled_twice(
    script: list[tuple[str, int, str, int, int]], skew: int, failures: bool
) -> None:
    """Under index lag and clock skew; and a heavy minute is read in full at most twice."""
    now = T0
    notion = LaggingNotion(timedelta(seconds=skew))
    mark = Watermark()
    handled: dict[str, str] = {}  # page -> the last version handled
    first: datetime | None = None  # when a poll first set the watermark
    edited: dict[str, datetime] = {}  # page -> when (our clock) its last edit was made
    full_reads: Counter[datetime] = Counter()
    polls = failed = 0

    def poll() -> None:
        nonlocal mark, first, polls, failed
        polls += 1
        board = notion.visible(now)
        cards = query(board, mark, now)
        for stamp, n in Counter(c.last_edited_time for c in cards).items():
            full_reads[stamp] += n > PAGE
        fresh, nxt = advance(mark, cards, now, page=PAGE)
        if failures and polls % 3 == 0 and fresh:
            # Notion fails on the last fresh card: the others are handled, it waits
            fresh, nxt = fresh[:-1], interrupted(mark, nxt, fresh[:-1])
            failed += 1
        if first is None and nxt.minute is not None:
            first = now
        for c in fresh:
            assert handled.get(c.page_id) != c.key, f"handled twice: {c}"
            handled[c.page_id] = c.key
        mark = nxt

    for kind, which, state, wait, lag in script:
        now += timedelta(seconds=wait)
        if kind == "poll":
            poll()
            continue
        pages = range(which, 10) if kind == "bulk" else [which]
        for n in pages:
            notion.edit(f"p{n}", state, now, timedelta(seconds=lag if n % 2 == which % 2 else 0))
            edited[f"p{n}"] = now
    for _ in range(3):  # long enough for every minute to settle, allowing for a failure
        now += timedelta(minutes=4)
        poll()
    board = notion.visible(now)
    for page, current in board.items():
        # Queue cards are always taken in; other cards matter once intake has begun
        # (a card edited outside Queue before then has no task to update)
        if current.state == "Queue" or (first is not None and edited[page] > first):
            assert handled.get(page) == current.key, f"missed the last change of {page}"
    # a poll that fails part way may read once more what it had read
    assert all(n <= 2 + failed for n in full_reads.values()), full_reads
    if not failed:
        assert all(n <= 2 for n in full_reads.values()), full_reads


def test_an_unchanged_board_is_one_query_with_nothing_fresh() -> None:
    board = {f"p{i}": card(f"p{i}", "Done", T0 - timedelta(hours=1)) for i in range(500)}
    board["q"] = card("q", "Queue", T0)
    fresh, mark = advance(Watermark(), query(board, Watermark()), T0)
    assert [c.page_id for c in fresh] == ["q"]
    fresh, mark = advance(mark, query(board, mark, T0), T0)
    assert fresh == []


def test_the_first_poll_reads_the_queue_then_only_the_unsettled_window() -> None:
    assert poll_filter(Watermark(), T0) == {"property": "State", "select": {"equals": "Queue"}}
    f = poll_filter(Watermark(T0, frozenset()), T0)
    assert f == {
        "timestamp": "last_edited_time",
        "last_edited_time": {"on_or_after": "2026-11-23T09:00:00Z"},
    }
    # a heavy minute is left out while it is unsettled, and read once it has settled
    heavy = Watermark(T0, frozenset(), frozenset({T0 + timedelta(minutes=1)}))
    assert poll_filter(heavy, T0 + timedelta(minutes=2))["and"][1] == {
        "or": [
            {
                "timestamp": "last_edited_time",
                "last_edited_time": {"before": "2026-11-23T09:01:00Z"},
            },
            {
                "timestamp": "last_edited_time",
                "last_edited_time": {"on_or_after": "2026-11-23T09:02:00Z"},
            },
        ]
    }
    assert "and" not in poll_filter(heavy, T0 + timedelta(minutes=5))


def test_a_new_card_on_a_quiet_board_is_taken_in_by_the_next_poll() -> None:
    board = {f"p{i}": card(f"p{i}", "Done", T0 - timedelta(hours=1)) for i in range(500)}
    _, mark = advance(Watermark(), query(board, Watermark(), T0), T0)
    now = T0 + timedelta(seconds=10)
    board["new"] = card("new", "Queue", now)
    fresh, mark = advance(mark, query(board, mark, now), now)
    assert [c.page_id for c in fresh] == ["new"]
    now += timedelta(seconds=10)
    assert [c.page_id for c in query(board, mark, now)] == ["new"]  # still unsettled
    fresh, _ = advance(mark, query(board, mark, now), now)
    assert fresh == []


def test_a_bulk_edit_is_read_twice_then_left_out_until_it_settles() -> None:
    """10,000 cards edited in one minute: read when seen, left out, read once it settles."""
    board = {f"p{i}": card(f"p{i}", "Done", T0 - timedelta(hours=1)) for i in range(10)}
    now = T0 - timedelta(seconds=30)
    _, mark = advance(Watermark(), query(board, Watermark(), now), now)
    board.update({f"b{i}": card(f"b{i}", "Queue", T0) for i in range(10_000)})
    reads = []
    for poll in range(12):
        now = T0 + timedelta(seconds=30 + 20 * poll)
        cards = query(board, mark, now)
        if poll == 3:  # a person adds a card in a quiet minute: still taken in at once
            board["q"] = card("q", "Queue", now)
            cards = query(board, mark, now)
        fresh, mark = advance(mark, cards, now)
        reads.append((len(cards), len(fresh)))
    assert reads[0] == (10_000, 10_000)
    settle = next(i for i in range(12) if settled(T0, T0 + timedelta(seconds=30 + 20 * i)))
    assert all(n <= 1 for n, _ in reads[1:settle])
    assert reads[3] == (1, 1)
    assert reads[settle] == (10_001, 0)  # the second and last full read: nothing new
    assert all(n <= 1 for n, _ in reads[settle + 1 :])


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
