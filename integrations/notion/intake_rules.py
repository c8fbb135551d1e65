"""What a poll of the board means: the watermark and the decision per card. Pure.

The poll asks Notion for cards in Queue or edited since the watermark minute.
Because Notion's edit times are rounded down to the minute, the boundary
minute is always re-read, and cards already handled in it are recognised by
their key (page, time, and the values we act on): no change is missed and
none is handled twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from factory.unknown import unknown_factory
from integrations.notion.cards import Card
from integrations.notion.schema import STATE

ACTIVE = frozenset({"queued", "running", "feedback"})


@dataclass(frozen=True)
class Watermark:
    minute: datetime | None = None
    seen: frozenset[str] = frozenset()


def poll_filter(mark: Watermark) -> dict[str, Any]:
    queued = {"property": STATE, "select": {"equals": "Queue"}}
    if mark.minute is None:
        return queued
    edited = {
        "timestamp": "last_edited_time",
        "last_edited_time": {"on_or_after": mark.minute.isoformat().replace("+00:00", "Z")},
    }
    return {"or": [queued, edited]}


POLL_SORTS = [{"timestamp": "last_edited_time", "direction": "ascending"}]


def _page_of(key: str) -> str:
    return key.split("|", 1)[0]


# Once our clock is this far past the boundary minute, no edit can still be stamped with
# it (allowing for this much clock skew between us and Notion), so the boundary moves on
# and its cards need not be re-read: an idle board then costs one small query per poll.
SETTLE = timedelta(minutes=5)


def advance(
    mark: Watermark, cards: Sequence[Card], now: datetime | None = None
) -> tuple[list[Card], Watermark]:
    """(cards not handled before, the next watermark).

    The watermark remembers, for each card edited in the boundary minute and
    each card in Queue, the last version handled. A card is fresh when its
    version differs from that: comparing with the last version only (not every
    version seen) means a card that goes Queue -> Cancelled -> Queue within one
    minute is still noticed.
    """
    last = {_page_of(k): k for k in mark.seen}
    fresh = [c for c in cards if last.get(c.page_id) != c.key]
    newest = max((c.last_edited_time for c in cards), default=None)
    minute = mark.minute
    keep: dict[str, str] = dict(last)
    if newest is not None and (minute is None or newest > minute):
        minute, keep = newest, {}
    for c in cards:
        # Queue cards come back on every poll whatever their age: remember them too
        if c.last_edited_time == minute or c.state == "Queue":
            keep[c.page_id] = c.key
    if minute is not None and now is not None and now >= minute + timedelta(minutes=1) + SETTLE:
        minute = minute + timedelta(minutes=1)
        keep = {c.page_id: c.key for c in cards if c.state == "Queue"}
    return fresh, Watermark(minute, frozenset(keep.values()))


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
