"""The Board protocol: what the scheduler needs from wherever the cards live.

The engine never talks to a board; it writes effects to the outbox. Boards
deliver those effects and report human replies. The local board lives in the
database; the Notion board (integrations/notion) implements the same protocol.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from factory.effects import Effect, EffectKind
from factory.progress import ProgressUpdate


@dataclass(frozen=True)
class Reply:
    """A person's comment on a card waiting in feedback."""

    comment_id: str
    text: str
    author: str
    created_at: datetime

    def meta(self) -> dict[str, Any]:
        return {
            "comment_id": self.comment_id,
            "author": self.author,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class PendingEffect:
    """An effect in the outbox, waiting for delivery to its card."""

    id: int
    task_id: str
    effect: Effect
    effect_key: str
    external_id: str | None  # the card on the board, when the board has its own ids
    in_doubt: bool = False  # a delivery was attempted and its outcome never recorded

    @property
    def kind(self) -> EffectKind:
        return self.effect.kind


@dataclass(frozen=True)
class Delivery:
    """What became of one effect: delivered (with the board's reference) or failed."""

    effect_id: int
    ok: bool
    ref: str | None = None
    error: str | None = None
    permanent: bool = False  # the page is gone or not shared: park, do not retry
    in_doubt: bool = False  # it may have been applied: check the board before re-sending


@dataclass
class PollReport:
    """What one poll of a board took in; the lists hold card ids."""

    seen: int = 0  # cards read
    created: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # cards that failed, and why
    # the fresh cards read: the feedback pass looks at those first (a reply may have come
    # with the edit)
    edited: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RequestStats:
    """What a board has sent to its service so far: /metrics and the live view show it."""

    total: int = 0  # requests sent, retries included
    retries: int = 0
    rate_limited: int = 0  # 429 and 529 answers received
    by_endpoint: Mapping[str, int] = field(default_factory=dict)  # "METHOD /v1/path/{id}"
    errors: Mapping[str, int] = field(default_factory=dict)  # error code -> failed attempts


# Awaited by a board just before it sends a write carrying these effects (by outbox id):
# stamps their send time, from which a write in doubt gets its grace.
Sending = Callable[[Sequence[int]], Awaitable[None]]


class Board(Protocol):
    id: str
    # seconds to wait before re-checking an effect whose delivery may have landed late
    doubt_grace: float

    async def poll(
        self, factories: Iterable[str], now: datetime, unloaded: Mapping[str, str] | None = None
    ) -> PollReport | None:
        """Take in new and changed cards; None where the board has no intake (cards are
        created locally).

        `unloaded` (workflow module -> load error) explains unknown factory ids: such a
        card is taken in and held in Queue rather than blocked.
        """
        ...

    async def deliver(
        self, effects: Sequence[PendingEffect], sending: Sending | None = None
    ) -> list[Delivery]:
        """Apply effects for one card, in order; await `sending(ids)` as each write goes out."""
        ...

    async def replies(self, task_id: str) -> list[Reply]:
        """New human replies on a card in feedback, oldest first (not yet consumed)."""
        ...

    def request_stats(self) -> RequestStats | None:
        """The requests sent to the board's service so far; None where it sends none."""
        ...


@runtime_checkable
class ShowsProgress(Protocol):
    """A board that can show a running agent's latest progress line on its card."""

    async def show_progress(self, update: ProgressUpdate) -> bool:
        """Show `update` on its card. True when a write went out for it (even one that
        failed: it counts against the card's interval), False when nothing was sent
        (no spare rate budget now, or the card is not ready for it): try again later.
        Never waits for rate budget: progress is dropped before deliveries wait."""
        ...
