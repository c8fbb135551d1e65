"""The local board: cards and comments kept in the database, for use without Notion.

Effects are "delivered" by recording them (the outbox row becomes the card's
log); bot comments go into the local comment thread, so the feedback watcher
sees and ignores them exactly as it must on Notion.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from factory.board_protocol import Delivery, PendingEffect, PollReport, Reply, RequestStats, Sending
from factory.clock import Clock
from factory.effects import CommentEffect
from factory.progress import ProgressUpdate
from factory.store import local_comments
from factory.store import progress as progress_store
from factory.store.db import Database
from factory.store.repo import LOCAL_BOARD
from factory.threads import run_io

BOT = "nfactory"


class LocalBoard:
    id = LOCAL_BOARD
    doubt_grace = 0.0  # local delivery is one transaction: never late

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def poll(
        self, factories: Iterable[str], now: datetime, unloaded: Mapping[str, str] | None = None
    ) -> PollReport | None:
        return None  # local cards are created in the database directly

    async def deliver(
        self, effects: Sequence[PendingEffect], sending: Sending | None = None
    ) -> list[Delivery]:
        # one transaction with the check of each effect's key: nothing is ever in doubt here
        return await run_io(self._deliver, effects)

    def _deliver(self, effects: Sequence[PendingEffect]) -> list[Delivery]:
        results = []
        with self.db.begin() as conn:
            for effect in effects:
                ref = None
                if isinstance(effect.effect, CommentEffect):
                    ref = local_comments.post_once(
                        conn,
                        effect.task_id,
                        f"{BOT}:{effect.effect_key}",
                        effect.effect.text,
                        self.clock.now(),
                    )
                results.append(Delivery(effect.id, ok=True, ref=ref))
        return results

    async def replies(self, task_id: str) -> list[Reply]:
        return await run_io(self._replies, task_id)

    def request_stats(self) -> RequestStats | None:
        return None  # the database is the board: no service to send requests to

    async def show_progress(self, update: ProgressUpdate) -> bool:
        """The local card's progress is its row in the database (`nfactory status`)."""

        def work() -> None:
            with self.db.begin() as conn:
                progress_store.set_line(
                    conn, update.task_id, update.state_id, update.line, self.clock.now()
                )

        await run_io(work)
        return True

    def _replies(self, task_id: str) -> list[Reply]:
        return [Reply(*row) for row in local_comments.unconsumed_replies(self.db, task_id)]
