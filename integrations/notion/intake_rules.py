"""What a poll of the board means: the watermark and the decision per card. Pure.

Notion rounds `last_edited_time` down to the minute, and its query index shows
an edit only some seconds after it happened (INDEX_LAG). So a minute m is
*settled* (every edit stamped m is visible to a query) only once our clock is
past m + 1 minute + INDEX_LAG + CLOCK_SKEW. The watermark is the first minute
not yet settled: each poll asks for cards edited on or after it, recognises
the cards already handled by their key (page, time, and the values we act on),
and moves on over the minutes that have settled. No change is missed and none
is handled twice, as long as Notion shows an edit to queries within INDEX_LAG
and our clock runs at most CLOCK_SKEW ahead of Notion's.

Re-reading the unsettled window is cheap while it fits in one page of results.
A minute holding more cards than that (an import, a bulk property change) is
*heavy*: it is left out of the query until it settles, then read once more, so
a bulk edit costs two full reads, and every poll in between one request. A
card edited inside a heavy minute after its first read waits until that minute
settles (about three minutes) to be taken in.

The first poll (no watermark yet) reads the Queue column; after that only the
edit-time window is read: a card in Queue that was handled once comes back
only when it is edited again (which is what any change to it does).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from factory.unknown import unknown_factory
from integrations.notion.cards import Card
from integrations.notion.schema import STATE

ACTIVE = frozenset({"queued", "running", "feedback"})

# How long after an edit Notion's query index may still not show it. Notion does not
# publish this; edits usually reach queries within seconds, so a minute is generous.
INDEX_LAG = timedelta(seconds=60)
# How far our clock may run ahead of Notion's (NTP keeps both within a second; a host
# without it may drift further).
CLOCK_SKEW = timedelta(seconds=60)
# The results of one query request: a window of at most this many cards costs one request.
POLL_PAGE = 100
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Watermark:
    """Where intake stands. `minute`: the first minute not yet settled (None before the
    first poll); `seen`: for each card stamped from `minute` on, the key of the last
    version handled; `heavy`: unsettled minutes left out of the poll until they settle."""

    minute: datetime | None = None
    seen: frozenset[str] = frozenset()
    heavy: frozenset[datetime] = frozenset()


def settled(minute: datetime, now: datetime) -> bool:
    """Every edit stamped `minute` is visible to a query made at `now` or later."""
    return now >= minute + MINUTE + INDEX_LAG + CLOCK_SKEW


def first_unsettled(now: datetime) -> datetime:
    edge = now - MINUTE - INDEX_LAG - CLOCK_SKEW
    return edge.replace(second=0, microsecond=0) + MINUTE


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _edited(op: str, when: datetime) -> dict[str, Any]:
    return {"timestamp": "last_edited_time", "last_edited_time": {op: _iso(when)}}


def poll_filter(mark: Watermark, now: datetime) -> dict[str, Any]:
    if mark.minute is None:
        return {"property": STATE, "select": {"equals": "Queue"}}
    parts = [_edited("on_or_after", mark.minute)]
    for heavy in sorted(mark.heavy):
        if not settled(heavy, now):  # a settled heavy minute is read once more, now
            parts.append({"or": [_edited("before", heavy), _edited("on_or_after", heavy + MINUTE)]})
    return parts[0] if len(parts) == 1 else {"and": parts}


POLL_SORTS = [{"timestamp": "last_edited_time", "direction": "ascending"}]


def _page_of(key: str) -> str:
    return key.split("|", 1)[0]


def _stamp_of(key: str) -> datetime:
    return datetime.fromisoformat(key.split("|", 2)[1])


def _keep(versions: Mapping[str, str], start: datetime) -> frozenset[str]:
    return frozenset(k for k in versions.values() if _stamp_of(k) >= start)


def advance(
    mark: Watermark, cards: Sequence[Card], now: datetime, page: int = POLL_PAGE
) -> tuple[list[Card], Watermark]:
    """(cards not handled before, the next watermark), for the answer to
    `poll_filter(mark, now)` to a query sent at `now` or later.

    A card is fresh when its version differs from the last one handled:
    comparing with the last version only (not every version seen) means a card
    that goes Queue -> Cancelled -> Queue within one minute is still noticed.
    """
    last = {_page_of(k): k for k in mark.seen}
    newest: dict[str, Card] = {}
    for c in cards:  # a card edited while the query was paged may come back twice
        newest[c.page_id] = c
    fresh = [c for c in newest.values() if last.get(c.page_id) != c.key]
    start = first_unsettled(now)
    if mark.minute is not None:
        start = max(start, mark.minute)
    handled = {**last, **{c.page_id: c.key for c in newest.values()}}
    heavy = {h for h in mark.heavy if h >= start and not settled(h, now)}
    # What the next poll re-reads: if it would not fit in one page, leave out its
    # biggest minutes until it does (a minute with more than a page is always left out).
    window = Counter(
        c.last_edited_time
        for c in newest.values()
        if c.last_edited_time >= start and c.last_edited_time not in heavy
    )
    size = sum(window.values())
    for minute, count in window.most_common():
        if size <= page:
            break
        heavy.add(minute)
        size -= count
    return fresh, Watermark(start, _keep(handled, start), frozenset(heavy))


def interrupted(mark: Watermark, nxt: Watermark, handled: Iterable[Card]) -> Watermark:
    """The watermark to keep when a poll stops part way (Notion failed on a card): the
    window stays where it was, so the cards not yet handled come back; the cards handled
    are remembered, and the heavy minutes found stay out of the next query."""
    versions = {_page_of(k): k for k in mark.seen}
    versions.update({c.page_id: c.key for c in handled})
    if mark.minute is None:
        return Watermark(None, frozenset(versions.values()), nxt.heavy)
    return Watermark(mark.minute, _keep(versions, mark.minute), nxt.heavy)


@dataclass(frozen=True)
class TaskSnapshot:
    """What the database knows about a card's task, as intake needs it."""

    task_id: str
    status: str
    delivered_column: str | None  # the last column the bot actually set on the card
    state_pending: bool  # a column change is still waiting in the outbox


