"""The local board: cards and comments kept in the database, for use without Notion.

Effects are "delivered" by recording them (the outbox row becomes the card's
log); bot comments go into the local comment thread, so the feedback watcher
sees and ignores them exactly as it must on Notion.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import Engine, insert, select

from factory.board import Delivery, PendingEffect, Reply, Sending
from factory.clock import Clock
from factory.effects import CommentEffect, Effect, effect_from_row
from factory.progress import ProgressUpdate
from factory.statuses import OutboxStatus, TaskStatus
from factory.store import progress as progress_store
from factory.store.repo import LOCAL_BOARD, consumed_comment_ids, get_task
from factory.store.tables import local_comments, outbox
from factory.threads import run_io

BOT = "nfactory"


class LocalBoard:
    id = LOCAL_BOARD
    doubt_grace = 0.0  # local delivery is one transaction: never late

    def __init__(self, db: Engine, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def poll(
        self, factories: Iterable[str], now: datetime, unloaded: Mapping[str, str] | None = None
    ) -> None:
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
                    # Same transaction as nothing else: the effect key is checked first, so
                    # a crash after this insert and before `record` cannot post twice.
                    ref = self._existing(conn, effect) or str(
                        conn.execute(
                            insert(local_comments)
                            .values(
                                task_id=effect.task_id,
                                author=f"{BOT}:{effect.effect_key}",
                                is_bot=True,
                                text=effect.effect.text,
                                created_at=self.clock.now(),
                            )
                            .returning(local_comments.c.id)
                        ).scalar_one()
                    )
                results.append(Delivery(effect.id, ok=True, ref=ref))
        return results

    @staticmethod
    def _existing(conn, effect: PendingEffect) -> str | None:  # type: ignore[no-untyped-def]
        found = conn.execute(
            select(local_comments.c.id).where(
                local_comments.c.author == f"{BOT}:{effect.effect_key}"
            )
        ).scalar_one_or_none()
        return None if found is None else str(found)

    async def replies(self, task_id: str) -> list[Reply]:
        return await run_io(self._replies, task_id)

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
        with self.db.connect() as conn:
            consumed = consumed_comment_ids(conn, task_id)
            rows = conn.execute(
                select(local_comments)
                .where(local_comments.c.task_id == task_id, ~local_comments.c.is_bot)
                .order_by(local_comments.c.id)
            ).mappings()
            return [
                Reply(str(r["id"]), r["text"], r["author"], r["created_at"])
                for r in rows
                if str(r["id"]) not in consumed
            ]


def add_reply(db: Engine, task_id: str, text: str, author: str, now: datetime) -> int:
    """A person answers a card waiting in feedback (`nfactory task reply`)."""
    if not text.strip():
        raise ValueError("the reply is empty")
    with db.begin() as conn:
        task = get_task(conn, task_id)
        if task.board_id != LOCAL_BOARD:
            raise ValueError(
                f"task {task_id} is on Notion board {task.board_id}: reply with a comment on "
                "its card in Notion"
            )
        if task.status != TaskStatus.feedback:
            raise ValueError(
                f"task {task_id} is {task.status}, not waiting for feedback; nothing to reply to"
            )
        return conn.execute(
            insert(local_comments)
            .values(task_id=task_id, author=author, is_bot=False, text=text, created_at=now)
            .returning(local_comments.c.id)
        ).scalar_one()


def card_log(db: Engine, task_id: str) -> list[Effect]:
    """What the local card shows: its delivered effects, in order."""
    with db.connect() as conn:
        rows = conn.execute(
            select(outbox.c.kind, outbox.c.payload)
            .where(outbox.c.task_id == task_id, outbox.c.status == OutboxStatus.delivered)
            .order_by(outbox.c.id)
        )
        return [effect_from_row(r.kind, r.payload) for r in rows]
