"""Reading board cards out of Notion page objects, and writing card properties. Pure."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from integrations.notion.richtext import plain
from integrations.notion.schema import ERROR, FACTORY, NAME, STATE, STEP

# Property values the bot writes are bounded: the Error property shows the gist,
# the full error stays in the log on the page and in `nfactory history`.
MAX_PROPERTY_CHARS = 1_900


@dataclass(frozen=True)
class Card:
    page_id: str
    title: str
    state: str | None
    factory: str | None
    last_edited_time: datetime
    last_edited_by: str | None
    in_trash: bool

    @property
    def key(self) -> str:
        """Identity of this version of the card, for deduping polls.

        Notion rounds `last_edited_time` down to the minute, so two edits in one
        minute share it; including the values we act on means a second edit
        that changes them is still seen as new.
        """
        digest = hashlib.sha1(
            f"{self.title}\x00{self.state}\x00{self.factory}\x00{self.in_trash}".encode()
        ).hexdigest()[:12]
        return f"{self.page_id}|{self.last_edited_time.isoformat()}|{digest}"


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _select(prop: dict[str, Any] | None) -> str | None:
    if not prop:
        return None
    value = prop.get(prop.get("type", "select"))
    return value.get("name") if isinstance(value, dict) else None


def parse_card(page: dict[str, Any]) -> Card:
    props = page.get("properties", {})
    title_prop = props.get(NAME) or next(
        (p for p in props.values() if p.get("type") == "title"), {}
    )
    editor = page.get("last_edited_by") or {}
    return Card(
        page_id=page["id"],
        title=plain(title_prop.get("title") or []).strip(),
        state=_select(props.get(STATE)),
        factory=_select(props.get(FACTORY)),
        last_edited_time=parse_time(page["last_edited_time"]),
        last_edited_by=editor.get("id"),
        in_trash=bool(page.get("in_trash") or page.get("archived")),
    )


def bounded(text: str) -> str:
    if len(text) <= MAX_PROPERTY_CHARS:
        return text
    return text[: MAX_PROPERTY_CHARS - 1] + "…"


def text_value(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"content": bounded(text)}}] if text else []


def state_properties(column: str, step: str, error: str) -> dict[str, Any]:
    return {
        STATE: {"select": {"name": column}},
        STEP: {"rich_text": text_value(step)},
        ERROR: {"rich_text": text_value(error)},
    }


def new_card_properties(title: str, factory: str) -> dict[str, Any]:
    return {
        NAME: {"title": [{"type": "text", "text": {"content": bounded(title)}}]},
        STATE: {"select": {"name": "Queue"}},
        FACTORY: {"select": {"name": factory}},
    }