CardAction = Literal["create", "block", "cancel", "requeue", "ignore"]


@dataclass(frozen=True)
class Decision:
    action: CardAction
    reason: str = ""  # for "cancel": who or what asked, as the card's reason line says it


def decide_card(
    card: Card,
    task: TaskSnapshot | None,
    factories: Iterable[str],
    unloaded: Mapping[str, str] | None = None,
) -> Decision:
    """`unloaded` (module -> load error) may explain an unknown factory: then the card is
    taken in and the engine holds it in Queue, saying why, instead of blocking it."""
    known = set(factories)
    if card.in_trash:
        if task is not None and task.status in ACTIVE:
            return Decision("cancel", "the card being deleted in Notion")
        return Decision("ignore")
    if card.state == "Cancelled":
        if task is not None and task.status in ACTIVE:
            return Decision("cancel", "a person moving the card to Cancelled")
        return Decision("ignore")
    if card.state != "Queue":
        return Decision("ignore")
    if task is None:
        return _start(card, known, unloaded or {}, "create")
    if task.status in ACTIVE:
        return Decision("ignore")
    # A finished task's card shows Queue either because the bot has not moved
    # it yet (its column change is still pending) or because a person moved it
    # back after the bot had set another column: only the latter is a re-run.
    if task.state_pending or task.delivered_column in (None, "Queue"):
        return Decision("ignore")
    return _start(card, known, unloaded or {}, "requeue")


def _start(
    card: Card, known: set[str], unloaded: Mapping[str, str], action: CardAction
) -> Decision:
    if card.factory in known:
        return Decision(action)
    verdict = unknown_factory(card.factory or "", known, unloaded)
    return Decision(action if verdict.action == "hold" else "block", verdict.reason)
