"""Delivering one card's outbox effects to its Notion page, frugally and idempotently.

Per card and delivery: at most one property PATCH (the newest column, step
and error), one append for all log lines and page output (the markdown
endpoint, or blocks when that endpoint refuses), and one request per comment.

Idempotency: the outbox marks a batch `sending` before it reaches here, and
every write stamps the effects it carries as it really goes out (`sending`).
A batch that comes back still marked (`in_doubt`: a write timed out or the
worker died between Notion's answer and recording it) is first checked
against the page, once the grace counted from that stamp has passed: log and
output text already in the bot's section, and bot comments with the same
text, are not sent again. Property updates are idempotent by nature.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from factory.board_protocol import Delivery, PendingEffect, Sending
from factory.effects import CommentEffect, GraphEffect, LogEffect, PageEffect, StateEffect
from factory.store.db import Database
from factory.store.outbox import log_section_delivered
from factory.threads import run_io
from integrations.notion.cards import state_properties
from integrations.notion.client import NotionClient, OnSend
from integrations.notion.errors import NotionError
from integrations.notion.feedback import comment_text
from integrations.notion.markdown import (
    batches,
    bot_section_header,
    comment_chunks,
    markdown_chunks,
    markdown_to_blocks,
    split_bot_section,
)
from integrations.notion.progress import NotionProgress
from integrations.notion.richtext import plain


def render(effects: Sequence[PendingEffect], with_header: bool) -> str:
    """Log lines as a list, agent output and the factory's diagram as their own markdown,
    in outbox order."""
    parts: list[str] = [bot_section_header().rstrip("\n")] if with_header else []
    lines: list[str] = []
    for e in effects:
        match e.effect:
            case LogEffect(line=line):
                lines.append(f"- {line}")
            case PageEffect(markdown=markdown) | GraphEffect(markdown=markdown):
                if lines:
                    parts.append("\n".join(lines))
                    lines = []
                parts.append(markdown.strip("\n"))
            case other:
                raise ValueError(f"a {other.kind} effect is not page text")
    if lines:
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def signature(text: str) -> str:
    """Text reduced to letters and digits: survives Notion's re-rendering of markdown."""
    return re.sub(r"[^0-9a-z]+", "", text.lower())


def already_there(effect: PendingEffect, bot_section: str) -> bool:
    match effect.effect:
        case LogEffect(line=body) | PageEffect(markdown=body) | GraphEffect(markdown=body):
            return signature(body) in signature(bot_section)
    return False


def stamp(sending: Sending | None, effects: Sequence[PendingEffect]) -> OnSend | None:
    """The client's send hook for a write carrying `effects`: stamps their send time."""
    if sending is None:
        return None
    ids = [e.id for e in effects]

    async def on_send() -> None:
        await sending(ids)

    return on_send


class NotionDeliverer:
    def __init__(
        self,
        client: NotionClient,
        db: Database,
        bot_id: str,
        progress: NotionProgress | None = None,
    ) -> None:
        self.client = client
        self.db = db
        self.bot_id = bot_id
        self.progress = progress or NotionProgress(client, db, bot_id)

    async def deliver(
        self, effects: Sequence[PendingEffect], sending: Sending | None = None
    ) -> list[Delivery]:
        if not effects:
            return []
        # never at once with a progress write to the same card (see NotionProgress)
        async with self.progress.card(effects[0].task_id):
            return await self._deliver(effects, sending)

    async def _deliver(
        self, effects: Sequence[PendingEffect], sending: Sending | None
    ) -> list[Delivery]:
        page_id = effects[0].external_id
        if page_id is None:
            error = "task has no Notion page (created on the local board?)"
            return [Delivery(e.id, ok=False, error=error, permanent=True) for e in effects]
        done: list[Delivery] = []
        try:
            states = [e for e in effects if isinstance(e.effect, StateEffect)]
            if states:
                latest = states[-1].effect
                assert isinstance(latest, StateEffect)
                await self.client.update_page(
                    page_id,
                    properties=state_properties(latest.column, latest.step, latest.error),
                    on_send=stamp(sending, states),
                )
                done += [Delivery(e.id, ok=True) for e in states]
            writes = [
                e for e in effects if isinstance(e.effect, LogEffect | PageEffect | GraphEffect)
            ]
            if writes:
                await self._append(page_id, writes, sending)
                done += [Delivery(e.id, ok=True) for e in writes]
            for e in effects:
                if isinstance(e.effect, CommentEffect):
                    ref = await self._comment(page_id, e, e.effect, sending)
                    done.append(Delivery(e.id, ok=True, ref=ref))
        except NotionError as exc:
            # 401 is this worker's problem (bad token), not the page's: keep the effects.
            permanent = exc.permanent and exc.status != 401
            sent = {d.effect_id for d in done}
            done += [
                Delivery(
                    e.id,
                    ok=False,
                    error=str(exc),
                    permanent=permanent,
                    in_doubt=exc.maybe_applied or e.in_doubt,
                )
                for e in effects
                if e.id not in sent
            ]
        return done

    async def _append(
        self, page_id: str, writes: list[PendingEffect], sending: Sending | None
    ) -> None:
        # the running agent's progress line goes first: the log then reads in order
        await self.progress.remove(writes[0].task_id, page_id)
        with_header = not await run_io(log_section_delivered, self.db, writes[0].task_id)
        if any(e.in_doubt for e in writes):
            page = await self.client.get_markdown(page_id)
            _person, bot = split_bot_section(page.get("markdown", ""))
            with_header = with_header and not bot
            writes = [e for e in writes if not already_there(e, bot)]
            if not writes:
                return
        on_send = stamp(sending, writes)
        for chunk in markdown_chunks(render(writes, with_header)):
            try:
                await self.client.insert_markdown(page_id, chunk, on_send=on_send)
            except NotionError as exc:
                if not exc.permanent or exc.status in (401, 403, 404):
                    raise
                # The markdown endpoint refused this content: append it as blocks.
                for batch in batches(markdown_to_blocks(chunk)):
                    await self.client.append_blocks(page_id, batch, on_send=on_send)

    async def _comment(
        self, page_id: str, effect: PendingEffect, comment: CommentEffect, sending: Sending | None
    ) -> str:
        chunks = comment_chunks(comment.text)
        ref = ""
        if effect.in_doubt:
            posted = {
                comment_text(c): str(c["id"])
                for c in await self.client.list_comments_all(page_id)
                if (c.get("created_by") or {}).get("id") == self.bot_id
            }
            landed = [posted[plain(c)] for c in chunks if plain(c) in posted]
            ref = landed[-1] if landed else ""
            chunks = [c for c in chunks if plain(c) not in posted]
        for rich_text in chunks:
            answer = await self.client.create_comment(
                page_id, rich_text, on_send=stamp(sending, [effect])
            )
            ref = str(answer.get("id", ""))
        return ref
