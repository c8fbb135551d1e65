"""Intake: one poll of the board turns changed cards into task changes.

A poll of a board where nothing changed costs one query request whatever its
size, and so does a poll in the minutes after a bulk edit, once the bulk has
been read (see intake_rules for why). A card that starts a run costs one more
request: its page body, read once per run as the task's context.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime

from factory.board_protocol import PollReport
from factory.store import intake as intake_store
from factory.store.db import Database
from factory.threads import run_io
from integrations.notion.cards import Card, parse_card
from integrations.notion.client import NotionClient
from integrations.notion.errors import NotionError
from integrations.notion.intake_rules import (
    POLL_SORTS,
    TaskSnapshot,
    Watermark,
    advance,
    decide_card,
    interrupted,
    poll_filter,
)
from integrations.notion.markdown import first_line, plain_text, split_bot_section

log = logging.getLogger("nfactory.notion.intake")


async def read_context(client: NotionClient, page_id: str) -> tuple[str, str]:
    """(prompt, context) from the person's part of the page, never the bot's log."""
    try:
        page = await client.get_markdown(page_id)
        person, _bot = split_bot_section(page.get("markdown", ""))
    except NotionError as exc:
        if not exc.permanent:
            raise
        # the markdown endpoint is newer than the blocks API: fall back to blocks
        person = plain_text(await client.list_children_all(page_id))
    return first_line(person), person


async def poll(
    client: NotionClient,
    db: Database,
    board_id: str,
    factories: Iterable[str],
    now: datetime,
    unloaded: Mapping[str, str] | None = None,
) -> PollReport:
    factories = list(factories)
    minute, seen, heavy = await run_io(intake_store.load_watermark, db, board_id)
    mark = Watermark(minute, frozenset(seen), frozenset(heavy))
    pages = client.paginate(
        "POST",
        f"data_sources/{board_id}/query",
        body={"filter": poll_filter(mark, now), "sorts": POLL_SORTS},
    )
    cards = [parse_card(p) async for p in pages]
    fresh, next_mark = advance(mark, cards, now)
    report = PollReport(seen=len(cards), edited=[c.page_id for c in fresh])
    known = await run_io(intake_store.snapshots, db, board_id, [c.page_id for c in fresh])
    handled: list[Card] = []
    for card in fresh:
        snap = known.get(card.page_id)
        task = TaskSnapshot(*snap) if snap else None
        decision = decide_card(card, task, factories, unloaded or {})
        try:
            await _apply(
                client, db, board_id, card, task, decision.action, decision.reason, now, report
            )
        except NotionError as exc:
            report.errors.append(f"card {card.page_id}: {exc}")
            log.warning("intake of card %s failed: %s", card.page_id, exc)
            if not exc.permanent:
                # transient: keep the window where it was so the next poll retries
                # this card and those after it
                await run_io(_save, db, board_id, mark, interrupted(mark, next_mark, handled))
                return report
        handled.append(card)
    await run_io(_save, db, board_id, mark, next_mark)
    return report


def _save(db: Database, board_id: str, old: Watermark, new: Watermark) -> None:
    # after a bulk edit `seen` holds thousands of keys: write it only when it changes
    if new == old:
        return
    intake_store.save_watermark(db, board_id, new.minute, new.seen, new.heavy)


async def _apply(
    client: NotionClient,
    db: Database,
    board_id: str,
    card: Card,
    task: TaskSnapshot | None,
    action: str,
    reason: str,
    now: datetime,
    report: PollReport,
) -> None:
    title = card.title or "(untitled card)"
    factory_id = card.factory or ""
    if action == "create":
        prompt, context = await read_context(client, card.page_id)
        if await run_io(
            intake_store.create_card,
            db,
            board_id=board_id,
            external_id=card.page_id,
            factory_id=factory_id,
            title=title,
            prompt=prompt,
            context=context,
            now=now,
        ):
            report.created.append(card.page_id)
    elif action == "requeue" and task is not None:
        prompt, context = await read_context(client, card.page_id)
        if await run_io(
            intake_store.requeue_card,
            db,
            task.task_id,
            factory_id=factory_id,
            title=title,
            prompt=prompt,
            context=context,
            now=now,
        ):
            report.requeued.append(card.page_id)
    elif action == "block" and task is None:
        if await run_io(
            intake_store.block_new_card,
            db,
            board_id=board_id,
            external_id=card.page_id,
            factory_id=factory_id,
            title=title,
            error=reason,
            now=now,
        ):
            report.blocked.append(card.page_id)
    elif action == "block" and task is not None:
        await run_io(intake_store.block_existing, db, task.task_id, board_id, reason, now)
        report.blocked.append(card.page_id)
    elif action == "cancel" and task is not None:
        await run_io(intake_store.cancel_card, db, task.task_id, now, reason)
        report.cancelled.append(card.page_id)
